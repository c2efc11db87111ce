"""The poll schedule of ``psabridge serve``: each connection polled on its ``poll_every``, plus a recovery sweep.

A background thread queues a poll per connection when it falls due (the poll's own lease keeps two schedulers from
polling one connection at once), and every few minutes queues again work left untouched for a while (deliveries
and write-backs whose messages a crash or a Redis restart lost).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from psabridge.log import get_logger
from psabridge.sync.context import SyncContext
from psabridge.sync.recovery import recover

__all__ = ["Scheduler"]

_log = get_logger("psabridge.sync")


class Scheduler:
    """Queues polls and recovery sweeps from a daemon thread until ``stop``.

    Args:
        ctx: the sync context (its queue receives the work).
        sweep_every: seconds between recovery sweeps.
        stale_after: how long work must sit untouched before a sweep queues it again.
    """

    def __init__(
        self, ctx: SyncContext, *, sweep_every: float = 300.0, stale_after: timedelta = timedelta(minutes=10)
    ) -> None:
        self.ctx = ctx
        self.sweep_every = sweep_every
        self.stale_after = stale_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="psabridge-scheduler", daemon=True)

    def start(self) -> None:
        """Start the thread (the first polls are queued at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        due = {c.name: 0.0 for c in self.ctx.settings.connections if c.enabled}
        every = {c.name: c.poll_every.total_seconds() for c in self.ctx.settings.connections if c.enabled}
        next_sweep = time.monotonic() + self.sweep_every
        while not self._stop.is_set():
            now = time.monotonic()
            for name, when in due.items():
                if now >= when:
                    self._queue_poll(name)
                    due[name] = now + every[name]
            if now >= next_sweep:
                try:
                    recover(self.ctx, older_than=self.stale_after, polls=False)
                except Exception as exc:  # noqa: BLE001 - the next sweep tries again; the thread must live on
                    _log.error("recovery sweep failed", error=str(exc))
                next_sweep = now + self.sweep_every
            wake = min([*due.values(), next_sweep]) - time.monotonic()
            self._stop.wait(max(0.05, min(wake, 1.0)))

    def _queue_poll(self, name: str) -> None:
        try:
            self.ctx.queue.poll(name)
        except Exception as exc:  # noqa: BLE001 - the broker may be down; the next round queues it again
            _log.error("poll not queued", connection=name, error=str(exc))
