"""Repositories: the store's operations in domain terms, batched and idempotent, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from psabridge.errors import ConfigError
from psabridge.model import Action, Ticket
from psabridge.store.models import (
    AuditEntry,
    DeadLetter,
    Finding,
    InboxDelivery,
    Link,
    Lock,
    OutboxAction,
    RawSnapshot,
    Run,
    RunItem,
    SyncState,
    TicketRow,
    utcnow,
)

__all__ = [
    "FIELDS_COMPARED",
    "OPEN_DELIVERY",
    "TicketChange",
    "acquire_lock",
    "add_dead_letter",
    "add_written",
    "close_deliveries",
    "enqueue_actions",
    "ensure_link",
    "fail_delivery",
    "finish_run",
    "get_watermark",
    "insert_ignore",
    "links_of",
    "load_raw",
    "load_ticket",
    "load_tickets",
    "mark_deleted",
    "mark_poll",
    "mark_present",
    "open_deliveries",
    "outbox_ids",
    "pending_outbox",
    "raw_hash",
    "record_audit",
    "record_changes",
    "record_delivery",
    "record_run_items",
    "release_lock",
    "set_watermark",
    "start_run",
    "stored_versions",
    "take_written",
    "upsert_findings",
    "upsert_tickets",
]

Outcome = Literal["created", "updated", "unchanged", "stale"]

FIELDS_COMPARED = tuple(name for name in Ticket.model_fields if name not in Ticket.HASH_EXCLUDED)


def raw_hash(raw: dict[str, Any]) -> str:
    """A stable SHA-256 of a raw vendor record."""
    blob = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def insert_ignore(session: Session, table: Any, rows: Sequence[dict[str, Any]], returning: str) -> list[Any]:
    """INSERT rows, skipping any that violate a unique constraint; returns ``returning`` of the rows inserted.

    ``INSERT .. ON CONFLICT DO NOTHING RETURNING`` is exact under concurrency on both databases: a row another
    process inserted first is simply not returned.
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - settings accept only SQLite and PostgreSQL URLs
        raise ConfigError(f"database {dialect!r} is not supported: use PostgreSQL or SQLite")
    stmt = stmt.values(list(rows)).returning(table.c[returning])
    return list(session.scalars(stmt))


# --- tickets ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketChange:
    """What storing one ticket did.

    Attributes:
        key: the ticket key.
        outcome: created, updated (content hash changed), unchanged (same content, maybe a newer vendor time), or
            stale (the incoming copy is older than the stored one and was not written).
        changed: canonical fields whose value changed (empty when created or unchanged).
        before: the stored ticket before this write, if there was one.
        after: the ticket as stored now (the old one when stale).
    """

    key: str
    outcome: Outcome
    changed: tuple[str, ...] = ()
    before: Ticket | None = None
    after: Ticket | None = None

    @property
    def is_change(self) -> bool:
        """True when content really changed (created or updated)."""
        return self.outcome in ("created", "updated")


@dataclass
class _Incoming:
    ticket: Ticket
    raw: dict[str, Any] | None
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.hash = self.ticket.content_hash()


def load_ticket(session: Session, key: str) -> Ticket | None:
    """The stored canonical ticket, or None."""
    data = session.scalar(sa.select(TicketRow.data).where(TicketRow.key == key))
    return Ticket.model_validate(data) if data is not None else None


def load_tickets(session: Session, keys: Iterable[str]) -> dict[str, Ticket]:
    """Stored canonical tickets by key (missing keys are absent)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, Ticket] = {}
    for chunk in _chunks(wanted, 500):
        for key, data in session.execute(sa.select(TicketRow.key, TicketRow.data).where(TicketRow.key.in_(chunk))):
            found[key] = Ticket.model_validate(data)
    return found


def upsert_tickets(
    session: Session, items: Sequence[tuple[Ticket, dict[str, Any] | None]], *, now: datetime | None = None
) -> list[TicketChange]:
    """Store a batch of tickets with their raw records; older data never overwrites newer.

    One SELECT for the whole batch, then inserts and updates. A copy whose vendor version counter or update time
    is older than the stored one is reported ``stale`` and not written. Within one batch the newest copy of a key
    wins. Returns one change per distinct key, in first-seen order.
    """
    now = now or utcnow()
    newest: dict[str, _Incoming] = {}
    for ticket, raw in items:
        current = newest.get(ticket.key)
        if current is None or ticket.is_newer_than(current.ticket) is not False:
            newest[ticket.key] = _Incoming(ticket, raw)
    rows = {
        row.key: row
        for chunk in _chunks(list(newest), 500)
        for row in session.scalars(sa.select(TicketRow).where(TicketRow.key.in_(chunk)))
    }
    changes: list[TicketChange] = []
    for key, incoming in newest.items():
        ticket = incoming.ticket
        row = rows.get(key)
        if row is None:
            row = TicketRow(key=key, first_seen_at=now)
            _fill_row(row, incoming, now)
            session.add(row)
            changes.append(TicketChange(key, "created", after=ticket))
            continue
        before = Ticket.model_validate(row.data)
        if _older(ticket, before):
            changes.append(TicketChange(key, "stale", before=before, after=before))
            continue
        if row.content_hash == incoming.hash:
            _fill_row(row, incoming, now)
            changes.append(TicketChange(key, "unchanged", before=before, after=ticket))
            continue
        changed = tuple(
            name for name in FIELDS_COMPARED if getattr(before, name) != getattr(ticket, name) and name != "key"
        )
        _fill_row(row, incoming, now)
        changes.append(TicketChange(key, "updated", changed, before=before, after=ticket))
    session.flush()
    return changes


def _older(incoming: Ticket, stored: Ticket) -> bool:
    """Strictly older by version counter, else by update time (equal is not older: same-second updates happen)."""
    if incoming.version is not None and stored.version is not None:
        try:
            return int(incoming.version) < int(stored.version)
        except ValueError:
            pass
    if incoming.updated_at is not None and stored.updated_at is not None:
        return incoming.updated_at < stored.updated_at
    return False


def _fill_row(row: TicketRow, incoming: _Incoming, now: datetime) -> None:
    ticket = incoming.ticket
    row.connection = ticket.connection
    row.system = ticket.system.value
    row.external_id = ticket.external_id
    row.number = ticket.number
    row.tenant = ticket.tenant
    row.status = ticket.status.value if ticket.status else None
    row.priority = ticket.priority.value if ticket.priority else None
    row.updated_at = ticket.updated_at
    row.version = ticket.version
    row.content_hash = incoming.hash
    row.data = ticket.model_dump(mode="json")
    row.stored_at = now
    if incoming.raw is not None:
        digest = raw_hash(incoming.raw)
        if row.raw is None:
            row.raw = RawSnapshot(raw=incoming.raw, raw_hash=digest, fetched_at=now)
        elif row.raw.raw_hash != digest:
            row.raw.raw = incoming.raw
            row.raw.raw_hash = digest
            row.raw.fetched_at = now


# --- watermarks -------------------------------------------------------------------------------------------------------


def get_watermark(session: Session, connection: str) -> datetime | None:
    """The stored watermark of a connection (None: never polled, so a backfill is due)."""
    return session.scalar(sa.select(SyncState.watermark).where(SyncState.connection == connection))


def set_watermark(session: Session, connection: str, watermark: datetime | None, *, run_id: int | None = None) -> None:
    """Store a connection's watermark; never moves it backwards."""
    state = session.get(SyncState, connection)
    if state is None:
        session.add(SyncState(connection=connection, watermark=watermark, last_run_id=run_id))
        session.flush()
        return
    if watermark is not None and (state.watermark is None or watermark > state.watermark):
        state.watermark = watermark
    if run_id is not None:
        state.last_run_id = run_id


def mark_poll(
    session: Session, connection: str, *, started: datetime | None = None, finished: datetime | None = None
) -> None:
    """Note when a connection's poll started or finished (for ``psabridge status``)."""
    state = session.get(SyncState, connection)
    if state is None:
        state = SyncState(connection=connection, watermark=None)
        session.add(state)
    if started is not None:
        state.last_poll_started_at = started
    if finished is not None:
        state.last_poll_finished_at = finished


# --- inbox / outbox ---------------------------------------------------------------------------------------------------


def record_delivery(
    session: Session,
    connection: str,
    delivery_id: str,
    *,
    external_id: str | None,
    event: str | None,
    headers: dict[str, Any] | None = None,
    body: str | None = None,
) -> bool:
    """Record a webhook delivery; False when this delivery was already received (a vendor duplicate)."""
    inserted = insert_ignore(
        session,
        InboxDelivery.__table__,
        [
            {
                "connection": connection,
                "delivery_id": delivery_id,
                "external_id": external_id,
                "event": event,
                "status": "received",
                "headers": headers or {},
                "body": body,
                "received_at": utcnow(),
            }
        ],
        "id",
    )
    return bool(inserted)


def enqueue_actions(session: Session, actions: Iterable[Action], *, now: datetime | None = None) -> list[str]:
    """Write actions into the outbox, once per idempotency key; returns the keys that were new."""
    now = now or utcnow()
    rows = []
    keys: list[str] = []
    for action in actions:
        key = action.idempotency_key()
        keys.append(key)
        rows.append(
            {
                "idempotency_key": key,
                "ticket_key": action.ticket_key,
                "target": action.target,
                "action_type": action.type,
                "origin": action.origin,
                "action": action.model_dump(mode="json"),
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
                "next_attempt_at": now,
            }
        )
    unique = list({row["idempotency_key"]: row for row in rows}.values())
    inserted = set(insert_ignore(session, OutboxAction.__table__, unique, "idempotency_key"))
    return [k for k in dict.fromkeys(keys) if k in inserted]


def record_audit(
    session: Session,
    *,
    connection: str,
    action_type: str,
    outcome: str,
    ticket_key: str | None = None,
    idempotency_key: str | None = None,
    origin: str | None = None,
    request: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Append one row to the audit trail of vendor writes."""
    session.add(
        AuditEntry(
            connection=connection,
            ticket_key=ticket_key,
            action_type=action_type,
            idempotency_key=idempotency_key,
            origin=origin,
            request=request or {},
            before=before,
            after=after,
            outcome=outcome,
            error=error,
        )
    )


# --- findings ---------------------------------------------------------------------------------------------------------


def upsert_findings(
    session: Session,
    ticket_key: str,
    rule: str,
    findings: Sequence[tuple[str, str, str, dict[str, Any]]],
    *,
    now: datetime | None = None,
) -> None:
    """Replace a rule's open findings on a ticket: (code, severity, message, data) each; others are resolved."""
    now = now or utcnow()
    current = {
        f.code: f
        for f in session.scalars(sa.select(Finding).where(Finding.ticket_key == ticket_key, Finding.rule == rule))
    }
    wanted = {code for code, *_ in findings}
    for code, severity, message, data in findings:
        row = current.get(code)
        if row is None:
            session.add(
                Finding(ticket_key=ticket_key, rule=rule, code=code, severity=severity, message=message, data=data)
            )
        else:
            row.severity, row.message, row.data, row.resolved_at = severity, message, data, None
    for code, row in current.items():
        if code not in wanted and row.resolved_at is None:
            row.resolved_at = now


# --- runs -------------------------------------------------------------------------------------------------------------


def start_run(session: Session, kind: str, connection: str | None, options: dict[str, Any] | None = None) -> int:
    """Record the start of a poll, backfill or reconcile run; returns its id."""
    run = Run(kind=kind, connection=connection, options=options or {})
    session.add(run)
    session.flush()
    return run.id


def record_run_items(session: Session, run_id: int, items: Iterable[tuple[str, str, str | None]]) -> None:
    """Per-ticket outcomes of a run: (ticket key, outcome, detail), written in one batch."""
    rows = [{"run_id": run_id, "ticket_key": k, "outcome": o, "detail": d} for k, o, d in items]
    if rows:
        session.execute(sa.insert(RunItem), rows)


def finish_run(session: Session, run_id: int, *, counts: dict[str, int], error: str | None = None) -> None:
    """Close a run with its counts; failed when an error is given or anything failed."""
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    run.finished_at = utcnow()
    run.counts = dict(counts)
    run.error = error
    run.status = "failed" if error or counts.get("failed", 0) else "ok"


# --- dead letters -----------------------------------------------------------------------------------------------------


def add_dead_letter(
    session: Session,
    *,
    message_id: str,
    queue: str,
    actor: str,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    error: dict[str, Any],
    attempts: int,
) -> None:
    """Keep a job that cannot be done, for an operator to inspect and replay (once per message id)."""
    insert_ignore(
        session,
        DeadLetter.__table__,
        [
            {
                "message_id": message_id,
                "queue": queue,
                "actor": actor,
                "args": list(args),
                "kwargs": kwargs,
                "error": error,
                "attempts": attempts,
                "failed_at": utcnow(),
            }
        ],
        "id",
    )


# --- leases -----------------------------------------------------------------------------------------------------------


def acquire_lock(session: Session, name: str, holder: str, ttl: timedelta, *, now: datetime | None = None) -> bool:
    """Take a named lease unless someone else holds an unexpired one; commit the session to make it visible."""
    now = now or utcnow()
    session.execute(sa.delete(Lock).where(Lock.name == name, Lock.expires_at < now))
    inserted = insert_ignore(
        session,
        Lock.__table__,
        [{"name": name, "holder": holder, "acquired_at": now, "expires_at": now + ttl}],
        "name",
    )
    if inserted:
        return True
    current = session.get(Lock, name)
    if current is not None and current.holder == holder:
        current.expires_at = now + ttl
        return True
    return False


def release_lock(session: Session, name: str, holder: str) -> None:
    """Give a lease back (only if we hold it)."""
    session.execute(sa.delete(Lock).where(Lock.name == name, Lock.holder == holder))


# --- sync engine: echo expectations, deliveries, outbox, links -------------------------------------------------------

OPEN_DELIVERY = ("received", "queued")
"""Inbox states of a delivery whose ingest has not finished yet."""


def load_raw(session: Session, key: str) -> dict[str, Any] | None:
    """The raw vendor record last stored for a ticket, or None."""
    return session.scalar(
        sa.select(RawSnapshot.raw).join(TicketRow, RawSnapshot.ticket_id == TicketRow.id).where(TicketRow.key == key)
    )


def stored_versions(
    session: Session, connection: str, external_ids: Iterable[str]
) -> dict[str, tuple[datetime | None, str | None]]:
    """(vendor update time, version counter) of the stored tickets among ``external_ids``."""
    found: dict[str, tuple[datetime | None, str | None]] = {}
    for chunk in _chunks(list(dict.fromkeys(external_ids)), 500):
        query = sa.select(TicketRow.external_id, TicketRow.updated_at, TicketRow.version).where(
            TicketRow.connection == connection, TicketRow.external_id.in_(chunk), TicketRow.deleted_at.is_(None)
        )
        for external_id, updated_at, version in session.execute(query):
            found[external_id] = (updated_at, version)
    return found


def add_written(session: Session, key: str, values: dict[str, Any]) -> None:
    """Remember what psabridge just wrote to a ticket (field -> hash of the value), to recognise its echo."""
    row = session.scalar(sa.select(TicketRow).where(TicketRow.key == key))
    if row is not None and values:
        row.written = {**(row.written or {}), **values}


def take_written(session: Session, key: str) -> dict[str, Any]:
    """What psabridge wrote to a ticket since its last ingest (field -> value hash), cleared: an ingest consumes it."""
    row = session.scalar(sa.select(TicketRow).where(TicketRow.key == key))
    if row is None or not row.written:
        return {}
    written = dict(row.written)
    row.written = None
    return written


def mark_deleted(session: Session, key: str, now: datetime | None = None) -> bool:
    """Mark a stored ticket as gone from its vendor; False if it was not stored (or already marked)."""
    result = session.execute(
        sa.update(TicketRow)
        .where(TicketRow.key == key, TicketRow.deleted_at.is_(None))
        .values(deleted_at=now or utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


def record_changes(
    session: Session, connection: str, changes: Sequence[tuple[str, str]], *, event: str = "poll"
) -> list[str]:
    """Record changed tickets a poll found, (external id, delivery id) each, as inbox deliveries to ingest.

    A change already recorded (same delivery id, e.g. re-read in the overlap window) is skipped; returns the external
    ids newly recorded, which the caller queues for ingest after committing.
    """
    now = utcnow()
    rows = [
        {
            "connection": connection,
            "delivery_id": delivery_id,
            "external_id": external_id,
            "event": event,
            "status": "received",
            "headers": {},
            "received_at": now,
        }
        for delivery_id, external_id in {d: e for e, d in changes}.items()
    ]
    return [str(e) for e in insert_ignore(session, InboxDelivery.__table__, rows, "external_id")]


def fail_delivery(session: Session, connection: str, delivery_id: str, error: str) -> None:
    """Mark one delivery failed with the reason (e.g. a body the connector could not read)."""
    session.execute(
        sa.update(InboxDelivery)
        .where(InboxDelivery.connection == connection, InboxDelivery.delivery_id == delivery_id)
        .values(status="failed", error=error[:2000], processed_at=utcnow())
    )


def mark_present(session: Session, key: str) -> None:
    """Clear a ticket's deleted mark: the vendor shows it again."""
    session.execute(
        sa.update(TicketRow).where(TicketRow.key == key, TicketRow.deleted_at.is_not(None)).values(deleted_at=None)
    )


def open_deliveries(
    session: Session, *, older_than: datetime | None = None, limit: int = 10_000
) -> list[tuple[str, str]]:
    """(connection, external id) of tickets with deliveries whose ingest has not finished, oldest first."""
    query = sa.select(
        InboxDelivery.connection, InboxDelivery.external_id, sa.func.min(InboxDelivery.received_at)
    ).where(InboxDelivery.status.in_(OPEN_DELIVERY), InboxDelivery.external_id.is_not(None))
    if older_than is not None:
        query = query.where(InboxDelivery.received_at <= older_than)
    query = (
        query.group_by(InboxDelivery.connection, InboxDelivery.external_id)
        .order_by(sa.func.min(InboxDelivery.received_at))
        .limit(limit)
    )
    return [(connection, external_id) for connection, external_id, _ in session.execute(query) if external_id]


def close_deliveries(
    session: Session,
    connection: str,
    external_id: str,
    *,
    status: str = "done",
    upto: datetime | None = None,
    error: str | None = None,
) -> int:
    """Finish a ticket's open deliveries received up to ``upto`` (those after it still need their own ingest)."""
    query = sa.update(InboxDelivery).where(
        InboxDelivery.connection == connection,
        InboxDelivery.external_id == external_id,
        InboxDelivery.status.in_(OPEN_DELIVERY),
    )
    if upto is not None:
        query = query.where(InboxDelivery.received_at <= upto)
    result = session.execute(query.values(status=status, error=error, processed_at=utcnow()))
    return int(getattr(result, "rowcount", 0))


def outbox_ids(session: Session, keys: Sequence[str]) -> list[int]:
    """Outbox row ids of idempotency keys, in the order given."""
    if not keys:
        return []
    found = dict(
        session.execute(
            sa.select(OutboxAction.idempotency_key, OutboxAction.id).where(OutboxAction.idempotency_key.in_(keys))
        ).all()
    )
    return [found[k] for k in keys if k in found]


def pending_outbox(session: Session, *, older_than: datetime | None = None, limit: int = 10_000) -> list[int]:
    """Ids of outbox actions not yet done (pending, or sending when a worker stopped mid-way), oldest first."""
    query = sa.select(OutboxAction.id).where(OutboxAction.status.in_(("pending", "sending")))
    if older_than is not None:
        query = query.where(OutboxAction.updated_at <= older_than)
    return list(session.scalars(query.order_by(OutboxAction.id).limit(limit)))


def links_of(session: Session, key: str) -> list[Link]:
    """Mirror links the ticket takes part in, as source or as target."""
    return list(session.scalars(sa.select(Link).where(sa.or_(Link.source_key == key, Link.target_key == key))))


def ensure_link(
    session: Session, *, name: str, source_key: str, source_connection: str, target_connection: str, marker: str
) -> tuple[Link, bool]:
    """The link of a source ticket into a target connection, created (pending) if there is none; and whether new.

    The unique constraint on (source, target connection) makes this exact under concurrency: one mirror per pair.
    """
    now = utcnow()
    inserted = insert_ignore(
        session,
        Link.__table__,
        [
            {
                "name": name,
                "source_key": source_key,
                "source_connection": source_connection,
                "target_connection": target_connection,
                "state": "pending",
                "marker": marker,
                "sync": {},
                "created_at": now,
                "updated_at": now,
            }
        ],
        "id",
    )
    link = session.scalars(
        sa.select(Link).where(Link.source_key == source_key, Link.target_connection == target_connection)
    ).one()
    return link, bool(inserted)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
