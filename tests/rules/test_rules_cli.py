"""`psabridge rules sla` (a calendar's arithmetic, a stored ticket's clocks) and `psabridge rules check [--live]`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
import yaml
from typer.testing import CliRunner

from psabridge.cli import app
from psabridge.model import Priority, Status, System, Ticket
from psabridge.store import Database, tickets, upgrade
from psabridge_sandbox.configout import write_config
from psabridge_sandbox.runner import SandboxRunner

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    with structlog.testing.capture_logs():
        yield


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config" / "psabridge.yaml"


def sla(config: Path, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["rules", "sla", "--config", str(config), "--json", *args])
    assert result.exit_code == 0, result.output
    loaded: dict[str, object] = json.loads(result.output)
    return loaded


def test_rules_sla_prints_the_due_time_in_utc_and_local_and_the_business_time_elapsed(config: Path) -> None:
    # Thu 24 Dec 2026 15:00 EST + 8h over us-east-business: Thu 15-17 (2h), Christmas off, Mon 28 08-12, 13-15.
    found = sla(
        config,
        *("--calendar", "us-east-business", "--start", "2026-12-24T15:00:00-05:00", "--target", "8h"),
        *("--now", "2026-12-28T10:00:00-05:00"),
    )
    assert found["due_utc"] == "2026-12-28T20:00:00+00:00"
    assert found["due_local"] == "2026-12-28T15:00:00-05:00"
    assert found["elapsed"] == "4:00:00" and found["elapsed_seconds"] == 14400.0
    assert found["remaining_seconds"] == 14400.0
    paused = sla(
        config,
        *("--calendar", "us-east-business", "--start", "2026-12-24T15:00:00-05:00", "--target", "8h"),
        *("--pause", "2026-12-24T16:00:00-05:00/2026-12-28T09:00:00-05:00", "--now", "2026-12-28T10:00:00-05:00"),
    )
    # The pause holds Thu 16-17 and Mon 08-09 (2h of business time): due two business hours later.
    assert paused["due_utc"] == "2026-12-28T22:00:00+00:00" and paused["elapsed"] == "2:00:00"
    wall = sla(config, "--calendar", "24x7", "--start", "2026-12-24T15:00:00Z", "--target", "90m", "--clock", "wall")
    assert wall["due_utc"] == "2026-12-24T16:30:00+00:00"


def test_rules_sla_text_output_names_both_zones(config: Path) -> None:
    result = runner.invoke(
        app,
        ["rules", "sla", "--config", str(config), "--calendar", "eu-business", "--start", "2026-05-18T16:00:00+02:00",
         "--target", "2h", "--now", "2026-05-18T16:30:00+02:00"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # Mon 18 May Berlin 16:00-17:00 (1h), Tue 08:00-09:00 CEST = 07:00Z.
    assert "due       2026-05-19T07:00:00+00:00  (2026-05-19T09:00:00+02:00 local)" in result.output
    assert "elapsed   0:30:00 of business time" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calendar", "mars", "--start", "2026-05-18T09:00:00Z", "--target", "1h"], "no calendar 'mars'"),
        (["--calendar", "24x7", "--start", "2026-05-18T09:00:00", "--target", "1h"], "has no time zone"),
        (["--calendar", "24x7", "--start", "2026-05-18T09:00:00Z", "--target", "soon"], "is not a duration"),
        (["--calendar", "24x7", "--start", "2026-05-18T09:00:00Z", "--target", "1h", "--pause", "x"],
         "is not START/END"),
        (["--calendar", "24x7"], "give --calendar, --start and --target (or --ticket)"),
    ],
)  # fmt: skip
def test_rules_sla_refuses_bad_input_with_a_clear_message(config: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["rules", "sla", "--config", str(config), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_rules_sla_shows_a_stored_tickets_clocks(config: Path, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    data = yaml.safe_load(config.read_text())
    data["database"] = database
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    upgrade(database)
    db = Database(database)
    created = datetime(2026, 5, 18, 13, 0, tzinfo=UTC)  # Mon 09:00 EDT
    ticket = Ticket(connection="msp-cw", system=System.CONNECTWISE, external_id="493", number="#493",
                    tenant="acme", summary="Mail down", status=Status.IN_PROGRESS, priority=Priority.P2,
                    created_at=created, updated_at=created)  # fmt: skip
    with db.transaction() as session:
        tickets.upsert_tickets(session, [(ticket, None)])
    db.dispose()
    found = sla(config, "--ticket", "#493", "--now", "2026-05-18T10:00:00-04:00")
    assert found["ticket"] == "msp-cw:493" and found["contract_tier"] == "gold"
    assert found["calendar"] == "us-east-business"
    clocks = {c["clock"]: c for c in found["clocks"]}  # type: ignore[union-attr, index]
    # gold P2: response 30m, plan 2h, resolution 8h of us-east-business time from Mon 09:00 EDT.
    assert clocks["response"]["due_local"] == "2026-05-18T09:30:00-04:00"
    assert clocks["response"]["state"] == "breached"
    assert clocks["plan"]["due_local"] == "2026-05-18T11:00:00-04:00" and clocks["plan"]["state"] == "warning"
    assert clocks["resolution"]["due_local"] == "2026-05-19T09:00:00-04:00"
    assert found["transitions"] == "none recorded: the clocks read the ticket as stored"
    missing = runner.invoke(app, ["rules", "sla", "--config", str(config), "--ticket", "nope"])
    assert missing.exit_code == 1 and "no stored ticket 'nope'" in missing.output


# --- rules check -----------------------------------------------------------------------------------------------------


def test_rules_check_passes_the_shipped_configuration(config: Path) -> None:
    result = runner.invoke(app, ["rules", "check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "4 calendar(s), 4 tenant(s), 4 route(s) to 4 queue(s)" in result.output


def test_rules_check_names_file_and_line_of_every_problem(config: Path) -> None:
    settings = yaml.safe_load(config.read_text())
    settings["tenants"]["initech"]["calendar"] = "midwest"
    settings["tenants"]["globex"]["contract_tier"] = "platinum"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    rules_file = config.parent / "rules.yaml"
    rules = yaml.safe_load(rules_file.read_text())
    rules["rules"]["paging"]["channel"] = "pagerduty"  # a pager, not a chat channel
    rules["rules"]["routing"]["queues"]["networking"] = {"connectwise": "Networking", "acme-snwo": "Network"}
    rules["tenants"]["acme"]["rules"]["paging"] = {"pager": "opsgeenie"}
    rules_file.write_text(yaml.safe_dump(rules, sort_keys=False))
    result = runner.invoke(app, ["rules", "check", "--config", str(config)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith(str(config.parent))]
    text = "\n".join(lines)
    assert f"{config}:" in text and "tenants.initech.calendar: calendar 'midwest' is not under calendars:" in text
    assert "tenants.globex.contract_tier: contract tier 'platinum' has no targets under rules.sla.tiers" in text
    assert "rules.paging.channel: notifier 'pagerduty' is pagerduty; a channel must be slack or teams" in text
    assert "tenants.acme.rules.paging.pager: no notifier 'opsgeenie'" in text
    assert "rules.routing.queues.networking.acme-snwo: 'acme-snwo' is neither a connection nor a vendor" in text
    assert all(":" in line.split(" ", 1)[0] for line in lines)  # file:line on every one
    assert "5 problem(s) in the rules set-up" in result.output


def test_rules_check_live_resolves_every_queue_against_the_vendors(tmp_path: Path) -> None:
    with SandboxRunner(port_base=0, tickets=0) as sandbox:
        config = write_config(tmp_path / "psabridge.yaml", sandbox.infos, world=sandbox.world, host="127.0.0.1")
        rules = yaml.safe_load((ROOT / "config" / "rules.yaml").read_text())
        (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
        data = yaml.safe_load(config.read_text())
        data["rules"] = "rules.yaml"
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        ok = runner.invoke(app, ["rules", "check", "--live", "--config", str(config)])
        assert ok.exit_code == 0, ok.output
        assert "[msp-cw] 4 queue name(s) resolved against connectwise's metadata" in ok.output
        rules["rules"]["routing"]["queues"]["security"] = {"default": "Security", "connectwise": "SOC"}
        (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
        bad = runner.invoke(app, ["rules", "check", "--live", "--config", str(config)])
    assert bad.exit_code == 1
    [problem] = [line for line in bad.output.splitlines() if line.startswith("[msp-cw]") and "rules.yaml" in line]
    assert "rules.routing.queues.security:" in problem and "'SOC'" in problem
    assert f"{tmp_path / 'rules.yaml'}:" in problem
