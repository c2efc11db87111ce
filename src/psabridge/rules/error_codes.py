"""Checklist step "Record error messages and event IDs": an error that is mentioned is also recorded.

Ingest puts every error code the ticket's words hold into the canonical ``error_codes`` (``rules.text.enrich``:
Windows event IDs, 0x hex codes, numbered errors, HTTP status codes, stop codes, exception types heading a stack
trace, and error text the user quoted). A ticket whose words mention an error (``error_words``: "error", "it
says", "crash", "blue screen") but that records none gets ``not_recorded``. Requests (``skip_kinds``) are not
checked.

What it cannot see: screenshots and attached files (the canonical ticket carries no attachments), macOS unified log
entries pasted without a recognisable code, and whether a code was typed correctly (a transposed hex digit looks
like any other code).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from psabridge.model import Kind
from psabridge.rules.base import NO_OUTCOME, Code, Rule, RuleInput, RuleOutcome, RuleSettings
from psabridge.rules.text import Words

__all__ = ["ErrorCodesRule", "ErrorCodesSettings"]

STEP = "Record error messages and event IDs"


class ErrorCodesSettings(RuleSettings):
    """Settings of the error-codes step."""

    error_words: Words = Field(
        default=Words(
            [
                "error*",
                "it says",
                "message says",
                "says",
                "pops up",
                "popup",
                "pop-up",
                "crash*",
                "blue screen",
                "bsod",
                "stop code",
                "exception",
                "fails with",
                "failed with",
                "warning message",
            ]
        ),
        description="words that say an error was shown",
    )
    skip_kinds: list[Kind] = Field(
        default_factory=lambda: [Kind.SERVICE_REQUEST, Kind.CHANGE], description="kinds not checked"
    )


class ErrorCodesRule(Rule[ErrorCodesSettings]):
    """A mentioned error is recorded as text or code."""

    id: ClassVar[str] = "error_codes"
    step: ClassVar[str] = STEP
    settings_model = ErrorCodesSettings
    codes: ClassVar[dict[str, Code]] = {
        "not_recorded": Code("warning", "an error is mentioned but no error text, event ID or code is recorded"),
    }

    def evaluate(self, data: RuleInput[ErrorCodesSettings]) -> RuleOutcome:
        """Compare what the words mention with what is recorded."""
        settings, ticket, text = data.settings, data.ticket, data.text
        if ticket.kind in settings.skip_kinds:
            return (
                RuleOutcome(trace=(f"not checked: kind {ticket.kind.value if ticket.kind else '-'}",))
                if data.explain
                else NO_OUTCOME
            )
        codes = text.codes
        if codes:
            return RuleOutcome(
                trace=(f"recorded: {', '.join(codes[:6])}" + (" ..." if len(codes) > 6 else ""),)
                if data.explain
                else ()
            )
        mentioned = settings.error_words.search(text.words)
        if mentioned is None:
            return RuleOutcome(trace=("no error mentioned",)) if data.explain else NO_OUTCOME
        finding = self.finding(
            "not_recorded",
            f"An error is mentioned ({mentioned!r}) but no error text, event ID or code is recorded.",
            advice=(
                "Quote the exact error text in the ticket (a screenshot beats retyping) and pull the Windows Event "
                "Viewer IDs, hex codes or the application's stack trace: a transposed digit in a hex code wastes 30 "
                "minutes of search."
            ),
            evidence={"mentioned": mentioned, "error_codes": []},
        )
        return RuleOutcome(
            findings=(finding,), trace=(f"{mentioned!r} mentioned, nothing recorded",) if data.explain else ()
        )
