"""Start the sync engine in a process: broker first (then the actors), the context, workers, and draining.

``boot(settings)`` is what every command that runs pipeline work calls::

    engine = boot(settings)            # broker set up before psabridge.sync.actors is imported
    engine.start_workers(threads=8)    # in-process workers (process_boot emitted: time limits hold)
    engine.drain(timeout=600)          # embedded broker: wait until every queue is empty
    engine.stop()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dramatiq
from dramatiq.common import dq_name

from psabridge.connectors.base import Connector
from psabridge.rules import RulesRegistry
from psabridge.settings import ConnectionSettings, Settings
from psabridge.sync.broker import BrokerOptions, broker_options, is_embedded, setup_broker, start_workers, stop_workers
from psabridge.sync.context import SyncContext, build_context, current_context, set_context
from psabridge.sync.deadletters import record_dead_letter
from psabridge.sync.policy import DeadJob

__all__ = ["Engine", "boot"]


def _record_dead(job: DeadJob) -> None:
    record_dead_letter(current_context(), job)


@dataclass
class Engine:
    """The broker, the context and (once started) the in-process workers of this process."""

    settings: Settings
    broker: dramatiq.Broker
    context: SyncContext
    workers: list[dramatiq.Worker] = field(default_factory=list)

    @property
    def embedded(self) -> bool:
        """Whether queued work lives in this process's memory (and only this process can run it)."""
        return is_embedded(self.broker)

    def start_workers(self, threads: int = 8) -> None:
        """Start in-process worker threads (idempotent)."""
        if not self.workers:
            enabled = sum(1 for c in self.settings.connections if c.enabled)
            self.context.shares.configure(threads, enabled)
            prefetch = None if self.embedded else self.context.options.queue_prefetch
            self.workers.append(start_workers(self.broker, threads=threads, queue_prefetch=prefetch))

    def drain(self, timeout: float = 600.0) -> bool:
        """Wait until no queue holds work (embedded broker only); False when ``timeout`` seconds passed first."""
        queues = getattr(self.broker, "queues", {})
        names = [n for q in self.broker.get_declared_queues() for n in (q, dq_name(q)) if n in queues]
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 3:  # three quiet looks in a row: a job in flight may still be queueing its follow-ups
            busy = any(queues[name].unfinished_tasks for name in names)
            quiet = 0 if busy else quiet + 1
            if busy and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Stop the workers and release connections."""
        for worker in self.workers:
            stop_workers(self.broker, worker)
        self.workers.clear()
        self.context.close()


def boot(
    settings: Settings,
    *,
    options: BrokerOptions | None = None,
    rules: RulesRegistry | None = None,
    lock_wait: float = 30.0,
    connector_factory: Callable[[ConnectionSettings], Connector] | None = None,
) -> Engine:
    """Set up the broker from settings, then import the actors and build this process's sync context.

    Args:
        settings: the configuration.
        options: broker and retry options.
        rules: the rules registry (None: one of ``settings.rules``).
        lock_wait: seconds a job waits for a ticket's lock.
        connector_factory: builds connectors (None: the vendor connectors; tests pass fakes).
    """
    options = options or broker_options(settings)
    broker = setup_broker(settings.broker, _record_dead, options)
    from psabridge.sync.actors import ActorQueue  # only now: the actors bind to the broker set up above

    context = build_context(settings, ActorQueue(), options=options, rules=rules, lock_wait=lock_wait)
    context.connector_factory = connector_factory
    set_context(context)
    return Engine(settings, broker, context)
