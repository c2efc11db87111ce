"""The CLI an operator expects: --version, -v/-q/--log-level anywhere, usage errors exit 2, a busy port exits 2,
`config check` reports every file's problems in one pass, `mapping preview` offline and by human number,
`status`/`dlq list|purge` narrowed to one connection."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from psabridge.cli import app, main, mapping_cmd
from psabridge.cli.common import log_level, take_log_options
from psabridge.cli.serve_cmd import listen
from psabridge.store import Database, upgrade
from psabridge.store.models import DeadLetter, InboxDelivery, TicketRow
from psabridge.sync.deliveries import retry_deliveries
from tests.mapping.conftest import fixture

from .conftest import RecordingQueue, make_world, settings_data

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    database = f"sqlite:///{tmp_path / 'bridge.db'}"
    path = tmp_path / "psabridge.yaml"
    path.write_text(yaml.safe_dump(settings_data(tmp_path, database)))
    upgrade(database)
    yield path
    take_log_options([])  # forget this test's flags


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code in (0, None)
    assert capsys.readouterr().out.startswith("psabridge ")


def test_log_flags_are_taken_from_anywhere_on_the_line() -> None:
    rest = take_log_options(["status", "-v", "--config", "x.yaml"])
    assert rest == ["status", "--config", "x.yaml"] and log_level("info") == "debug"
    take_log_options(["dlq", "list", "-qq"])
    assert log_level("info") == "error"
    take_log_options(["status", "-q"])
    assert log_level("info") == "warning"
    take_log_options(["reconcile", "--log-level=DEBUG", "-q"])
    assert log_level("warning") == "debug"  # --log-level wins
    assert take_log_options(["mapping", "preview", "--", "-v"]) == ["mapping", "preview", "--", "-v"]
    assert log_level("info") == "info"
    with pytest.raises(typer.BadParameter):
        take_log_options(["status", "--log-level", "loud"])
    take_log_options([])


def test_usage_errors_exit_2(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["status", "--bogus"], ["status", "--log-level", "loud"], ["dlq", "replay", "--config", str(config)]):
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2, argv


def test_a_port_in_use_is_a_clear_error_with_exit_2(config: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _out, err = run("serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config))
        assert code == 2
        assert f"cannot listen on 127.0.0.1:{port}" in err and "already in use" in err
    sock = listen("127.0.0.1", 0)  # a free one is bound (uvicorn listens on it)
    assert sock.getsockname()[1] > 0
    sock.close()


def test_config_schema_accepts_config(config: Path) -> None:
    code, out, _err = run("config", "schema", "--config", str(config))
    assert code == 0 and json.loads(out)["title"] == "psabridge settings"


def test_config_check_reports_mapping_and_rules_problems_in_one_pass(tmp_path: Path, config: Path) -> None:
    data = yaml.safe_load(config.read_text())
    broken = tmp_path / "broken-mapping.yaml"
    broken.write_text("vendor: servicenow\nfields:\n  status: {from: [unclosed\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  identity: {enabled: maybe}\n")
    data["connections"][0]["mapping"] = str(broken)
    data["rules"] = str(rules)
    config.write_text(yaml.safe_dump(data))
    code, out, err = run("config", "check", "--config", str(config))
    assert code == 2
    assert str(broken) in err and "mapping of acme-snow" in err
    assert str(rules) in err
    assert "ok: " in out and "mapping of msp-cw" in out  # the good one is still checked and said to be fine


def _snow_config(tmp_path: Path) -> Path:
    database = f"sqlite:///{tmp_path / 'snow.db'}"
    upgrade(database)
    path = tmp_path / "snow.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": database,
                "broker": "embedded",
                "connections": [
                    {
                        "name": "acme-snow",
                        "system": "servicenow",
                        "base_url": "https://acme.service-now.test",
                        "mapping": "builtin:servicenow",
                        "credentials": {"username": "psabridge", "password_env": "PSAB_TEST_SURELY_UNSET"},
                    }
                ],
            }
        )
    )
    return path


def test_mapping_preview_input_works_offline_without_the_connections_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PSAB_TEST_SURELY_UNSET", raising=False)
    config = _snow_config(tmp_path)
    record = tmp_path / "incident.json"
    record.write_text(json.dumps(fixture("servicenow", "incident_full.json")))
    code, out, err = run("mapping", "preview", "--connection", "acme-snow", "--input", str(record),
                         "--config", str(config))  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["ticket"]["number"] == "INC0010050"
    code, _out, err = run("status", "--config", str(config))  # a command that needs them still says so
    assert code == 2 and "PSAB_TEST_SURELY_UNSET" in err


def test_mapping_preview_ticket_takes_the_human_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSAB_TEST_SURELY_UNSET", "pw")
    config = _snow_config(tmp_path)
    incident = fixture("servicenow", "incident_full.json")
    db = Database(yaml.safe_load(config.read_text())["database"])
    with db.transaction() as session:
        row = TicketRow(key=f"acme-snow:{incident['sys_id']}", connection="acme-snow", system="servicenow",
                        external_id=incident["sys_id"], number="INC0010050", content_hash="x", data={})  # fmt: skip
        session.add(row)
    db.dispose()
    asked: list[str] = []

    class Connector:
        def get_ticket(self, external_id: str) -> dict[str, Any]:
            asked.append(external_id)
            return dict(incident)

        def metadata(self) -> Any:
            return None

        def close(self) -> None:
            pass

    monkeypatch.setattr(mapping_cmd, "connector_factory", lambda conn: Connector())
    for ref in ("INC0010050", incident["sys_id"]):
        code, _out, err = run("mapping", "preview", "--connection", "acme-snow", "--ticket", ref,
                             "--config", str(config))  # fmt: skip
        assert code == 0, err
    assert asked == [incident["sys_id"], incident["sys_id"]]
    run("mapping", "preview", "--connection", "acme-snow", "--ticket", "#1234", "--config", str(config))
    assert asked[-1] == "1234"  # not stored: the vendor's id, '#' taken off


def _dead_letters(config: Path) -> None:
    db = Database(yaml.safe_load(config.read_text())["database"])
    with db.transaction() as session:
        session.add(DeadLetter(message_id="m1", queue="ingest.acme-snow", actor="ingest", args=["acme-snow", "1"]))
        session.add(DeadLetter(message_id="m2", queue="poll.msp-cw", actor="poll", args=["msp-cw"]))
        session.add(DeadLetter(message_id="m3", queue="ingest.msp-cw", actor="ingest", args=["msp-cw", "9"]))
        session.add(DeadLetter(message_id="m4", queue="evaluate.acme-snow", actor="evaluate", args=["acme-snow:5"]))
    db.dispose()


def test_status_and_dlq_list_narrow_to_one_connection(config: Path) -> None:
    _dead_letters(config)
    code, out, _err = run("status", "--json", "--connection", "acme-snow", "--config", str(config))
    assert code == 0 and list(json.loads(out)) == ["acme-snow"]
    assert json.loads(out)["acme-snow"]["dead_letters"] == 2  # an evaluation's counts under its ticket's connection
    code, _out, err = run("status", "--connection", "nope", "--config", str(config))
    assert code == 2 and "no connection named 'nope'" in err
    code, out, _err = run("dlq", "list", "--json", "--connection", "msp-cw", "--config", str(config))
    assert code == 0 and sorted(row["args"][0] for row in json.loads(out)) == ["msp-cw", "msp-cw"]


def test_dlq_purge_by_connection_or_id(config: Path) -> None:
    _dead_letters(config)
    assert run("dlq", "purge", "--config", str(config))[0] == 2  # says what to purge
    code, out, _err = run("dlq", "purge", "--connection", "msp-cw", "--config", str(config))
    assert code == 0 and "purged 2" in out
    code, out, _err = run("dlq", "list", "--json", "--connection", "acme-snow", "--config", str(config))
    assert sorted(row["actor"] for row in json.loads(out)) == ["evaluate", "ingest"]
    code, out, _err = run("dlq", "purge", "--replayed", "--all", "--config", str(config))
    assert code == 0 and "purged 0" in out  # none was replayed
    code, out, _err = run("dlq", "list", "--json", "--config", str(config))
    left = next(row for row in json.loads(out) if row["actor"] == "ingest")
    assert left["args"] == ["acme-snow", "1"]
    assert run("dlq", "purge", "999", "--config", str(config))[0] == 1
    code, out, _err = run("dlq", "purge", str(left["id"]), "--config", str(config))
    assert code == 0 and "purged 1" in out


def _failed_deliveries(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        rows = {
            "snow-ticket": InboxDelivery(
                connection="acme-snow",
                delivery_id="d1",
                external_id="41",
                status="failed",
                error="ingest dead-lettered",
                body="{}",
            ),
            "snow-unreadable": InboxDelivery(
                connection="acme-snow", delivery_id="unreadable:ab", status="failed", error="not JSON", body="<xml/>"
            ),
            "cw-ticket": InboxDelivery(connection="msp-cw", delivery_id="d3", external_id="7", status="failed"),
            "cw-done": InboxDelivery(connection="msp-cw", delivery_id="d4", external_id="8", status="done"),
        }
        session.add_all(rows.values())
        session.flush()
        return {name: row.id for name, row in rows.items()}


def test_deliveries_list_shows_the_failed_ones_of_a_connection(config: Path) -> None:
    ids = _failed_deliveries(Database(yaml.safe_load(config.read_text())["database"]))
    code, out, _err = run("deliveries", "list", "--json", "--connection", "acme-snow", "--config", str(config))
    assert code == 0
    listed = json.loads(out)
    assert {row["id"] for row in listed} == {ids["snow-ticket"], ids["snow-unreadable"]}
    assert {row["error"] for row in listed} == {"ingest dead-lettered", "not JSON"}
    code, out, _err = run("deliveries", "list", "--config", str(config))
    assert code == 0 and len(out.strip().splitlines()) == 3 and "(unreadable)" in out
    assert run("deliveries", "retry", "--config", str(config))[0] == 2


def test_retrying_deliveries_reopens_them_and_queues_each_tickets_ingest(tmp_path: Path, sqlite_db: Database) -> None:
    world = make_world(tmp_path, sqlite_db, RecordingQueue(), None)
    try:
        ids = _failed_deliveries(sqlite_db)
        done = retry_deliveries(world.ctx, None, "acme-snow")
        assert done.reopened == [ids["snow-ticket"]] and done.queued == [("acme-snow", "41")]
        assert "unreadable" in done.skipped[ids["snow-unreadable"]]
        assert world.ctx.queue.of("ingest") == [("acme-snow", "41")]
        with sqlite_db.session() as session:
            assert session.get(InboxDelivery, ids["snow-ticket"]).status == "received"  # type: ignore[union-attr]
        again = retry_deliveries(world.ctx, [ids["snow-ticket"], ids["cw-ticket"], ids["cw-done"]])
        assert again.reopened == [ids["cw-ticket"]] and again.queued == [("msp-cw", "7")]
        assert set(again.skipped) == {ids["snow-ticket"], ids["cw-done"]}  # not failed (any more)
    finally:
        world.ctx.close()
