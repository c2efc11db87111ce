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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.model import Ticket
from psabridge.store.models import RawSnapshot, TicketRow, utcnow
from psabridge.store.statements import chunks

__all__ = [
    "FIELDS_COMPARED",
    "TicketChange",
    "UpsertOutcome",
    "add_written",
    "count_by_connection",
    "find_ticket_keys",
    "load_raw",
    "load_ticket",
    "load_tickets",
    "mark_deleted",
    "mark_present",
    "raw_hash",
    "set_sla",
    "stored_external_ids",
    "stored_versions",
    "take_written",
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

    def __post_init__(self) -> None:
        self.hash = self.ticket.content_hash()


def load_ticket(session: Session, key: str) -> Ticket | None:
    """The stored canonical ticket, or None."""
    data = session.scalar(sa.select(TicketRow.data).where(TicketRow.key == key))
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
        for chunk in chunks(list(newest))
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
            changes.append(TicketChange(key, UpsertOutcome.CREATED, after=ticket))
            continue
        before = Ticket.model_validate(row.data)
        if _older(ticket, before):
            changes.append(TicketChange(key, UpsertOutcome.STALE, before=before, after=before))
            continue
        if before.sla is not None and before.sla.computed:  # keep the SLA state the rules computed (set_sla)
            incoming.ticket = ticket = ticket.model_copy(update={"sla": before.sla.over(ticket.sla)})
        if row.content_hash == incoming.hash:
            _fill_row(row, incoming, now)
            changes.append(TicketChange(key, UpsertOutcome.UNCHANGED, before=before, after=ticket))
            continue
        changed = tuple(
            name for name in FIELDS_COMPARED if getattr(before, name) != getattr(ticket, name) and name != "key"
        )
        _fill_row(row, incoming, now)
        changes.append(TicketChange(key, UpsertOutcome.UPDATED, changed, before=before, after=ticket))
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


def mark_present(session: Session, key: str) -> None:
    """Clear a ticket's deleted mark: the vendor shows it again."""
    session.execute(
        sa.update(TicketRow).where(TicketRow.key == key, TicketRow.deleted_at.is_not(None)).values(deleted_at=None)
    )


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
