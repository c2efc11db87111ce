"""The fast path (``explain=False``) decides exactly what the explain path decides; only the trace lines differ."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from psabridge.model import Priority
from psabridge.rules import CHECKLIST, Evaluation, EvaluationInput, RuleSet, StoredFinding, Transition, evaluate_ticket
from psabridge.rules.config import RulesDocument

from .helpers import ACME, NOW, ticket
from .sla_helpers import CALENDARS, TIERS, tenant
from .test_properties import knowledge, tickets
from .test_routing_paging import PAGING_ON

EVERY_RULE = (
    RuleSet.default(),
    # Every rule on, the SLA tiers and calendars of the SLA tests, corrections and pages that go out, a route.
    RuleSet.from_document(
        RulesDocument.model_validate(
            {
                "calendars": CALENDARS,
                "rules": {
                    "sla": {"tiers": TIERS},
                    "priority": {"effects": {"understated": "set", "overstated": "set"}},
                    "paging": PAGING_ON,
                    "satisfaction": {"survey_field": "smileback_sent"},
                    "routing": {"breach": {"tier_queues": {2: "networking"}}},
                },
            }
        )
    ),
)
TENANTS = (ACME, tenant(), tenant(calendar=None), tenant(tier="platinum"))


def decided(evaluation: Evaluation) -> Evaluation:
    """The evaluation without its trace lines (the engine's and every rule's)."""
    return replace(
        evaluation,
        trace=(),
        results=tuple(r._replace(outcome=r.outcome._replace(trace=())) for r in evaluation.results),
    )


@settings(max_examples=200, deadline=None)
@given(
    tickets,
    knowledge,
    st.sampled_from(EVERY_RULE),
    st.sampled_from(TENANTS),
    st.booleans(),
    st.booleans(),
    st.integers(0, 3),
)
def test_the_fast_path_decides_what_explain_shows(subject, known, rules, client, hands_off, again, reopened) -> None:  # type: ignore[no-untyped-def]
    transitions = tuple(
        Transition("status", before, after, NOW - timedelta(hours=12 - i * 2 - j))
        for i in range(reopened)
        for j, (before, after) in enumerate((("in_progress", "resolved"), ("resolved", "in_progress")))
    ) + ((Transition("priority", "P3", "P1", NOW - timedelta(hours=1)),) if subject.priority is Priority.P1 else ())
    data = EvaluationInput(
        ticket=subject, now=NOW, tenant=client, knowledge=known, hands_off=hands_off, transitions=transitions
    )
    if again:  # a re-evaluation: the first pass's findings stored and noted, its states saved
        first = evaluate_ticket(data, rules)
        data = replace(
            data,
            states=first.states,
            findings=tuple(
                StoredFinding(r.finding.rule, r.finding.code, r.occurrence, r.finding.instance, noted=True)
                for r in first.findings
            ),
        )
    explained = evaluate_ticket(data, rules)
    fast = evaluate_ticket(data, rules, explain=False)
    assert fast.trace == ()
    assert all(r.outcome.trace == () for r in fast.results)
    assert decided(fast) == decided(explained)
    assert fast.note == explained.note
    assert [a.idempotency_key() for a in fast.actions] == [a.idempotency_key() for a in explained.actions]


def test_every_rule_runs_in_the_property_above() -> None:
    results = evaluate_ticket(EvaluationInput(ticket=ticket(), now=NOW), EVERY_RULE[1]).results
    assert [r.rule for r in results if r.enabled] == [rule.id for rule in CHECKLIST]
