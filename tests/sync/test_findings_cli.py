"""`psabridge findings`, the open findings in `psabridge status` and `psabridge rules explain`, on a store the pipeline
filled (`psabridge reconcile` over fake vendors, the evaluate step on the embedded broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from psabridge.cli import engine_opts
from psabridge.store import Database
from psabridge.store.models import FindingRow, OutboxAction
from psabridge.sync.context import set_context

from .test_cli import Setup

RESET = {"title": "Password reset please", "body": "I am locked out of my account, please reset my password."}


@pytest.fixture
def filled(tmp_path: Path, broker: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    made = Setup(tmp_path)
    monkeypatch.setattr(engine_opts, "connector_factory", made.connector)
    made.snow.create(**RESET)  # SNOW-1: credential work, nobody verified the caller
    made.snow.create(title="Printer offline", body="The 2nd floor printer shows offline since this morning.")
    code, out, err = made.run("reconcile")
    assert code == 0, out + err
    yield made
    set_context(None)


def _rows(setup: Setup) -> tuple[int, int]:
    db = Database(setup.database)
    try:
        with db.session() as s:
            findings = s.scalar(sa.select(sa.func.count()).select_from(FindingRow))
            outbox = s.scalar(sa.select(sa.func.count()).select_from(OutboxAction))
        return int(findings or 0), int(outbox or 0)
    finally:
        db.dispose()


def test_findings_lists_what_the_checklist_found_as_json_and_text(filled: Setup) -> None:
    code, out, _ = filled.run("findings", "--json")
    assert code == 0
    found = json.loads(out)
    [identity] = [f for f in found if f["rule"] == "identity"]
    assert identity["ticket"] == "acme-snow:1" and identity["number"] == "SNOW-1" and identity["tenant"] == "acme"
    assert identity["code"] == "unverified" and identity["open"] is True
    assert identity["step"] == "Verify the caller's identity" and identity["effect"] == "note"
    assert identity["evidence"] and identity["advice"]
    code, out, _ = filled.run("findings")
    assert code == 0
    assert "SNOW-1  acme-snow:1  (tenant acme)" in out
    assert "identity.unverified  open" in out and "step: Verify the caller's identity" in out
    assert "evidence: " in out and "what to do: " in out


def test_findings_filters_by_ticket_number_rule_tenant_and_open(filled: Setup) -> None:
    by_number = json.loads(filled.run("findings", "--ticket", "SNOW-1", "--json")[1])
    assert by_number and {f["ticket"] for f in by_number} == {"acme-snow:1"}
    assert json.loads(filled.run("findings", "--ticket", "acme-snow:1", "--json")[1]) == by_number
    by_rule = json.loads(filled.run("findings", "--rule", "identity", "--open", "--json")[1])
    assert [(f["ticket"], f["code"]) for f in by_rule] == [("acme-snow:1", "unverified")]
    assert json.loads(filled.run("findings", "--tenant", "globex", "--json")[1]) == []
    assert json.loads(filled.run("findings", "--tenant", "acme", "--json")[1])
    code, out, _ = filled.run("findings", "--rule", "no-such-rule")
    assert code == 0 and out.strip() == "no findings (rule no-such-rule)"
    code, _, err = filled.run("findings", "--ticket", "SNOW-99")
    assert code == 1 and "no stored ticket 'SNOW-99'" in err


def test_status_counts_open_findings_per_connection_and_checklist_step(filled: Setup) -> None:
    code, out, _ = filled.run("status", "--json")
    assert code == 0
    state = json.loads(out)
    counts = state["acme-snow"]["open_findings"]
    assert counts["Verify the caller's identity"] == 1
    assert sum(counts.values()) == len(json.loads(filled.run("findings", "--open", "--json")[1]))
    assert state["msp-cw"]["open_findings"] == {}
    # both tickets were changed before the connection's first sync (the reconcile): history, so the checklist held
    # back its notes on them (findings only); nothing was held back where nothing was evaluated
    held = state["acme-snow"]["held_back"]
    assert held["tickets"] == 2 and held["writes"] >= 2 and state["msp-cw"]["held_back"] == {"tickets": 0, "writes": 0}
    code, out, _ = filled.run("status")
    assert code == 0
    section = out.split("acme-snow (servicenow)")[1].split("msp-cw (")[0]
    assert f"open findings  {sum(counts.values())} (psabridge findings --open)" in section
    assert "1  Verify the caller's identity" in section
    assert f"held back      {held['writes']} write(s) on 2 ticket(s) older than act_since" in section


def test_rules_explain_shows_every_rule_its_evidence_and_withheld_writes_and_writes_nothing(filled: Setup) -> None:
    before = _rows(filled)
    writes = list(filled.snow.writes)
    code, out, err = filled.run("rules", "explain", "--ticket", "SNOW-1", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ticket"] == "acme-snow:1" and report["number"] == "SNOW-1" and report["evaluated"] is True
    rules = {r["rule"]: r for r in report["rules"]}
    assert len(rules) == 17 and "identity" in report["fired"]
    [finding] = rules["identity"]["findings"]
    assert finding["code"] == "unverified" and finding["evidence"] and finding["occurrence"] == 1
    assert finding["new"] is False  # stored by the evaluate step already: explain reads the same inputs
    assert not rules["handoff"]["fired"] and rules["handoff"]["findings"] == []
    # The fake vendor's tickets changed before the connection's first sync: history, so act_since holds every write
    # back (the note included); the priority correction is withheld anyway, as the shipped rules only note an
    # understated priority (effect note, not set).
    assert report["actions"] == [] and report["would_write"] >= 1
    withheld = [(w["reason"], w["what"]) for w in report["withheld"]]
    assert ("act_since", "internal note") in withheld and ("effect", "set priority=P2") in withheld, withheld
    assert finding["noted"] is False
    assert _rows(filled) == before and filled.snow.writes == writes
    code, out, _ = filled.run("rules", "explain", "--ticket", "SNOW-1", "--at", "2030-01-01T09:00:00Z")
    assert code == 0
    assert "SNOW-1  acme-snow:1  as at 2030-01-01T09:00:00+00:00" in out
    assert "identity  fired  Verify the caller's identity" in out and "[error] unverified" in out
    assert "evidence: " in out and "next look: " in out and "withheld: internal note" in out
    assert _rows(filled) == before


def test_rules_explain_refuses_an_unknown_ticket_connection_or_time(filled: Setup) -> None:
    code, _, err = filled.run("rules", "explain", "--ticket", "SNOW-99")
    assert code == 1 and "no stored ticket 'SNOW-99'" in err
    code, _, err = filled.run("rules", "explain", "--ticket", "SNOW-1", "--connection", "msp-cw")
    assert code == 1 and "in msp-cw" in err
    code, _, err = filled.run("rules", "explain", "--ticket", "SNOW-1", "--at", "2030-01-01T09:00:00")
    assert code == 2 and "no time zone" in err


def test_findings_show_the_mappings_own_findings_with_their_data(filled: Setup) -> None:
    filled.snow.create(title="Odd status", state="waiting_on_vendor")
    assert filled.run("reconcile")[0] == 0
    found = json.loads(filled.run("findings", "--rule", "mapping", "--json")[1])
    [odd] = [f for f in found if f["number"] == "SNOW-3"]
    assert odd["step"] is None and odd["effect"] is None and odd["open"] is True
    assert odd["evidence"]["field"] == "status" and odd["evidence"]["raw"] == "waiting_on_vendor"
    code, out, _ = filled.run("findings", "--rule", "mapping")
    assert code == 0 and "mapping." in out and "step:" not in out and '"waiting_on_vendor"' in out
