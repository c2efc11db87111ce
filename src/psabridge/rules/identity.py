"""Checklist step "Verify the caller's identity": credential work needs a recorded identity verification first.

A ticket asking for credential work (a password reset, MFA re-enrolment, an account unlock: ``credential_words`` in
its summary, description, category or subcategory) must record how the caller was verified: the requester marked
verified in the vendor (``Party.identity_verified``), a configured custom field, or a note by a person saying so
(``verification_words``: a callback to the number on file, a second-channel confirmation, a manager's
verification). Otherwise ``unverified`` (error; critical when the requester is a VIP, the vishing pretext the
checklist warns about), or ``reset_unverified`` (critical) when a note says the reset was already done. While either
is open the engine holds automated progress: no rule may move the ticket's status forward.

What it cannot see: the call itself. It trusts what the ticket records; it cannot tell whether the number called
back really was the one on file, or whether the caller was matched against Entra ID / AD.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, JsonValue

from psabridge.rules.base import (
    NO_OUTCOME,
    Code,
    Finding,
    Rule,
    RuleInput,
    RuleOutcome,
    RuleSettings,
    Severity,
    is_set,
    vip_reason,
)
from psabridge.rules.text import Tokens, Words

__all__ = ["IdentityRule", "IdentitySettings"]

STEP = "Verify the caller's identity"


class IdentitySettings(RuleSettings):
    """Settings of the identity step."""

    credential_words: Words = Field(
        default=Words(
            [
                "password reset",
                "reset my password",
                "reset password",
                "reset the password",
                "forgot my password",
                "forgotten password",
                "password expired",
                "password has expired",
                "change my password",
                "locked out",
                "account locked",
                "account lockout",
                "lockout",
                "unlock my account",
                "unlock",
                "mfa",
                "multi-factor",
                "2fa",
                "two-factor",
                "authenticator",
                "re-enrol*",
                "re-register mfa",
                "new phone",
            ]
        ),
        description="words that make a ticket credential work (summary, description, category, subcategory)",
    )
    verification_words: Words = Field(
        default=Words(
            [
                "identity verified",
                "verified identity",
                "verified the identity",
                "verified the caller",
                "caller verified",
                "verified caller",
                "identity check",
                "identity confirmed",
                "confirmed identity",
                "callback to the number on file",
                "called back on the number on file",
                "called back the number on file",
                "callback to the known number",
                "verified by callback",
                "verified by call back",
                "second channel",
                "second-channel",
                "manager verification",
                "verified by manager",
                "verified with manager",
                "verified by the manager",
            ]
        ),
        description="words in a note by a person that record the verification",
    )
    negation_words: Words = Field(
        default=Words(["not verified", "unverified", "could not verify", "unable to verify", "without verification"]),
        description="words that make a note say the opposite (that note does not count as a verification)",
    )
    done_words: Words = Field(
        default=Words(
            [
                "reset done",
                "password reset done",
                "reset the password",
                "password has been reset",
                "password was reset",
                "reset completed",
                "account unlocked",
                "unlocked the account",
                "re-registered mfa",
                "mfa reset",
            ]
        ),
        description="words in a note that say the credential work was already done",
    )
    verification_field: str | None = Field(
        default=None, description="a custom field whose true / non-empty value records the verification"
    )
    vip_severity: Severity = Field(default="critical", description="severity of 'unverified' for a VIP requester")


class IdentityRule(Rule[IdentitySettings]):
    """Credential work must record how the caller was verified."""

    id: ClassVar[str] = "identity"
    step: ClassVar[str] = STEP
    settings_model = IdentitySettings
    codes: ClassVar[dict[str, Code]] = {
        "unverified": Code(
            "error",
            "credential work with no identity verification recorded; automated progress is held",
            holds_progress=True,
        ),
        "reset_unverified": Code(
            "critical",
            "credentials were reset with no identity verification recorded; automated progress is held",
            holds_progress=True,
        ),
    }

    def evaluate(self, data: RuleInput[IdentitySettings]) -> RuleOutcome:
        """Find credential work and look for a recorded verification."""
        settings, ticket, text = data.settings, data.ticket, data.text
        matched = settings.credential_words.search(text.user)
        where = "summary or description"
        if matched is None and (ticket.category or ticket.subcategory):
            matched = settings.credential_words.search(text.labels)
            where = "category"
        if matched is None:
            return (
                RuleOutcome(trace=("no credential work in summary, description or category",))
                if data.explain
                else NO_OUTCOME
            )
        how = self._verification(data)
        if how is not None:
            return RuleOutcome(
                trace=(f"credential work ({matched!r} in the {where}); identity verified: {how}",)
                if data.explain
                else ()
            )
        vip = vip_reason(ticket, data.tenant)
        done = settings.done_words.search(text.notes)
        evidence: dict[str, JsonValue] = {
            "matched": matched,
            "in": where,
            "requester": _who(data),
            "vip": vip,
            "verification_field": settings.verification_field,
        }
        finding: Finding
        pretext = (
            f" The requester is a VIP ({vip}): executive impersonation is the most common pretext for resets."
            if vip
            else ""
        )
        if done is not None:
            evidence["done"] = done
            finding = self.finding(
                "reset_unverified",
                f"A note says the credential work was done ({done!r}) but no identity verification is recorded."
                + pretext,
                advice=(
                    "Confirm with the user over a second channel (a callback to the number on file, a Teams message to "
                    "their known account, or their manager) that they asked for it, and record how in an internal "
                    "note. If they did not, treat it as a security incident: revoke sessions and reset again."
                ),
                evidence=evidence,
            )
        else:
            finding = self.finding(
                "unverified",
                f"Credential work requested ({matched!r} in the {where}) and no identity verification is recorded."
                + pretext,
                advice=(
                    "Before resetting anything, confirm the caller against the directory (Entra ID / AD) and call back "
                    "the number on file or confirm over a second channel (Teams DM, manager). Record how in an "
                    "internal note, e.g. 'Identity verified by callback to the number on file'. psabridge holds "
                    "automated status changes on this ticket until then."
                ),
                evidence=evidence,
                severity=settings.vip_severity if vip else None,
            )
        return RuleOutcome(
            findings=(finding,),
            trace=(f"credential work ({matched!r}); no verification recorded",) if data.explain else (),
        )

    def _verification(self, data: RuleInput[IdentitySettings]) -> str | None:
        """How the verification is recorded, or None."""
        settings, ticket = data.settings, data.ticket
        if ticket.requester is not None and ticket.requester.identity_verified:
            return f"requester marked verified ({ticket.requester.verified_by or 'no method given'})"
        name = settings.verification_field
        if name is not None:
            value = ticket.custom.get(name)
            if is_set(value):
                return f"custom field {name!r} = {value!r}"
        if settings.verification_words.search(data.text.notes) is None:
            return None
        for note in data.text.human_notes:
            lowered = Tokens(note.text)
            found = settings.verification_words.search(lowered)
            if found is not None and settings.negation_words.search(lowered) is None:
                return f"note by {note.author or 'someone'}: {found!r}"
        return None


def _who(data: RuleInput[IdentitySettings]) -> str | None:
    requester = data.ticket.requester
    if requester is None:
        return None
    return requester.email or requester.name or requester.external_id
