"""Checklist step "Confirm whether Tier 1 can resolve": out-of-scope work at Tier 1 is flagged for early escalation.

Tier 1 scope is password resets, MFA re-enrolment, printer mapping, Outlook profile rebuilds and what
``tier1_words`` adds; server-side, network and security work (``escalate_words``, ``escalate_categories``) needs
Tier 2/3. An open ticket at Tier 1 (its ``tier`` is 1, or its queue is one of ``tier1_queues`` when the vendor gives
no tier) that shows out-of-scope work gets ``out_of_scope`` (error for security words, else warning), unless its
words are also Tier 1 work and not security work (an Outlook profile ticket that mentions "server"). Escalating early
is cheaper than burning two hours before the hand-off; the routing itself (which queue) belongs to the routing rules.

What it cannot see: the technician's skills and the client's contract (some clients pay for Tier 1 to do more), or
work the words do not name.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from psabridge.rules.base import NO_OUTCOME, Code, Rule, RuleInput, RuleOutcome, RuleSettings
from psabridge.rules.text import Words

__all__ = ["TierScopeRule", "TierScopeSettings"]

STEP = "Confirm whether Tier 1 can resolve"


class TierScopeSettings(RuleSettings):
    """Settings of the tier-scope step."""

    tier1_words: Words = Field(
        default=Words(
            [
                "password reset",
                "reset my password",
                "forgot my password",
                "password expired",
                "mfa",
                "authenticator",
                "re-enrol*",
                "printer",
                "print",
                "outlook profile",
                "loading profile",
                "outlook",
                "locked out",
                "unlock",
                "onedrive",
                "shared mailbox",
                "install",
            ]
        ),
        description="Tier 1 work",
    )
    escalate_words: Words = Field(
        default=Words(
            [
                "server",
                "file server",
                "shared drive",
                "s: drive",
                "domain controller",
                "network",
                "internet",
                "firewall",
                "switch",
                "vlan",
                "vpn",
                "wi-fi",
                "wifi",
                "wireless",
                "dns",
                "dhcp",
                "backup",
                "sql",
                "hyper-v",
                "vmware",
            ]
        ),
        description="Tier 2/3 work: server-side and network",
    )
    security_words: Words = Field(
        default=Words(
            [
                "ransomware",
                "phishing",
                "malware",
                "virus",
                "security incident",
                "breach",
                "compromised",
                "suspicious sign-in",
                "unusual sign-in",
                "clicked a link",
                "encrypted",
            ]
        ),
        description="security incidents: always out of Tier 1 scope",
    )
    escalate_categories: Words = Field(
        default=Words(["network", "security", "server", "infrastructure"]),
        description="categories that are Tier 2/3 work",
    )
    tier1_queues: Words = Field(
        default=Words(["service desk", "help desk", "tier 1", "level 1"]),
        description="queues that are Tier 1 when the vendor gives no tier",
    )


class TierScopeRule(Rule[TierScopeSettings]):
    """Work outside Tier 1 scope, still at Tier 1, is flagged."""

    id: ClassVar[str] = "tier_scope"
    step: ClassVar[str] = STEP
    settings_model = TierScopeSettings
    codes: ClassVar[dict[str, Code]] = {
        "out_of_scope": Code("warning", "Tier 2/3 work (server-side, network, security) is still at Tier 1"),
    }

    def evaluate(self, data: RuleInput[TierScopeSettings]) -> RuleOutcome:
        """Decide whether the ticket is at Tier 1 and whether its work is in Tier 1 scope."""
        settings, ticket, text = data.settings, data.ticket, data.text
        if ticket.status is not None and not ticket.status.is_open:
            return (
                RuleOutcome(trace=(f"not judged: the ticket is {ticket.status.value}",)) if data.explain else NO_OUTCOME
            )
        queue = (ticket.queue or "").lower()
        at_tier1 = ticket.tier == 1 or (
            ticket.tier is None and bool(queue) and settings.tier1_queues.search(queue) is not None
        )
        if not at_tier1:
            return (
                RuleOutcome(trace=(f"not at Tier 1 (tier {ticket.tier}, queue {ticket.queue!r})",))
                if data.explain
                else NO_OUTCOME
            )
        words = text.words
        security = settings.security_words.find_all(words)
        escalate = settings.escalate_words.find_all(words)
        by_category = (
            settings.escalate_categories.search(text.labels) if ticket.category or ticket.subcategory else None
        )
        tier1 = settings.tier1_words.search(words)
        if not security and (tier1 is not None or not (escalate or by_category)):
            why = f"Tier 1 work ({tier1!r})" if tier1 else "no out-of-scope words"
            return RuleOutcome(trace=(f"in scope: {why}",)) if data.explain else NO_OUTCOME
        matched = [*security, *escalate] or [f"category {by_category}"]
        kind = "a security incident" if security else "server-side or network work"
        finding = self.finding(
            "out_of_scope",
            f"This looks like {kind} ({', '.join(repr(m) for m in matched[:4])}) and is still at Tier 1 "
            f"(queue {ticket.queue or 'unknown'}).",
            advice="Escalate now with diagnostic notes (reproduction steps, error text, what was tried, asset, user "
            "impact): escalating early on out-of-scope tickets is cheaper than two hours before the hand-off."
            + (
                " Security incidents go to the security queue at once; do not keep working the machine."
                if security
                else ""
            ),
            evidence={"tier": ticket.tier, "queue": ticket.queue, "matched": list(matched), "security": bool(security)},
            severity="error" if security else None,
        )
        return RuleOutcome(findings=(finding,), trace=(f"out of scope at Tier 1: {matched}",) if data.explain else ())
