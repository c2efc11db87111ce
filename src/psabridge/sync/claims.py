"""Claims on open work, so recovery queues only what no live process has in hand, once.

Open work is an inbox delivery whose ingest has not finished and an outbox row not yet written (sync/recovery.py).
A claim is a lease (store/leases.py) named after the work, ``claim:ingest:<connection>:<id>`` or
``claim:dispatch:<outbox id>``, with a holder and an expiry:

* recovery and the webhook receiver claim what they queue: with a broker that outlives processes (Redis, RabbitMQ)
  the holder is the queue itself (``QUEUED``: the message survives a restart of whoever sent it); with the embedded
  broker it is this process, whose queue dies with it. The claim lasts ``QUEUED_FOR``: a message not started by then
  is taken as lost. (The receiver queues a new delivery even when its ticket is claimed: a worker with the ticket in
  hand may have read it before this change.)
* the worker running the job holds the claim (as this process, for the job's time limit) and gives it back when
  done.

Work whose claim expired, or whose holder is a process that died on this host (psabridge.holders), is free: the next
start-up or sweep queues it, and claims it, so however many processes start, each open item is queued once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import cache

from psabridge.holders import abandoned, holder_id
from psabridge.store import Session, leases
from psabridge.sync.broker import EMBEDDED
from psabridge.sync.context import SyncContext

__all__ = [
    "QUEUED",
    "QUEUED_FOR",
    "claim_free",
    "claim_in",
    "dispatch_claim",
    "holding",
    "ingest_claim",
    "process_holder",
    "release_claim",
]

QUEUED = "queued"
"""The holder of work sitting in a broker that outlives processes (never taken for a dead process)."""
QUEUED_FOR = timedelta(minutes=10)
"""How long a queued message is trusted to be in the broker before recovery queues its work again (the sweep's
``stale_after``)."""


@cache
def process_holder() -> str:
    """The claim holder of this process (host, pid, a random part), the same for the process's life."""
    return holder_id()


def ingest_claim(connection: str, external_id: str) -> str:
    """The claim on a ticket's open deliveries."""
    return f"claim:ingest:{connection}:{external_id}"


def dispatch_claim(outbox_id: int) -> str:
    """The claim on an outbox row's write-back."""
    return f"claim:dispatch:{outbox_id}"


def _queue_holder(ctx: SyncContext) -> str:
    """Who holds queued work: the queue itself, unless it lives in this process's memory (the embedded broker)."""
    return process_holder() if ctx.settings.broker == EMBEDDED else QUEUED


def claim_free(ctx: SyncContext, names: Sequence[str], *, queue_lost: bool = False) -> set[str]:
    """Claim the work among ``names`` that no live process or queued message has in hand; returns what was claimed.

    Claims that expired unvisited (their work finished another way) are dropped on the way. ``queue_lost``: the
    broker restarted and lost its messages (sync/scheduler.py sees it), so a claim held by a queued message is void.
    """
    with ctx.unit() as session:
        leases.drop_expired(session, "claim:", now=ctx.now())
        return claim_in(ctx, session, names, queue_lost=queue_lost)


def claim_in(ctx: SyncContext, session: Session, names: Sequence[str], *, queue_lost: bool = False) -> set[str]:
    """``claim_free`` inside the caller's transaction (the receiver claims a delivery as it records it)."""
    gone = _lost_or_abandoned if queue_lost else abandoned
    return set(leases.claim_free(session, names, _queue_holder(ctx), QUEUED_FOR, now=ctx.now(), gone=gone))


def _lost_or_abandoned(holder: str) -> bool:
    """A holder whose work nobody has any more: a message of the queue a broker restart emptied, or a dead process."""
    return holder == QUEUED or abandoned(holder)


def release_claim(ctx: SyncContext, name: str) -> None:
    """Give back a queue's claim whose message could not be sent (recovery queues the work then)."""
    with ctx.unit() as session:
        leases.release_lease(session, name, _queue_holder(ctx))


@contextmanager
def holding(ctx: SyncContext, name: str) -> Iterator[None]:
    """Hold the claim on ``name`` while a job runs (until its time limit at most); give it back after.

    Each job holds as itself (this process and a part of its own): of two jobs for one ticket at once, the one that
    ends first gives back only its own claim.
    """
    holder = holder_id()
    ttl = timedelta(milliseconds=ctx.options.time_limit_ms) + timedelta(minutes=1)
    with ctx.unit() as session:
        leases.hold_lease(session, name, holder, ttl, now=ctx.now())
    try:
        yield
    finally:
        with ctx.unit() as session:
            leases.release_lease(session, name, holder)
