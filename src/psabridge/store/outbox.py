"""The outbox repository: write-back actions, stored in the transaction of the change that caused them.

An action goes ``pending -> sending -> done``, or ends ``failed`` (refused for good) or ``dead`` (its retries
used up). ``next_attempt_at`` is when it may be sent: now when it is written, later after a failed attempt that
will be retried (the dispatcher, sync/outbox.py, sets the back-off and never sends a row before its time), so the
back-off survives a restart. Reopening a row (a replay, a reconcile repair) makes it due at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.log import mask_text
from psabridge.model import Action, ActionAdapter
from psabridge.store.models import OutboxAction, utcnow
from psabridge.store.statements import chunks, insert_ignore

__all__ = [
    "GAVE_UP",
    "SENDABLE",
    "OutboxEntry",
    "OutboxStatus",
    "QueuedEntry",
    "count_by_status",
    "count_by_target",
    "count_by_type",
    "count_unfinished",
    "enqueue_actions",
    "enqueue_new",
    "failed_since",
    "get_entry",
    "lock_entry",
    "mark_dead",
    "mark_done",
    "mark_sending",
    "outbox_ids",
    "outbox_rows",
    "pending_ids",
    "record_failure",
    "reopen",
    "reopen_entry",
    "status_of",
    "targets_of",
    "unfinished_among",
    "unfinished_before",
]


class OutboxStatus(StrEnum):
    """Where a write-back stands."""

    PENDING = "pending"
    """Not sent yet (or refused before anything was written: sent again when due)."""
    SENDING = "sending"
    """An attempt started: it may have landed, so the next attempt looks for it first."""
    DONE = "done"
    """Carried out."""
    FAILED = "failed"
    """Refused for good (configuration, a permanent vendor error, a bug); a replay or reconcile reopens it."""
    DEAD = "dead"
    """Its retries were used up (dead-lettered); a replay or reconcile reopens it."""


SENDABLE = (OutboxStatus.PENDING, OutboxStatus.SENDING)
"""States a dispatch may act on: the action is not finished."""
GAVE_UP = (OutboxStatus.FAILED, OutboxStatus.DEAD)
"""States of an action that will not be sent again unless reopened."""


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as the dispatcher sees it.

    Attributes:
        id: the row id (what dispatch messages carry).
        idempotency_key: the action's stable key (also its marker at the vendor).
        action: the action to carry out.
        status: where it stands.
        attempts: attempts started so far.
        next_attempt_at: the earliest time it may be sent (None: at once).
        last_error: why the last attempt failed.
    """

    id: int
    idempotency_key: str
    action: Action
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None

    def due(self, now: datetime) -> bool:
        """Whether it may be sent at ``now``."""
        return self.next_attempt_at is None or self.next_attempt_at <= now


def _entry(row: OutboxAction) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        idempotency_key=row.idempotency_key,
        action=ActionAdapter.validate_python(row.action),
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
    )


def enqueue_actions(session: Session, actions: Iterable[Action], *, now: datetime | None = None) -> list[str]:
    """Write actions into the outbox, due at once, once per idempotency key; returns the keys that were new."""
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
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
                "next_attempt_at": now,
            }
        )
    unique = list({row["idempotency_key"]: row for row in rows}.values())
    inserted = set(insert_ignore(session, OutboxAction.__table__, unique, "idempotency_key"))
    return [k for k in dict.fromkeys(keys) if k in inserted]


def enqueue_new(session: Session, actions: Sequence[Action], *, now: datetime | None = None) -> list[QueuedEntry]:
    """``enqueue_actions``, then the rows that were new, in order: what to hand to the queues after the commit."""
    return outbox_rows(session, enqueue_actions(session, actions, now=now))


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


class QueuedEntry(NamedTuple):
    """What the queues need of an outbox row: its id, the connection or notifier it writes to, its action type."""

    id: int
    target: str
    action_type: str


def outbox_rows(session: Session, keys: Sequence[str]) -> list[QueuedEntry]:
    """The rows of idempotency keys, in the order given, as the queues need them (which queue each goes to)."""
    if not keys:
        return []
    query = sa.select(
        OutboxAction.idempotency_key, OutboxAction.id, OutboxAction.target, OutboxAction.action_type
    ).where(OutboxAction.idempotency_key.in_(keys))
    found = {key: QueuedEntry(row_id, target, kind) for key, row_id, target, kind in session.execute(query)}
    return [found[k] for k in keys if k in found]


def get_entry(session: Session, outbox_id: int) -> OutboxEntry | None:
    """One outbox row, or None."""
    row = session.get(OutboxAction, outbox_id)
    return _entry(row) if row is not None else None


def lock_entry(session: Session, outbox_id: int) -> OutboxEntry | None:
    """One outbox row, locked for update until the transaction ends (PostgreSQL; SQLite locks the database)."""
    row = session.get(OutboxAction, outbox_id, with_for_update=True, populate_existing=True)
    return _entry(row) if row is not None else None


def unfinished_before(session: Session, outbox_id: int, ticket_key: str, target: str) -> list[int]:
    """Ids of the unfinished actions (pending, sending) for the ticket and target queued before ``outbox_id``.

    Oldest first: what must be carried out before it for the ticket's writes to keep their order.
    """
    query = (
        sa.select(OutboxAction.id)
        .where(
            OutboxAction.ticket_key == ticket_key,
            OutboxAction.target == target,
            OutboxAction.id < outbox_id,
            OutboxAction.status.in_([s.value for s in SENDABLE]),
        )
        .order_by(OutboxAction.id)
    )
    return [int(i) for i in session.scalars(query)]


def _row(session: Session, outbox_id: int) -> OutboxAction:
    row = session.get(OutboxAction, outbox_id)
    if row is None:
        raise LookupError(f"no outbox action {outbox_id}")
    return row


def mark_sending(session: Session, outbox_id: int, now: datetime) -> None:
    """An attempt starts: ``sending`` (committed before the vendor is called), one more attempt counted."""
    row = _row(session, outbox_id)
    row.status = OutboxStatus.SENDING.value
    row.attempts += 1
    row.updated_at = now


def mark_done(session: Session, outbox_id: int, result: dict[str, Any], now: datetime) -> None:
    """The action was carried out: ``done``, with what the vendor answered."""
    row = _row(session, outbox_id)
    row.status = OutboxStatus.DONE.value
    row.result = result
    row.last_error = None
    row.sent_at = row.updated_at = now


def record_failure(
    session: Session,
    outbox_id: int,
    error: str,
    *,
    now: datetime,
    status: OutboxStatus | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """A failed attempt: its error, the new status (None: unchanged) and, when it will be retried, when."""
    row = session.get(OutboxAction, outbox_id)
    if row is None:
        return
    row.last_error = mask_text(error)[:2000]  # a vendor may echo our credentials in its error text
    row.updated_at = now
    if status is not None:
        row.status = status.value
    if next_attempt_at is not None:
        row.next_attempt_at = next_attempt_at


def mark_dead(session: Session, outbox_id: int, error: str) -> None:
    """Its job was dead-lettered: ``dead`` unless it is done (or failed already, which stays failed)."""
    row = session.get(OutboxAction, outbox_id)
    if row is not None and row.status != OutboxStatus.DONE:
        row.status = OutboxStatus.DEAD.value if row.status != OutboxStatus.FAILED else OutboxStatus.FAILED.value
        row.last_error = mask_text(error)[:2000]


def reopen_entry(session: Session, outbox_id: int, now: datetime) -> None:
    """Make a row not done yet pending and due at once (a dead letter replayed)."""
    row = session.get(OutboxAction, outbox_id)
    if row is not None and row.status != OutboxStatus.DONE:
        row.status, row.last_error, row.next_attempt_at = OutboxStatus.PENDING.value, None, now


def reopen(session: Session, keys: Sequence[str], now: datetime) -> int:
    """Make the failed or dead rows among ``keys`` pending and due at once (a repair sends them again); how many."""
    if not keys:
        return 0
    result = session.execute(
        sa.update(OutboxAction)
        .where(OutboxAction.idempotency_key.in_(keys), OutboxAction.status.in_(GAVE_UP))
        .values(status=OutboxStatus.PENDING.value, last_error=None, next_attempt_at=now)
    )
    return int(getattr(result, "rowcount", 0))


def pending_ids(session: Session, *, older_than: datetime | None = None, limit: int = 10_000) -> list[int]:
    """Ids of actions not done yet (pending, or sending when a worker stopped mid-way), oldest first.

    Due or not: a dispatch of one not due yet waits for its time (sync/outbox.py).
    """
    query = sa.select(OutboxAction.id).where(OutboxAction.status.in_(SENDABLE))
    if older_than is not None:
        query = query.where(OutboxAction.updated_at <= older_than)
    return list(session.scalars(query.order_by(OutboxAction.id).limit(limit)))


def unfinished_among(session: Session, outbox_ids: Iterable[int]) -> dict[int, datetime | None]:
    """The actions among ``outbox_ids`` not done yet (pending or sending), with when each is due (None: now)."""
    found: dict[int, datetime | None] = {}
    for chunk in chunks(list(dict.fromkeys(outbox_ids))):
        query = sa.select(OutboxAction.id, OutboxAction.next_attempt_at).where(
            OutboxAction.id.in_(chunk), OutboxAction.status.in_(SENDABLE)
        )
        found.update({int(outbox_id): due for outbox_id, due in session.execute(query)})
    return found


def status_of(session: Session, idempotency_key: str) -> OutboxStatus | None:
    """The status of the action with this key, or None when there is none."""
    found = session.scalar(sa.select(OutboxAction.status).where(OutboxAction.idempotency_key == idempotency_key))
    return OutboxStatus(found) if found is not None else None


def count_unfinished(session: Session, ticket_keys: Sequence[str]) -> int:
    """Actions on any of these tickets not done yet (pending or sending)."""
    query = sa.select(sa.func.count()).where(
        OutboxAction.ticket_key.in_(ticket_keys), OutboxAction.status.in_(SENDABLE)
    )
    return int(session.scalar(query) or 0)


def failed_since(session: Session, since: datetime) -> Counter[str]:
    """Actions that failed or died since ``since``, per target connection."""
    query = (
        sa.select(OutboxAction.target, sa.func.count())
        .where(OutboxAction.updated_at >= since, OutboxAction.status.in_(GAVE_UP))
        .group_by(OutboxAction.target)
    )
    return Counter({str(target): int(count) for target, count in session.execute(query)})


def count_by_target(session: Session) -> Counter[tuple[str, OutboxStatus]]:
    """Actions per (target connection, status)."""
    query = sa.select(OutboxAction.target, OutboxAction.status, sa.func.count()).group_by(
        OutboxAction.target, OutboxAction.status
    )
    return Counter(
        {(str(target), OutboxStatus(status)): int(count) for target, status, count in session.execute(query)}
    )


def count_by_status(session: Session) -> Counter[str]:
    """Actions per status."""
    query = sa.select(OutboxAction.status, sa.func.count()).group_by(OutboxAction.status)
    return Counter({str(status): int(count) for status, count in session.execute(query)})


def targets_of(session: Session, outbox_ids: Iterable[int]) -> dict[int, str]:
    """The target connection of each of these actions (missing ids are absent)."""
    found: dict[int, str] = {}
    for chunk in chunks(list(dict.fromkeys(outbox_ids))):
        query = sa.select(OutboxAction.id, OutboxAction.target).where(OutboxAction.id.in_(chunk))
        found.update({int(outbox_id): str(target) for outbox_id, target in session.execute(query)})
    return found


def count_by_type(session: Session) -> Counter[tuple[str, str]]:
    """Actions per (action type, status): notes, field changes, routes, pages and posts written or not."""
    query = sa.select(OutboxAction.action_type, OutboxAction.status, sa.func.count()).group_by(
        OutboxAction.action_type, OutboxAction.status
    )
    return Counter({(str(kind), str(status)): int(count) for kind, status, count in session.execute(query)})
