"""The work a run queued, tracked until it is done: what a reconcile waits for before it lets its lock go.

``TrackedQueue`` stands in for the context's work queue during a run and remembers every write-back, ingest and
evaluation sent through it (in the embedded broker's process that includes the follow-ups its jobs send). ``drain``
then watches the store, not the broker: the tracked outbox rows until none is pending or sending, the tracked ingests
until their deliveries are closed, the tracked evaluations until their tickets no longer need evaluating. So it
works the same whether this process's workers or another process's (``serve``, a ``worker`` on Redis) do the work,
and work of others (a backing-off write-back of a live change) never keeps it waiting. It stops early when
everything left is backing off until after its deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from psabridge.store import evaluations, inbox, outbox
from psabridge.sync.context import SyncContext, WorkQueue

__all__ = ["DrainProgress", "DrainResult", "TrackedQueue", "drain", "tracking"]

DrainProgress = Callable[[int, int, float | None], None]
"""Told (done, total, seconds left by the rate so far or None) as a drain advances."""


class TrackedQueue:
    """A work queue that passes everything on and remembers the write-backs, ingests and evaluations sent through it."""

    def __init__(self, inner: WorkQueue) -> None:
        self.inner = inner
        self._mutex = threading.Lock()
        self.dispatched: set[int] = set()
        self.ingested: set[tuple[str, str]] = set()
        self.evaluated: set[str] = set()

    def ingest(self, connection: str, external_id: str, *, delay: float | None = None) -> None:
        """Remember and pass on an ingest."""
        with self._mutex:
            self.ingested.add((connection, external_id))
        self.inner.ingest(connection, external_id, delay=delay)

    def evaluate(self, ticket_key: str, *, delay: float | None = None) -> None:
        """Remember and pass on an evaluation."""
        with self._mutex:
            self.evaluated.add(ticket_key)
        self.inner.evaluate(ticket_key, delay=delay)

    def dispatch(self, outbox_id: int, target: str | None = None, *, delay: float | None = None) -> None:
        """Remember and pass on a write-back."""
        with self._mutex:
            self.dispatched.add(outbox_id)
        self.inner.dispatch(outbox_id, target, delay=delay)

    def notify(self, outbox_id: int) -> None:
        """Remember and pass on a page or channel post (an outbox row, like a write-back)."""
        with self._mutex:
            self.dispatched.add(outbox_id)
        self.inner.notify(outbox_id)

    def poll(self, connection: str, *, delay: float | None = None) -> None:
        """Pass on a poll (not tracked: a poll is the schedule's, not the run's)."""
        self.inner.poll(connection, delay=delay)

    def snapshot(self) -> tuple[set[int], set[tuple[str, str]], set[str]]:
        """The write-backs, ingests and evaluations sent so far."""
        with self._mutex:
            return set(self.dispatched), set(self.ingested), set(self.evaluated)


@contextmanager
def tracking(ctx: SyncContext) -> Iterator[TrackedQueue]:
    """Track the work sent through ``ctx.queue`` while the body runs (and the drain in it)."""
    tracked = TrackedQueue(ctx.queue)
    ctx.queue = tracked
    try:
        yield tracked
    finally:
        ctx.queue = tracked.inner


@dataclass(frozen=True)
class DrainResult:
    """How a drain ended.

    Attributes:
        done: every tracked job finished.
        total: jobs tracked.
        left: jobs not finished.
        backing_off: of those, write-backs due only after the deadline (a vendor asked to wait).
    """

    done: bool
    total: int
    left: int = 0
    backing_off: int = 0


def drain(
    ctx: SyncContext,
    tracked: TrackedQueue,
    timeout: float,
    *,
    progress: DrainProgress | None = None,
    keep_alive: Callable[[], None] | None = None,
    every: float = 0.25,
) -> DrainResult:
    """Wait until the tracked work is done, at most ``timeout`` seconds; ``keep_alive`` runs every few seconds."""
    started = time.monotonic()
    deadline = started + timeout
    first_left: int | None = None
    last_alive = started
    quiet = 0  # looks in a row that found nothing left: a job that just finished may still be sending its follow-ups
    while True:
        dispatched, ingested, evaluated = tracked.snapshot()
        total = len(dispatched) + len(ingested) + len(evaluated)
        with ctx.db.session() as session:
            unfinished = outbox.unfinished_among(session, dispatched)
            waiting = inbox.open_among(session, ingested)
            pending = evaluations.needing_among(session, evaluated)
        left = len(unfinished) + len(waiting) + len(pending)
        now = time.monotonic()
        first_left = left if first_left is None else max(first_left, left)
        rate = (first_left - left) / (now - started) if now > started and first_left > left else None
        if progress is not None:
            progress(total - left, total, left / rate if rate else None)
        quiet = quiet + 1 if left == 0 else 0
        if quiet >= 3 or total == 0:
            return DrainResult(True, total)
        due_after = ctx.now().timestamp() + max(0.0, deadline - now)
        late = sum(1 for due in unfinished.values() if due is not None and due.timestamp() > due_after)
        if left and (now >= deadline or late == left):
            return DrainResult(False, total, left, late)
        if keep_alive is not None and now - last_alive >= 5.0:
            keep_alive()
            last_alive = now
        time.sleep(every)
