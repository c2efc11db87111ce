"""The sync verbs: reconcile (report, exit codes, lock), dlq, status, worker; every verb has --help and --config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from psabridge.cli import app, engine_opts
from psabridge.errors import PermanentError
from psabridge.holders import holder_id
from psabridge.model import System
from psabridge.settings import ConnectionSettings
from psabridge.store import Database, leases, upgrade
from psabridge.sync.context import set_context
from psabridge.sync.reconcile import LEASE

from .conftest import settings_data
from .fakes import FakeConnector, FakeVendor

runner = CliRunner()


class Setup:
    def __init__(self, folder: Path) -> None:
        self.database = f"sqlite:///{folder / 'bridge.db'}"
        self.config = folder / "psabridge.yaml"
        self.config.write_text(yaml.safe_dump(settings_data(folder, self.database)))
        self.snow = FakeVendor("snow", System.SERVICENOW)
        self.cw = FakeVendor("cw", System.CONNECTWISE)

    def connector(self, conn: ConnectionSettings) -> FakeConnector:
        return FakeConnector(conn, self.snow if conn.name == "acme-snow" else self.cw)

    def run(self, *args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, [*args, "--config", str(self.config)])
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def setup(tmp_path: Path, broker: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    made = Setup(tmp_path)
    monkeypatch.setattr(engine_opts, "connector_factory", made.connector)
    yield made
    set_context(None)


def test_reconcile_reports_counts_as_json_and_runs_queued_work_to_completion(setup: Setup) -> None:
    snow_id = setup.snow.create(queue="MSP Support")
    code, out, _ = setup.run("reconcile", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["connections"]["acme-snow"] == {
        "seen": 1, "created": 1, "updated": 0, "closed": 0, "repaired": 0, "failed": 0,
    }  # fmt: skip
    assert report["unfinished"] is False
    # the embedded broker's work (the mirror) was done before the command exited
    [(verb, cw_id)] = setup.cw.writes
    assert verb == "create" and setup.cw.tickets[cw_id]["title"] == setup.snow.tickets[snow_id]["title"]


def test_reconcile_prints_a_table_and_exits_1_when_anything_failed(setup: Setup) -> None:
    def refused() -> None:
        raise PermanentError("no access", status=403)

    setup.snow.create()
    setup.snow.fail("get_ticket", refused)
    code, out, _ = setup.run("reconcile", "--connection", "acme-snow")
    assert code == 1
    header, row = out.strip().splitlines()[-2:]
    assert header.split() == ["connection", "seen", "created", "updated", "closed", "repaired", "failed"]
    assert row.split() == ["acme-snow", "1", "0", "0", "0", "0", "1"]


def test_an_overlapping_reconcile_exits_3_with_a_clear_message(setup: Setup) -> None:
    upgrade(setup.database)
    db = Database(setup.database)
    with db.transaction() as s:
        leases.take_lease(s, "reconcile", holder_id(), LEASE)
    db.dispose()
    code, _, err = setup.run("reconcile")
    assert code == 3 and "another reconcile is running" in err and "nothing done" in err


def test_reconcile_refuses_a_window_without_a_timezone(setup: Setup) -> None:
    code, _, err = setup.run("reconcile", "--since", "2026-05-01T00:00:00")
    assert code == 2 and "no timezone" in err


def test_dlq_list_show_and_replay(setup: Setup) -> None:
    def down() -> None:
        raise PermanentError("ticket locked", status=423)

    ticket_id = setup.snow.create()
    setup.snow.fail("get_ticket", down)
    assert setup.run("reconcile")[0] == 1  # the ticket the vendor refused is recorded as a dead ingest
    code, out, _ = setup.run("dlq", "list")
    assert code == 0 and "ingest acme-snow 1" in out and "ticket locked" in out
    code, out, _ = setup.run("dlq", "show", "1")
    assert code == 0 and json.loads(out)["args"] == ["acme-snow", ticket_id]
    code, out, _ = setup.run("dlq", "replay", "1")
    assert code == 0 and "replayed 1" in out
    assert json.loads(setup.run("dlq", "list", "--json")[1]) == []
    assert setup.run("dlq", "show", "99")[0] == 1


def test_status_shows_each_connection(setup: Setup) -> None:
    setup.snow.create()
    setup.run("reconcile")
    code, out, _ = setup.run("status", "--json")
    assert code == 0
    state = json.loads(out)
    assert set(state) == {"acme-snow", "msp-cw"}
    assert state["acme-snow"]["last_run"]["kind"] == "reconcile" and state["acme-snow"]["last_run"]["status"] == "ok"
    assert state["acme-snow"]["backlog"] == {"deliveries": 0, "write_backs": 0}
    assert "budget" in state["acme-snow"]
    code, out, _ = setup.run("status")
    assert code == 0 and "acme-snow (servicenow)" in out and "last run       reconcile ok" in out


def test_worker_refuses_the_embedded_broker(setup: Setup) -> None:
    code, _, err = setup.run("worker")
    assert code == 2 and "psabridge serve" in err


@pytest.mark.parametrize(
    "verb", [["reconcile"], ["serve"], ["worker"], ["status"], ["dlq", "list"], ["dlq", "show"], ["dlq", "replay"]]
)
def test_every_sync_verb_has_help_and_config(verb: list[str]) -> None:
    result = runner.invoke(app, [*verb, "--help"])
    assert result.exit_code == 0 and "--config" in result.stdout
