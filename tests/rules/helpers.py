"""Crafted canonical tickets and a fixed clock for the rules tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psabridge.model import Asset, Kind, Note, NoteKind, Party, Priority, Source, Status, System, Ticket, TimeEntry
from psabridge.rules import EvaluationInput, RuleOutcome, RuleSet, TenantView, evaluate_ticket
from psabridge.rules.base import NO_KNOWLEDGE, ConnectionView, Knowledge, RuleInput
from psabridge.rules.config import RulesDocument
from psabridge.rules.text import TicketText

NOW = datetime(2026, 5, 14, 15, 0, tzinfo=UTC)
"""Thursday 14 May 2026, 11:00 in New York: two days after Patch Tuesday (12 May)."""
ACME = TenantView.of(
    "acme", name="Acme Dental", contract_tier="gold", timezone="America/New_York", vip=["ceo@acme.example"]
)


def note(text: str, kind: NoteKind = NoteKind.INTERNAL, *, minutes: int = 30, author: str = "Dana Whitfield") -> Note:
    """A note written ``minutes`` before NOW."""
    return Note(kind=kind, author=author, text=text, created_at=NOW - timedelta(minutes=minutes))


def ticket(**overrides: Any) -> Ticket:
    """A well-kept open incident: every rule is satisfied unless a test changes something."""
    data: dict[str, Any] = {
        "connection": "msp-cw",
        "system": System.CONNECTWISE,
        "external_id": "1001",
        "number": "#1001",
        "tenant": "acme",
        "summary": "Outlook stuck on loading profile",
        "description": (
            "Outlook has been stuck on 'Loading Profile' all morning when I open it, every time. Webmail works, "
            "only me affected."
        ),
        "status": Status.IN_PROGRESS,
        "priority": Priority.P3,
        "kind": Kind.INCIDENT,
        "category": "Email",
        "source": Source.PHONE,
        "requester": Party(name="Mary Okafor", email="mary.okafor@acme.example"),
        "assignee": Party(name="Dana Whitfield"),
        "queue": "Service Desk",
        "tier": 1,
        "asset": Asset(name="ACME-LT-0042"),
        "error_codes": ('"Loading Profile"',),
        "created_at": datetime(2026, 5, 8, 13, 0, tzinfo=UTC),
        "updated_at": NOW - timedelta(minutes=10),
    }
    data.update(overrides)
    return Ticket.model_validate(data)


def resolved(**overrides: Any) -> Ticket:
    """A closed incident with a documented, tested fix and time logged."""
    data: dict[str, Any] = {
        "status": Status.CLOSED,
        "closed_at": NOW - timedelta(hours=2),
        "notes": (
            note("Tested with the user in their session: Outlook opens and syncs.", minutes=200),
            note(
                "Cleared the Outlook autodiscover cache via Ctrl+right-click -> Test E-mail AutoConfiguration and "
                "rebuilt the profile because the OST was corrupt; KB 4567.",
                NoteKind.RESOLUTION,
                minutes=190,
            ),
        ),
        "time_entries": (TimeEntry(minutes=30, who="Dana Whitfield", started_at=NOW - timedelta(hours=4)),),
    }
    data.update(overrides)
    return ticket(**data)


TIME_RULES = ("sla", "routing", "paging")
"""The rules of the SLA issue, tested in their own files (test_sla_rule.py, test_routing_paging.py): they are off in
the other rules' tests unless a test's document names them, so those tests' notes stay the checklist's own."""


def rules_with(data: dict[str, Any] | None = None) -> RuleSet:
    """A rule set from a rules-file document (the built-in defaults when None; see ``TIME_RULES``)."""
    document = dict(data or {})
    rules = dict(document.get("rules") or {})
    for rule_id in TIME_RULES:
        rules.setdefault(rule_id, {"enabled": False})
    document["rules"] = rules
    return RuleSet.from_document(RulesDocument.model_validate(document))


def run_rule(
    rule_id: str,
    subject: Ticket,
    *,
    settings: dict[str, Any] | None = None,
    tenant: TenantView = ACME,
    knowledge: Knowledge = NO_KNOWLEDGE,
    connection: ConnectionView | None = None,
    state: dict[str, Any] | None = None,
    now: datetime = NOW,
    **extra: Any,
) -> RuleOutcome:
    """One rule's outcome on ``subject`` with its default settings (updated by ``settings``)."""
    rules = rules_with({"rules": {rule_id: settings}} if settings else None)
    compiled = rules.rule(rule_id)
    data = RuleInput(
        subject,
        TicketText(subject),
        extra.get("before"),
        extra.get("transitions", ()),
        tenant,
        extra.get("link", EvaluationInput(ticket=subject, now=now).link),
        connection or ConnectionView(subject.connection, subject.system),
        extra.get("ledger", ()),
        knowledge,
        now,
        state,
        compiled.tuned(tenant.key).settings,
    )
    return compiled.rule.evaluate(data)


def codes(outcome: RuleOutcome) -> list[str]:
    """The finding codes of an outcome."""
    return [f.code for f in outcome.findings]


def evaluate(subject: Ticket, rules: RuleSet | None = None, **fields: Any) -> Any:
    """``evaluate_ticket`` with the defaults of these tests."""
    fields.setdefault("tenant", ACME)
    return evaluate_ticket(EvaluationInput(ticket=subject, now=fields.pop("now", NOW), **fields), rules or rules_with())
