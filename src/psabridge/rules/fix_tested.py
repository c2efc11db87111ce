"""Checklist step "Test the fix in the user's session": a resolve records that the user confirmed the fix.

A resolved or closed ticket must record that the fix was tested with the user: a note by a person (or a time entry's
note) with ``confirmation_words`` ("user confirmed", "tested with the user", "reproduced the workflow"), or the
requester's own reply saying it works (``requester_words``). Otherwise ``untested``; a "try it now and let me know"
(``not_watched_words``) is named in it, as that is not a test. Monitoring alerts, changes and service requests
(``skip_kinds``) are not checked.

What it cannot see: the remote session itself (ScreenConnect, Splashtop), so a test that happened but was not written
down looks untested; and whether the user tested the original workflow rather than something near it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from psabridge.model import Kind, NoteKind, Status
from psabridge.rules.base import NO_OUTCOME, Code, Rule, RuleInput, RuleOutcome, RuleSettings
from psabridge.rules.text import Words

__all__ = ["FixTestedRule", "FixTestedSettings"]

STEP = "Test the fix in the user's session"


class FixTestedSettings(RuleSettings):
    """Settings of the fix-tested step."""

    confirmation_words: Words = Field(
        default=Words(
            [
                "user confirmed",
                "confirmed by the user",
                "confirmed by user",
                "user has confirmed",
                "confirmed working",
                "confirmed it works",
                "user verified",
                "tested with the user",
                "tested with user",
                "tested in the user's session",
                "tested from the user's session",
                "tested in user's session",
                "user reproduced",
                "reproduced the workflow",
                "reproduced the original workflow",
                "watched the user",
                "while i watched",
                "user signed in while",
                "signed in while on the phone",
                "user tested",
            ]
        ),
        description="words that record the test with the user",
    )
    requester_words: Words = Field(
        default=Words(
            [
                "works now",
                "working now",
                "it works",
                "all good",
                "that fixed it",
                "fixed, thanks",
                "confirmed",
                "solved",
            ]
        ),
        description="words in the requester's own reply that confirm the fix",
    )
    not_watched_words: Words = Field(
        default=Words(["try it now and let me know", "let me know if", "try again and let me know", "should work now"]),
        description="words of a fix handed over untested",
    )
    skip_kinds: list[Kind] = Field(
        default_factory=lambda: [Kind.ALERT, Kind.CHANGE, Kind.SERVICE_REQUEST], description="kinds not checked"
    )


class FixTestedRule(Rule[FixTestedSettings]):
    """A resolve records the user's confirmation."""

    id: ClassVar[str] = "fix_tested"
    step: ClassVar[str] = STEP
    settings_model = FixTestedSettings
    codes: ClassVar[dict[str, Code]] = {
        "untested": Code("warning", "resolved with no test in the user's session recorded"),
    }

    def evaluate(self, data: RuleInput[FixTestedSettings]) -> RuleOutcome:
        """Look for the confirmation on a resolved ticket."""
        settings, ticket, text = data.settings, data.ticket, data.text
        if ticket.status is not Status.RESOLVED and ticket.status is not Status.CLOSED:
            return RuleOutcome(trace=("not resolved",)) if data.explain else NO_OUTCOME
        if ticket.kind in settings.skip_kinds:
            return (
                RuleOutcome(trace=(f"not checked: kind {ticket.kind.value if ticket.kind else '-'}",))
                if data.explain
                else NO_OUTCOME
            )
        confirmed = settings.confirmation_words.search(text.notes)
        if confirmed is not None:
            return RuleOutcome(trace=(f"tested: {confirmed!r}",)) if data.explain else NO_OUTCOME
        requester = ticket.requester
        names = {x.lower() for x in (requester.name, requester.email) if x} if requester else set()
        for note in text.human_notes:
            if note.kind is NoteKind.PUBLIC and note.author and note.author.lower() in names:
                said = settings.requester_words.search(note.text)
                if said is not None:
                    return RuleOutcome(trace=(f"the requester confirmed: {said!r}",)) if data.explain else NO_OUTCOME
        handed = settings.not_watched_words.search(text.notes)
        finding = self.finding(
            "untested",
            "Resolved with no test in the user's session recorded"
            + (f" ({handed!r} is not a test)." if handed else "."),
            advice="Have the user reproduce the original workflow with you watching, not just 'try it now and let me "
            "know', and note their confirmation: a fix that works for the technician but not the user (cached "
            "credential, profile path, group membership) is the most common reopen.",
            evidence={"status": ticket.status.value, "handed_over": handed},
        )
        return RuleOutcome(findings=(finding,), trace=("no confirmation recorded",) if data.explain else ())
