"""Checklist step "Capture the issue in the user's words": the symptom, its context, reproducibility, users affected.

The ticket must have a summary and a description of at least ``min_description_chars``; for incidents and problems
(``detail_kinds``) its words (description or a note by a person) must also say what the user was doing when it
happened, whether it is reproducible, and how many users are affected. Whatever is missing is listed in one
``incomplete`` finding (error when the summary or description itself is missing, else warning). Monitoring alerts
(``skip_sources``, ``skip_kinds``) have no user words and are not checked. The exact error text is step 5's
("Record error messages and event IDs"), so it is not asked for twice.

What it cannot see: whether the description really is the user's own words rather than the technician's paraphrase,
or whether it is accurate; it checks only that the items are stated.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, JsonValue

from psabridge.model import Kind, Source
from psabridge.rules.base import NO_OUTCOME, Code, Rule, RuleInput, RuleOutcome, RuleSettings, Severity
from psabridge.rules.text import Words

__all__ = ["IssueCaptureRule", "IssueCaptureSettings"]

STEP = "Capture the issue in the user's words"

LABELS = {
    "summary": "a summary",
    "description": "a description of the symptom in the user's words",
    "context": "what the user was doing when it happened",
    "reproducible": "whether it is reproducible (every time, now and then, only in one application)",
    "users_affected": "how many users are affected (just this user, a few, the whole site)",
}


class IssueCaptureSettings(RuleSettings):
    """Settings of the issue-capture step."""

    min_description_chars: int = Field(default=15, ge=0, description="a shorter description counts as missing")
    detail_kinds: list[Kind] = Field(
        default_factory=lambda: [Kind.INCIDENT, Kind.PROBLEM],
        description="kinds that must also state context, reproducibility and users affected",
    )
    skip_kinds: list[Kind] = Field(default_factory=lambda: [Kind.ALERT], description="kinds not checked at all")
    skip_sources: list[Source] = Field(default_factory=lambda: [Source.MONITORING], description="sources not checked")
    context_words: Words = Field(
        default=Words(
            [
                "when i",
                "when trying",
                "when opening",
                "when i try",
                "trying to",
                "while",
                "since",
                "after",
                "every time i",
                "each time i",
                "whenever",
                "as soon as",
                "started",
            ]
        ),
        description="words that say what the user was doing when it happened",
    )
    reproducible_words: Words = Field(
        default=Words(
            [
                "reproduc*",
                "repro",
                "every time",
                "each time",
                "whenever",
                "always",
                "keeps",
                "again and again",
                "over and over",
                "intermittent*",
                "sometimes",
                "now and then",
                "on and off",
                "randomly",
                "only when",
                "only in",
                "once",
                "all morning",
                "all week",
                "since this morning",
                "still happening",
            ]
        ),
        description="words that say whether it can be reproduced",
    )
    users_words: Words = Field(
        default=Words(
            [
                "everyone",
                "everybody",
                "nobody",
                "no one",
                "none of us",
                "all of us",
                "all users",
                "whole office",
                "entire office",
                "whole team",
                "whole company",
                "just me",
                "only me",
                "only my",
                "only mine",
                "only this user",
                "single user",
                "one user",
                "everyone else",
                "for me",
                "my laptop",
                "my computer",
                "my account",
                "my password",
                "my phone",
            ]
        ),
        description="words that say how many users are affected (a stated count such as '12 users' also counts)",
    )


class IssueCaptureRule(Rule[IssueCaptureSettings]):
    """The issue is captured: summary, description, context, reproducibility, users affected."""

    id: ClassVar[str] = "issue_capture"
    step: ClassVar[str] = STEP
    settings_model = IssueCaptureSettings
    codes: ClassVar[dict[str, Code]] = {
        "incomplete": Code("warning", "the issue is not fully captured; the missing items are listed"),
    }

    def evaluate(self, data: RuleInput[IssueCaptureSettings]) -> RuleOutcome:
        """List what the ticket's words leave out."""
        settings, ticket, text = data.settings, data.ticket, data.text
        if ticket.kind in settings.skip_kinds or ticket.source in settings.skip_sources:
            return (
                RuleOutcome(trace=(f"not checked: kind {_v(ticket.kind)}, source {_v(ticket.source)}",))
                if data.explain
                else NO_OUTCOME
            )
        missing: list[str] = []
        if not ticket.summary.strip():
            missing.append("summary")
        if len(ticket.description.strip()) < settings.min_description_chars:
            missing.append("description")
        found: dict[str, JsonValue] = {}
        if ticket.kind is None or ticket.kind in settings.detail_kinds:
            words = text.words
            for item, matcher in (
                ("context", settings.context_words),
                ("reproducible", settings.reproducible_words),
            ):
                hit = matcher.search(words)
                if hit is None:
                    missing.append(item)
                else:
                    found[item] = hit
            count = text.affected
            users = f"{count} stated" if count is not None else settings.users_words.search(words)
            if users is None:
                missing.append("users_affected")
            else:
                found["users_affected"] = users
        if not missing:
            return (
                RuleOutcome(trace=(f"captured: {found or 'summary and description'}",)) if data.explain else NO_OUTCOME
            )
        severity: Severity | None = "error" if {"summary", "description"} & set(missing) else None
        finding = self.finding(
            "incomplete",
            "The issue is not fully captured: missing " + "; ".join(LABELS[m] for m in missing) + ".",
            advice=(
                "Let the user describe the symptom before you interpret it, and note it verbatim: what they were "
                "doing, whether it happens every time, and how many people it affects."
            ),
            evidence={"missing": list(missing), "found": found},
            severity=severity,
        )
        return RuleOutcome(findings=(finding,), trace=(f"missing {', '.join(missing)}",) if data.explain else ())


def _v(value: Kind | Source | None) -> str:
    return value.value if value is not None else "unknown"
