"""Thin Dramatiq actors: each takes ids, looks up the process's sync context and calls one pipeline function.

Import this module only after ``psabridge.sync.broker.setup_broker``: the actors bind to that broker explicitly, and
importing earlier raises instead of letting Dramatiq invent a RabbitMQ broker on localhost. Errors follow policy.py:
configuration, permanent and bug errors are not retried; a write-back waits the back-off its outbox row holds
(BackingOffError, NotDueError); anything else backs off; what fails for good is dead-lettered.

Every job is sent to its connection's queue (``ActorQueue``), and runs within its connection's share of the worker
threads (shares.py): a job over the share, or of a connection whose budget is spent, is sent again for later instead
of waiting in a thread. A spent budget (RateLimitedError) pauses the connection's jobs of that stage and sends the job
again for when the budget has room. Priorities: a webhook-hinted ingest goes first, then the rules' evaluation of a
stored change (``evaluate``: no vendor call), then write-backs, then polls (which do the backfill); a poll runs for a
slice of time, then sends itself again behind the live work.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import dramatiq

from psabridge.errors import RateLimitedError
from psabridge.log import get_logger
from psabridge.model import split_ticket_key
from psabridge.sync.broker import NOTIFY_QUEUE, ensure_queue, queue_for, require_broker
from psabridge.sync.claims import dispatch_claim, holding, ingest_claim
from psabridge.sync.context import current_context
from psabridge.sync.evaluate import evaluate_stored
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.outbox import dispatch_action
from psabridge.sync.pacing import Pacer, SliceEndedError
from psabridge.sync.policy import NOT_RETRIED, delays_as_retry
from psabridge.sync.poll import poll_connection
from psabridge.sync.shares import SHARE_WAIT

__all__ = ["POLL_SLICE", "ActorQueue", "dispatch", "evaluate", "ingest", "notify", "poll"]

_log = get_logger("psabridge.sync")

broker = require_broker()

POLL_SLICE = 60.0
"""Seconds a poll job pages through its vendor before it sends itself again (behind live work) to go on."""


def _shared(stage: str, connection: str, later: Callable[[float], None], job: Callable[[], None]) -> None:
    """Run ``job`` within the connection's share, or send it again (``later``) when the share or budget is spent."""
    shares = current_context().shares
    wait = shares.paused_for(stage, connection)
    if wait > 0:
        later(wait)
        return
    with shares.hold(connection) as granted:
        if not granted:
            later(SHARE_WAIT)
            return
        try:
            with delays_as_retry():
                job()
        except dramatiq.Retry as retry:
            cause = retry.__cause__
            if not isinstance(cause, RateLimitedError):
                raise
            delay = max(1.0, cause.retry_after)
            shares.pause(stage, connection, delay)
            _log.info("waiting for the vendor's budget", stage=stage, connection=connection, seconds=round(delay, 1))
            later(delay)


@dramatiq.actor(broker=broker, queue_name="ingest", throws=NOT_RETRIED, priority=0)
def ingest(connection: str, external_id: str) -> None:
    """Ingest one ticket (a webhook, a deferred list record, recovery or a replay asked for it)."""
    ctx = current_context()
    _shared(
        "ingest",
        connection,
        lambda delay: ctx.queue.ingest(connection, external_id, delay=delay),
        lambda: _ingest(connection, external_id),
    )


def _ingest(connection: str, external_id: str) -> None:
    ctx = current_context()
    with holding(ctx, ingest_claim(connection, external_id)):  # in hand: recovery leaves it alone
        ingest_ticket(ctx, connection, external_id)


@dramatiq.actor(broker=broker, queue_name="evaluate", throws=NOT_RETRIED, priority=5)
def evaluate(ticket_key: str) -> None:
    """Evaluate one stored ticket's rules (a real change or a due wake-up asked for it); queue what they write."""
    ctx = current_context()
    connection = split_ticket_key(ticket_key)[0]
    _shared(
        "evaluate",
        connection,
        lambda delay: ctx.queue.evaluate(ticket_key, delay=delay),
        lambda: _evaluate(ticket_key),
    )


def _evaluate(ticket_key: str) -> None:
    evaluate_stored(current_context(), ticket_key)


@dramatiq.actor(broker=broker, queue_name="dispatch", throws=NOT_RETRIED, priority=10)
def dispatch(outbox_id: int, target: str | None = None) -> None:
    """Carry out one outbox action (``target``: the connection it writes to, for its share)."""
    ctx = current_context()
    if target is None:
        with delays_as_retry(), holding(ctx, dispatch_claim(outbox_id)):
            dispatch_action(ctx, outbox_id)
        return
    _shared(
        "dispatch",
        target,
        lambda delay: ctx.queue.dispatch(outbox_id, target, delay=delay),
        lambda: _dispatch(outbox_id),
    )


def _dispatch(outbox_id: int) -> None:
    ctx = current_context()
    with holding(ctx, dispatch_claim(outbox_id)):
        dispatch_action(ctx, outbox_id)


@dramatiq.actor(broker=broker, queue_name=NOTIFY_QUEUE, throws=NOT_RETRIED, priority=0)
def notify(outbox_id: int) -> None:
    """Carry out one page or channel post (its own queue: a P1 never waits behind backfill write-backs)."""
    ctx = current_context()
    with delays_as_retry(), holding(ctx, dispatch_claim(outbox_id)):
        dispatch_action(ctx, outbox_id)


@dramatiq.actor(broker=broker, queue_name="poll", throws=NOT_RETRIED, priority=100)
def poll(connection: str) -> None:
    """Poll one connection from its watermark, for a slice of time; it sends itself again to go on."""
    ctx = current_context()
    with ctx.shares.hold_poll() as granted:
        if not granted:
            ctx.queue.poll(connection, delay=SHARE_WAIT)
            return
        limit = min(POLL_SLICE, ctx.options.time_limit_ms / 1000 / 2)
        pacer = Pacer(inline=False, deadline=time.monotonic() + limit)
        try:
            with delays_as_retry():
                result = poll_connection(ctx, connection, pacer=pacer)
        except dramatiq.Retry as retry:
            cause = retry.__cause__
            if not isinstance(cause, RateLimitedError):
                raise
            if isinstance(cause, SliceEndedError):  # its time is up part-way through a page: go on at once
                ctx.queue.poll(connection)
                return
            delay = max(1.0, cause.retry_after)
            _log.info("poll waits for the vendor's budget", connection=connection, seconds=round(delay, 1))
            ctx.queue.poll(connection, delay=delay)
            return
    if result.more:
        ctx.queue.poll(connection)


class ActorQueue:
    """The work queue of a running system: sends messages to the actors above, each on its connection's queue."""

    def ingest(self, connection: str, external_id: str, *, delay: float | None = None) -> None:
        """Queue an ingest."""
        _send(ingest, queue_for("ingest", connection), (connection, external_id), {}, delay)

    def evaluate(self, ticket_key: str, *, delay: float | None = None) -> None:
        """Queue an evaluation, on its connection's ``evaluate`` queue."""
        _send(evaluate, queue_for("evaluate", split_ticket_key(ticket_key)[0]), (ticket_key,), {}, delay)

    def dispatch(self, outbox_id: int, target: str | None = None, *, delay: float | None = None) -> None:
        """Queue a write-back."""
        kwargs: dict[str, object] = {"target": target} if target is not None else {}
        _send(dispatch, queue_for("dispatch", target), (outbox_id,), kwargs, delay)

    def poll(self, connection: str, *, delay: float | None = None) -> None:
        """Queue a poll."""
        _send(poll, queue_for("poll", connection), (connection,), {}, delay)

    def notify(self, outbox_id: int) -> None:
        """Queue a page or channel post."""
        _send(notify, NOTIFY_QUEUE, (outbox_id,), {}, None)


def _send(
    actor: dramatiq.Actor[..., None],
    queue: str,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    delay: float | None,
) -> None:
    ensure_queue(broker, queue)
    message = actor.message_with_options(args=args, kwargs=kwargs).copy(queue_name=queue)
    broker.enqueue(message, delay=math.ceil(delay * 1000) if delay else None)
