"""The evaluate step's repositories on SQLite and PostgreSQL: transitions, evaluations, rule states, ledger, wake-ups,
the findings' bookkeeping and the first sync time."""

from __future__ import annotations

from datetime import timedelta

from psabridge.model import Party, Priority, Status
from psabridge.rules.base import Finding, LedgerEntry, Transition
from psabridge.rules.engine import FindingRecord, ResolvedFinding
from psabridge.store import Database, evaluations, findings, ledger, sync_state, tickets, transitions
from tests.test_repositories import T0, ticket


def test_transitions_between_copies_are_stored_and_read_oldest_first(db: Database) -> None:
    before = ticket(priority=Priority.P3)
    after = ticket(priority=Priority.P1, status=Status.IN_PROGRESS, assignee=Party(name="Dana"))
    found = transitions.transitions_between(before, after, T0, "human")
    assert {(t.field, t.before, t.after) for t in found} == {
        ("status", "new", "in_progress"),
        ("priority", "P3", "P1"),
        ("assignee", None, "Dana"),
    }
    assert transitions.transitions_between(None, after, T0, "human") == []
    later = Transition("status", "in_progress", "resolved", T0 + timedelta(hours=1), "bridge")
    with db.transaction() as s:
        transitions.record_transitions(s, [("acme-snow:1", later), *(("acme-snow:1", t) for t in found)])
        transitions.record_transitions(s, [("acme-snow:2", later)])
    with db.session() as s:
        got = transitions.transitions_of(s, "acme-snow:1")
        assert got[-1] == later and len(got) == 4
        assert set(transitions.transitions_of_many(s, ["acme-snow:1", "acme-snow:2", "none"])) == {
            "acme-snow:1",
            "acme-snow:2",
        }


def test_needs_evaluation_is_cleared_only_for_the_changes_the_evaluation_saw(db: Database) -> None:
    with db.transaction() as s:
        evaluations.mark_needed(s, ["a:1", "a:2"], T0)
    with db.transaction() as s:
        evaluations.mark_needed(s, ["a:1"], T0 + timedelta(minutes=1))  # a second change: still needed since T0
        record = evaluations.evaluation_record(s, "a:1")
    assert (record.needed_since, record.changes, record.before) == (T0, 2, None)
    with db.transaction() as s:
        evaluations.mark_needed(s, ["a:1"], T0 + timedelta(minutes=2))  # arrives while the evaluation runs
        assert not evaluations.record_evaluation(
            s, "a:1", seen=record.changes, before=ticket(), evaluated_at=T0, signature="0x1", would_write=2
        )
    with db.session() as s:
        assert evaluations.needing_evaluation(s) == ["a:1", "a:2"]
        again = evaluations.evaluation_record(s, "a:1")
    assert again.before == ticket() and again.would_write == 2 and again.signature == "0x1"
    with db.transaction() as s:  # the count is per connection of the stored ticket; a:1 is not stored yet
        assert evaluations.would_write_by_connection(s) == {}
        tickets.upsert_tickets(s, [(ticket(connection="a"), None)])  # stored as a:1
    with db.session() as s:
        assert evaluations.would_write_by_connection(s) == {"a": (1, 2)}
    with db.transaction() as s:
        assert evaluations.record_evaluation(
            s, "a:1", seen=again.changes, before=ticket(), evaluated_at=T0, signature=None, would_write=0
        )
    with db.session() as s:
        assert evaluations.needing_evaluation(s) == ["a:2"]
        assert evaluations.needing_evaluation(s, older_than=T0 - timedelta(seconds=1)) == []
        assert evaluations.evaluation_record(s, "never").changes == 0


def test_rule_states_ledger_and_wakeups(db: Database) -> None:
    with db.transaction() as s:
        evaluations.save_rule_states(s, "a:1", {"sla": {"announced": ["warn50"]}, "paging": {"paged": 1}}, T0)
        evaluations.save_rule_states(s, "a:1", {"sla": {"announced": ["warn50", "warn75"]}}, T0)
        ledger.record_ledger(s, "a:1", [LedgerEntry("priority", "P1", T0, "rules.priority")])
        evaluations.set_wakeup(s, "a:1", T0 + timedelta(hours=1))
        evaluations.set_wakeup(s, "a:1", T0 + timedelta(minutes=30))  # one row per ticket: replaced
        evaluations.set_wakeup(s, "a:2", T0 + timedelta(hours=2))
    with db.session() as s:
        assert evaluations.rule_states(s, "a:1") == {"sla": {"announced": ["warn50", "warn75"]}, "paging": {"paged": 1}}
        assert ledger.ledger_of(s, "a:1") == (LedgerEntry("priority", "P1", T0, "rules.priority"),)
        assert evaluations.wakeup_of(s, "a:1") == T0 + timedelta(minutes=30)
        assert evaluations.due_wakeups(s, T0 + timedelta(hours=1)) == ["a:1"]
    with db.transaction() as s:
        assert evaluations.take_due_wakeups(s, T0 + timedelta(hours=1)) == ["a:1"]
    with db.session() as s:
        assert evaluations.wakeup_of(s, "a:1") is None and evaluations.wakeup_of(s, "a:2") is not None
        assert evaluations.needing_evaluation(s) == ["a:1"]  # the wake-up became a pending evaluation
    with db.transaction() as s:
        evaluations.set_wakeup(s, "a:2", None)
    with db.session() as s:
        assert evaluations.due_wakeups(s, T0 + timedelta(days=1)) == []


def _finding(code: str, instance: str = "") -> Finding:
    return Finding(code, "identity", "Verify identity", "error", f"{code} missing", "call back", {"k": 1}, instance)


def test_evaluation_findings_keep_occurrence_noted_and_resolution(db: Database) -> None:
    with db.transaction() as s:
        findings.save_evaluation(
            s, "a:1", [FindingRecord(_finding("unverified"), "note", 1, new=True, noted=True)], [], now=T0
        )
    with db.session() as s:
        [stored] = findings.stored_findings(s, "a:1")
    assert (stored.rule, stored.code, stored.occurrence, stored.noted, stored.resolved) == (
        "identity",
        "unverified",
        1,
        True,
        False,
    )
    with db.transaction() as s:
        findings.save_evaluation(s, "a:1", [], [ResolvedFinding("identity", "unverified", 1, True, False)], now=T0)
    with db.session() as s:
        [stored] = findings.stored_findings(s, "a:1")
    assert stored.resolved and not stored.resolution_noted
    with db.transaction() as s:
        findings.save_evaluation(s, "a:1", [], [ResolvedFinding("identity", "unverified", 1, False, True)], now=T0)
        findings.save_evaluation(
            s, "a:1", [FindingRecord(_finding("unverified", "2"), "note", 2, new=True, noted=False)], [], now=T0
        )
    with db.session() as s:
        [stored] = findings.stored_findings(s, "a:1")
    assert (stored.occurrence, stored.instance, stored.noted, stored.resolved, stored.resolution_noted) == (
        2,
        "2",
        False,
        False,
        False,
    )


def test_knowledge_queries_and_first_sync(db: Database) -> None:
    with db.transaction() as s:
        tickets.upsert_tickets(s, [(ticket("1", status=Status.RESOLVED), None), (ticket("2"), None)])
        for key in ("acme-snow:1", "acme-snow:2"):
            evaluations.record_evaluation(
                s, key, seen=0, before=ticket(), evaluated_at=T0, signature="0x80070005", would_write=0
            )
        sync_state.mark_poll(s, "acme-snow", started=T0)
        sync_state.mark_poll(s, "acme-snow", started=T0 + timedelta(hours=1))
    with db.session() as s:
        fixes = evaluations.signature_fixes(s, "0x80070005", since=T0 - timedelta(days=1), exclude="acme-snow:2")
        assert [t.key for t in fixes] == ["acme-snow:1"]
        assert evaluations.signature_fixes(s, "0x80070005", since=T0, exclude="acme-snow:1") == []
        assert evaluations.signature_count(s, "0x80070005", since=T0, include="acme-snow:3") == 3
        assert sync_state.first_synced_at(s, "acme-snow") == T0
        assert sync_state.first_synced_at(s, "other") is None
