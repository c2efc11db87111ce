"""Checklist step "Log time and close the ticket": time is logged and the resolution category is set before close.

A ticket in one of ``statuses`` (closed, by default) with no time logged (no time entry with minutes) gets
``no_time``: billing and SLA reporting depend on it. One whose resolution category is not one of ``categories``
gets ``no_category``, so trend reporting at the QBR is usable. The category is the canonical ``kind`` (incident,
service request, problem ...), or the custom field named by ``category_field`` when the PSA keeps it there.

What it cannot see: whether the time logged is accurate, time kept in another tool (a timesheet app), and whether
the category chosen is the right one.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from psabridge.model import Status
from psabridge.rules.base import NO_OUTCOME, Code, Finding, Rule, RuleInput, RuleOutcome, RuleSettings

__all__ = ["ClosureRule", "ClosureSettings"]

STEP = "Log time and close the ticket"


class ClosureSettings(RuleSettings):
    """Settings of the closure step."""

    statuses: list[Status] = Field(default_factory=lambda: [Status.CLOSED], description="statuses checked")
    category_field: str | None = Field(
        default=None, description="a custom field holding the resolution category (default: the ticket's kind)"
    )
    categories: list[str] = Field(
        default_factory=lambda: ["incident", "service_request", "problem", "change"],
        description="accepted resolution categories (kind values, or the custom field's values)",
    )


class ClosureRule(Rule[ClosureSettings]):
    """A closed ticket has time logged and a resolution category."""

    id: ClassVar[str] = "closure"
    step: ClassVar[str] = STEP
    settings_model = ClosureSettings
    codes: ClassVar[dict[str, Code]] = {
        "no_time": Code("warning", "closed with no time logged"),
        "no_category": Code("warning", "closed without a resolution category (incident, request, problem)"),
    }

    def evaluate(self, data: RuleInput[ClosureSettings]) -> RuleOutcome:
        """Check time and category of a closed ticket."""
        settings, ticket = data.settings, data.ticket
        if ticket.status not in settings.statuses:
            return (
                RuleOutcome(trace=(f"not checked: status {ticket.status.value if ticket.status else '-'}",))
                if data.explain
                else NO_OUTCOME
            )
        status = ticket.status.value if ticket.status else "closed"
        findings: list[Finding] = []
        minutes = sum(e.minutes for e in ticket.time_entries)
        if minutes == 0:
            findings.append(
                self.finding(
                    "no_time",
                    f"The ticket is {status} with no time logged.",
                    advice="Enter accurate time entries before closing: billing and SLA reporting depend on them.",
                    evidence={"time_entries": len(ticket.time_entries), "minutes": 0},
                )
            )
        if settings.category_field is not None:
            raw = ticket.custom.get(settings.category_field)
            category = str(raw) if raw not in (None, "") else None
            where = f"custom field {settings.category_field!r}"
        else:
            category = ticket.kind.value if ticket.kind else None
            where = "kind"
        accepted = {c.lower() for c in settings.categories}
        if category is None or category.lower() not in accepted:
            findings.append(
                self.finding(
                    "no_category",
                    f"The ticket is {status} "
                    + (f"with resolution category {category!r}, which is not" if category else "without")
                    + " a resolution category ("
                    + ", ".join(settings.categories)
                    + ").",
                    advice="Mark the resolution category (incident, request or problem) so trend reporting at the QBR "
                    "is usable.",
                    evidence={"category": category, "from": where, "accepted": list(settings.categories)},
                )
            )
        return RuleOutcome(
            findings=tuple(findings),
            trace=(f"{minutes} minute(s) logged; category {category!r} ({where})",) if data.explain else (),
        )
