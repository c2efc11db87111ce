"""Failed webhook deliveries (the inbox's failed rows): listing them and sending their tickets' ingest again.

A delivery fails when its body could not be read (kept once per distinct body, without a ticket id) or when its
ingest was dead-lettered. Retrying puts the delivery back to received and queues one ingest per ticket, which
re-reads the ticket from the vendor (a delivery is a hint, never the data). An unreadable one names no ticket and
cannot be retried: the next poll or reconcile finds the change it was about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from psabridge.store import Database, inbox
from psabridge.store.inbox import DeliveryEntry
from psabridge.sync.context import SyncContext

__all__ = ["DeliveryRetry", "failed_deliveries", "retry_deliveries"]


def failed_deliveries(db: Database, connection: str | None = None, *, limit: int | None = 100) -> list[DeliveryEntry]:
    """Failed deliveries newest first (one connection's when named)."""
    with db.session() as session:
        return inbox.failed_deliveries(session, connection=connection, limit=limit)


@dataclass
class DeliveryRetry:
    """What a retry did: deliveries reopened, ingests queued, and the ids that could not be retried and why."""

    reopened: list[int] = field(default_factory=list)
    queued: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def retry_deliveries(ctx: SyncContext, ids: Sequence[int] | None, connection: str | None = None) -> DeliveryRetry:
    """Reopen failed deliveries (``ids``, or every one of ``connection``/all when None) and queue their ingests."""
    done = DeliveryRetry()
    with ctx.unit() as session:
        found = inbox.failed_deliveries(session, connection=connection, ids=ids, limit=None)
        for missing in sorted(set(ids or []) - {d.id for d in found}):
            done.skipped[missing] = "no failed delivery with this id" + (f" of {connection}" if connection else "")
        retryable = [d for d in found if d.external_id]
        for unreadable in (d for d in found if not d.external_id):
            done.skipped[unreadable.id] = "unreadable: it names no ticket (the next poll finds the change)"
        inbox.reopen_deliveries(session, [d.id for d in retryable])
        done.reopened = [d.id for d in retryable]
    tickets = sorted({(d.connection, str(d.external_id)) for d in retryable})
    for conn, external_id in tickets:
        ctx.queue.ingest(conn, external_id)
        done.queued.append((conn, external_id))
    return done
