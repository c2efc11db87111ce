"""Thin Dramatiq actors: each takes ids, looks up the process's sync context and calls one pipeline function.

Import this module only after ``psabridge.sync.broker.setup_broker``: the actors bind to that broker explicitly, and
importing earlier raises instead of letting Dramatiq invent a RabbitMQ broker on localhost. Errors follow policy.py:
configuration, permanent and bug errors are not retried; a rate limit waits the vendor's delay, a write-back
the back-off its outbox row holds (BackingOffError, NotDueError); anything else backs off; what fails for good is
dead-lettered.
"""

from __future__ import annotations

import dramatiq

from psabridge.sync.broker import require_broker
from psabridge.sync.context import current_context
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.outbox import dispatch_action
from psabridge.sync.policy import NOT_RETRIED, delays_as_retry
from psabridge.sync.poll import poll_connection

__all__ = ["ActorQueue", "dispatch", "ingest", "notify", "poll"]

broker = require_broker()


@dramatiq.actor(broker=broker, queue_name="ingest", throws=NOT_RETRIED)
def ingest(connection: str, external_id: str) -> None:
    """Ingest one ticket (webhook, poll or reconcile found it changed)."""
    with delays_as_retry():
        ingest_ticket(current_context(), connection, external_id)


@dramatiq.actor(broker=broker, queue_name="dispatch", throws=NOT_RETRIED)
def dispatch(outbox_id: int) -> None:
    """Carry out one outbox action."""
    with delays_as_retry():
        dispatch_action(current_context(), outbox_id)


@dramatiq.actor(broker=broker, queue_name="notify", throws=NOT_RETRIED)
def notify(outbox_id: int) -> None:
    """Carry out one page or channel post (its own queue: a P1 never waits behind backfill write-backs)."""
    with delays_as_retry():
        dispatch_action(current_context(), outbox_id)


@dramatiq.actor(broker=broker, queue_name="poll", throws=NOT_RETRIED)
def poll(connection: str) -> None:
    """Poll one connection from its watermark."""
    with delays_as_retry():
        poll_connection(current_context(), connection)


class ActorQueue:
    """The work queue of a running system: sends messages to the actors above."""

    def ingest(self, connection: str, external_id: str) -> None:
        """Queue an ingest."""
        ingest.send(connection, external_id)

    def dispatch(self, outbox_id: int) -> None:
        """Queue a write-back."""
        dispatch.send(outbox_id)

    def poll(self, connection: str) -> None:
        """Queue a poll."""
        poll.send(connection)

    def notify(self, outbox_id: int) -> None:
        """Queue a page or channel post."""
        notify.send(outbox_id)
