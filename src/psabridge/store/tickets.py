"""The tickets repository: canonical tickets and their raw snapshots, upserted so older data never overwrites newer.

Besides the canonical JSON a row keeps the columns queries filter on, the vendor record as last fetched (so a
mapping change can be replayed offline), a deleted mark for tickets gone from their vendor, and ``written``: what
psabridge just wrote to the ticket, so the next ingest recognises its own echo.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.model import Ticket
from psabridge.store.models import RawSnapshot, TicketRow, utcnow
from psabridge.store.statements import chunks

__all__ = [
    "FIELDS_COMPARED",
    "StoredCopy",
    "TicketChange",
    "UpsertOutcome",
    "add_written",
    "count_by_connection",
    "find_ticket_keys",
    "load_raw",
    "load_ticket",
    "load_tickets",
    "mark_deleted",
    "raw_hash",
    "set_sla",
    "stored_copies",
    "stored_external_ids",
    "stored_versions",
    "take_write_lock",
    "take_written",
    "tenants_of",
    "upsert_tickets",
]

FIELDS_COMPARED = tuple(name for name in Ticket.model_fields if name not in Ticket.HASH_EXCLUDED)
"""Canonical fields whose change makes an update (the vendor's update time and version counter do not)."""


class UpsertOutcome(StrEnum):
    """What storing one copy of a ticket did."""

    CREATED = "created"
    """First seen: inserted."""
    UPDATED = "updated"
    """The content hash changed: written."""
    UNCHANGED = "unchanged"
    """Same content (maybe a newer vendor time): the row's times and raw copy refreshed."""
    STALE = "stale"
    """Older than the stored copy: not written."""
    DEFERRED = "deferred"
    """Holds psabridge's own write awaiting its echo: not written here, left to the ticket's own ingest."""


def raw_hash(raw: dict[str, Any]) -> str:
    """A stable SHA-256 of a raw vendor record."""
    blob = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class TicketChange:
    """What storing one ticket did.

    Attributes:
        key: the ticket key.
        outcome: see UpsertOutcome.
        changed: canonical fields whose value changed (empty when created or unchanged).
        before: the stored ticket before this write, if there was one.
        after: the ticket as stored now (the old one when stale).
    """

    key: str
    outcome: UpsertOutcome
    changed: tuple[str, ...] = ()
    before: Ticket | None = None
    after: Ticket | None = None

    @property
    def is_change(self) -> bool:
        """True when content really changed (created or updated)."""
        return self.outcome in (UpsertOutcome.CREATED, UpsertOutcome.UPDATED)


@dataclass
class _Incoming:
    ticket: Ticket
    raw: dict[str, Any] | None
    hash: str = field(init=False)
    data: dict[str, Any] = field(init=False)
    raw_hash: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.data = self.ticket.model_dump(mode="json")
        self.hash = Ticket.content_hash_of(self.data)
        self.raw_hash = raw_hash(self.raw) if self.raw is not None else None


def load_ticket(session: Session, key: str, *, live: bool = False) -> Ticket | None:
    """The stored canonical ticket, or None (``live``: also None when it is marked deleted, gone from its vendor)."""
    query = sa.select(TicketRow.data).where(TicketRow.key == key)
    if live:
        query = query.where(TicketRow.deleted_at.is_(None))
    data = session.scalar(query)
    return Ticket.model_validate(data) if data is not None else None


def load_tickets(session: Session, keys: Iterable[str]) -> dict[str, Ticket]:
    """Stored canonical tickets by key (missing keys are absent)."""
    found: dict[str, Ticket] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        for key, data in session.execute(sa.select(TicketRow.key, TicketRow.data).where(TicketRow.key.in_(chunk))):
            found[key] = Ticket.model_validate(data)
    return found


def load_raw(session: Session, key: str) -> dict[str, Any] | None:
    """The raw vendor record last stored for a ticket, or None."""
    return session.scalar(
        sa.select(RawSnapshot.raw).join(TicketRow, RawSnapshot.ticket_id == TicketRow.id).where(TicketRow.key == key)
    )


def upsert_tickets(
    session: Session,
    items: Sequence[tuple[Ticket, dict[str, Any] | None]],
    *,
    now: datetime | None = None,
    defer_written: bool = False,
) -> list[TicketChange]:
    """Store a batch of tickets with their raw records; older data never overwrites newer.

    Set-based: the batch's stored rows are read once and locked for this transaction (``FOR UPDATE`` on PostgreSQL;
    on SQLite the transaction takes the write lock first), so a concurrent upsert of the same ticket waits for this
    one and then compares with what it wrote: the version/update-time check holds without a per-ticket lock. New
    tickets are inserted and changed ones updated in one statement each (plus one per raw snapshot kind); nothing is
    written for a copy whose content and raw record are unchanged. A copy whose vendor version counter or update time
    is older than the stored one is reported ``stale`` and not written. Within one batch the newest copy of a key
    wins. With ``defer_written`` a stored ticket that holds psabridge's own recent write (``written``) is not touched
    but reported ``deferred``: its echo is judged by the ticket's own ingest. Returns one change per distinct key, in
    first-seen order.
    """
    now = now or utcnow()
    newest: dict[str, _Incoming] = {}
    for ticket, raw in items:
        current = newest.get(ticket.key)
        if current is None or ticket.is_newer_than(current.ticket) is not False:
            newest[ticket.key] = _Incoming(ticket, raw)
    rows = _locked_rows(session, list(newest))
    changes: list[TicketChange] = []
    inserts: list[_Incoming] = []
    updates: list[tuple[_StoredRow, _Incoming]] = []
    for key, incoming in newest.items():
        ticket = incoming.ticket
        row = rows.get(key)
        if row is None:
            inserts.append(incoming)
            changes.append(TicketChange(key, UpsertOutcome.CREATED, after=ticket))
            continue
        if defer_written and row.written:
            changes.append(TicketChange(key, UpsertOutcome.DEFERRED))
            continue
        if _older(ticket, row.version, row.updated_at):
            before = Ticket.model_validate(row.data)
            changes.append(TicketChange(key, UpsertOutcome.STALE, before=before, after=before))
            continue
        before = Ticket.model_validate(row.data)
        if before.sla is not None and before.sla.computed:  # keep the SLA state the rules computed (set_sla)
            incoming.ticket = ticket = ticket.model_copy(update={"sla": before.sla.over(ticket.sla)})
            incoming.data = ticket.model_dump(mode="json")  # the hash leaves the SLA state out: it stands
        if row.content_hash == incoming.hash:
            if row.deleted or not _same_times(ticket, row) or incoming.raw_hash not in (None, row.raw_hash):
                updates.append((row, incoming))
            changes.append(TicketChange(key, UpsertOutcome.UNCHANGED, before=before, after=ticket))
            continue
        changed = tuple(
            name for name in FIELDS_COMPARED if getattr(before, name) != getattr(ticket, name) and name != "key"
        )
        updates.append((row, incoming))
        changes.append(TicketChange(key, UpsertOutcome.UPDATED, changed, before=before, after=ticket))
    _write(session, inserts, updates, now)
    return changes


@dataclass(frozen=True)
class _StoredRow:
    id: int
    key: str
    content_hash: str
    updated_at: datetime | None
    version: str | None
    data: dict[str, Any]
    written: bool
    deleted: bool
    raw_id: int | None
    raw_hash: str | None


def _locked_rows(session: Session, keys: list[str]) -> dict[str, _StoredRow]:
    """The stored rows of ``keys``, locked until the transaction ends (see upsert_tickets)."""
    if not keys:
        return {}
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:
        take_write_lock(session)
    found: dict[str, _StoredRow] = {}
    for chunk in chunks(sorted(keys)):  # one order for every locker: no deadlock between two batches
        query = (
            sa.select(
                TicketRow.id,
                TicketRow.key,
                TicketRow.content_hash,
                TicketRow.updated_at,
                TicketRow.version,
                TicketRow.data,
                TicketRow.written,  # JSON: a consumed mark is stored as JSON null, so test it in Python
                TicketRow.deleted_at.is_not(None),
                RawSnapshot.id,
                RawSnapshot.raw_hash,
            )
            .outerjoin(RawSnapshot, RawSnapshot.ticket_id == TicketRow.id)
            .where(TicketRow.key.in_(chunk))
            .order_by(TicketRow.key)
        )
        if postgres:
            query = query.with_for_update(of=TicketRow)
        for row in session.execute(query):
            row_id, key, content_hash, updated_at, version, data, written, deleted, raw_id, raw_digest = row
            found[key] = _StoredRow(
                row_id, key, content_hash, updated_at, version, data, bool(written), deleted, raw_id, raw_digest
            )
    return found


def take_write_lock(session: Session) -> None:
    """On SQLite, start the session's transaction with the database's write lock unless it holds it already.

    pysqlite begins a transaction only at the first write, so a read before it could see a row another writer
    changes before our write lands; ``BEGIN IMMEDIATE`` makes the reads that follow exact (writers queue on SQLite
    anyway, waiting up to the busy timeout). A no-op on PostgreSQL, which locks rows instead.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    connection = session.connection()
    dbapi = connection.connection.dbapi_connection
    if dbapi is not None and not getattr(dbapi, "in_transaction", True):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _older(incoming: Ticket, version: str | None, updated_at: datetime | None) -> bool:
    """Strictly older by version counter, else by update time (equal is not older: same-second updates happen)."""
    if incoming.version is not None and version is not None:
        try:
            return int(incoming.version) < int(version)
        except ValueError:
            pass
    if incoming.updated_at is not None and updated_at is not None:
        return incoming.updated_at < updated_at
    return False


def _same_times(ticket: Ticket, row: _StoredRow) -> bool:
    return ticket.updated_at == row.updated_at and ticket.version == row.version


def _columns(incoming: _Incoming, now: datetime) -> dict[str, Any]:
    ticket = incoming.ticket
    return {
        "connection": ticket.connection,
        "system": ticket.system.value,
        "external_id": ticket.external_id,
        "number": ticket.number,
        "tenant": ticket.tenant,
        "status": ticket.status.value if ticket.status else None,
        "priority": ticket.priority.value if ticket.priority else None,
        "updated_at": ticket.updated_at,
        "version": ticket.version,
        "content_hash": incoming.hash,
        "data": incoming.data,
        "stored_at": now,
        "deleted_at": None,
    }


def _write(
    session: Session, inserts: list[_Incoming], updates: list[tuple[_StoredRow, _Incoming]], now: datetime
) -> None:
    """Insert new tickets and update changed ones, with their raw snapshots: one statement per kind of write."""
    table = cast(sa.Table, TicketRow.__table__)
    raw_table = cast(sa.Table, RawSnapshot.__table__)
    raw_inserts: list[dict[str, Any]] = []
    raw_updates: list[dict[str, Any]] = []
    if inserts:
        values = [{**_columns(i, now), "key": i.ticket.key, "first_seen_at": now} for i in inserts]
        ids = {str(k): int(i) for k, i in session.execute(sa.insert(table).returning(table.c.key, table.c.id), values)}
        raw_inserts.extend(
            {"ticket_id": ids[i.ticket.key], "raw": i.raw, "raw_hash": i.raw_hash, "fetched_at": now}
            for i in inserts
            if i.raw is not None
        )
    if updates:
        session.execute(
            sa.update(table).where(table.c.id == sa.bindparam("_id")),
            [{**_columns(incoming, now), "_id": row.id} for row, incoming in updates],
        )
        for row, incoming in updates:
            if incoming.raw is None or incoming.raw_hash == row.raw_hash:
                continue
            if row.raw_id is None:
                raw_inserts.append({"ticket_id": row.id, "raw": incoming.raw, "raw_hash": incoming.raw_hash,
                                    "fetched_at": now})  # fmt: skip
            else:
                raw_updates.append({"_id": row.raw_id, "raw": incoming.raw, "raw_hash": incoming.raw_hash,
                                    "fetched_at": now})  # fmt: skip
    if raw_inserts:
        session.execute(sa.insert(raw_table), raw_inserts)
    if raw_updates:
        session.execute(sa.update(raw_table).where(raw_table.c.id == sa.bindparam("_id")), raw_updates)


@dataclass(frozen=True)
class StoredCopy:
    """What the store holds of one ticket, for comparing a list record with it before anything is read.

    Attributes:
        updated_at: the vendor's update time of the stored copy.
        version: its version counter.
        raw: the raw vendor record as last stored (None when none was kept).
        written: psabridge wrote to the ticket and its echo has not been ingested yet.
    """

    updated_at: datetime | None
    version: str | None
    raw: dict[str, Any] | None
    written: bool


def stored_copies(session: Session, connection: str, external_ids: Iterable[str]) -> dict[str, StoredCopy]:
    """The stored copies (not deleted) among ``external_ids`` of a connection, with their raw records: one query."""
    found: dict[str, StoredCopy] = {}
    for chunk in chunks(list(dict.fromkeys(external_ids))):
        query = (
            sa.select(
                TicketRow.external_id,
                TicketRow.updated_at,
                TicketRow.version,
                RawSnapshot.raw,
                TicketRow.written,  # JSON: a consumed mark is stored as JSON null, so test it in Python
            )
            .outerjoin(RawSnapshot, RawSnapshot.ticket_id == TicketRow.id)
            .where(TicketRow.connection == connection, TicketRow.external_id.in_(chunk), TicketRow.deleted_at.is_(None))
        )
        for external_id, updated_at, version, raw, written in session.execute(query):
            found[external_id] = StoredCopy(updated_at, version, raw, bool(written))
    return found


def stored_versions(
    session: Session, connection: str, external_ids: Iterable[str]
) -> dict[str, tuple[datetime | None, str | None]]:
    """(vendor update time, version counter) of the stored tickets among ``external_ids`` (not deleted)."""
    found: dict[str, tuple[datetime | None, str | None]] = {}
    for chunk in chunks(list(dict.fromkeys(external_ids))):
        query = sa.select(TicketRow.external_id, TicketRow.updated_at, TicketRow.version).where(
            TicketRow.connection == connection, TicketRow.external_id.in_(chunk), TicketRow.deleted_at.is_(None)
        )
        for external_id, updated_at, version in session.execute(query):
            found[external_id] = (updated_at, version)
    return found


def stored_external_ids(session: Session, connection: str) -> set[str]:
    """Vendor ids of every stored ticket of a connection not marked deleted."""
    query = sa.select(TicketRow.external_id).where(TicketRow.connection == connection, TicketRow.deleted_at.is_(None))
    return set(session.scalars(query))


def count_by_connection(session: Session) -> Counter[str]:
    """Stored tickets per connection."""
    query = sa.select(TicketRow.connection, sa.func.count()).group_by(TicketRow.connection)
    return Counter({str(connection): int(count) for connection, count in session.execute(query)})


def mark_deleted(session: Session, key: str, now: datetime | None = None) -> bool:
    """Mark a stored ticket as gone from its vendor; False if it was not stored (or already marked)."""
    result = session.execute(
        sa.update(TicketRow)
        .where(TicketRow.key == key, TicketRow.deleted_at.is_(None))
        .values(deleted_at=now or utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


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


def find_ticket_keys(session: Session, ref: str, *, limit: int = 20) -> list[str]:
    """Keys of the stored tickets ``ref`` names (at most ``limit``, sorted).

    ``ref`` is a ticket key, else a human number (``#493`` or ``493``), else a vendor id.
    """
    ref = ref.strip()
    if session.scalar(sa.select(TicketRow.key).where(TicketRow.key == ref)) is not None:
        return [ref]
    numbers = {ref, ref.lstrip("#"), f"#{ref.lstrip('#')}"}
    query = sa.select(TicketRow.key).where(sa.or_(TicketRow.number.in_(numbers), TicketRow.external_id == ref))
    return sorted(session.scalars(query.limit(limit)))


def set_sla(session: Session, key: str, sla: dict[str, Any] | None) -> bool:
    """Store the SLA state the rules computed (``Ticket.sla``, JSON) on the canonical ticket; False if not stored.

    The SLA state is outside the content hash (``Ticket.HASH_EXCLUDED``), so this changes neither the hash nor what
    counts as a change; a later ingest keeps the computed fields where the vendor's fresh figures have none
    (``SlaState.over``).
    """
    row = session.scalar(sa.select(TicketRow).where(TicketRow.key == key))
    if row is None:
        return False
    if row.data.get("sla") != sla:
        row.data = {**row.data, "sla": sla}
    return True


def tenants_of(session: Session, keys: Iterable[str]) -> dict[str, str | None]:
    """The stored tenant of each ticket (None: it has none); tickets not stored are absent."""
    found: dict[str, str | None] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        query = sa.select(TicketRow.key, TicketRow.tenant).where(TicketRow.key.in_(chunk))
        found.update({str(key): tenant for key, tenant in session.execute(query)})
    return found
