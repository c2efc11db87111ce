"""The help-desk checklist end to end in each of ConnectWise, Autotask, ServiceNow and Freshservice.

The vendor simulators run on loopback; people open the checklist's cases through each vendor's REST API
(``psabridge_sandbox.desk``); psabridge runs as an operator runs it from cron, ``psabridge reconcile`` in its own
process (SQLite store, embedded broker: ingest, the evaluate step, write-back). Each case gets exactly one internal
note in the vendor's own internal form, read back through the vendor's API, naming its checklist step; the
understated priority is corrected where the rules say so (ServiceNow through impact and urgency); a second reconcile
writes nothing; a mirrored ticket is noted once, on its source side; `rules explain` shows the firing rule and its
evidence; and a backfill of a vendor's history writes nothing at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from psabridge.cli import app
from psabridge.store import Database
from psabridge.store.models import FindingRow, Link
from psabridge_sandbox.configout import write_config
from psabridge_sandbox.desk import CASES, SYSTEMS, CaseBook, CaseName, FreshserviceDesk, Opened
from psabridge_sandbox.people import WRITES
from psabridge_sandbox.runner import SandboxRunner
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

PSABRIDGE = [str(Path(sys.executable).with_name("psabridge"))]
CONNECTIONS = {"connectwise": "msp-cw", "autotask": "partner-at", "servicenow": "acme-snow",
               "freshservice": "globex-fs"}  # fmt: skip
NOTE_HEAD = "psabridge checklist"
STEPS: dict[CaseName, tuple[str, str]] = {  # case -> (the rule that must fire, the step its note names)
    "password_reset": ("identity", "Verify the caller's identity"),
    "outage_wrong_priority": ("priority", "Set the ticket priority and SLA"),
    "weak_resolve": ("resolution_note", "Document root cause and resolution"),
    "bare_escalation": ("handoff", "Escalate to Tier 2 with diagnostic notes"),
}
MIRROR_LINK = {
    "name": "acme-snow-to-cw",
    "from": {"connection": "acme-snow", "where": {"queue": "MSP Support"}},
    "to": {"connection": "msp-cw", "queue": "Acme Service", "tenant": "acme"},
    "own": {"status": "to", "priority": "from", "notes": "both", "time_entries": "to"},
}

cli = CliRunner()


@dataclass
class Desk:
    """The simulators, the people at them, and psabridge's configuration for them."""

    sandbox: SandboxRunner
    book: CaseBook
    config: Path
    database: str

    def reconcile(self, *args: str) -> dict[str, Any]:
        """`psabridge reconcile --json` as cron runs it, in its own process; its report."""
        done = subprocess.run(
            [*PSABRIDGE, "reconcile", "--json", *args, "--config", str(self.config)],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    def run(self, *args: str) -> str:
        """A psabridge command in this process (read-only commands); its output."""
        result = cli.invoke(app, [*args, "--config", str(self.config)])
        assert result.exit_code == 0, result.stdout + result.stderr
        return result.stdout

    def writes(self) -> dict[str, int]:
        """Every write each vendor simulator recorded (people's and psabridge's)."""
        found = {}
        for system in SYSTEMS:
            recorded = httpx.get(f"{self.sandbox.infos[system].url}/_sandbox/requests", timeout=10).json()["requests"]
            # Autotask's queries are POSTs that read: not writes.
            found[system] = sum(1 for r in recorded if r["method"] in WRITES and not r["path"].endswith("/query"))
        return found

    def ours(self, opened: Opened) -> list[str]:
        """psabridge's checklist notes on a ticket, read through the vendor's API in its internal-note form."""
        return [n for n in self.book.desk(opened.system).internal_notes(opened.ticket_id) if NOTE_HEAD in n]


def _configure(
    folder: Path, sandbox: SandboxRunner, *, links: list[dict[str, Any]], database: str | None = None
) -> tuple[Path, str]:
    config = write_config(folder / "psabridge.yaml", sandbox.infos, world=sandbox.world, host="127.0.0.1")
    data = yaml.safe_load(config.read_text())
    rules = yaml.safe_load((ROOT / "config" / "rules.yaml").read_text())
    rules["rules"]["priority"]["effects"]["understated"] = "set"  # this MSP lets psabridge correct priorities
    (folder / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    database = database or f"sqlite:///{folder / 'psabridge.db'}"
    data.update(rules="rules.yaml", database=database, links=links, log={"level": "warning", "format": "json"})
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config, database


@contextmanager
def _desk(
    folder: Path, *, tickets: int = 0, links: list[dict[str, Any]], database: str | None = None
) -> Iterator[Desk]:
    """The simulators (``tickets`` seeded per vendor) and the people at them, psabridge configured for them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN", "unlimited")  # our own cost, not the plan's limits
        runner = SandboxRunner(port_base=0, tickets=tickets)
        runner.start()
    book = CaseBook(runner.infos)
    try:
        config, url = _configure(folder, runner, links=links, database=database)
        yield Desk(runner, book, config, url)
    finally:
        book.close()
        runner.stop()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    with _desk(tmp_path_factory.mktemp("checklist"), links=[MIRROR_LINK]) as made:
        made.reconcile()  # the first sync of every connection: from now on, what people do is acted on
        yield made


@dataclass
class Worked:
    """The cases as people left them, after psabridge's reconcile and before the second one."""

    cases: dict[tuple[str, CaseName], Opened]
    mirrored: Opened
    hands_off: Opened
    writes: dict[str, int]


@pytest.fixture(scope="module")
def worked(desk: Desk) -> Worked:
    tag = uuid.uuid4().hex[:6]
    cases = {(system, case): desk.book.open_case(case, system, tag=f"{tag} {system}") for system in SYSTEMS
             for case in CASES}  # fmt: skip
    # A client's incident handed to the MSP: mirrored into ConnectWise, evaluated on its source side only.
    mirrored = desk.book.password_reset("servicenow", tag=f"{tag} mirrored", queue="MSP Support")
    # A ticket the client's agent tagged hands-off (guardrails.hands_off.tags): evaluated, nothing written.
    hands_off = desk.book.password_reset("freshservice", tag=f"{tag} hands-off")
    fs = desk.book.desk("freshservice")
    assert isinstance(fs, FreshserviceDesk)
    fs.tag(hands_off.ticket_id, "hands-off")
    report = desk.reconcile()
    assert report["unfinished"] is False, report
    return Worked(cases, mirrored, hands_off, desk.writes())


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("case", CASES)
def test_each_case_gets_exactly_one_internal_note_naming_its_step(
    desk: Desk, worked: Worked, system: str, case: CaseName
) -> None:
    opened = worked.cases[(system, case)]
    [note] = desk.ours(opened)
    _, step = STEPS[case]
    assert step in note, note
    assert "Why: psabridge rules explain --ticket" in note
    # Internal only: the requester sees none of it (no public note, comment or reply of psabridge's).
    every = desk.book.desk(system).all_notes(opened.ticket_id)
    assert [n for n in every if NOTE_HEAD in n] == [note]


def _priority(desk: Desk, opened: Opened) -> Any:
    ticket = desk.book.desk(opened.system).ticket(opened.ticket_id)  # type: ignore[attr-defined]
    if opened.system == "connectwise":
        return ticket["priority"]["name"]
    if opened.system == "servicenow":
        return ticket["impact"], ticket["urgency"], ticket["priority"]
    return ticket["priority"]


@pytest.mark.parametrize(
    ("system", "corrected"),
    [
        ("connectwise", "Priority 1 - Emergency Response"),
        ("autotask", 4),  # Critical
        ("servicenow", ("1", "1", "1")),  # through impact and urgency: priority is derived there
        ("freshservice", 4),  # Urgent
    ],
)
def test_the_outage_logged_at_the_lowest_priority_is_corrected_to_p1_in_the_vendor(
    desk: Desk, worked: Worked, system: str, corrected: Any
) -> None:
    opened = worked.cases[(system, "outage_wrong_priority")]
    assert _priority(desk, opened) == corrected
    [note] = desk.ours(opened)
    assert "psabridge set priority to P1" in note


def test_a_mirrored_ticket_is_noted_once_on_its_source_side(desk: Desk, worked: Worked) -> None:
    assert len(desk.ours(worked.mirrored)) == 1
    db = Database(desk.database)
    try:
        with db.session() as session:
            [link] = session.scalars(sa.select(Link).where(Link.source_key == f"acme-snow:{worked.mirrored.ticket_id}"))
    finally:
        db.dispose()
    assert link.state == "created" and link.target_external_id is not None
    cw_notes = desk.book.desk("connectwise").internal_notes(link.target_external_id)
    assert [n for n in cw_notes if NOTE_HEAD in n] == []


def test_a_ticket_tagged_hands_off_gets_findings_and_no_note(desk: Desk, worked: Worked) -> None:
    assert desk.ours(worked.hands_off) == []
    key = f"globex-fs:{worked.hands_off.ticket_id}"
    found = json.loads(desk.run("findings", "--ticket", key, "--rule", "identity", "--json"))
    assert [(f["code"], f["open"], f["noted"]) for f in found] == [("unverified", True, False)]
    report = json.loads(desk.run("rules", "explain", "--ticket", key, "--json"))
    assert report["actions"] == [] and "identity" in report["fired"]
    assert {w["reason"] for w in report["withheld"]} == {"hands_off"}
    assert any("hands-off" in w["detail"] for w in report["withheld"])


@pytest.mark.parametrize("case", CASES)
def test_rules_explain_shows_the_firing_rule_and_its_evidence(desk: Desk, worked: Worked, case: CaseName) -> None:
    rule, step = STEPS[case]
    for system in SYSTEMS:
        opened = worked.cases[(system, case)]
        key = f"{CONNECTIONS[system]}:{opened.ticket_id}"
        report = json.loads(desk.run("rules", "explain", "--ticket", key, "--json"))
        assert rule in report["fired"], (system, report["fired"])
        [result] = [r for r in report["rules"] if r["rule"] == rule]
        assert result["step"] == step and all(f["evidence"] for f in result["findings"]), (system, result)
        text = desk.run("rules", "explain", "--ticket", key)
        assert f"{rule}  fired  {step}" in text and "evidence: " in text
        found = json.loads(desk.run("findings", "--ticket", key, "--rule", rule, "--open", "--json"))
        assert found and all(f["noted"] for f in found), (system, found)


def test_tickets_are_found_by_the_number_technicians_see(desk: Desk, worked: Worked) -> None:
    sn = worked.cases[("servicenow", "password_reset")]
    number = desk.book.desk("servicenow").ticket(sn.ticket_id)["number"]  # type: ignore[attr-defined]
    assert number.startswith("INC")
    report = json.loads(desk.run("rules", "explain", "--ticket", number, "--json"))
    assert report["ticket"] == f"acme-snow:{sn.ticket_id}" and report["number"] == number
    cw = worked.cases[("connectwise", "password_reset")]
    found = json.loads(desk.run("findings", "--ticket", f"#{cw.ticket_id}", "--rule", "identity", "--json"))
    assert [f["ticket"] for f in found] == [f"msp-cw:{cw.ticket_id}"]


def test_a_second_reconcile_writes_nothing_more(desk: Desk, worked: Worked) -> None:
    report = desk.reconcile("--full")
    assert sum(c["repaired"] for c in report["connections"].values()) == 0, report
    assert desk.writes() == worked.writes
    for opened in [*worked.cases.values(), worked.mirrored]:
        assert len(desk.ours(opened)) == 1, opened
    assert desk.ours(worked.hands_off) == []
    status = json.loads(desk.run("status", "--json"))
    for system in SYSTEMS:
        assert status[CONNECTIONS[system]]["open_findings"].get("Verify the caller's identity", 0) >= 1, system


def test_a_backfill_of_history_stores_findings_and_writes_nothing(tmp_path: Path) -> None:
    # Each vendor's seeded history, closed tickets and open ones, all changed before this first sync.
    with _desk(tmp_path, tickets=30, links=[]) as history:
        before = history.writes()
        report = history.reconcile()
        assert all(c["created"] > 0 for c in report["connections"].values()), report
        assert history.writes() == before  # nothing written to any vendor
        db = Database(history.database)
        try:
            with db.session() as session:
                rules = set(session.scalars(sa.select(FindingRow.rule).distinct()))
        finally:
            db.dispose()
        assert {"resolution_note", "closure"} <= rules  # the history's weak closes were found, and kept to the store


@pytest.mark.integration
def test_the_cases_on_postgresql_get_one_note_each_and_a_second_reconcile_writes_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    """The production store: the same cases, on PostgreSQL (the module's other tests run on SQLite)."""
    with _desk(tmp_path, links=[], database=postgres_url) as pg:
        pg.reconcile()
        cases = [pg.book.open_case(case, system, tag=f"pg {system}") for system in SYSTEMS for case in CASES]
        pg.reconcile()
        for opened in cases:
            [note] = pg.ours(opened)
            assert STEPS[opened.case][1] in note, (opened, note)
        writes = pg.writes()
        pg.reconcile("--full")
        assert pg.writes() == writes
        assert all(len(pg.ours(opened)) == 1 for opened in cases)
