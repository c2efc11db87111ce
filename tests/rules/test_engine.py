"""The engine: occurrences, the combined note, effects and every guardrail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from psabridge.model import AddNote, Kind, Priority, SetFields, Status
from psabridge.rules import (
    Evaluation,
    LedgerEntry,
    LinkView,
    RuleOutcome,
    StoredFinding,
    Transition,
)
from psabridge.rules.base import Code, Proposal, Rule, RuleInput, RuleSettings
from psabridge.rules.checklist import CHECKLIST
from psabridge.rules.config import RulesDocument
from psabridge.rules.engine import NOTE_RULE
from psabridge.rules.ruleset import CompiledRule, RuleSet, Tuned

from .helpers import NOW, evaluate, note, resolved, rules_with, ticket

OUTAGE = {
    "summary": "Nobody at Midtown Clinic can send or receive email",
    "description": "None of us can send email since 8:15, every time. Outlook says 'Disconnected'.",
    "priority": Priority.P3,
    "error_codes": ('"Disconnected"',),
}
PRIORITY_SET = {"rules": {"priority": {"effects": {"understated": "set"}}}}


def stored(evaluation: Evaluation, *, noted: bool = True) -> tuple[StoredFinding, ...]:
    """What the store holds after ``evaluation`` (its findings, noted as its note said)."""
    return tuple(
        StoredFinding(
            r.finding.rule,
            r.finding.code,
            r.occurrence,
            r.finding.instance,
            noted and r.noted,
            message=r.finding.message,
        )
        for r in evaluation.findings
    )


def test_a_first_evaluation_writes_one_note_worded_for_a_technician() -> None:
    result = evaluate(ticket(**OUTAGE))
    assert [(r.finding.rule, r.finding.code, r.occurrence, r.new, r.noted) for r in result.findings] == [
        ("priority", "understated", 1, True, True),
    ]
    (note_action,) = result.actions
    assert isinstance(note_action, AddNote)
    assert note_action is result.note
    assert note_action.kind.value == "internal"
    assert note_action.origin == f"rules.{NOTE_RULE}"
    assert note_action.target == "msp-cw"
    assert note_action.occurrence_key is not None and note_action.occurrence_key.startswith("checklist-note:")
    assert note_action.text.splitlines() == [
        "psabridge checklist: 1 item to look at on #1001 (internal note)",
        "",
        "Set the ticket priority and SLA",
        "- [critical] Priority P3 is less urgent than the evidence: 'none of us', which is P1 (system down or "
        "multi-user).",
        "  What to do: Raise it to P1 unless the ticket says why not. The matrix: P1 system down or multi-user, P2 "
        "single user blocked, P3 degraded, P4 request.",
        "",
        "Why: psabridge rules explain --ticket #1001",
    ]
    assert [(w.rule, w.finding, w.reason) for w in result.withheld] == [("priority", "understated", "effect")]
    assert result.resolved == ()


def test_re_evaluating_the_same_findings_writes_nothing() -> None:
    first = evaluate(ticket(**OUTAGE))
    again = evaluate(ticket(**OUTAGE), findings=stored(first))
    assert again.actions == ()
    assert [(r.occurrence, r.new, r.noted) for r in again.findings] == [(1, False, True)]
    assert "note: nothing new to announce" in again.trace


def test_a_fixed_finding_is_resolved_and_listed_in_the_next_note() -> None:
    first = evaluate(ticket(**OUTAGE))
    fixed = ticket(**{**OUTAGE, "priority": Priority.P1})
    quiet = evaluate(fixed, findings=stored(first))
    assert quiet.actions == ()  # nothing new: the resolution waits for the next note
    assert [(r.rule, r.code, r.newly, r.announced) for r in quiet.resolved] == [
        ("priority", "understated", True, False)
    ]
    store = tuple(
        StoredFinding(
            "priority", "understated", 1, noted=True, resolved=True, message=first.findings[0].finding.message
        )
        for _ in (1,)
    )
    later = evaluate(fixed.model_copy(update={"status": Status.CLOSED, "closed_at": NOW}), findings=store)
    assert later.note is not None
    text = later.note.text
    assert "Resolved since the last note:\n- Set the ticket priority and SLA: Priority P3 is less urgent" in text
    assert [(r.code, r.newly, r.announced) for r in later.resolved] == [("understated", False, True)]


def test_a_finding_that_comes_back_is_a_new_occurrence_with_its_own_keys() -> None:
    rules = rules_with(PRIORITY_SET)
    first = evaluate(ticket(**OUTAGE), rules)
    change = next(a for a in first.actions if isinstance(a, SetFields))
    assert change.fields == {"priority": "P1"}
    assert change.occurrence_key == "priority:priority=P1:1"
    back = (StoredFinding("priority", "understated", 1, noted=True, resolved=True, resolution_noted=True),)
    second = evaluate(ticket(**OUTAGE), rules, findings=back)
    assert [(r.occurrence, r.new) for r in second.findings] == [(2, True)]
    change2 = next(a for a in second.actions if isinstance(a, SetFields))
    assert change2.occurrence_key == "priority:priority=P1:2"
    assert change2.idempotency_key() != change.idempotency_key()
    assert second.note is not None and first.note is not None
    assert second.note.idempotency_key() != first.note.idempotency_key()
    reworded = first.note.model_copy(update={"text": "other words"})
    assert reworded.idempotency_key() == first.note.idempotency_key()


def test_effect_set_sends_the_change_and_the_note_says_so() -> None:
    result = evaluate(ticket(**OUTAGE), rules_with(PRIORITY_SET))
    assert [type(a).__name__ for a in result.actions] == ["SetFields", "AddNote"]
    assert "  psabridge set priority to P1." in result.note.text.splitlines()  # type: ignore[union-attr]
    assert result.withheld == ()


def test_per_tenant_overrides_apply_to_that_tenant_only() -> None:
    rules = rules_with({"tenants": {"acme": PRIORITY_SET}})
    assert any(isinstance(a, SetFields) for a in evaluate(ticket(**OUTAGE), rules).actions)
    from psabridge.rules import TenantView

    other = evaluate(ticket(**OUTAGE), rules, tenant=TenantView.of("globex", timezone="Europe/Berlin"))
    assert not any(isinstance(a, SetFields) for a in other.actions)


def test_never_fight_a_human_drops_a_field_for_good() -> None:
    rules = rules_with(PRIORITY_SET)
    set_at = NOW - timedelta(hours=2)
    ledger = (LedgerEntry("priority", "P1", set_at, "rules.priority"),)
    human = (Transition("priority", "P1", "P3", NOW - timedelta(hours=1), "human"),)
    result = evaluate(ticket(**OUTAGE), rules, ledger=ledger, transitions=human)
    assert not any(isinstance(a, SetFields) for a in result.actions)
    (held,) = result.withheld
    assert held.reason == "human_changed"
    assert held.detail.startswith("priority was set to 'P1' by psabridge at ")
    assert "changed by a person to 'P3'" in held.detail
    assert "  psabridge leaves priority as it is: a person changed it after psabridge set it." in (
        result.note.text.splitlines()  # type: ignore[union-attr]
    )
    echo = (Transition("priority", "P3", "P1", set_at, "bridge"),)
    ours = evaluate(ticket(**OUTAGE), rules, ledger=ledger, transitions=echo)
    assert any(isinstance(a, SetFields) for a in ours.actions)  # only our own change happened since


def test_an_untracked_field_changed_after_psabridge_set_it_is_left_alone() -> None:
    class Impact(_Proposer):
        change: ClassVar[dict[str, Any]] = {"impact": "high"}

    rules = _with_rule(Impact())
    ledger = (LedgerEntry("impact", "high", NOW - timedelta(hours=1)),)
    result = evaluate(ticket(impact="low"), rules, ledger=ledger)
    assert [w.reason for w in result.withheld] == ["human_changed"]
    assert "is now 'low'" in result.withheld[0].detail


def test_hands_off_statuses_tags_and_flags_write_nothing_but_keep_findings() -> None:
    rules = rules_with({**PRIORITY_SET, "guardrails": {"hands_off": {"statuses": ["on_hold"]}}})
    for fields in ({"status": Status.ON_HOLD}, {"tags": ("No-Automation",)}, {}):  # status, tag, the store's flag
        flag = not fields
        result = evaluate(ticket(**OUTAGE, **fields), rules, hands_off=flag)
        assert result.actions == ()
        assert {w.reason for w in result.withheld} == {"hands_off"}
        assert [r.finding.code for r in result.findings] == ["understated"]
        assert [r.noted for r in result.findings] == [False]


def test_act_since_holds_back_history_and_counts_what_it_would_write() -> None:
    old = ticket(**OUTAGE, updated_at=NOW - timedelta(days=30))
    result = evaluate(old, rules_with(PRIORITY_SET), act_since=NOW - timedelta(days=1))
    assert result.actions == ()
    assert result.would_write == 2
    assert {w.reason for w in result.withheld} == {"act_since"}
    assert "before act_since" in result.withheld[0].detail
    changed = old.model_copy(update={"updated_at": NOW})
    later = evaluate(changed, rules_with(PRIORITY_SET), act_since=NOW - timedelta(days=1), findings=stored(result))
    assert later.note is not None  # its findings were never announced: a change after act_since announces them
    recent = evaluate(ticket(**OUTAGE), act_since=NOW - timedelta(days=1))
    assert recent.note is not None and recent.would_write == 0


def test_mirror_pairs_are_evaluated_on_one_side() -> None:
    target = evaluate(ticket(**OUTAGE), link=LinkView("target", "acme-snow:abc", "acme-snow-to-cw"))
    assert target.evaluated is False
    assert target.actions == () and target.findings == ()
    assert target.trace == (
        "not evaluated: mirror target of link 'acme-snow-to-cw'; mirror pairs are evaluated on their source side "
        "(acme-snow:abc)",
    )
    assert evaluate(ticket(**OUTAGE), link=LinkView("source", "msp-cw:9", "l")).note is not None
    on_target = rules_with({"guardrails": {"evaluate_mirrors_on": "target"}})
    assert evaluate(ticket(**OUTAGE), on_target, link=LinkView("source", "msp-cw:9", "l")).evaluated is False


class _Proposer(Rule[RuleSettings]):
    """A test rule that proposes ``change`` with a finding."""

    id: ClassVar[str] = "proposer"
    step: ClassVar[str] = "Test step"
    settings_model = RuleSettings
    codes: ClassVar[dict[str, Code]] = {"go": Code("info", "test", effect="set", actionable=True)}
    change: ClassVar[dict[str, Any]] = {"status": "resolved"}

    def evaluate(self, data: RuleInput[RuleSettings]) -> RuleOutcome:
        action = SetFields(
            ticket_key=data.ticket.key, target=data.ticket.connection, origin="rules.proposer", fields=dict(self.change)
        )
        return RuleOutcome(findings=(self.finding("go", "go"),), actions=(Proposal("go", action),))


class _Broken(Rule[RuleSettings]):
    id: ClassVar[str] = "broken"
    step: ClassVar[str] = "Broken step"
    settings_model = RuleSettings
    codes: ClassVar[dict[str, Code]] = {"x": Code("info", "x")}

    def evaluate(self, data: RuleInput[RuleSettings]) -> RuleOutcome:
        raise KeyError("boom")


def _with_rule(*extra: Rule[Any]) -> RuleSet:
    base = rules_with()
    added = tuple(
        CompiledRule(
            rule,
            Tuned(
                RuleSettings(), {c: s.effect for c, s in rule.codes.items()}, {c: i for i, c in enumerate(rule.codes)}
            ),
            {},
        )
        for rule in extra
    )
    return RuleSet(RulesDocument(), base.rules + added)


def test_the_identity_hold_stops_status_moving_forward() -> None:
    rules = _with_rule(_Proposer())
    reset = {
        "summary": "Password reset",
        "description": "Forgot my password, can't log in",
        "kind": Kind.SERVICE_REQUEST,
    }
    held = evaluate(ticket(**reset, priority=Priority.P2), rules)
    assert [w.reason for w in held.withheld] == ["identity_hold"]
    assert held.withheld[0].detail == "status resolved held while identity.unverified is open"
    assert not any(isinstance(a, SetFields) for a in held.actions)
    assert "psabridge holds automated status changes" in held.note.text  # type: ignore[union-attr]
    verified = ticket(
        **reset, priority=Priority.P2, notes=(note("Identity verified by callback to the number on file."),)
    )
    free = evaluate(verified, rules)
    assert [a.fields for a in free.actions if isinstance(a, SetFields)] == [{"status": "resolved"}]


def test_a_failing_rule_is_reported_and_keeps_its_stored_findings() -> None:
    rules = _with_rule(_Broken())
    kept = (StoredFinding("broken", "x", 1, noted=True), StoredFinding("tagging", "missing", 1, noted=True))
    result = evaluate(ticket(), rules, findings=kept)
    broken = next(r for r in result.results if r.rule == "broken")
    assert broken.error == "KeyError: 'boom'"
    assert [(r.rule, r.code) for r in result.resolved] == [("tagging", "missing")]
    assert "broken: failed (KeyError: 'boom'); its stored findings are left as they are" in result.trace


def test_disabled_rules_resolve_their_findings_and_other_rules_findings_are_ignored() -> None:
    rules = rules_with({"rules": {"tagging": {"enabled": False}}})
    held = (StoredFinding("tagging", "missing", 1, noted=True), StoredFinding("mapping", "unmapped_status", 1))
    result = evaluate(ticket(asset=None), rules, findings=held)
    assert next(r for r in result.results if r.rule == "tagging").enabled is False
    assert [(r.rule, r.code) for r in result.resolved] == [("tagging", "missing")]


def test_wake_up_and_states_come_back_per_rule() -> None:
    rules = rules_with({"rules": {"satisfaction": {"survey_field": "csat"}}})
    closing = resolved(closed_at=None)
    result = evaluate(closing, rules)
    assert result.wake_at == NOW + timedelta(hours=1)
    assert result.states == {"satisfaction": {"closed_seen_at": NOW.isoformat()}}
    same = evaluate(closing, rules, states=result.states)
    assert same.states == {}
    past = evaluate(resolved(closed_at=NOW - timedelta(minutes=59, seconds=59)), rules, now=NOW)
    assert past.wake_at == NOW + timedelta(seconds=1)


def test_the_checklist_order_and_settings_agree() -> None:
    from psabridge.rules.checklist import ChecklistSettings

    assert [r.id for r in CHECKLIST] == list(ChecklistSettings.model_fields)
    for rule in CHECKLIST:
        assert type(getattr(ChecklistSettings(), rule.id)) is rule.settings_model
        assert rule.__module__.endswith(rule.id)
