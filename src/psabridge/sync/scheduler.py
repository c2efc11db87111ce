"""The schedule of ``psabridge serve``: each connection polled on its ``poll_every``, wake-ups, a recovery sweep.

A background thread queues a poll per connection when it falls due (the poll's own lease keeps two schedulers from
polling one connection at once); every ``wake_every`` seconds it turns the rules' due wake-ups (durable rows: a
quiet ticket is still looked at, and a restart loses none) into evaluations; and every few minutes it queues again
work left untouched for a while (deliveries, evaluations and write-backs whose messages a crash or a Redis restart
lost). Two schedulers sweeping the same wake-ups at once queue an evaluation twice at worst, which is harmless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from psabridge.log import get_logger
from psabridge.sync.broker import broker_epoch, require_broker
from psabridge.sync.claims import QUEUED_FOR
from psabridge.sync.context import SyncContext
from psabridge.sync.evaluate import wake_due
from psabridge.sync.recovery import recover

__all__ = ["Scheduler"]

_log = get_logger("psabridge.sync")


class Scheduler:
    """Queues polls and recovery sweeps from a daemon thread until ``stop``.

    Args:
        ctx: the sync context (its queue receives the work).
        sweep_every: seconds between recovery sweeps.
        stale_after: how long work must sit untouched before a sweep queues it again (as long as a queued
            message's claim holds: ``claims.QUEUED_FOR``).
        wake_every: seconds between sweeps of the rules' due wake-ups (and looks at the broker's epoch).
        epoch: which run of the broker holds the queues (default: ``broker_epoch`` of the process's broker). When it
            changes, the broker restarted and lost its messages (Redis keeps nothing on disk): everything unfinished
            is queued again at once, claims of queued messages void, instead of waiting out the claims and the sweep.
    """

    def __init__(
        self,
        ctx: SyncContext,
        *,
        sweep_every: float = 300.0,
        stale_after: timedelta = QUEUED_FOR,
        wake_every: float = 15.0,
        epoch: Callable[[], str | None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.epoch = epoch or (lambda: broker_epoch(require_broker()))
        self._seen_epoch: str | None = None
        self.sweep_every = sweep_every
        self.wake_every = wake_every
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
        next_wake = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            for name, when in due.items():
                if now >= when:
                    self._queue_poll(name)
                    due[name] = now + every[name]
            if now >= next_wake:
                self.wake()
                self.watch_broker()
                next_wake = now + self.wake_every
            if now >= next_sweep:
                try:
                    recover(self.ctx, older_than=self.stale_after, polls=False)
                except Exception as exc:  # noqa: BLE001 - the next sweep tries again; the thread must live on
                    _log.error("recovery sweep failed", error=str(exc))
                next_sweep = now + self.sweep_every
            wake = min([*due.values(), next_sweep, next_wake]) - time.monotonic()
            self._stop.wait(max(0.05, min(wake, 1.0)))

    def watch_broker(self) -> bool:
        """Queue everything unfinished again when the broker restarted since the last look; whether it had."""
        try:
            epoch = self.epoch()
        except Exception as exc:  # noqa: BLE001 - a broker that is down now is looked at again next time
            _log.warning("broker not reachable", error=str(exc))
            return False
        restarted = epoch is not None and self._seen_epoch is not None and epoch != self._seen_epoch
        if epoch is not None:
            self._seen_epoch = epoch
        if not restarted:
            return False
        try:
            found = recover(self.ctx, queue_lost=True)
        except Exception as exc:  # noqa: BLE001 - the periodic sweep still finds it, later
            _log.error("recovery after a broker restart failed", error=str(exc))
            return True
        _log.warning(
            "broker restarted: its messages are lost, unfinished work queued again",
            ingests=found.ingests, evaluations=found.evaluations, write_backs=found.dispatches, polls=found.polls,
        )  # fmt: skip
        return True

    def wake(self) -> list[str]:
        """Queue the evaluations of the wake-ups due now (the tickets queued; none when the store is unreachable)."""
        try:
            return wake_due(self.ctx)
        except Exception as exc:  # noqa: BLE001 - the next sweep tries again; the thread must live on
            _log.error("wake-up sweep failed", error=str(exc))
            return []

    def _queue_poll(self, name: str) -> None:
        try:
            self.ctx.queue.poll(name)
        except Exception as exc:  # noqa: BLE001 - the broker may be down; the next round queues it again
            _log.error("poll not queued", connection=name, error=str(exc))
