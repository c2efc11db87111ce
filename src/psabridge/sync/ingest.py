"""Ingest: store mapped tickets and decide in the same transaction what follows; one ticket re-read by id.

The steps every ingest shares: ``store_changes`` (set-based, for a batch: a list page, page.py) or ``store_change``
(one ticket), then each of ``PLANNERS`` per stored change. A webhook, a deferred list record, recovery and a replay
end in ``ingest_ticket``, under the ticket's lock, in this order::

    fetch + map inbound       a webhook is only a hint: the vendor's current record is the truth
    store_change              upsert (older data never overwrites newer; the content hash says whether anything
                              changed), presence, the mapping's findings, echo and close detection, the tracked
                              fields' transitions (by a person, or by psabridge for our own echo) and, for a real
                              change (not unchanged, not stale, not the echo of our own write), that the ticket needs
                              evaluating -> StoredChange
    each of PLANNERS          plan_mirroring (existing links, then new mirrors)
    outbox                    the planned actions, written in the same transaction

Only after the commit are the actions handed to the dispatcher and a real change to the ``evaluate`` step (the
rules, sync/evaluate.py), so a crash in between leaves pending outbox rows and tickets needing evaluation, which
recovery queues again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from psabridge.errors import MappingError, NotFoundError
from psabridge.log import get_logger
from psabridge.mapping import InboundResult
from psabridge.model import Action, Ticket, ticket_key
from psabridge.rules.base import TRACKED_FIELDS, By, Transition
from psabridge.store import Session, evaluations, findings, inbox, outbox, tickets, transitions
from psabridge.store.links import MirrorLink, links_of_many
from psabridge.store.tickets import TicketChange, UpsertOutcome
from psabridge.sync.context import SyncContext
from psabridge.sync.echo import is_echo
from psabridge.sync.linking import open_mirrors, plan_links
from psabridge.sync.outbox import queue_actions
from psabridge.sync.scrub import scrub_record, with_scrub_findings

__all__ = [
    "PLANNERS",
    "IngestOutcome",
    "IngestResult",
    "Planner",
    "StoredChange",
    "ingest_ticket",
    "plan_change",
    "plan_mirroring",
    "store_change",
    "store_changes",
]

_log = get_logger("psabridge.sync")


class IngestOutcome(StrEnum):
    """What ingesting one ticket did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"
    """Older than the stored copy: not written."""
    ECHO = "echo"
    """Our own write came back: stored, not evaluated, nothing mirrored back."""
    DELETED = "deleted"
    """Gone from the vendor: marked deleted."""
    DEFERRED = "deferred"
    """Met on a list page while psabridge's own write to it awaits its echo: left to the ticket's own ingest."""


@dataclass(frozen=True)
class StoredChange:
    """What storing one mapped ticket did: what the planners decide on.

    Attributes:
        ticket: the ticket as just stored (as stored before, when stale).
        outcome: created, updated, unchanged, stale or echo.
        changed: canonical fields that changed.
        closed: the change closed (resolved, cancelled) the ticket.
        links: the mirror links the ticket takes part in (loaded for a created, updated or echo outcome).
        mirror_of_ours: the ticket is a mirror psabridge created.
        integration_user: our identity at the ticket's vendor (its notes are ours).
        at: when the ingest started (the time rules judge against).
        created: first seen by this ingest.
    """

    ticket: Ticket
    outcome: IngestOutcome
    at: datetime
    changed: tuple[str, ...] = ()
    closed: bool = False
    links: tuple[MirrorLink, ...] = ()
    mirror_of_ours: bool = False
    integration_user: str | None = None
    created: bool = False

    @property
    def is_real(self) -> bool:
        """Content changed and not by our own write: the rules evaluate it, mirrors carry it."""
        return self.outcome in (IngestOutcome.CREATED, IngestOutcome.UPDATED)

    @property
    def needs_evaluation(self) -> bool:
        """A real change, a mirror psabridge just created, or our own write to one side of a mirror pair.

        A pair is evaluated once, on the side the rules say. A technician's change on the other side (resolving a
        client's P1 in ConnectWise) reaches the evaluated side only as psabridge's own write, so without the last
        case the pair's rules would never see it (the P1's page would never be resolved). Only a change of a
        tracked field counts (status, priority, queue, assignee, tier: what the rules read as transitions), not
        the echo of a note; evaluating again is idempotent: an unchanged outcome writes nothing.
        """
        carried = any(name in TRACKED_FIELDS for name in self.changed)
        mirrored = self.outcome == IngestOutcome.ECHO and bool(self.links) and carried
        return self.is_real or (self.created and self.mirror_of_ours) or mirrored


Planner = Callable[[SyncContext, Session, StoredChange], list[Action]]
"""One planning step: the actions a stored change asks for (inside the ingest's transaction)."""


@dataclass(frozen=True)
class IngestResult:
    """What ingesting one ticket did.

    Attributes:
        key: the ticket key.
        outcome: see IngestOutcome.
        changed: canonical fields that changed.
        closed: the change closed (resolved, cancelled) the ticket.
        evaluated: a real change (``is_real``: not unchanged, stale or our own echo), which the rules look at.
        outbox_ids: outbox actions written by this change (mirroring; the rules' come from the evaluate step).
    """

    key: str
    outcome: IngestOutcome
    changed: tuple[str, ...] = ()
    closed: bool = False
    evaluated: bool = False
    outbox_ids: tuple[int, ...] = ()


def ingest_ticket(ctx: SyncContext, connection: str, external_id: str, *, dry_run: bool = False) -> IngestResult:
    """Fetch, map, store and plan one ticket; hand new outbox actions to the dispatcher after the commit.

    Args:
        ctx: the sync context.
        connection: the connection name.
        external_id: the vendor id.
        dry_run: do everything but commit and dispatch (the result says what would happen).

    Raises:
        RetryLaterError: the vendor or the lock was busy (retried).
        ConfigError, MappingError, PermanentError: retrying cannot help (dead-lettered).
    """
    key = ticket_key(connection, external_id)
    with ctx.locks.hold(key):
        started = ctx.now()
        connector = ctx.connector(connection)
        try:
            raw = connector.get_ticket(external_id)
        except NotFoundError:
            return _gone(ctx, connection, external_id, started, dry_run=dry_run)
        raw, scrubbed = scrub_record(raw)
        mapped = ctx.mappings.mapper(connection).inbound(raw, ctx.mappings.context(connection), connector.metadata())
        mapped = with_scrub_findings(mapped, scrubbed)
        if mapped.ticket.key != key:
            raise MappingError(
                f"ticket {external_id!r} maps to id {mapped.ticket.external_id!r}: check the external_id rule",
                connection=connection,
            )
        with ctx.unit(dry_run=dry_run) as session:
            change = store_change(session, mapped, raw, integration_user=connector.integration_user(), now=started)
            actions = plan_change(ctx, session, change)
            new = outbox.enqueue_new(session, actions, now=started)
            inbox.close_deliveries(session, connection, external_id, upto=started)
    if not dry_run:
        queue_actions(ctx, new)
        if change.needs_evaluation:
            ctx.queue.evaluate(key)
    outbox_ids = tuple(row.id for row in new)
    result = IngestResult(
        key, change.outcome, change.changed, change.closed, evaluated=change.is_real, outbox_ids=outbox_ids
    )
    _log.debug("ingested", ticket=key, outcome=result.outcome, changed=list(result.changed))
    return result


def _gone(ctx: SyncContext, connection: str, external_id: str, now: datetime, *, dry_run: bool) -> IngestResult:
    key = ticket_key(connection, external_id)
    with ctx.unit(dry_run=dry_run) as session:
        tickets.mark_deleted(session, key, now)
        inbox.close_deliveries(session, connection, external_id, upto=now)
    return IngestResult(key, IngestOutcome.DELETED)


def store_change(
    session: Session,
    mapped: InboundResult,
    raw: dict[str, Any] | None,
    *,
    integration_user: str | None,
    now: datetime,
) -> StoredChange:
    """Store one mapped ticket and say what kind of change it was: ``store_changes`` for a batch of one."""
    [change] = store_changes(session, [(mapped, raw)], integration_user=integration_user, now=now)
    return change


def store_changes(
    session: Session,
    items: Sequence[tuple[InboundResult, dict[str, Any] | None]],
    *,
    integration_user: str | None,
    now: datetime,
    from_page: bool = False,
) -> list[StoredChange]:
    """Store mapped tickets (upsert, presence, the mapping's findings) and say what kind of change each was.

    Runs inside the caller's transaction, set-based: a constant number of statements for the batch, none for a copy
    that changed nothing. The tracked fields' transitions are recorded (``by`` psabridge for our own echo, a person
    otherwise), and each real change is marked as needing evaluation; the caller queues ``evaluate`` for those after
    the commit. A single ticket's ingest consumes what psabridge recorded as written to it (a change those
    writes explain is an echo). A list page (``from_page``) leaves a ticket holding such a record untouched
    (``deferred``): the caller hands it to the ticket's own ingest, which judges the echo on a fresh read under the
    ticket's lock. Returns one change per distinct ticket, in first-seen order.
    """
    by_key = {mapped.ticket.key: mapped for mapped, _ in items}
    upserted = tickets.upsert_tickets(
        session, [(mapped.ticket, raw) for mapped, raw in items], now=now, defer_written=from_page
    )
    stored = [c for c in upserted if c.outcome not in (UpsertOutcome.STALE, UpsertOutcome.DEFERRED)]
    findings.upsert_findings_many(
        session,
        "mapping",
        {c.key: [f.as_row() for f in by_key[c.key].findings] for c in stored},
        now=now,
        fresh={c.key for c in stored if c.outcome == UpsertOutcome.CREATED},
    )
    changed = [c.key for c in stored if c.outcome != UpsertOutcome.UNCHANGED]
    links = links_of_many(session, changed) if changed else {}
    out: list[StoredChange] = []
    for change in upserted:
        ticket = by_key[change.key].ticket
        if change.outcome == UpsertOutcome.STALE:
            out.append(StoredChange(change.after or ticket, IngestOutcome.STALE, now))
            continue
        if change.outcome == UpsertOutcome.DEFERRED:
            out.append(StoredChange(ticket, IngestOutcome.DEFERRED, now))
            continue
        written = {} if from_page else tickets.take_written(session, ticket.key)
        if change.outcome == UpsertOutcome.UNCHANGED:
            out.append(StoredChange(ticket, IngestOutcome.UNCHANGED, now))
            continue
        out.append(_classify(change, ticket, links.get(ticket.key, []), written, integration_user, now))
    _record_for_rules(session, upserted, out, now)
    return out


def _record_for_rules(
    session: Session, upserted: Sequence[TicketChange], changes: Sequence[StoredChange], now: datetime
) -> None:
    """The transitions of every stored change and "needs evaluation" (``StoredChange.needs_evaluation``)."""
    moved: list[tuple[str, Transition]] = []
    for stored, change in zip(upserted, changes, strict=True):
        if change.outcome not in (IngestOutcome.UPDATED, IngestOutcome.ECHO) or stored.after is None:
            continue
        by: By = "bridge" if change.outcome == IngestOutcome.ECHO else "human"
        at = stored.after.updated_at or now
        moved.extend((stored.key, t) for t in transitions.transitions_between(stored.before, stored.after, at, by))
    transitions.record_transitions(session, moved)
    evaluations.mark_needed(session, [c.ticket.key for c in changes if c.needs_evaluation], now)


def _classify(
    change: TicketChange,
    ticket: Ticket,
    links: list[MirrorLink],
    written: dict[str, Any],
    integration_user: str | None,
    now: datetime,
) -> StoredChange:
    """A created or updated ticket as a StoredChange: echo or real, closed by it or not."""
    mirror_of_ours = any(link.target_key == ticket.key for link in links)
    echo = is_echo(change, written, integration_user=integration_user, created_by_us=mirror_of_ours)
    before = change.before
    closed = (  # closed by this change (a ticket first seen closed was created closed, not closed now)
        before is not None
        and ticket.status is not None
        and not ticket.status.is_open
        and (before.status is None or before.status.is_open)
    )
    return StoredChange(
        ticket,
        IngestOutcome.ECHO if echo else IngestOutcome(change.outcome.value),
        now,
        changed=change.changed,
        closed=closed,
        links=tuple(links),
        mirror_of_ours=mirror_of_ours,
        integration_user=integration_user,
        created=change.outcome == UpsertOutcome.CREATED,
    )


def plan_change(ctx: SyncContext, session: Session, change: StoredChange) -> list[Action]:
    """The actions a stored change asks for: each of PLANNERS in order (inside the change's transaction)."""
    return [action for planner in PLANNERS for action in planner(ctx, session, change)]


def plan_mirroring(ctx: SyncContext, session: Session, change: StoredChange) -> list[Action]:
    """Mirror actions: what flows across the ticket's links, then CreateMirror for links that should mirror it.

    An echo only brings the links' last seen values up to date; a mirror of ours gets no mirror of its own.
    """
    if not change.is_real and change.outcome != IngestOutcome.ECHO:
        return []
    links = list(change.links)
    actions = plan_links(
        ctx, session, change.ticket, links, integration_user=change.integration_user, emit=change.is_real
    )
    if change.is_real and not change.mirror_of_ours:
        actions.extend(open_mirrors(ctx, session, change.ticket, links))
    return actions


PLANNERS: tuple[Planner, ...] = (plan_mirroring,)
"""The planning steps of an ingest, in order (their actions enter the outbox, and are dispatched, in this order)."""
