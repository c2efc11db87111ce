"""Checklist step "Page the on-call engineer for P1 incidents": one page per incident, and the incident channel told.

A P1 (the vendor's priority, or the priority rule's correction when it goes out in the same evaluation) that is open
pages the on-call engineer through the ``pager`` notifier (PagerDuty Events v2 or Opsgenie Alerts: never e-mail or
chat, as the seed says) and posts the ticket number, summary, client and a link to the ``channel`` notifier (a Slack-
or Teams-style incoming webhook). Both are actions of the ``p1`` finding, whose effect is ``set``.

One page per incident:

- The dedup key (PagerDuty ``dedup_key``, Opsgenie ``alias``) is ``psabridge:<source ticket>#<life>``: the source
  ticket of a mirror pair (the pair is evaluated on one side only, and a mirror target names its source), and the
  ticket's life, which goes up each time it is reopened. A retry, a second worker or a re-evaluation sends the same
  key (and the outbox writes one action per occurrence), so the vendor de-duplicates; a ticket reopened as P1 pages
  again, with a new key.
- A life that was paged stays ``p1`` until the ticket is resolved, even if its priority is lowered meanwhile: the
  engineer is already engaged. The rule's state lists the lives paged.
- Resolving the ticket (resolved, closed or cancelled) resolves the page (``page_resolved``: a PagerDuty resolve
  event, an Opsgenie close by alias).

A P1 with no ``pager`` configured for its tenant gets ``no_pager``: paging is never silently skipped.

What it cannot see: whether anyone acknowledged the page (PagerDuty and Opsgenie track that), and incidents opened
by phone that never reach a ticket.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from psabridge.model import PageOnCall, PostToChannel, Priority, Ticket
from psabridge.rules.base import (
    DONE_STATUSES,
    Code,
    Finding,
    LinkView,
    Proposal,
    Rule,
    RuleInput,
    RuleOutcome,
    RuleSettings,
    TenantView,
    reopens,
)

__all__ = ["PagingRule", "PagingSettings", "channel_text", "dedup_key", "page_event", "ticket_link"]

STEP = "Page the on-call engineer for P1 incidents"


class PagingSettings(RuleSettings):
    """Settings of the paging step."""

    pager: str | None = Field(
        default=None,
        description="the notifier that pages (a pagerduty or opsgenie entry of the settings' notifiers:); per "
        "tenant for a routing key per client",
    )
    channel: str | None = Field(
        default=None, description="the incident channel (a slack or teams entry of the settings' notifiers:)"
    )
    priorities: list[Priority] = Field(default_factory=lambda: [Priority.P1], description="priorities that page")
    on_correction: bool = Field(
        default=True, description="page when the priority rule corrects the priority to one that pages (effect set)"
    )
    resolve_with_ticket: bool = Field(default=True, description="resolve the page when the ticket is resolved")
    ticket_links: dict[str, str] = Field(
        default_factory=dict,
        description="connection name or vendor -> link to a ticket in its web UI, with {external_id} and {number}, "
        "e.g. https://acme.service-now.com/nav_to.do?uri=incident.do?sys_id={external_id}",
    )
    bridge: str | None = Field(default=None, description="the incident bridge (a meeting link) named in the post")


def dedup_key(ticket: Ticket, link: LinkView, life: int, suffix: str = "") -> str:
    """The page's dedup key: ``psabridge:<source ticket key>#<life>`` (plus ``suffix`` for other pages of the life)."""
    source = link.peer if link.role == "target" and link.peer else ticket.key
    return f"psabridge:{source}#{life}{suffix}"


def ticket_link(ticket: Ticket, links: dict[str, str]) -> str | None:
    """The link to the ticket in its vendor's web UI, from ``ticket_links`` (by connection, else by vendor)."""
    template = links.get(ticket.connection) or links.get(ticket.system.value)
    if not template:
        return None
    return template.replace("{external_id}", ticket.external_id).replace("{number}", ticket.number or "")


def channel_text(ticket: Ticket, tenant: TenantView, settings: PagingSettings, headline: str) -> str:
    """The incident channel's message: headline, ticket number, summary, client, the link and the bridge."""
    client = tenant.name or tenant.key or ticket.tenant or "no client"
    lines = [
        f"{headline} {ticket.number or ticket.external_id}: {ticket.summary or '(no summary)'}",
        f"Client: {client}",
    ]
    link = ticket_link(ticket, settings.ticket_links)
    lines.append(f"Ticket: {link}" if link else f"Ticket: {ticket.key} ({ticket.system.value})")
    if settings.bridge:
        lines.append(f"Bridge: {settings.bridge}")
    return "\n".join(lines)


class PagingRule(Rule[PagingSettings]):
    """A P1 pages on-call once per incident and tells the incident channel; resolving the ticket resolves the page."""

    id: ClassVar[str] = "paging"
    step: ClassVar[str] = STEP
    settings_model = PagingSettings
    codes: ClassVar[dict[str, Code]] = {
        "p1": Code(
            "critical",
            "a P1 incident: the on-call engineer is paged and the incident channel told",
            effect="set",
            actionable=True,
        ),
        "page_resolved": Code(
            "info", "the ticket is resolved: its page is resolved too", effect="set", actionable=True
        ),
        "no_pager": Code("error", "a P1 incident, but no paging service is configured for its client"),
    }

    def evaluate(self, data: RuleInput[PagingSettings]) -> RuleOutcome:
        """Page an open P1 once per life; resolve the page of a life that ends."""
        settings, ticket = data.settings, data.ticket
        life = reopens(data.transitions) + 1
        saved = data.state or {}
        paged_raw = saved.get("paged")
        paged = [int(n) for n in paged_raw if isinstance(n, int)] if isinstance(paged_raw, list) else []
        corrected = data.context.corrections.get("priority") if settings.on_correction else None
        priority = ticket.priority
        why = f"priority {priority.value}" if priority is not None else "no priority"
        if corrected is not None and corrected in Priority.__members__:
            priority = Priority(corrected)
            why = f"priority corrected to {corrected} by the priority rule"
        done = ticket.status is not None and ticket.status in DONE_STATUSES
        trace = [f"life {life}, {why}, {'done' if done else 'open'}, paged lives {paged}"] if data.explain else []
        if (done and not (life in paged and settings.resolve_with_ticket and settings.pager)) or (
            not done and life not in paged and priority not in settings.priorities
        ):
            return RuleOutcome(trace=tuple(trace))  # nothing to page or resolve (most tickets)
        key = dedup_key(ticket, data.link, life)
        findings: list[Finding] = []
        actions: list[Proposal] = []
        evidence: dict[str, JsonValue] = {
            "dedup_key": key,
            "life": life,
            "priority": priority.value if priority else None,
        }
        if done:
            if life in paged and settings.resolve_with_ticket and settings.pager:
                findings.append(
                    self.finding(
                        "page_resolved",
                        f"The ticket is {ticket.status.value if ticket.status else 'done'}: the page ({key}) is "
                        "resolved.",
                        evidence=evidence,
                        instance=f"life-{life}",
                    )
                )
                page = page_event(ticket, settings.pager, key, "resolve", ticket.priority, self.id)
                actions.append(Proposal("page_resolved", page))
            return RuleOutcome(tuple(findings), tuple(actions), trace=tuple(trace))
        if settings.pager is None:
            finding = self.finding(
                "no_pager",
                f"This is a {priority.value if priority else 'paging'} incident, but no paging service is configured "
                "for its client, so nobody was paged.",
                advice="Page the on-call engineer by hand now (PagerDuty / Opsgenie, not e-mail or chat), and set "
                "rules.paging.pager for the client in the rules file.",
                evidence=evidence,
                instance=f"life-{life}",
            )
            return RuleOutcome((finding,), trace=(*trace, "no pager configured"))
        told = f" and posted to {settings.channel}" if settings.channel else ""
        findings.append(
            self.finding(
                "p1",
                f"{priority.value if priority else 'P1'} incident ({why}): the on-call engineer is paged through "
                f"{settings.pager}{told}.",
                advice="Acknowledge the page, open the incident bridge and keep the incident channel updated.",
                evidence={**evidence, "pager": settings.pager, "channel": settings.channel},
                instance=f"life-{life}",
            )
        )
        page = page_event(ticket, settings.pager, key, "trigger", priority, self.id)
        actions.append(Proposal("p1", page, key="page"))
        if settings.channel:
            text = channel_text(ticket, data.tenant, settings, f"{priority.value if priority else 'P1'} incident")
            post = PostToChannel(
                ticket_key=ticket.key,
                target=settings.channel,
                origin=f"rules.{self.id}",
                reason=f"incident channel for {key}",
                text=text,
            )
            actions.append(Proposal("p1", post, key="channel"))
        lives: list[JsonValue] = [*sorted({*paged, life})]
        state: dict[str, JsonValue] = {"paged": lives}
        return RuleOutcome(tuple(findings), tuple(actions), state=state, trace=tuple(trace))


def page_event(
    ticket: Ticket,
    pager: str,
    key: str,
    event: Literal["trigger", "resolve"],
    priority: Priority | None,
    origin: str,
    *,
    headline: str = "",
) -> PageOnCall:
    """The page of ``ticket`` (trigger or resolve) through ``pager`` with dedup key ``key``."""
    label = priority.value if priority is not None else "P1"
    summary = f"{headline or label} {ticket.number or ticket.external_id}: {ticket.summary or 'incident'}"
    return PageOnCall(
        ticket_key=ticket.key,
        target=pager,
        origin=f"rules.{origin}",
        reason=f"{event} the page of {ticket.key}",
        event=event,
        summary=summary[:1024],
        severity="critical" if priority in (None, Priority.P1) else "error",
        dedup_key=key,
    )
