"""Checklist step "Apply the documented fix": a deviation from the KB runbook says why; risky changes are reviewed.

Once a ticket has a resolution (a resolution note, or it is resolved or closed), a note by a person that says the
fix deviated from the runbook (``deviation_words``: "instead of", "workaround", "the KB was wrong") without saying
why (``reason_words``: "because", "due to") gets ``deviation_unexplained``, so the next technician hitting the same
symptom benefits. A fix that edits the registry or a GPO (``risky_words``) with no peer review recorded anywhere in
the ticket (``review_words``) gets ``unreviewed_change``: undocumented fixes become tomorrow's incidents. A
resolution that cites a KB id and says nothing of a deviation is fine; one with no KB id at all is step 12's.

What it cannot see: the runbook's steps (so a silent deviation goes unnoticed), and reviews recorded outside the
ticket (a change board, a chat thread).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from psabridge.rules.base import DONE_STATUSES, NO_OUTCOME, Code, Finding, Rule, RuleInput, RuleOutcome, RuleSettings
from psabridge.rules.text import Tokens, Words

__all__ = ["DocumentedFixRule", "DocumentedFixSettings"]

STEP = "Apply the documented fix"


class DocumentedFixSettings(RuleSettings):
    """Settings of the documented-fix step."""

    deviation_words: Words = Field(
        default=Words(
            [
                "deviat*",
                "instead of",
                "differs from",
                "different from the kb",
                "not per kb",
                "not per the kb",
                "skipped step*",
                "skipped the",
                "workaround",
                "kb was wrong",
                "kb is wrong",
                "kb outdated",
                "kb is outdated",
                "did not follow",
                "didn't follow",
            ]
        ),
        description="words that say the fix deviated from the runbook",
    )
    reason_words: Words = Field(
        default=Words(["because", "since", "due to", "as the", "as it", "reason", "so that", "otherwise", "why:"]),
        description="words that give the reason",
    )
    risky_words: Words = Field(
        default=Words(["regedit", "registry", "hklm", "hkcu", "hkey_*", "gpo", "group policy"]),
        description="changes that need a peer review",
    )
    review_words: Words = Field(
        default=Words(
            [
                "peer review*",
                "peer-review*",
                "reviewed by",
                "approved by",
                "approval",
                "change request",
                "cab",
                "four-eyes",
                "4-eyes",
                "second pair of eyes",
            ]
        ),
        description="words that record the review",
    )


class DocumentedFixRule(Rule[DocumentedFixSettings]):
    """A deviation from the runbook says why; a registry or GPO change is peer reviewed."""

    id: ClassVar[str] = "documented_fix"
    step: ClassVar[str] = STEP
    settings_model = DocumentedFixSettings
    codes: ClassVar[dict[str, Code]] = {
        "deviation_unexplained": Code("warning", "the fix deviated from the runbook without saying why"),
        "unreviewed_change": Code("warning", "a registry or GPO change with no peer review recorded"),
    }

    def evaluate(self, data: RuleInput[DocumentedFixSettings]) -> RuleOutcome:
        """Judge the notes of a resolved ticket."""
        settings, ticket, text = data.settings, data.ticket, data.text
        if not text.resolution and ticket.status not in DONE_STATUSES:
            return RuleOutcome(trace=("no resolution yet",)) if data.explain else NO_OUTCOME
        findings: list[Finding] = []
        notes = text.human_notes if settings.deviation_words.search(text.notes) is not None else ()
        for note in notes:
            lowered = Tokens(note.text)
            deviation = settings.deviation_words.search(lowered)
            if deviation is not None and settings.reason_words.search(lowered) is None:
                findings.append(
                    self.finding(
                        "deviation_unexplained",
                        f"A note says the fix deviated from the runbook ({deviation!r}) but not why.",
                        advice="Write down why you deviated from the KB runbook, so the next technician hitting the "
                        "same symptom benefits; if the KB was wrong, correct the article.",
                        evidence={"matched": deviation, "note_kind": note.kind.value, "author": note.author},
                    )
                )
                break
        fix_text = text.resolution_words if text.resolution else text.notes
        risky = settings.risky_words.find_all(fix_text)
        if risky and settings.review_words.search(text.words) is None:
            findings.append(
                self.finding(
                    "unreviewed_change",
                    f"The fix changes {', '.join(repr(r) for r in risky[:3])} and no peer review is recorded.",
                    advice="Registry edits and GPO changes need a peer review: record who reviewed it (or the change "
                    "request), so an undocumented fix does not become tomorrow's incident.",
                    evidence={"matched": list(risky)},
                )
            )
        deviated = any(f.code == "deviation_unexplained" for f in findings)
        return RuleOutcome(
            findings=tuple(findings),
            trace=(
                f"unexplained deviation: {'yes' if deviated else 'no'}; "
                f"registry/GPO changes: {', '.join(risky) or 'none'}",
            )
            if data.explain
            else (),
        )
