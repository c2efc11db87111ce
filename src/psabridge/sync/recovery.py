"""Crash safety: find the work a crash (or a lost queue) may have dropped and queue it again.

The embedded broker keeps messages in memory and Redis may lose them when it restarts; the store does not. Open inbox
deliveries mean an ingest that never finished, tickets that still need evaluating an evaluation that never ran (a
change stored, or a wake-up swept, whose message was lost), pending (or sending) outbox rows a write-back that never
finished (one backing off after a failed attempt waits for its ``next_attempt_at``: its message re-schedules itself,
see sync/outbox.py), and every connection is polled again from its watermark. All of it is idempotent, so queueing
twice is harmless, but not free: each delivery and write-back is queued only when no live process (nor a message
still in the broker) has it in hand, and claimed as it is queued (sync/claims.py), so N starts queue each once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from psabridge.store import evaluations, inbox, outbox
from psabridge.sync.claims import claim_free, dispatch_claim, ingest_claim
from psabridge.sync.context import SyncContext, WorkQueue

__all__ = ["Recovered", "recover"]


@dataclass(frozen=True)
class Recovered:
    """What was queued again."""

    ingests: int
    dispatches: int
    polls: int
    evaluations: int = 0


def recover(
    ctx: SyncContext,
    *,
    older_than: timedelta | None = None,
    polls: bool = True,
    queue: WorkQueue | None = None,
    queue_lost: bool = False,
) -> Recovered:
    """Queue again unfinished ingests, evaluations and write-backs (waiting ``older_than``); poll every connection.

    Ingests and write-backs a live process or a queued message holds are left to it, and those queued are claimed
    (sync/claims.py).

    Args:
        ctx: the sync context.
        older_than: only work left alone at least this long (a periodic sweep); None: everything (start-up).
        polls: also poll every enabled connection from its watermark.
        queue: where to queue it (default: the context's queue).
        queue_lost: the broker restarted and lost its messages: work claimed by a queued message is queued again.
    """
    queue = queue or ctx.queue
    if older_than is None:  # start-up: locks of crashed processes on this host need not wait out their expiry
        ctx.locks.clear_abandoned()
    cutoff = ctx.now() - older_than if older_than is not None else None
    with ctx.db.session() as session:
        deliveries = inbox.open_deliveries(session, older_than=cutoff)
        pending = evaluations.needing_evaluation(session, older_than=cutoff)
        write_backs = outbox.pending_ids(session, older_than=cutoff)
        targets = outbox.targets_of(session, write_backs)
    claimed = claim_free(
        ctx, [ingest_claim(*d) for d in deliveries] + [dispatch_claim(i) for i in write_backs], queue_lost=queue_lost
    )
    deliveries = [d for d in deliveries if ingest_claim(*d) in claimed]
    write_backs = [i for i in write_backs if dispatch_claim(i) in claimed]
    for connection, external_id in deliveries:
        queue.ingest(connection, external_id)
    for key in pending:
        queue.evaluate(key)
    for outbox_id in write_backs:
        queue.dispatch(outbox_id, targets.get(outbox_id))
    connections = [c.name for c in ctx.settings.connections if c.enabled] if polls else []
    for name in connections:
        queue.poll(name)
    return Recovered(len(deliveries), len(write_backs), len(connections), len(pending))
