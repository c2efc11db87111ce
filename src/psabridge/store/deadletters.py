"""The dead-letters repository: jobs that will not be tried again, kept for an operator to inspect and replay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.log import mask_secrets
from psabridge.store.models import DeadLetter, utcnow
from psabridge.store.statements import chunks, insert_ignore

__all__ = [
    "DeadLetterEntry",
    "add_dead_letter",
    "count_dead_letters",
    "delete_dead_letters",
    "get_dead_letter",
    "list_dead_letters",
    "mark_replayed",
]


@dataclass(frozen=True)
class DeadLetterEntry:
    """One dead job.

    Attributes:
        id: the dead letter's id (``psabridge dlq show ID``).
        message_id: the broker message id (a message is recorded once).
        queue: the queue it came from.
        actor: the actor it was for (ingest, dispatch, poll).
        args: the actor's arguments.
        kwargs: the actor's keyword arguments.
        error: why it failed (type, message, traceback ...).
        attempts: how many times it ran.
        failed_at: when it was given up.
        replayed_at: when an operator sent it again, if ever.
    """

    id: int
    message_id: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    error: dict[str, Any]
    attempts: int
    failed_at: datetime
    replayed_at: datetime | None


def _entry(row: DeadLetter) -> DeadLetterEntry:
    return DeadLetterEntry(
        id=row.id,
        message_id=row.message_id,
        queue=row.queue,
        actor=row.actor,
        args=list(row.args),
        kwargs=dict(row.kwargs),
        error=dict(row.error),
        attempts=row.attempts,
        failed_at=row.failed_at,
        replayed_at=row.replayed_at,
    )


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
                "error": mask_secrets(error),  # a vendor may echo our credentials in its error text
                "attempts": attempts,
                "failed_at": utcnow(),
            }
        ],
        "id",
    )


def list_dead_letters(
    session: Session, *, include_replayed: bool = False, limit: int | None = 100
) -> list[DeadLetterEntry]:
    """Dead letters, newest first (replayed ones only when asked; every one when ``limit`` is None)."""
    query = sa.select(DeadLetter).order_by(DeadLetter.failed_at.desc(), DeadLetter.id.desc())
    if not include_replayed:
        query = query.where(DeadLetter.replayed_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    return [_entry(row) for row in session.scalars(query)]


def get_dead_letter(session: Session, dead_id: int) -> DeadLetterEntry | None:
    """One dead letter by id, or None."""
    row = session.get(DeadLetter, dead_id)
    return _entry(row) if row is not None else None


def mark_replayed(session: Session, dead_id: int, now: datetime) -> None:
    """Note that an operator sent the job again."""
    row = session.get(DeadLetter, dead_id)
    if row is None:
        raise LookupError(f"no dead letter {dead_id}")
    row.replayed_at = now


def count_dead_letters(session: Session) -> int:
    """Every dead letter, replayed or not."""
    return int(session.scalar(sa.select(sa.func.count()).select_from(DeadLetter)) or 0)


def delete_dead_letters(session: Session, ids: Sequence[int]) -> int:
    """Delete dead letters by id (``dlq purge``); returns how many there were."""
    deleted = 0
    for chunk in chunks(list(ids)):
        result = session.execute(sa.delete(DeadLetter).where(DeadLetter.id.in_(chunk)))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted
