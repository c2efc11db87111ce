"""The only place the Dramatiq broker is configured: Redis, RabbitMQ or embedded (in-process), with our middleware.

Known traps, handled here:

* Dramatiq's ``get_broker()`` silently creates a RabbitMQ broker on localhost when none is set, and ``@actor``
  calls it at import time. ``setup_broker`` must therefore run before ``psabridge.sync.actors`` is imported; the
  actors module asks ``require_broker()``, which raises instead of letting Dramatiq guess.
* The TimeLimit middleware only starts its watchdog on ``process_boot``, which only Dramatiq's CLI emits;
  ``start_workers`` emits it (once per process) so time limits hold for in-process workers too.
* Dramatiq binds an actor to one queue; psabridge sends each job to its connection's queue instead
  (``ingest.<connection>``, ``evaluate.<connection>``, ``dispatch.<connection>``, ``poll.<connection>``;
  ``queue_for``), so one connection's
  backlog never sits in front of another's. Every process declares the queues of every configured connection
  (``BrokerOptions.connections``), and a worker consumes all of them; a queue first used later is declared by its
  first sender, and a running worker then starts consuming it too (Dramatiq's worker middleware).
* A Redis consumer fetches at most ``queue_prefetch`` messages and then sleeps with back-off while they are in
  flight; Dramatiq's default (twice the worker threads) drains a busy queue several times slower (see
  scripts/bench_sync_prefetch.py), so workers here prefetch ``BrokerOptions.queue_prefetch`` per queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.middleware import AgeLimit, Callbacks, Middleware, Pipelines, Retries, ShutdownNotifications, TimeLimit

from psabridge import metrics
from psabridge.errors import BugError, ConfigError
from psabridge.settings import Settings
from psabridge.sync.policy import DeadJob, DeadLetters, retry_when

__all__ = [
    "EMBEDDED",
    "NOTIFY_QUEUE",
    "QUEUES",
    "BrokerOptions",
    "JobMetrics",
    "broker_epoch",
    "broker_options",
    "broker_problem",
    "build_broker",
    "ensure_queue",
    "is_embedded",
    "queue_depths",
    "queue_for",
    "queue_names",
    "require_broker",
    "setup_broker",
    "start_workers",
    "stop_workers",
]

EMBEDDED = "embedded"
QUEUES = ("ingest", "evaluate", "dispatch", "poll")
"""The pipeline stages, each also a queue of its own (for jobs of no connection, e.g. a dead letter replayed)."""

NOTIFY_QUEUE = "notify"
"""Pages and channel posts: one queue for every connection, so a P1 never waits behind a connection's write-backs."""


def queue_for(stage: str, connection: str | None) -> str:
    """The queue of a stage's jobs for one connection (``ingest.msp-cw``), or the stage's own queue."""
    return stage if connection is None else f"{stage}.{connection}"


def queue_names(connections: Iterable[str]) -> list[str]:
    """Every queue of the stages and of these connections."""
    return [*QUEUES, NOTIFY_QUEUE, *(queue_for(stage, name) for name in connections for stage in QUEUES)]


@dataclass(frozen=True)
class BrokerOptions:
    """How messages are retried, limited and fetched.

    Attributes:
        namespace: prefix of Redis keys (tests pass a unique one).
        max_retries: retries of a failing job before it is dead-lettered (rate limits get more, see policy.py).
        min_backoff_ms, max_backoff_ms: exponential back-off bounds between retries.
        time_limit_ms: the longest one job may run before it is interrupted (and retried).
        max_age_ms: a message older than this is dead-lettered instead of run (the reconcile repairs what it
            would have done, from fresh data).
        queue_prefetch: messages a worker fetches per queue ahead of its threads (Redis and RabbitMQ).
        keep_dead_letters: keep failed messages in the embedded broker's memory (tests: ``join(fail_fast=True)``).
        connections: the configured connections, whose queues are declared up front.
    """

    namespace: str = "psabridge"
    max_retries: int = 8
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 300_000
    time_limit_ms: int = 300_000
    max_age_ms: int = 86_400_000
    queue_prefetch: int = 200
    keep_dead_letters: bool = False
    connections: tuple[str, ...] = ()


def broker_options(settings: Settings) -> BrokerOptions:
    """The default options for a configuration: its namespace and its enabled connections' queues."""
    return BrokerOptions(
        namespace=settings.namespace, connections=tuple(c.name for c in settings.connections if c.enabled)
    )


def build_broker(
    url: str, record_dead: Callable[[DeadJob], None], options: BrokerOptions | None = None
) -> dramatiq.Broker:
    """A broker for ``url`` (``embedded``, ``redis://...``, ``amqp://...``) with psabridge's middleware.

    Middleware: age limit, time limit, shutdown notifications, callbacks, pipelines, dead letters (``record_dead``
    gets every message that failed for good), retries (policy.py decides what is retried).

    Raises:
        ConfigError: the URL names no supported broker.
    """
    options = options or BrokerOptions()
    middleware = [
        JobMetrics(),
        AgeLimit(max_age=options.max_age_ms),
        TimeLimit(time_limit=options.time_limit_ms, interval=100),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        # Before Retries: Dramatiq runs after-hooks in reverse order, so this sees Retries' verdict.
        DeadLetters(record_dead, keep_in_memory=options.keep_dead_letters),
        Retries(
            max_retries=options.max_retries,
            min_backoff=options.min_backoff_ms,
            max_backoff=options.max_backoff_ms,
            retry_when=retry_when(options.max_retries),
        ),
    ]
    broker: dramatiq.Broker
    if url == EMBEDDED:
        broker = StubBroker(middleware=middleware)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=url, middleware=middleware, namespace=f"{options.namespace}-dramatiq"
        )
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, middleware=middleware, confirm_delivery=True)
    else:
        raise ConfigError(f"broker {url!r} is not supported: use embedded, redis://... or amqp://...")
    for queue in queue_names(options.connections):
        broker.declare_queue(queue)
    return broker


class JobMetrics(Middleware):
    """Times every job a worker runs (``metrics.job_finished``), by actor, queue and outcome."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Note when the job started."""
        with self._lock:
            self._started[message.message_id] = time.monotonic()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Record how long it ran."""
        with self._lock:
            started = self._started.pop(message.message_id, None)
        if started is not None:
            seconds = time.monotonic() - started
            metrics.job_finished(message.actor_name, message.queue_name, seconds, failed=exception is not None)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Forget a job the age limit skipped."""
        with self._lock:
            self._started.pop(message.message_id, None)


def broker_problem(broker: dramatiq.Broker) -> str | None:
    """Why the broker cannot be reached now (a short reason), or None when it answers."""
    try:
        _depths(broker, ["ingest"])
    except Exception as exc:  # noqa: BLE001 - every client library has its own connection errors
        return f"{type(exc).__name__}: {str(exc).strip()[:200] or 'cannot connect'}"
    return None


def broker_epoch(broker: dramatiq.Broker) -> str | None:
    """Which run of the broker holds the queues: Redis's ``run_id``, new at every restart; None where it cannot change.

    Redis keeps nothing on disk here (its messages die with it), so a new run id means every queued message is gone.
    RabbitMQ's durable queues keep Dramatiq's persistent messages across a restart, and the embedded broker lives and
    dies with this process, so neither has an epoch. Raises the client library's error when Redis cannot be reached.
    """
    client = getattr(broker, "client", None)
    if client is None or isinstance(broker, StubBroker):
        return None
    return str(client.info("server")["run_id"])  # https://redis.io/docs/latest/commands/info/ (run_id)


def queue_depths(broker: dramatiq.Broker) -> dict[str, int]:
    """Messages waiting (or in flight) per declared queue, delayed ones included.

    Raises:
        Exception: the broker's client library's error when it cannot be reached.
    """
    names = sorted(broker.get_declared_queues())
    return _depths(broker, names)


def _depths(broker: dramatiq.Broker, names: list[str]) -> dict[str, int]:
    queues = getattr(broker, "queues", None)
    if isinstance(broker, StubBroker) and queues is not None:
        return {
            n: queues[n].qsize() + queues[dq_name(n)].qsize() for n in names if n in queues and dq_name(n) in queues
        }
    client = getattr(broker, "client", None)
    if client is not None:  # Redis: dramatiq keeps each queue's messages in the hash <namespace>:<queue>.msgs
        namespace = getattr(broker, "namespace", "dramatiq")
        with client.pipeline() as pipe:
            for name in names:
                pipe.hlen(f"{namespace}:{name}.msgs")
                pipe.hlen(f"{namespace}:{dq_name(name)}.msgs")
            counts = pipe.execute()
        return {n: int(counts[2 * i]) + int(counts[2 * i + 1]) for i, n in enumerate(names)}
    counter = getattr(broker, "get_queue_message_counts", None)
    if counter is not None:  # RabbitMQ: ready messages of the queue, its delay queue and its dead-letter queue
        return {n: int(sum(counter(n)[:2])) for n in names}
    return {}


def ensure_queue(broker: dramatiq.Broker, queue: str) -> None:
    """Declare ``queue`` unless it is (a running worker starts consuming it)."""
    if queue not in broker.get_declared_queues():
        with _lock:
            broker.declare_queue(queue)


_lock = threading.Lock()
_configured: dramatiq.Broker | None = None
_configured_url: str | None = None
_booted: set[int] = set()


def setup_broker(
    url: str, record_dead: Callable[[DeadJob], None], options: BrokerOptions | None = None
) -> dramatiq.Broker:
    """Build the broker and make it Dramatiq's global one, before the actors are imported; idempotent per URL.

    Raises:
        BugError: a broker for another URL was already set up in this process (the actors are bound to it).
    """
    global _configured, _configured_url
    with _lock:
        if _configured is not None:
            if url != _configured_url:
                raise BugError(
                    f"the broker is already set up for {_configured_url!r} in this process; "
                    "actors stay bound to it (run one broker per process)"
                )
            return _configured
        broker = build_broker(url, record_dead, options)
        dramatiq.set_broker(broker)
        _configured, _configured_url = broker, url
        return broker


def require_broker() -> dramatiq.Broker:
    """The broker set up by ``setup_broker``.

    Raises:
        BugError: none was set up yet (Dramatiq would otherwise invent a RabbitMQ broker on localhost).
    """
    if _configured is None:
        raise BugError(
            "psabridge.sync.actors was imported before the broker was set up: call "
            "psabridge.sync.broker.setup_broker(...) first (otherwise Dramatiq silently uses RabbitMQ on localhost)"
        )
    return _configured


def is_embedded(broker: dramatiq.Broker) -> bool:
    """Whether the broker keeps its messages in this process's memory."""
    return isinstance(broker, StubBroker)


def start_workers(
    broker: dramatiq.Broker, *, threads: int = 8, queue_prefetch: int | None = None, idle_timeout_ms: int = 100
) -> dramatiq.Worker:
    """Start in-process worker threads, emitting ``process_boot`` first (once per broker) so time limits hold.

    Args:
        broker: the broker.
        threads: worker threads.
        queue_prefetch: messages fetched ahead per queue (None: Dramatiq's default, twice the threads).
        idle_timeout_ms: the longest a consumer sleeps when it has nothing to hand out (Dramatiq's default is
            1000: with every prefetched message in flight it backs off up to that long while threads sit idle).
    """
    with _lock:
        if id(broker) not in _booted:
            broker.emit_after("process_boot")
            _booted.add(id(broker))
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=idle_timeout_ms)
    if queue_prefetch is not None:
        worker.queue_prefetch = queue_prefetch
    worker.start()
    return worker


def stop_workers(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    """Stop workers started by ``start_workers`` and unhook them from the broker.

    Dramatiq leaves a stopped worker's middleware on the broker, and that middleware starts a consumer for every queue
    declared later, which would take that queue's messages into a worker that no longer runs them.
    """
    worker.stop()
    broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not worker]
