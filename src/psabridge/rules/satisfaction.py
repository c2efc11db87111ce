"""Checklist step "Send the satisfaction survey": the CSAT trigger fired, and VIPs and P1s get a personal follow-up.

Most PSAs send a CSAT survey on closure (SmileBack, BrightGauge, the PSA's own). Where the canonical ticket shows it
(a custom field named by ``survey_field``, e.g. the survey tool's "sent" flag mapped into ``custom``), a ticket in
``statuses`` whose field is still empty ``grace`` after closing gets ``survey_unconfirmed``; until then the rule asks
to be woken at the end of the grace (``wake_at``). Without a configured field it says so in its trace: the trigger
cannot be confirmed. A closed ticket of a VIP requester (tenant ``vip`` list or the vendor's VIP flag) or of a
priority in ``follow_up_priorities`` gets ``follow_up``: a personal note to the user in addition to the survey; with
effect ``set`` it also creates a separate internal follow-up task note. Each closure is its own occurrence, so a
reopened and re-closed P1 is followed up again.

What it cannot see: the survey tool itself (whether the e-mail was delivered or answered) and follow-ups made by
phone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field

from psabridge.model import AddNote, NoteKind, Priority, Status
from psabridge.rules.base import (
    Code,
    Finding,
    Proposal,
    Rule,
    RuleInput,
    RuleOutcome,
    RuleSettings,
    State,
    closures,
    is_set,
    vip_reason,
)
from psabridge.rules.text import OWN_NOTE_PREFIX
from psabridge.settings import parse_duration

__all__ = ["SatisfactionRule", "SatisfactionSettings"]

STEP = "Send the satisfaction survey"

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class SatisfactionSettings(RuleSettings):
    """Settings of the satisfaction step."""

    statuses: list[Status] = Field(
        default_factory=lambda: [Status.CLOSED], description="statuses on which the survey is sent"
    )
    survey_field: str | None = Field(
        default=None, description="a custom field that is true / non-empty once the survey was sent"
    )
    grace: Duration = Field(default=timedelta(hours=1), description="how long after closing the survey may take")
    follow_up_priorities: list[Priority] = Field(
        default_factory=lambda: [Priority.P1], description="priorities that get a personal follow-up"
    )
    follow_up_vip: bool = Field(default=True, description="VIP requesters get a personal follow-up")


class SatisfactionRule(Rule[SatisfactionSettings]):
    """Confirm the CSAT trigger; ask for a personal follow-up for VIPs and P1s."""

    id: ClassVar[str] = "satisfaction"
    step: ClassVar[str] = STEP
    settings_model = SatisfactionSettings
    codes: ClassVar[dict[str, Code]] = {
        "survey_unconfirmed": Code("warning", "closed, and the CSAT survey field does not show the survey was sent"),
        "follow_up": Code("info", "a VIP or P1 ticket closed: follow up personally", actionable=True),
    }

    def evaluate(self, data: RuleInput[SatisfactionSettings]) -> RuleOutcome:
        """Check the survey field and decide on a personal follow-up."""
        settings, ticket, now = data.settings, data.ticket, data.now
        seen = data.state.get("closed_seen_at") if data.state else None
        if ticket.status not in settings.statuses:
            return RuleOutcome(state={} if seen else None, trace=("not closed",) if data.explain else ())
        state: State | None = None
        closed_at = ticket.closed_at
        if closed_at is None:
            if isinstance(seen, str):
                closed_at = datetime.fromisoformat(seen)
            else:
                closed_at = now
                state = {"closed_seen_at": now.isoformat()}
        findings: list[Finding] = []
        proposals: list[Proposal] = []
        trace: list[str] = []
        wake_at = None
        field = settings.survey_field
        if field is None:
            if data.explain:
                trace.append("no survey_field configured: the CSAT trigger cannot be confirmed")
        else:
            value = ticket.custom.get(field)
            sent = is_set(value)
            due = closed_at + settings.grace
            if sent:
                if data.explain:
                    trace.append(f"survey sent ({field} = {value!r})")
            elif now < due:
                wake_at = due
                if data.explain:
                    trace.append(f"survey not shown yet; looking again at {due.isoformat()}")
            else:
                findings.append(
                    self.finding(
                        "survey_unconfirmed",
                        f"Closed {closed_at.isoformat(timespec='minutes')} and the survey field {field!r} does not "
                        "show the CSAT survey was sent.",
                        advice="Check the survey tool's trigger for this board and client (SmileBack, BrightGauge or "
                        "the PSA's own) and send the survey by hand if it did not fire.",
                        evidence={"field": field, "value": value, "closed_at": closed_at.isoformat()},
                    )
                )
        why = []
        vip = vip_reason(ticket, data.tenant) if settings.follow_up_vip else None
        if vip:
            why.append(f"VIP requester ({vip})")
        if ticket.priority in settings.follow_up_priorities and ticket.priority is not None:
            why.append(f"{ticket.priority.value} incident")
        if why:
            who = _who(data)
            message = f"Follow up personally with {who} ({'; '.join(why)}), in addition to the automated survey."
            instance = f"closure-{max(1, closures(data.transitions))}"
            findings.append(
                self.finding(
                    "follow_up",
                    message,
                    advice="Call or write to them yourself: confirm the fix holds and thank them.",
                    evidence={"requester": who, "why": list(why)},
                    instance=instance,
                )
            )
            task = AddNote(
                ticket_key=ticket.key,
                target=ticket.connection,
                origin=f"rules.{self.id}",
                reason="checklist: personal follow-up task",
                text=f"{OWN_NOTE_PREFIX}: follow-up task\n{message}",
                kind=NoteKind.INTERNAL,
            )
            proposals.append(Proposal("follow_up", task, key=instance))
        return RuleOutcome(
            findings=tuple(findings), actions=tuple(proposals), state=state, wake_at=wake_at, trace=tuple(trace)
        )


def _who(data: RuleInput[SatisfactionSettings]) -> str:
    requester = data.ticket.requester
    if requester is None:
        return "the requester"
    return requester.name or requester.email or "the requester"
