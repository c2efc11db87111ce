"""Checklist step "Set the ticket priority and SLA": the priority follows the matrix and the ticket's evidence.

The SLA matrix of the checklist: P1 system down or multi-user, P2 single user blocked, P3 degraded, P4 request.
Where the vendor has impact and urgency, the priority they give by ``matrix`` is compared with the ticket's
(``matrix_mismatch``). The ticket's own words (summary, description, notes by people) give the evidence: outage words
("none of us", "whole office", "site down") or at least ``multi_user_threshold`` users stated with blocking words
mean P1; blocking words alone ("can't log in", "locked out") P2; degrading words ("slow", "choppy") P3; a service
request without either P4. A priority less urgent than strong evidence (``flag_evidence``) is ``understated``, one
``overstated_gap`` levels more urgent than a degraded or request ticket is ``overstated``, a ticket with none is
``missing``; each proposes the evidence's priority as a canonical ``priority`` change (effect ``set`` sends it).

ServiceNow derives its priority from impact x urgency and will not take a priority: its mapping
(config/mappings/servicenow.yaml, ``priority.outbound.set``) writes the impact and urgency that derive the canonical
priority instead, so this rule proposes canonical ``priority`` for every vendor.

What it cannot see: the contract's SLA terms and response times (the SLA issue's engine), business impact the
ticket does not state (a single user who is the practice's only billing clerk), and whether the words describe the
present or the past.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, JsonValue

from psabridge.model import Kind, Level, Priority, SetFields
from psabridge.rules.base import NO_OUTCOME, Code, Finding, Proposal, Rule, RuleInput, RuleOutcome, RuleSettings
from psabridge.rules.text import Words

__all__ = ["DEFAULT_MATRIX", "PriorityRule", "PrioritySettings"]

STEP = "Set the ticket priority and SLA"

DEFAULT_MATRIX: dict[Level, dict[Level, Priority]] = {
    # impact -> urgency -> priority; ServiceNow's out-of-the-box derivation (its 5 Planning folded into P4).
    Level.HIGH: {Level.HIGH: Priority.P1, Level.MEDIUM: Priority.P2, Level.LOW: Priority.P3},
    Level.MEDIUM: {Level.HIGH: Priority.P2, Level.MEDIUM: Priority.P3, Level.LOW: Priority.P4},
    Level.LOW: {Level.HIGH: Priority.P3, Level.MEDIUM: Priority.P4, Level.LOW: Priority.P4},
}


class PrioritySettings(RuleSettings):
    """Settings of the priority step."""

    matrix: dict[Level, dict[Level, Priority]] = Field(
        default_factory=lambda: {i: dict(u) for i, u in DEFAULT_MATRIX.items()},
        description="impact -> urgency -> priority",
    )
    outage_words: Words = Field(
        default=Words(
            [
                "none of us",
                "nobody can",
                "no one can",
                "nobody at",
                "nobody here",
                "nobody in the office",
                "all users",
                "all of us",
                "everyone here",
                "for everyone",
                "for everybody",
                "everybody in",
                "whole office",
                "entire office",
                "whole company",
                "whole site",
                "entire site",
                "site down",
                "system down",
                "server down",
                "outage",
                "ransomware",
                "whole team",
            ]
        ),
        description="words of a multi-user or system-down incident (P1)",
    )
    single_user_words: Words = Field(
        default=Words(["everyone else", "only me", "just me", "only my", "only mine", "only this user", "single user"]),
        description="words that say only one user is affected (they outweigh outage words)",
    )
    blocked_words: Words = Field(
        default=Words(
            [
                "can't log in",
                "cannot log in",
                "can't login",
                "can't sign in",
                "cannot sign in",
                "locked out",
                "can't work",
                "cannot work",
                "unable to work",
                "can't access",
                "cannot access",
                "can't get into",
                "can't get to",
                "can't get on",
                "won't boot",
                "won't start",
                "blue screen",
                "unusable",
                "blocked",
                "can't do my job",
                "nothing works",
                "can't open anything",
                "can't send",
                "cannot send",
            ]
        ),
        description="words of a user who cannot work (P2, or P1 with enough users)",
    )
    degraded_words: Words = Field(
        default=Words(
            [
                "slow",
                "slowly",
                "choppy",
                "laggy",
                "lagging",
                "keeps dropping",
                "dropping",
                "freez*",
                "takes forever",
                "sluggish",
                "poor quality",
                "cuts out",
            ]
        ),
        description="words of a degraded service (P3)",
    )
    request_words: Words = Field(
        default=Words(
            [
                "please install",
                "could you install",
                "can you install",
                "please add",
                "can i get",
                "could i get",
                "new starter",
                "new hire",
                "please set up",
                "need access",
                "would like",
            ]
        ),
        description="words of a request (P4) when the ticket's kind does not say so",
    )
    multi_user_threshold: int = Field(default=3, ge=2, description="this many users stated, blocked, is P1")
    flag_evidence: list[Priority] = Field(
        default_factory=lambda: [Priority.P1, Priority.P2],
        description="evidence strong enough to call a less urgent priority 'understated'",
    )
    overstated_gap: int = Field(
        default=2, ge=1, le=3, description="levels a priority must exceed degraded/request evidence by"
    )
    open_only: bool = Field(default=True, description="judge open tickets only (a closed one's priority is history)")


class PriorityRule(Rule[PrioritySettings]):
    """The priority agrees with the matrix and with the ticket's evidence."""

    id: ClassVar[str] = "priority"
    step: ClassVar[str] = STEP
    settings_model = PrioritySettings
    codes: ClassVar[dict[str, Code]] = {
        "understated": Code("error", "the priority is less urgent than the ticket's evidence", actionable=True),
        "overstated": Code("warning", "the priority is more urgent than the ticket's evidence", actionable=True),
        "missing": Code("warning", "the ticket has no priority", actionable=True),
        "matrix_mismatch": Code("warning", "the priority disagrees with the ticket's impact and urgency"),
    }

    def evaluate(self, data: RuleInput[PrioritySettings]) -> RuleOutcome:
        """Derive the priority from impact and urgency and from the evidence; flag a contradiction."""
        settings, ticket = data.settings, data.ticket
        if settings.open_only and ticket.status is not None and not ticket.status.is_open:
            return (
                RuleOutcome(trace=(f"not judged: the ticket is {ticket.status.value}",)) if data.explain else NO_OUTCOME
            )
        evidence, why = self.evidence(data)
        from_matrix = None
        if ticket.impact is not None and ticket.urgency is not None:
            from_matrix = settings.matrix.get(ticket.impact, {}).get(ticket.urgency)
        trace = (
            (
                f"evidence: {evidence.value if evidence else 'none'} ({why or 'no priority words'})",
                f"matrix: {from_matrix.value if from_matrix else 'n/a'} "
                f"(impact {_v(ticket.impact)}, urgency {_v(ticket.urgency)})",
            )
            if data.explain
            else ()
        )
        current = ticket.priority
        facts: dict[str, JsonValue] = {
            "priority": current.value if current else None,
            "evidence": evidence.value if evidence else None,
            "because": why,
            "impact": _v(ticket.impact),
            "urgency": _v(ticket.urgency),
            "matrix": from_matrix.value if from_matrix else None,
        }
        findings: list[Finding] = []
        proposals: list[Proposal] = []
        if current is None:
            wanted = evidence or from_matrix
            findings.append(
                self.finding(
                    "missing",
                    "The ticket has no priority"
                    + (f"; the evidence says {wanted.value} ({why or 'impact and urgency'})." if wanted else "."),
                    advice=_MATRIX_ADVICE,
                    evidence=facts,
                )
            )
            if wanted is not None:
                proposals.append(self._propose(data, "missing", wanted, f"no priority; evidence says {wanted.value}"))
        elif evidence is not None and evidence in settings.flag_evidence and evidence.rank < current.rank:
            findings.append(
                self.finding(
                    "understated",
                    f"Priority {current.value} is less urgent than the evidence: {why}, which is {evidence.value} "
                    f"({_MEANING[evidence]}).",
                    advice=f"Raise it to {evidence.value} unless the ticket says why not. {_MATRIX_ADVICE}",
                    evidence=facts,
                    severity="critical" if evidence is Priority.P1 else None,
                )
            )
            proposals.append(self._propose(data, "understated", evidence, f"{why}: {evidence.value}"))
        elif (
            evidence is not None
            and evidence in (Priority.P3, Priority.P4)
            and current.rank + settings.overstated_gap <= evidence.rank
        ):
            findings.append(
                self.finding(
                    "overstated",
                    f"Priority {current.value} is more urgent than the evidence: {why}, which is {evidence.value} "
                    f"({_MEANING[evidence]}).",
                    advice=f"Lower it to {evidence.value} unless the ticket says why it is urgent. {_MATRIX_ADVICE}",
                    evidence=facts,
                )
            )
            proposals.append(self._propose(data, "overstated", evidence, f"{why}: {evidence.value}"))
        if current is not None and from_matrix is not None and from_matrix is not current:
            findings.append(
                self.finding(
                    "matrix_mismatch",
                    f"Priority {current.value} disagrees with impact {_v(ticket.impact)} and urgency "
                    f"{_v(ticket.urgency)}, which give {from_matrix.value}.",
                    advice="Set impact and urgency to what the ticket shows, or the priority they give.",
                    evidence=facts,
                )
            )
        return RuleOutcome(findings=tuple(findings), actions=tuple(proposals), trace=trace)

    def evidence(self, data: RuleInput[PrioritySettings]) -> tuple[Priority | None, str | None]:
        """The priority the ticket's words point to, and why (the words or count relied on)."""
        settings, ticket = data.settings, data.ticket
        words = data.text.words
        count = data.text.affected
        single = settings.single_user_words.search(words) or (f"{count} user stated" if count == 1 else None)
        blocked = settings.blocked_words.search(words)
        if single is None:
            outage = settings.outage_words.search(words)
            if outage is not None:
                return Priority.P1, repr(outage)
            if count is not None and count >= settings.multi_user_threshold and blocked is not None:
                return Priority.P1, f"{count} users stated and {blocked!r}"
        if blocked is not None:
            return Priority.P2, repr(blocked)
        degraded = settings.degraded_words.search(words)
        if degraded is not None:
            return Priority.P3, repr(degraded)
        if ticket.kind is Kind.SERVICE_REQUEST:
            return Priority.P4, "a service request"
        request = settings.request_words.search(words)
        if request is not None:
            return Priority.P4, repr(request)
        return None, None

    def _propose(self, data: RuleInput[PrioritySettings], code: str, priority: Priority, why: str) -> Proposal:
        ticket = data.ticket
        action = SetFields(
            ticket_key=ticket.key,
            target=ticket.connection,
            origin=f"rules.{self.id}",
            reason=f"checklist priority: {why}",
            fields={"priority": priority.value},
        )
        return Proposal(code, action)


_MEANING = {
    Priority.P1: "system down or multi-user",
    Priority.P2: "a single user blocked",
    Priority.P3: "degraded",
    Priority.P4: "a request",
}
_MATRIX_ADVICE = "The matrix: P1 system down or multi-user, P2 single user blocked, P3 degraded, P4 request."


def _v(level: Level | None) -> str | None:
    return level.value if level is not None else None
