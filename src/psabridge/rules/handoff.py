"""Checklist step "Escalate to Tier 2 with diagnostic notes": a hand-off carries what the next tier needs.

A ticket is escalated when its tier was raised or it moved into one of ``escalation_queues`` (the transitions, or
the copy before this change), or when it is first seen at tier ``assume_escalated_at`` or above. The notes written
since the escalation (all notes, when its time is unknown) must carry reproduction steps, what was already tried
and the user impact; the ticket must show the error text (anywhere: its recorded error codes count) and the asset
(the asset field, or the note naming it). A hand-off note that is only a bare "please assist" (``bare_words``,
at most ``bare_max_chars`` long, naming none of those items) gets ``bare`` (error) with exactly what is missing;
other gaps ``incomplete`` (warning). Each further escalation (tier 2 to 3) is judged as a new occurrence.

What it cannot see: whether the steps really reproduce the problem, whether the asset link opens the right RMM
record, and hand-offs made by phone or chat outside the ticket.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field, JsonValue

from psabridge.model import Ticket
from psabridge.rules.base import NO_OUTCOME, Code, Rule, RuleInput, RuleOutcome, RuleSettings, escalations
from psabridge.rules.text import TicketText, Tokens, Words, count_affected_users

__all__ = ["LABELS", "HandoffRule", "HandoffSettings", "handoff_gaps"]

STEP = "Escalate to Tier 2 with diagnostic notes"

LABELS = {
    "repro": "reproduction steps",
    "error": "the error text",
    "tried": "what was already tried",
    "asset": "the asset (RMM / CMDB link)",
    "impact": "the user impact",
}


class HandoffSettings(RuleSettings):
    """Settings of the hand-off step."""

    escalation_queues: Words = Field(
        default=Words(
            [
                "tier 2",
                "tier 3",
                "level 2",
                "level 3",
                "networking",
                "messaging/m365",
                "infrastructure",
                "security",
                "msp escalations",
            ]
        ),
        description="queues a move into counts as an escalation",
    )
    assume_escalated_at: int | None = Field(
        default=2, ge=2, le=3, description="a ticket first seen at this tier or above counts as escalated (None: no)"
    )
    repro_words: Words = Field(
        default=Words(["repro*", "steps to reproduce", "to reproduce", "steps:", "happens when", "every time"]),
        description="words of reproduction steps",
    )
    tried_words: Words = Field(
        default=Words(
            [
                "tried",
                "already",
                "attempted",
                "restarted",
                "rebooted",
                "reinstalled",
                "repaired",
                "cleared",
                "checked",
                "verified",
                "power-cycled",
                "ran ",
                "reset",
            ]
        ),
        description="words of what was already tried",
    )
    impact_words: Words = Field(
        default=Words(["impact", "affected", "affecting", "cannot work", "can't work", "blocked", "unable to work"]),
        description="words of the user impact",
    )
    error_words: Words = Field(
        default=Words(["error text", "error:", "error message", "event id", "says"]),
        description="words that show the note carries the error text",
    )
    asset_words: Words = Field(
        default=Words(["asset", "rmm", "device", "hostname", "computer name", "cmdb", "https://", "http://"]),
        description="words that show the note names the asset",
    )
    bare_words: Words = Field(
        default=Words(
            [
                "please assist",
                "pls assist",
                "plz assist",
                "please help",
                "pls help",
                "please look",
                "please check",
                "see above",
                "over to you",
                "escalating",
                "fyi",
            ]
        ),
        description="words of a bare hand-off",
    )
    bare_max_chars: int = Field(default=80, ge=10, description="a bare hand-off note is at most this long")


class HandoffRule(Rule[HandoffSettings]):
    """An escalation carries repro steps, error text, what was tried, the asset and the impact."""

    id: ClassVar[str] = "handoff"
    step: ClassVar[str] = STEP
    settings_model = HandoffSettings
    codes: ClassVar[dict[str, Code]] = {
        "bare": Code("error", "a bare 'please assist' hand-off; what is missing is listed"),
        "incomplete": Code("warning", "the hand-off lacks some diagnostic notes; listed"),
    }

    def evaluate(self, data: RuleInput[HandoffSettings]) -> RuleOutcome:
        """Find the escalation and judge the notes written since."""
        settings, ticket, text = data.settings, data.ticket, data.text
        raised = escalations(data.transitions, lambda queue: settings.escalation_queues.search(queue) is not None)
        since: datetime | None = None
        instance = ""
        if raised:
            since = raised[-1].at
            instance = f"escalation-{len(raised)}"
            how = f"{raised[-1].field} {raised[-1].before} -> {raised[-1].after} at {since.isoformat()}"
        elif data.before is not None and (data.before.tier or 0) < (ticket.tier or 0):
            how = f"tier {data.before.tier} -> {ticket.tier} since the last evaluation"
            since = data.before.updated_at
        elif settings.assume_escalated_at is not None and (ticket.tier or 0) >= settings.assume_escalated_at:
            how = f"at tier {ticket.tier} (no escalation recorded)"
        else:
            return (
                RuleOutcome(trace=(f"not escalated (tier {ticket.tier}, queue {ticket.queue!r})",))
                if data.explain
                else NO_OUTCOME
            )
        notes = text.notes_since(since)
        handoff = text.notes if since is None else Tokens("\n".join(n.text for n in notes))
        missing = handoff_gaps(ticket, text, handoff, settings)
        bare = next((n.text.strip() for n in notes if _is_bare(n.text, settings)), None)
        trace = (
            (f"escalated: {how}; {len(notes)} note(s) since", f"missing: {', '.join(missing) or 'nothing'}")
            if data.explain
            else ()
        )
        if not missing:
            return RuleOutcome(trace=trace)
        listed = "; ".join(LABELS[m] for m in missing)
        advice = (
            "Add a hand-off note with reproduction steps, the exact error text, what you have already tried, the "
            "RMM asset link and the user impact, and set the queue and owner per the escalation matrix."
        )
        evidence: dict[str, JsonValue] = {
            "escalated": how,
            "missing": list(missing),
            "bare_note": bare,
            "notes_since": len(notes),
        }
        if bare is not None:
            finding = self.finding(
                "bare",
                f"The hand-off is a bare {bare!r}: it bounces back. Missing: {listed}.",
                advice=advice,
                evidence=evidence,
                instance=instance,
            )
        else:
            finding = self.finding(
                "incomplete", f"The hand-off is missing {listed}.", advice=advice, evidence=evidence, instance=instance
            )
        return RuleOutcome(findings=(finding,), trace=trace)


def handoff_gaps(ticket: Ticket, text: TicketText, handoff: Tokens, settings: HandoffSettings) -> list[str]:
    """What a hand-off lacks (keys of ``LABELS``), judging the hand-off notes' words ``handoff`` and the ticket.

    The routing rule asks the same before it moves a ticket to the next tier.
    """
    missing = []
    if settings.repro_words.search(handoff) is None:
        missing.append("repro")
    if not text.codes and settings.error_words.search(handoff) is None:
        missing.append("error")
    if settings.tried_words.search(handoff) is None:
        missing.append("tried")
    has_asset = ticket.asset is not None and bool(ticket.asset.name or ticket.asset.external_id)
    if not has_asset and settings.asset_words.search(handoff) is None:
        missing.append("asset")
    if settings.impact_words.search(handoff) is None and count_affected_users(handoff) is None:
        missing.append("impact")
    return missing


def _is_bare(text: str, settings: HandoffSettings) -> bool:
    """A short note with hand-off words and nothing a hand-off needs ("please assist")."""
    if len(text.strip()) > settings.bare_max_chars:
        return False
    words = Tokens(text)
    if settings.bare_words.search(words) is None:
        return False
    needs = (settings.repro_words, settings.tried_words, settings.impact_words, settings.asset_words)
    return all(matcher.search(words) is None for matcher in needs) and settings.error_words.search(words) is None
