"""Each connection's share of a process's worker threads, so one throttled vendor never holds the threads another needs.

Per-connection queues (broker.py) keep one connection's backlog from sitting in front of another's; the shares keep
its jobs from occupying every worker thread while they wait for the vendor:

* a connection runs at most ``limit`` ingest and write-back jobs at once in this process (the threads divided among
  the connections, at least one each); a job over its share is sent again a moment later instead of waiting;
* once a job of a connection met a spent budget (``RateLimitedError``), that connection's jobs of the same stage are
  paused until the budget has room: each is sent again for then, without calling the vendor or holding a thread;
* polls (long jobs: a backfill pages through the vendor) take at most all threads but one, so webhook-hinted changes
  always find a thread.

A job sent again is a new message with a delay, not a failed attempt: waiting for a budget uses up no retries.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["SHARE_WAIT", "ConnectionShares"]

SHARE_WAIT = 0.25
"""Seconds a job over its connection's share waits before it is tried again."""


class ConnectionShares:
    """Jobs in flight per connection, the budgets known to be spent, and the polls running, in one process.

    Args:
        limit: jobs of one connection in flight at once (None: no limit).
        polls: polls in flight at once (None: no limit).
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self, *, limit: int | None = None, polls: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.polls = polls
        self._clock = clock
        self._mutex = threading.Lock()
        self._running: Counter[str] = Counter()
        self._paused: dict[tuple[str, str], float] = {}

    def configure(self, threads: int, connections: int) -> None:
        """Share ``threads`` worker threads among ``connections`` connections."""
        with self._mutex:
            self.limit = max(1, threads // connections) if connections > 1 else None
            self.polls = threads - 1 if threads > 1 else None

    def paused_for(self, stage: str, connection: str) -> float:
        """Seconds until a spent budget of the connection's ``stage`` jobs has room again (0: go ahead)."""
        with self._mutex:
            until = self._paused.get((stage, connection))
            if until is None:
                return 0.0
            left = until - self._clock()
            if left <= 0:
                del self._paused[(stage, connection)]
                return 0.0
            return left

    def pause(self, stage: str, connection: str, seconds: float) -> None:
        """The connection's ``stage`` jobs wait ``seconds`` (a job met a spent budget)."""
        with self._mutex:
            until = self._clock() + seconds
            self._paused[(stage, connection)] = max(until, self._paused.get((stage, connection), 0.0))

    @contextmanager
    def hold(self, connection: str) -> Iterator[bool]:
        """A place in the connection's share for the body; yields False (and holds nothing) when the share is full."""
        with self._take(connection, self.limit) as granted:
            yield granted

    @contextmanager
    def hold_poll(self) -> Iterator[bool]:
        """A place among the polls; yields False when the polls already take their share of the threads."""
        with self._take("*poll*", self.polls) as granted:
            yield granted

    @contextmanager
    def _take(self, name: str, limit: int | None) -> Iterator[bool]:
        with self._mutex:
            granted = limit is None or self._running[name] < limit
            if granted:
                self._running[name] += 1
        try:
            yield granted
        finally:
            if granted:
                with self._mutex:
                    self._running[name] -= 1

    def running(self, connection: str) -> int:
        """Jobs of the connection in flight now."""
        with self._mutex:
            return self._running[connection]
