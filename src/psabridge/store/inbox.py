"""The inbox repository: change notifications (webhook deliveries, changes a poll found) waiting for their ingest.

A delivery goes ``received -> done`` (its ticket's ingest finished) or ``failed`` (unreadable, or its ingest
was dead-lettered); it is unique per (connection, delivery id), so a vendor's duplicate is recognised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.log import mask_text
from psabridge.store.models import InboxDelivery, utcnow
from psabridge.store.statements import chunks, insert_ignore

__all__ = [
    "OPEN",
    "DeliveryEntry",
    "InboxStatus",
    "close_deliveries",
    "close_deliveries_many",
    "count_by_connection",
    "fail_delivery",
    "failed_deliveries",
    "open_among",
    "open_deliveries",
    "record_changes",
    "record_delivery",
    "reopen_deliveries",
]


class InboxStatus(StrEnum):
    """Where a delivery stands."""

    RECEIVED = "received"
    """Recorded; its ingest is queued (or will be, by recovery)."""
    DONE = "done"
    """An ingest covering it finished."""
    FAILED = "failed"
    """Unreadable, or its ingest failed for good (dead-lettered)."""


OPEN = (InboxStatus.RECEIVED,)
"""States of a delivery whose ingest has not finished yet."""


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
                "status": InboxStatus.RECEIVED.value,
                "headers": headers or {},
                "body": body,
                "received_at": utcnow(),
            }
        ],
        "id",
    )
    return bool(inserted)


def record_changes(
    session: Session, connection: str, changes: Sequence[tuple[str, str]], *, event: str = "poll"
) -> list[str]:
    """Record changed tickets a poll found, (external id, delivery id) each, as deliveries to ingest.

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
            "status": InboxStatus.RECEIVED.value,
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
        .values(status=InboxStatus.FAILED.value, error=mask_text(error)[:2000], processed_at=utcnow())
    )


def open_deliveries(
    session: Session, *, older_than: datetime | None = None, limit: int = 10_000
) -> list[tuple[str, str]]:
    """(connection, external id) of tickets with deliveries whose ingest has not finished, oldest first."""
    query = sa.select(
        InboxDelivery.connection, InboxDelivery.external_id, sa.func.min(InboxDelivery.received_at)
    ).where(InboxDelivery.status.in_(OPEN), InboxDelivery.external_id.is_not(None))
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
    status: InboxStatus = InboxStatus.DONE,
    upto: datetime | None = None,
    error: str | None = None,
) -> int:
    """Finish a ticket's open deliveries received up to ``upto`` (those after it still need their own ingest)."""
    query = sa.update(InboxDelivery).where(
        InboxDelivery.connection == connection,
        InboxDelivery.external_id == external_id,
        InboxDelivery.status.in_(OPEN),
    )
    if upto is not None:
        query = query.where(InboxDelivery.received_at <= upto)
    masked = mask_text(error) if error is not None else None  # a vendor may echo our credentials
    result = session.execute(query.values(status=status.value, error=masked, processed_at=utcnow()))
    return int(getattr(result, "rowcount", 0))


def close_deliveries_many(session: Session, connection: str, external_ids: Sequence[str], *, upto: datetime) -> int:
    """``close_deliveries`` (done) for many tickets of one connection: one statement per chunk of ids."""
    closed = 0
    for chunk in chunks(list(dict.fromkeys(external_ids))):
        result = session.execute(
            sa.update(InboxDelivery)
            .where(
                InboxDelivery.connection == connection,
                InboxDelivery.external_id.in_(chunk),
                InboxDelivery.status.in_(OPEN),
                InboxDelivery.received_at <= upto,
            )
            .values(status=InboxStatus.DONE.value, processed_at=utcnow())
        )
        closed += int(getattr(result, "rowcount", 0))
    return closed


def open_among(session: Session, tickets: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (connection, external id) pairs among ``tickets`` that have deliveries whose ingest has not finished."""
    wanted = set(tickets)
    found: set[tuple[str, str]] = set()
    by_connection: dict[str, list[str]] = {}
    for connection, external_id in wanted:
        by_connection.setdefault(connection, []).append(external_id)
    for connection, ids in by_connection.items():
        for chunk in chunks(ids):
            query = sa.select(InboxDelivery.external_id).where(
                InboxDelivery.connection == connection,
                InboxDelivery.external_id.in_(chunk),
                InboxDelivery.status.in_(OPEN),
            )
            found.update((connection, str(e)) for e in session.scalars(query.distinct()))
    return found


def count_by_connection(session: Session, statuses: Sequence[InboxStatus]) -> Counter[str]:
    """Deliveries in any of ``statuses``, per connection."""
    query = (
        sa.select(InboxDelivery.connection, sa.func.count())
        .where(InboxDelivery.status.in_(statuses))
        .group_by(InboxDelivery.connection)
    )
    return Counter({str(connection): int(count) for connection, count in session.execute(query)})


@dataclass(frozen=True)
class DeliveryEntry:
    """A delivery as `psabridge deliveries list` shows it (headers and body left out: ``body_chars`` says how long)."""

    id: int
    connection: str
    delivery_id: str
    external_id: str | None
    event: str | None
    status: str
    error: str | None
    received_at: datetime
    processed_at: datetime | None
    body_chars: int


def failed_deliveries(
    session: Session, *, connection: str | None = None, ids: Sequence[int] | None = None, limit: int | None = 100
) -> list[DeliveryEntry]:
    """Failed deliveries newest first: of one connection, or these ids, when given."""
    query = sa.select(InboxDelivery).where(InboxDelivery.status == InboxStatus.FAILED.value)
    if connection is not None:
        query = query.where(InboxDelivery.connection == connection)
    if ids is not None:
        query = query.where(InboxDelivery.id.in_(list(ids)))
    query = query.order_by(InboxDelivery.received_at.desc(), InboxDelivery.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_delivery(row) for row in session.scalars(query)]


def _delivery(row: InboxDelivery) -> DeliveryEntry:
    fields = (row.id, row.connection, row.delivery_id, row.external_id, row.event, row.status, row.error)
    return DeliveryEntry(*fields, received_at=row.received_at, processed_at=row.processed_at,
                         body_chars=len(row.body or ""))  # fmt: skip


def reopen_deliveries(session: Session, ids: Sequence[int]) -> int:
    """Put failed deliveries back to received (their ingest is queued again by the caller); returns how many."""
    reopened = 0
    for chunk in chunks(list(ids)):
        result = session.execute(
            sa.update(InboxDelivery)
            .where(InboxDelivery.id.in_(chunk), InboxDelivery.status == InboxStatus.FAILED.value)
            .values(status=InboxStatus.RECEIVED.value, error=None, processed_at=None)
        )
        reopened += int(getattr(result, "rowcount", 0) or 0)
    return reopened
