"""Checklist step "Escalate to Tier 2 with diagnostic notes", the routing: the escalation matrix, and SLA breaches.

The matrix (``routes``, first match wins) says what a ticket is about, and where it goes: each route's ``when``
names categories, subcategories, keywords, error codes, earlier findings (``tier_scope.out_of_scope``) and tiers;
every condition given must hold (one of its values is enough). Its ``queue`` names an entry of ``queues``, which
gives the queue as the admin sees it in each vendor: a ConnectWise board, an Autotask queue, a ServiceNow
assignment group, a Freshservice group, by connection name or by vendor (``default`` for the rest); a client's own
system (a connection with a ``tenant:``) is routed in only where its connection is named. The
write-back resolves that name through the connector's cached metadata (the mapping's queue lookup), and
``psabridge rules check --live`` checks every name against the vendors.

An open ticket that matches a route and is not in its queue gets ``route`` with a ``RouteToQueue`` action (the
vendor's own field, through the outbox). With the hand-off step: if the ticket lacks what the next tier needs
(the hand-off rule's items), the finding says so, so the note never hides a bare hand-off behind a move. A queue a
person changed after psabridge set it is left alone (``human_changed`` in the trace).

Breach escalation (``breach``): when the SLA rule raises a breach in this evaluation, ``breach_escalation`` routes
the ticket to the next tier's queue (``breach.tier_queues``), posts to the incident channel, and pages for the
priorities in ``breach.page`` through the paging rule's pager, once per breach.

What it cannot see: who is on shift in the target queue, and skills a queue's name does not say.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from psabridge.model import Action, PostToChannel, Priority, RouteToQueue, Ticket
from psabridge.rules.base import NO_OUTCOME, Code, Finding, Proposal, Rule, RuleInput, RuleOutcome, RuleSettings
from psabridge.rules.handoff import LABELS, HandoffSettings, handoff_gaps
from psabridge.rules.paging import PagingSettings, channel_text, dedup_key, page_event
from psabridge.rules.text import Words

__all__ = ["BreachSettings", "Route", "RouteWhen", "RoutingRule", "RoutingSettings", "queue_name"]

STEP = "Escalate to Tier 2 with diagnostic notes"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteWhen(_Section):
    """What a ticket must show for a route to take it: every condition given (any one of its values)."""

    categories: Words = Field(default=Words(), description="words of the category (case and punctuation ignored)")
    subcategories: Words = Field(default=Words(), description="words of the subcategory")
    keywords: Words = Field(default=Words(), description="words in the summary, description or notes")
    error_codes: list[str] = Field(default_factory=list, description="error codes the ticket records (exact)")
    findings: list[str] = Field(
        default_factory=list, description="findings of earlier rules in this evaluation, as rule.code"
    )
    tiers: list[int] = Field(default_factory=list, description="the ticket's tier now")

    @field_validator("findings")
    @classmethod
    def _rule_code(cls, value: list[str]) -> list[str]:
        for item in value:
            if item.count(".") != 1 or not all(item.split(".")):
                raise ValueError(f"{item!r} is not a finding: write rule.code, e.g. tier_scope.out_of_scope")
        return value

    @model_validator(mode="after")
    def _something(self) -> RouteWhen:
        if not (
            self.categories.words
            or self.subcategories.words
            or self.keywords.words
            or self.error_codes
            or self.findings
            or self.tiers
        ):
            raise ValueError("a route needs at least one condition (categories, keywords, findings, ...)")
        return self


class Route(_Section):
    """One row of the escalation matrix."""

    name: str = Field(description="what the row is (shown in the note and `rules explain`)")
    when: RouteWhen
    queue: str = Field(description="an entry of queues:")
    tier: int | None = Field(
        default=None,
        ge=1,
        le=3,
        description="the tier the ticket moves to, where the vendor keeps it apart from the queue (the shipped "
        "mappings read the tier from the queue)",
    )


class BreachSettings(_Section):
    """What an SLA breach does."""

    route: bool = Field(default=True, description="route the ticket to the next tier's queue")
    tier_queues: dict[int, str] = Field(
        default_factory=dict,
        description="tier -> an entry of queues: the next tier's queue on a breach (none: the ticket is not moved)",
    )
    channel: bool = Field(default=True, description="post the breach to the paging rule's incident channel")
    page: list[Priority] = Field(
        default_factory=lambda: [Priority.P1, Priority.P2], description="page on a breach at these priorities"
    )


_SECURITY: list[str] = ["ransomware", "phishing", "malware", "virus", "compromised", "suspicious sign-in", "breach"]
_NETWORK: list[str] = ["network", "vpn", "firewall", "switch", "vlan", "wi-fi", "wifi", "wireless", "dns", "dhcp"]
_M365: list[str] = ["exchange", "mailbox", "m365", "office 365", "teams", "sharepoint", "onedrive", "email", "e-mail"]


QueueNames = str | dict[str, str]
"""A queue's name everywhere, or by connection name / vendor (``connectwise``, ...), with ``default`` for the rest."""


def _default_queues() -> dict[str, QueueNames]:
    return {
        "networking": "Networking",
        "messaging": "Messaging/M365",
        "security": "Security",
        "infrastructure": "Infrastructure",
    }


class RoutingSettings(RuleSettings):
    """Settings of the routing step."""

    queues: dict[str, QueueNames] = Field(
        default_factory=_default_queues,
        description="the escalation queues, as admins see them in each vendor",
    )
    routes: list[Route] = Field(
        default_factory=lambda: [
            Route.model_validate(r)
            for r in (
                {
                    "name": "security incident",
                    "when": {"findings": ["tier_scope.out_of_scope"], "keywords": _SECURITY},
                    "queue": "security",
                },
                {
                    "name": "network",
                    "when": {"findings": ["tier_scope.out_of_scope"], "keywords": _NETWORK},
                    "queue": "networking",
                },
                {
                    "name": "Microsoft 365",
                    "when": {"findings": ["tier_scope.out_of_scope"], "keywords": _M365},
                    "queue": "messaging",
                },
                {
                    "name": "server-side work",
                    "when": {"findings": ["tier_scope.out_of_scope"]},
                    "queue": "infrastructure",
                },
            )
        ],
        description="the escalation matrix, first match wins",
    )
    breach: BreachSettings = Field(default_factory=BreachSettings, description="what an SLA breach does")


def queue_name(names: QueueNames, ticket: Ticket) -> str | None:
    """The queue's name in the ticket's connection: by connection name, else by vendor, else ``default``."""
    if isinstance(names, str):
        return names
    return names.get(ticket.connection) or names.get(ticket.system.value) or names.get("default")


class RoutingRule(Rule[RoutingSettings]):
    """A ticket the matrix sends elsewhere is routed there; an SLA breach escalates."""

    id: ClassVar[str] = "routing"
    step: ClassVar[str] = STEP
    settings_model = RoutingSettings
    codes: ClassVar[dict[str, Code]] = {
        "route": Code(
            "warning", "the escalation matrix sends the ticket to another queue", effect="set", actionable=True
        ),
        "no_queue": Code("warning", "the escalation matrix names no queue for this ticket's vendor"),
        "breach_escalation": Code("error", "an SLA breach escalates the ticket", effect="set", actionable=True),
    }

    def problems(self, settings: RoutingSettings) -> Iterable[tuple[tuple[str | int, ...], str]]:
        """Routes and breach tiers naming a queue ``queues:`` does not define."""
        known = ", ".join(sorted(settings.queues)) or "none"
        for index, route in enumerate(settings.routes):
            if route.queue not in settings.queues:
                yield ("routes", index, "queue"), f"unknown queue {route.queue!r}; queues: {known}"
        for tier, queue in settings.breach.tier_queues.items():
            if queue not in settings.queues:
                yield ("breach", "tier_queues", tier), f"unknown queue {queue!r}; queues: {known}"

    def evaluate(self, data: RuleInput[RoutingSettings]) -> RuleOutcome:
        """Match the matrix, propose the move; escalate a breach the SLA rule raised in this evaluation."""
        ticket = data.ticket
        if ticket.status is not None and not ticket.status.is_open:
            return (
                RuleOutcome(trace=(f"not routed: the ticket is {ticket.status.value}",)) if data.explain else NO_OUTCOME
            )
        findings: list[Finding] = []
        actions: list[Proposal] = []
        trace: list[str] = []
        route = self._match(data)
        if route is None:
            trace.append("no route matches")
        else:
            self._route(data, route, findings, actions, trace)
        self._breach(data, findings, actions, trace)
        return RuleOutcome(tuple(findings), tuple(actions), trace=tuple(trace) if data.explain else ())

    def _match(self, data: RuleInput[RoutingSettings]) -> Route | None:
        ticket, text = data.ticket, data.text
        codes = {c.lower() for c in ticket.error_codes}
        for route in data.settings.routes:
            when = route.when
            if when.tiers and ticket.tier not in when.tiers:
                continue
            if when.categories.words and (not ticket.category or when.categories.search(ticket.category) is None):
                continue
            if when.subcategories.words and (
                not ticket.subcategory or when.subcategories.search(ticket.subcategory) is None
            ):
                continue
            if when.keywords.words and when.keywords.search(text.words) is None:
                continue
            if when.error_codes and not codes & {c.lower() for c in when.error_codes}:
                continue
            if when.findings and not all(
                data.context.finding(*item.split(".", 1)) is not None for item in when.findings
            ):
                continue
            return route
        return None

    def _route(
        self,
        data: RuleInput[RoutingSettings],
        route: Route,
        findings: list[Finding],
        actions: list[Proposal],
        trace: list[str],
    ) -> None:
        ticket = data.ticket
        names = data.settings.queues.get(route.queue)
        target = queue_name(names, ticket) if names is not None else None
        evidence: dict[str, JsonValue] = {"route": route.name, "queue": route.queue, "from": ticket.queue}
        if target is None:
            findings.append(
                self.finding(
                    "no_queue",
                    f"The escalation matrix sends this ticket to {route.queue!r} ({route.name}), which names no queue "
                    f"in {ticket.connection} ({ticket.system.value}).",
                    advice=f"Add the {ticket.system.value} name under rules.routing.queues.{route.queue}.",
                    evidence=evidence,
                )
            )
            return
        evidence["to"] = target
        if data.connection.client_owned and not (isinstance(names, dict) and ticket.connection in names):
            # A client's own system (its ServiceNow): the MSP's matrix moves tickets there only where it names
            # that connection; otherwise the client's queues are the client's.
            trace.append(f"route {route.name!r}: {ticket.connection} is the client's own; the matrix does not name it")
            return
        if (ticket.queue or "").strip().lower() == target.strip().lower():
            trace.append(f"route {route.name!r}: already in {target!r}")
            return
        human = _queue_changed_by_person(data)
        gaps = self._gaps(data)
        lacking = f" The hand-off still lacks {'; '.join(LABELS[g] for g in gaps)}: add them." if gaps else ""
        if human is not None:
            trace.append(f"route {route.name!r}: not moving to {target!r}: {human}")
            message = (
                f"The escalation matrix sends this ticket to {target} ({route.name}); psabridge leaves the queue as "
                f"it is: a person changed it after psabridge set it.{lacking}"
            )
            findings.append(self.finding("route", message, evidence={**evidence, "gaps": list(gaps)}))
            return
        findings.append(
            self.finding(
                "route",
                f"Escalate to {target} ({route.name})"
                + (f", Tier {route.tier}" if route.tier else "")
                + f": the ticket is in {ticket.queue or 'no queue'}.{lacking}",
                advice="Hand off with reproduction steps, the exact error text, what was tried, the RMM asset link "
                "and the user impact.",
                evidence={**evidence, "tier": route.tier, "gaps": list(gaps)},
                instance=f"{route.queue}",
            )
        )
        action = RouteToQueue(
            ticket_key=ticket.key,
            target=ticket.connection,
            origin=f"rules.{self.id}",
            reason=f"escalation matrix: {route.name}",
            queue=target,
            tier=route.tier if route.tier is not None and route.tier != ticket.tier else None,
        )
        actions.append(Proposal("route", action, key=f"queue={target}"))
        trace.append(f"route {route.name!r}: {ticket.queue!r} -> {target!r}" + (f", gaps {gaps}" if gaps else ""))

    def _gaps(self, data: RuleInput[RoutingSettings]) -> list[str]:
        settings = data.context.settings.get("handoff")
        handoff = settings if isinstance(settings, HandoffSettings) else HandoffSettings()
        return handoff_gaps(data.ticket, data.text, data.text.notes, handoff)

    def _breach(
        self,
        data: RuleInput[RoutingSettings],
        findings: list[Finding],
        actions: list[Proposal],
        trace: list[str],
    ) -> None:
        breaches = [f for f in data.context.found.get("sla", ()) if f.code.endswith("_breached")]
        if not breaches:
            return
        ticket, settings = data.ticket, data.settings.breach
        breach = breaches[0]
        paging_settings = data.context.settings.get("paging")
        paging = paging_settings if isinstance(paging_settings, PagingSettings) else PagingSettings()
        planned: list[Action] = []
        done: list[str] = []
        next_tier = min((ticket.tier or 1) + 1, 3)
        queue_key = settings.tier_queues.get(next_tier)
        names = data.settings.queues.get(queue_key) if queue_key else None
        target = queue_name(names, ticket) if names is not None else None
        moves = settings.route and target is not None and (ticket.queue or "").lower() != target.lower()
        if moves and target is not None and _queue_changed_by_person(data) is None:
            planned.append(
                RouteToQueue(
                    ticket_key=ticket.key,
                    target=ticket.connection,
                    origin=f"rules.{self.id}",
                    reason=f"SLA breach: {breach.code}",
                    queue=target,
                    tier=next_tier if next_tier != ticket.tier else None,
                )
            )
            done.append(f"route to {target} (Tier {next_tier})")
        if settings.channel and paging.channel:
            text = channel_text(ticket, data.tenant, paging, f"SLA breach ({breach.code.split('_')[0]})")
            planned.append(
                PostToChannel(
                    ticket_key=ticket.key,
                    target=paging.channel,
                    origin=f"rules.{self.id}",
                    reason=f"SLA breach: {breach.code}",
                    text=f"{text}\n{breach.message}",
                )
            )
            done.append(f"post to {paging.channel}")
        life = breach.evidence.get("cycle")
        if ticket.priority in settings.page and paging.pager:
            key = dedup_key(ticket, data.link, int(life) if isinstance(life, int) else 1, f":{breach.code}")
            planned.append(
                page_event(ticket, paging.pager, key, "trigger", ticket.priority, self.id, headline="SLA breach")
            )
            done.append(f"page through {paging.pager}")
        if not planned:
            trace.append(f"breach {breach.code}: nothing configured to do")
            return
        findings.append(
            self.finding(
                "breach_escalation",
                f"{breach.message} Escalating: {', '.join(done)}.",
                advice="Take the ticket over in the next tier and tell the client what happens next.",
                evidence={"breach": breach.code, "instance": breach.instance, "actions": list(done)},
                instance=breach.instance,
            )
        )
        for action in planned:
            actions.append(Proposal("breach_escalation", action, key=f"breach-{action.type}"))
        trace.append(f"breach {breach.code}: {', '.join(done)}")


def _queue_changed_by_person(data: RuleInput[RoutingSettings]) -> str | None:
    """Why the queue must not be set again (a person moved the ticket after psabridge did), or None."""
    ours = [e for e in data.ledger if e.field == "queue"]
    if not ours:
        return None
    last = max(ours, key=lambda e: e.set_at)
    for change in data.transitions:
        if change.field == "queue" and change.by == "human" and change.at > last.set_at:
            return f"queue set to {last.value!r} by psabridge, then to {change.after!r} by a person"
    return None
