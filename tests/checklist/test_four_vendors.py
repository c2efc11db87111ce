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
from psabridge_sandbox.desk import CASES, SYSTEMS, CaseBook, CaseName, Opened
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


def _configure(folder: Path, sandbox: SandboxRunner, *, links: list[dict[str, Any]]) -> tuple[Path, str]:
    config = write_config(folder / "psabridge.yaml", sandbox.infos, world=sandbox.world, host="127.0.0.1")
    data = yaml.safe_load(config.read_text())
    rules = yaml.safe_load((ROOT / "config" / "rules.yaml").read_text())
    rules["rules"]["priority"]["effects"]["understated"] = "set"  # this MSP lets psabridge correct priorities
    (folder / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    database = f"sqlite:///{folder / 'psabridge.db'}"
    data.update(rules="rules.yaml", database=database, links=links, log={"level": "warning", "format": "json"})
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config, database


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN", "unlimited")
        runner = SandboxRunner(port_base=0, tickets=0)
        runner.start()
    book = CaseBook(runner.infos)
    try:
        config, database = _configure(tmp_path_factory.mktemp("checklist"), runner, links=[MIRROR_LINK])
        made = Desk(runner, book, config, database)
        made.reconcile()  # the first sync of every connection: from now on, what people do is acted on
        yield made
    finally:
        book.close()
        runner.stop()


@dataclass
class Worked:
    """The cases as people left them, after psabridge's reconcile and before the second one."""

    cases: dict[tuple[str, CaseName], Opened]
    mirrored: Opened
    writes: dict[str, int]


@pytest.fixture(scope="module")
def worked(desk: Desk) -> Worked:
    tag = uuid.uuid4().hex[:6]
    cases = {(system, case): desk.book.open_case(case, system, tag=f"{tag} {system}") for system in SYSTEMS
             for case in CASES}  # fmt: skip
    # A client's incident handed to the MSP: mirrored into ConnectWise, evaluated on its source side only.
    mirrored = desk.book.password_reset("servicenow", tag=f"{tag} mirrored", queue="MSP Support")
    report = desk.reconcile()
    assert report["unfinished"] is False, report
    return Worked(cases, mirrored, desk.writes())


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


def test_a_second_reconcile_writes_nothing_more(desk: Desk, worked: Worked) -> None:
    report = desk.reconcile("--full")
    assert sum(c["repaired"] for c in report["connections"].values()) == 0, report
    assert desk.writes() == worked.writes
    for opened in [*worked.cases.values(), worked.mirrored]:
        assert len(desk.ours(opened)) == 1, opened
    status = json.loads(desk.run("status", "--json"))
    for system in SYSTEMS:
        assert status[CONNECTIONS[system]]["open_findings"].get("Verify the caller's identity", 0) >= 1, system


def test_a_backfill_of_history_stores_findings_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN", "unlimited")
        runner = SandboxRunner(port_base=0, tickets=30)  # each vendor's seeded history: closed tickets and open ones
        runner.start()
    book = CaseBook(runner.infos)
    try:
        config, database = _configure(tmp_path, runner, links=[])
        history = Desk(runner, book, config, database)
        before = history.writes()
        report = history.reconcile()
        assert all(c["created"] > 0 for c in report["connections"].values()), report
        assert history.writes() == before  # nothing written to any vendor
        db = Database(database)
        try:
            with db.session() as session:
                rules = set(session.scalars(sa.select(FindingRow.rule).distinct()))
        finally:
            db.dispose()
        assert {"resolution_note", "closure"} <= rules  # the history's weak closes were found, and kept to the store
    finally:
        book.close()
        runner.stop()
