"""Properties of the engine over generated tickets: deterministic, and quiet once everything is noted."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from psabridge.model import Asset, Kind, Note, NoteKind, Party, Priority, Source, Status, TimeEntry
from psabridge.rules import EvaluationInput, Knowledge, PriorFix, StoredFinding, enrich, evaluate_ticket

from .helpers import ACME, NOW, rules_with, ticket

PHRASES = (
    "Password reset please",
    "None of us can send email",
    "I can't log in",
    "It says 'Disconnected'",
    "Event ID 4625 every time",
    "0x8004010F when I open Outlook",
    "the VPN keeps dropping",
    "please assist",
    "Identity verified by callback to the number on file.",
    "Rebooted and it worked",
    "Cleared the autodiscover cache; KB 4567",
    "User confirmed it works.",
    "Escalating. Repro steps: open Outlook. Tried: safe mode. Impact: 1 user.",
    "registry change via regedit instead of the KB",
    "slow since the update",
    "",
)
RULES = (rules_with(), rules_with({"tenants": {"acme": {"rules": {"priority": {"effects": {"understated": "set"}}}}}}))

notes = st.lists(
    st.builds(
        Note,
        kind=st.sampled_from(list(NoteKind)),
        text=st.sampled_from(PHRASES[:-1]),
        created_at=st.integers(0, 600).map(lambda m: NOW - timedelta(minutes=m)),
    ),
    max_size=5,
)
tickets = st.builds(
    lambda summary, description, status, priority, kind, source, tier, has_asset, vip, notes, minutes, days: enrich(
        ticket(
            summary=summary,
            description=description,
            status=status,
            priority=priority,
            kind=kind,
            source=source,
            tier=tier,
            asset=Asset(name="ACME-LT-0042") if has_asset else None,
            requester=Party(name="Helen Marsh", email="ceo@acme.example" if vip else "mary@acme.example"),
            notes=tuple(notes),
            error_codes=(),
            time_entries=tuple(TimeEntry(minutes=m) for m in minutes),
            created_at=NOW - timedelta(days=days, hours=3),
            closed_at=NOW - timedelta(hours=1) if status is Status.CLOSED else None,
        )
    ),
    st.sampled_from(PHRASES),
    st.sampled_from(PHRASES),
    st.sampled_from(list(Status)),
    st.one_of(st.none(), st.sampled_from(list(Priority))),
    st.one_of(st.none(), st.sampled_from(list(Kind))),
    st.one_of(st.none(), st.sampled_from(list(Source))),
    st.one_of(st.none(), st.integers(1, 3)),
    st.booleans(),
    st.booleans(),
    notes,
    st.lists(st.integers(1, 90), max_size=2),
    st.integers(0, 40),
)
knowledge = st.builds(
    lambda n, repeats: Knowledge(
        "0x8004010F",
        tuple(PriorFix(f"msp-cw:{i}", f"#{i}", "globex", "Outlook", "Rebuilt the profile", ()) for i in range(n)),
        repeats,
    ),
    st.integers(0, 2),
    st.integers(0, 4),
)


@settings(max_examples=150, deadline=None)
@given(tickets, knowledge, st.sampled_from(RULES), st.booleans())
def test_evaluating_twice_gives_the_same_evaluation(subject, known, rules, hands_off) -> None:  # type: ignore[no-untyped-def]
    data = EvaluationInput(ticket=subject, now=NOW, tenant=ACME, knowledge=known, hands_off=hands_off)
    assert evaluate_ticket(data, rules) == evaluate_ticket(data, rules)


@settings(max_examples=150, deadline=None)
@given(tickets, knowledge, st.sampled_from(RULES))
def test_once_every_finding_is_noted_nothing_more_is_written(subject, known, rules) -> None:  # type: ignore[no-untyped-def]
    first = evaluate_ticket(EvaluationInput(ticket=subject, now=NOW, tenant=ACME, knowledge=known), rules)
    noted = tuple(
        StoredFinding(r.finding.rule, r.finding.code, r.occurrence, r.finding.instance, noted=r.effect != "report")
        for r in first.findings
    )
    again = evaluate_ticket(
        EvaluationInput(ticket=subject, now=NOW, tenant=ACME, knowledge=known, findings=noted, states=first.states),
        rules,
    )
    assert again.note is None
    assert [(r.finding.code, r.occurrence, r.new) for r in again.findings] == [
        (r.finding.code, r.occurrence, False) for r in first.findings
    ]
    # The field changes of the first pass are idempotent: the same occurrence gives the same keys.
    keys = {a.idempotency_key() for a in first.actions if a is not first.note}
    assert {a.idempotency_key() for a in again.actions} <= keys
