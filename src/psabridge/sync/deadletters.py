"""Dead letters: jobs that will not be tried again, kept in the store for an operator to inspect and replay.

Recording a dead ingest marks the ticket's open deliveries failed (so recovery does not resend a poison job forever);
a dead evaluation marks the ticket up to date for the same reason (its next change, or the replay, evaluates it
again); a dead write-back marks its outbox row dead. Replaying resets those rows and sends the job again through the
queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from psabridge.errors import BugError
from psabridge.model import split_ticket_key
from psabridge.store import Database, Session, deadletters, evaluations, inbox, outbox
from psabridge.store.deadletters import DeadLetterEntry
from psabridge.store.inbox import InboxStatus
from psabridge.sync.context import SyncContext
from psabridge.sync.policy import DeadJob

__all__ = [
    "connections_of",
    "dead_letters_of",
    "get_dead_letter",
    "list_dead_letters",
    "purge",
    "record_dead_letter",
    "replay",
]


def record_dead_letter(ctx: SyncContext, job: DeadJob) -> None:
    """Store a dead job and mark what it was about (deliveries failed, outbox row dead)."""
    message = str(job.error.get("message", job.error.get("type", "failed")))[:2000]
    with ctx.unit() as session:
        deadletters.add_dead_letter(
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
            inbox.close_deliveries(
                session, str(job.args[0]), str(job.args[1]), status=InboxStatus.FAILED, error=message
            )
        elif job.actor == "evaluate" and job.args:
            evaluations.park(session, str(job.args[0]))
        elif job.actor == "dispatch" and job.args:
            outbox.mark_dead(session, int(job.args[0]), message)


def list_dead_letters(db: Database, *, include_replayed: bool = False, limit: int = 100) -> list[DeadLetterEntry]:
    """Dead letters, newest first (replayed ones only when asked)."""
    with db.session() as session:
        return deadletters.list_dead_letters(session, include_replayed=include_replayed, limit=limit)


def connections_of(session: Session, letters: Sequence[DeadLetterEntry]) -> dict[int, str]:
    """Each dead letter's connection: a write-back's or page's target, an evaluation's ticket's, else its first arg."""
    outbox_ids = [int(d.args[0]) for d in letters if d.actor in _OUTBOX_ACTORS and d.args]
    targets = outbox.targets_of(session, outbox_ids)
    found: dict[int, str] = {}
    for letter in letters:
        if not letter.args:
            continue
        if letter.actor in _OUTBOX_ACTORS:
            found[letter.id] = targets.get(int(letter.args[0]), "?")
        elif letter.actor == "evaluate":
            found[letter.id] = split_ticket_key(str(letter.args[0]))[0]
        else:
            found[letter.id] = str(letter.args[0])
    return found


_OUTBOX_ACTORS = ("dispatch", "notify")


def dead_letters_of(
    db: Database, connection: str | None, *, include_replayed: bool = False, limit: int | None = 100
) -> list[DeadLetterEntry]:
    """Dead letters newest first, only ``connection``'s when one is named (None: every one)."""
    with db.session() as session:
        letters = deadletters.list_dead_letters(
            session, include_replayed=include_replayed, limit=None if connection else limit
        )
        if connection is not None:
            owners = connections_of(session, letters)
            letters = [d for d in letters if owners.get(d.id) == connection][:limit]
    return letters


def purge(db: Database, ids: Sequence[int]) -> int:
    """Delete dead letters for good (nothing is sent again); returns how many were deleted."""
    with db.transaction() as session:
        return deadletters.delete_dead_letters(session, ids)


def get_dead_letter(db: Database, dead_id: int) -> DeadLetterEntry | None:
    """One dead letter by id."""
    with db.session() as session:
        return deadletters.get_dead_letter(session, dead_id)


def replay(ctx: SyncContext, ids: Sequence[int]) -> list[int]:
    """Send dead jobs again (resetting their outbox rows to pending, due at once); returns the ids replayed.

    Raises:
        LookupError: an id does not exist.
        BugError: a dead letter names an actor psabridge does not have.
    """
    replayed: list[int] = []
    for dead_id in ids:
        with ctx.unit() as session:
            dead = deadletters.get_dead_letter(session, dead_id)
            if dead is None:
                raise LookupError(f"no dead letter {dead_id}")
            args = dead.args
            if dead.actor in _OUTBOX_ACTORS:
                outbox.reopen_entry(session, int(args[0]), ctx.now())
            elif dead.actor == "evaluate":
                evaluations.mark_needed(session, [str(args[0])], ctx.now())
            elif dead.actor not in ("ingest", "poll"):
                raise BugError(f"dead letter {dead_id} names unknown actor {dead.actor!r}")
            deadletters.mark_replayed(session, dead_id, ctx.now())
        if dead.actor == "dispatch":
            target = dead.kwargs.get("target")
            ctx.queue.dispatch(int(args[0]), str(target) if target is not None else None)
        elif dead.actor == "notify":
            ctx.queue.notify(int(args[0]))
        elif dead.actor == "ingest":
            ctx.queue.ingest(str(args[0]), str(args[1]))
        elif dead.actor == "evaluate":
            ctx.queue.evaluate(str(args[0]))
        else:
            ctx.queue.poll(str(args[0]))
        replayed.append(dead_id)
    return replayed
