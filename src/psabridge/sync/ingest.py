"""Ingest: re-fetch one ticket through its connector, map it, store it, and decide in the same transaction what follows.

Webhook, poll and reconcile all end here. Under the ticket's lock: fetch (a webhook is only a hint), map inbound,
upsert (older data never overwrites newer; the content hash says whether anything changed), store the mapping's
findings, then for a real change (not unchanged, not stale, not the echo of our own write) evaluate the rules and
plan mirroring, writing the resulting actions into the outbox in the same transaction. Only after the commit are
the actions handed to the dispatcher, so a crash in between leaves pending outbox rows that recovery sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from psabridge.errors import MappingError, NotFoundError
from psabridge.log import get_logger
from psabridge.mapping import InboundResult
from psabridge.model import Action, Ticket, ticket_key
from psabridge.rules import evaluate
from psabridge.store import repo
from psabridge.store.models import Link
from psabridge.sync.context import SyncContext
from psabridge.sync.echo import is_echo
from psabridge.sync.mirror import Side, link_marker, new_mirror, plan_side

__all__ = ["IngestResult", "ingest_ticket", "plan_links", "store_ticket"]

_log = get_logger("psabridge.sync")

Outcome = Literal["created", "updated", "unchanged", "stale", "echo", "deleted"]


@dataclass(frozen=True)
class IngestResult:
    """What ingesting one ticket did.

    Attributes:
        key: the ticket key.
        outcome: created, updated, unchanged, stale (older than stored: not written), echo (our own write came
            back: stored, not evaluated), deleted (gone from the vendor).
        changed: canonical fields that changed.
        closed: the change closed (resolved, cancelled) the ticket.
        evaluated: the rules were evaluated.
        outbox_ids: outbox actions written by this change (rules and mirroring).
    """

    key: str
    outcome: Outcome
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
        mapped = ctx.mappings.mapper(connection).inbound(raw, ctx.mappings.context(connection), connector.metadata())
        if mapped.ticket.key != key:
            raise MappingError(
                f"ticket {external_id!r} maps to id {mapped.ticket.external_id!r}: check the external_id rule",
                connection=connection,
            )
        with ctx.unit(dry_run=dry_run) as session:
            result = store_ticket(ctx, session, mapped, raw, integration_user=connector.integration_user(), now=started)
            repo.close_deliveries(session, connection, external_id, upto=started)
    if not dry_run:
        for outbox_id in result.outbox_ids:
            ctx.queue.dispatch(outbox_id)
    _log.debug("ingested", ticket=key, outcome=result.outcome, changed=list(result.changed))
    return result


def _gone(ctx: SyncContext, connection: str, external_id: str, now: datetime, *, dry_run: bool) -> IngestResult:
    key = ticket_key(connection, external_id)
    with ctx.unit(dry_run=dry_run) as session:
        repo.mark_deleted(session, key, now)
        repo.close_deliveries(session, connection, external_id, upto=now)
    return IngestResult(key, "deleted")


def store_ticket(
    ctx: SyncContext,
    session: Session,
    mapped: InboundResult,
    raw: dict[str, Any] | None,
    *,
    integration_user: str | None,
    now: datetime,
) -> IngestResult:
    """Store a mapped ticket and, for a real change, write what rules and mirroring want into the outbox.

    Runs inside the caller's transaction: the ticket, its findings, the link state and the outbox actions commit
    together or not at all.
    """
    ticket = mapped.ticket
    [change] = repo.upsert_tickets(session, [(ticket, raw)], now=now)
    if change.outcome == "stale":
        return IngestResult(ticket.key, "stale")
    repo.mark_present(session, ticket.key)
    repo.upsert_findings(session, ticket.key, "mapping", [f.as_row() for f in mapped.findings], now=now)
    written = repo.take_written(session, ticket.key)
    if change.outcome == "unchanged":
        return IngestResult(ticket.key, "unchanged")
    links = repo.links_of(session, ticket.key)
    created_by_us = any(link.target_key == ticket.key for link in links)
    echo = is_echo(change, written, integration_user=integration_user, created_by_us=created_by_us)
    before, after = change.before, ticket
    closed = (  # closed by this change (a ticket first seen closed was created closed, not closed now)
        before is not None
        and after.status is not None
        and not after.status.is_open
        and (before.status is None or before.status.is_open)
    )
    actions: list[Action] = []
    if not echo:
        actions.extend(evaluate(after, now, ctx.rules))
    actions.extend(plan_links(ctx, session, after, links, integration_user=integration_user, emit=not echo))
    if not echo and not created_by_us:
        actions.extend(_new_mirrors(ctx, session, after, links))
    keys = repo.enqueue_actions(session, actions, now=now)
    outcome: Outcome = "echo" if echo else change.outcome
    return IngestResult(
        ticket.key,
        outcome,
        changed=change.changed,
        closed=closed,
        evaluated=not echo,
        outbox_ids=tuple(repo.outbox_ids(session, keys)),
    )


def plan_links(
    ctx: SyncContext,
    session: Session,
    ticket: Ticket,
    links: list[Link],
    *,
    integration_user: str | None,
    emit: bool = True,
) -> list[Action]:
    """Mirror actions for a ticket on its existing links (as source or as target); updates the links' sync state."""
    actions: list[Action] = []
    for row in links:
        link = ctx.link(row.name)
        if link is None or row.state != "created" or row.target_key is None:
            continue  # disabled, or the mirror does not exist yet (its creation carries the current state)
        side: Side = "from" if row.source_key == ticket.key else "to"
        other_key = row.target_key if side == "from" else row.source_key
        planned, state = plan_side(
            link, row.sync or {}, side, ticket, other_key=other_key, integration_user=integration_user, emit=emit
        )
        row.sync = state
        actions.extend(planned)
    return actions


def _new_mirrors(ctx: SyncContext, session: Session, ticket: Ticket, links: list[Link]) -> list[Action]:
    """CreateMirror for each link whose ``from`` the ticket matches and that has no mirror of it yet."""
    mirrored = {row.target_connection for row in links if row.source_key == ticket.key}
    actions: list[Action] = []
    for link in ctx.settings.links:
        if link.to.connection in mirrored:
            continue
        action = new_mirror(link, ticket)
        if action is None:
            continue
        marker = link_marker(ticket.key, link.to.connection)
        _, new = repo.ensure_link(
            session,
            name=link.name,
            source_key=ticket.key,
            source_connection=ticket.connection,
            target_connection=link.to.connection,
            marker=marker,
        )
        if new:
            actions.append(action)
        mirrored.add(link.to.connection)
    return actions
