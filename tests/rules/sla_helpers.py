"""Fixed calendars, contract tiers and tickets for the SLA, routing and paging rule tests, run through the engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from psabridge.model import Kind, Party, Priority, Source, Status, System, Ticket
from psabridge.rules import EvaluationInput, RuleSet, TenantView, evaluate_ticket
from psabridge.rules.checklist import CHECKLIST
from psabridge.rules.config import RulesDocument
from psabridge.rules.engine import Evaluation, RuleResult

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

CALENDARS: dict[str, Any] = {
    # The example: a Monday lunch break, short Fridays, explicit and US/NY public holidays.
    "us-east": {
        "timezone": "America/New_York",
        "hours": {
            "mon": ["08:00-12:00", "13:00-17:00"],
            "tue": ["08:00-17:00"],
            "wed": ["08:00-17:00"],
            "thu": ["08:00-17:00"],
            "fri": ["08:00-16:00"],
        },
        "holidays": ["2026-12-25", "2027-01-01"],
        "holidays_from": {"country": "US", "subdivision": "NY"},
    },
    "berlin": {"timezone": "Europe/Berlin", "hours": {d: ["09:00-17:00"] for d in ALL_DAYS[:5]}},
    # Whole days, so a DST day's business hours are its real hours (23 or 25).
    "ny-days": {"timezone": "America/New_York", "hours": {d: ["00:00-24:00"] for d in ALL_DAYS}},
    "sydney-days": {"timezone": "Australia/Sydney", "hours": {d: ["00:00-24:00"] for d in ALL_DAYS}},
    "sao-paulo-days": {"timezone": "America/Sao_Paulo", "hours": {d: ["00:00-24:00"] for d in ALL_DAYS}},
}

TIERS: dict[str, Any] = {
    "gold": {
        "clock": "business",
        "targets": {
            "P1": {"response": "15m", "resolution": "4h", "clock": "wall"},
            "P2": {"response": "2h", "resolution": "8h"},
            "P3": {"response": "4h", "resolution": "16h"},
            "P4": {"response": "8h", "resolution": "40h"},
        },
    },
    "days": {"clock": "business", "targets": {"P2": {"response": "2h", "resolution": "24h"}}},
}


def tenant(calendar: str | None = "us-east", tier: str | None = "gold", key: str | None = "acme") -> TenantView:
    """Acme with a calendar and a contract tier (each may be left out)."""
    return TenantView.of(key, name="Acme Dental" if key else None, contract_tier=tier, calendar=calendar,
                         timezone="America/New_York")  # fmt: skip


def at(zone: ZoneInfo, *parts: int) -> datetime:
    """A local wall-clock time in ``zone`` (fold 0), as an aware datetime."""
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def make(created: datetime, priority: Priority | None = Priority.P2, **overrides: Any) -> Ticket:
    """An open incident created at ``created`` with ``priority``."""
    data: dict[str, Any] = {
        "connection": "msp-cw",
        "system": System.CONNECTWISE,
        "external_id": "493",
        "number": "#493",
        "tenant": "acme",
        "summary": "Email down for the whole Boston office",
        "description": "None of us can send email since 8:15.",
        "status": Status.IN_PROGRESS,
        "priority": priority,
        "kind": Kind.INCIDENT,
        "source": Source.PHONE,
        "requester": Party(name="Mary Okafor", email="mary.okafor@acme.example"),
        "queue": "Service Desk",
        "tier": 1,
        "created_at": created,
        "updated_at": created,
    }
    data.update(overrides)
    return Ticket.model_validate(data)


def rules_for(rules: dict[str, Any] | None = None, *, only: tuple[str, ...] = ("sla",), **top: Any) -> RuleSet:
    """A rule set with the calendars above and only the rules ``only`` enabled (settings from ``rules``)."""
    section: dict[str, Any] = {r.id: {"enabled": False} for r in CHECKLIST if r.id not in only}
    section["sla"] = {**section.get("sla", {}), "tiers": TIERS}
    for rule_id, settings in (rules or {}).items():
        section[rule_id] = {**section.get(rule_id, {}), **settings}
    return RuleSet.from_document(RulesDocument.model_validate({"calendars": CALENDARS, "rules": section, **top}))


def run(subject: Ticket, now: datetime, rules: RuleSet | None = None, **fields: Any) -> Evaluation:
    """Evaluate ``subject`` at ``now`` (Acme by default)."""
    fields.setdefault("tenant", tenant())
    return evaluate_ticket(EvaluationInput(ticket=subject, now=now, **fields), rules or rules_for())


def result_of(evaluation: Evaluation, rule: str = "sla") -> RuleResult:
    """One rule's part of an evaluation."""
    return next(r for r in evaluation.results if r.rule == rule)


def codes(evaluation: Evaluation, rule: str | None = None) -> list[str]:
    """The codes of the findings that hold (of one rule, or all as rule.code)."""
    if rule is None:
        return [f"{r.finding.rule}.{r.finding.code}" for r in evaluation.findings]
    return [r.finding.code for r in evaluation.findings if r.finding.rule == rule]
