"""Dead letters: jobs that will not be tried again, kept in the store for an operator to inspect and replay.

Recording a dead ingest marks the ticket's open deliveries failed (so recovery does not resend a poison job forever);
a dead write-back marks its outbox row dead. Replaying resets those rows and sends the job again through the queue.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from psabridge.errors import BugError
from psabridge.store import Database, repo
from psabridge.store.models import DeadLetter, OutboxAction
from psabridge.sync.context import SyncContext
from psabridge.sync.policy import DeadJob

__all__ = ["get_dead_letter", "list_dead_letters", "record_dead_letter", "replay"]


def record_dead_letter(ctx: SyncContext, job: DeadJob) -> None:
    """Store a dead job and mark what it was about (deliveries failed, outbox row dead)."""
    message = str(job.error.get("message", job.error.get("type", "failed")))[:2000]
    with ctx.unit() as session:
        repo.add_dead_letter(
            session,
            message_id=job.message_id,
            queue=job.queue,
            actor=job.actor,
            args=list(job.args),
            kwargs=job.kwargs,
            error=job.error,
            attempts=job.attempts,
        )
        if job.actor == "ingest" and len(job.args) == 2:
            repo.close_deliveries(session, str(job.args[0]), str(job.args[1]), status="failed", error=message)
        elif job.actor == "dispatch" and job.args:
            row = session.get(OutboxAction, int(job.args[0]))
            if row is not None and row.status != "done":
                row.status = "dead" if row.status != "failed" else "failed"
                row.last_error = message


def list_dead_letters(db: Database, *, include_replayed: bool = False, limit: int = 100) -> list[DeadLetter]:
    """Dead letters, newest first (replayed ones only when asked)."""
    query = sa.select(DeadLetter).order_by(DeadLetter.failed_at.desc(), DeadLetter.id.desc()).limit(limit)
    if not include_replayed:
        query = query.where(DeadLetter.replayed_at.is_(None))
    with db.session() as session:
        return list(session.scalars(query))


def get_dead_letter(db: Database, dead_id: int) -> DeadLetter | None:
    """One dead letter by id."""
    with db.session() as session:
        return session.get(DeadLetter, dead_id)


def replay(ctx: SyncContext, ids: Sequence[int]) -> list[int]:
    """Send dead jobs again (resetting their outbox rows to pending); returns the ids replayed.

    Raises:
        LookupError: an id does not exist.
        BugError: a dead letter names an actor psabridge does not have.
    """
    replayed: list[int] = []
    for dead_id in ids:
        with ctx.unit() as session:
            dead = session.get(DeadLetter, dead_id)
            if dead is None:
                raise LookupError(f"no dead letter {dead_id}")
            args = list(dead.args)
            if dead.actor == "dispatch":
                row = session.get(OutboxAction, int(args[0]))
                if row is not None and row.status != "done":
                    row.status, row.last_error = "pending", None
            elif dead.actor not in ("ingest", "poll"):
                raise BugError(f"dead letter {dead_id} names unknown actor {dead.actor!r}")
            dead.replayed_at = ctx.now()
        if dead.actor == "dispatch":
            ctx.queue.dispatch(int(args[0]))
        elif dead.actor == "ingest":
            ctx.queue.ingest(str(args[0]), str(args[1]))
        else:
            ctx.queue.poll(str(args[0]))
        replayed.append(dead_id)
    return replayed
