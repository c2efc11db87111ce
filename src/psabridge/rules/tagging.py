"""Checklist step "Open the ticket in the PSA or ITSM": the affected user, asset, category and source channel are set.

Reporting and time tracking line up only when every ticket names its requester (the affected user), the asset from
the RMM / CMDB, a category and the channel it came in through. The fields in ``require`` that the ticket leaves
empty are listed in one ``missing`` finding. The asset is required only for the kinds in ``asset_kinds`` (a request
for a new starter's account has no device yet), the requester not for the sources in ``requester_exempt_sources``
(a monitoring alert has no user).

What it cannot see: whether the values are right (the asset the user is actually on, the category that fits); and
vendor tags, which are mapped into ``Ticket.tags`` by the mappings, not required here.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from psabridge.model import Kind, Source, Ticket
from psabridge.rules.base import NO_OUTCOME, Code, Rule, RuleInput, RuleOutcome, RuleSettings

__all__ = ["TaggingRule", "TaggingSettings"]

STEP = "Open the ticket in the PSA or ITSM"

Tag = Literal["requester", "asset", "category", "source"]
TAGS: tuple[Tag, ...] = ("requester", "asset", "category", "source")
LABELS = {
    "requester": "the affected user (requester)",
    "asset": "the asset from the RMM / CMDB",
    "category": "a category",
    "source": "the source channel",
}


class TaggingSettings(RuleSettings):
    """Settings of the tagging step."""

    require: list[Tag] = Field(
        default_factory=lambda: list(TAGS),
        description="what every ticket must name",
    )
    asset_kinds: list[Kind] = Field(
        default_factory=lambda: [Kind.INCIDENT, Kind.PROBLEM, Kind.ALERT],
        description="kinds that must name an asset (a ticket with no kind must too)",
    )
    requester_exempt_sources: list[Source] = Field(
        default_factory=lambda: [Source.MONITORING], description="sources whose tickets need no requester"
    )


class TaggingRule(Rule[TaggingSettings]):
    """Requester, asset, category and source are set."""

    id: ClassVar[str] = "tagging"
    step: ClassVar[str] = STEP
    settings_model = TaggingSettings
    codes: ClassVar[dict[str, Code]] = {
        "missing": Code("warning", "the ticket does not name its user, asset, category or source; listed"),
    }

    def evaluate(self, data: RuleInput[TaggingSettings]) -> RuleOutcome:
        """List the required fields the ticket leaves empty."""
        settings, ticket = data.settings, data.ticket
        missing = [tag for tag in settings.require if not _present(tag, ticket, settings)]
        if not missing:
            return RuleOutcome(trace=(f"tagged: {', '.join(settings.require)}",)) if data.explain else NO_OUTCOME
        finding = self.finding(
            "missing",
            "The ticket does not name " + "; ".join(LABELS[m] for m in missing) + ".",
            advice="Tag the affected user, the asset (from the RMM / CMDB), the category and the source channel, so "
            "reporting and time tracking line up.",
            evidence={"missing": list(missing), "kind": ticket.kind.value if ticket.kind else None},
        )
        return RuleOutcome(findings=(finding,), trace=(f"missing {', '.join(missing)}",) if data.explain else ())


def _present(tag: Tag, ticket: Ticket, settings: TaggingSettings) -> bool:
    if tag == "requester":
        if ticket.source in settings.requester_exempt_sources:
            return True
        party = ticket.requester
        return party is not None and bool(party.external_id or party.email or party.name)
    if tag == "asset":
        if ticket.kind is not None and ticket.kind not in settings.asset_kinds:
            return True
        return ticket.asset is not None and bool(ticket.asset.external_id or ticket.asset.name)
    if tag == "category":
        return bool(ticket.category and ticket.category.strip())
    return ticket.source is not None
