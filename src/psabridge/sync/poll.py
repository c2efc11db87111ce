"""Polling: read a connection's changes since its watermark, page by page, and record each changed ticket for ingest.

Each page is committed in one transaction with the watermark it covers: the changed tickets become inbox deliveries
(ids ``poll:<id>:<hash of the record>``, so a record re-read in the overlap window is not recorded twice, while a
second change within the same second is) and the watermark moves forward. Only then are the ingests queued; a crash
in between leaves open deliveries that recovery queues again. Records older than the stored copy are skipped (their
ingest would be stale anyway). A lease keeps two schedulers from polling one connection at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psabridge.holders import holder_id
from psabridge.store import inbox, leases, runs, sync_state, tickets
from psabridge.store.runs import RunKind
from psabridge.sync.context import SyncContext

__all__ = ["PollResult", "poll_connection"]

LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class PollResult:
    """What one poll did.

    Attributes:
        connection: the connection polled.
        skipped: another poll of the connection was running.
        pages: pages read.
        seen: records read.
        queued: tickets recorded and queued for ingest.
        watermark: the watermark stored at the end.
    """

    connection: str
    skipped: bool = False
    pages: int = 0
    seen: int = 0
    queued: int = 0
    watermark: datetime | None = None


def poll_connection(ctx: SyncContext, connection: str) -> PollResult:
    """Poll one connection from its stored watermark (a full backfill when it has none)."""
    holder = holder_id()
    name = f"poll:{connection}"
    with ctx.unit() as session:
        if not leases.take_lease(session, name, holder, LEASE):
            return PollResult(connection, skipped=True)
    try:
        return _poll(ctx, connection, holder)
    finally:
        with ctx.unit() as session:
            leases.release_lease(session, name, holder)


def _poll(ctx: SyncContext, connection: str, holder: str) -> PollResult:
    connector = ctx.connector(connection)
    with ctx.unit() as session:
        since = sync_state.get_watermark(session, connection)
        run_id = runs.start_run(session, RunKind.POLL, connection, {"since": since.isoformat() if since else None})
        sync_state.mark_poll(session, connection, started=ctx.now())
    pages = seen = queued = 0
    watermark = since
    error: str | None = None
    try:
        for page in connector.iter_changes(since):
            pages += 1
            seen += len(page.records)
            found = [
                (connector.external_id_of(r), connector.updated_at_of(r), tickets.raw_hash(r)) for r in page.records
            ]
            with ctx.unit() as session:
                stored = tickets.stored_versions(session, connection, [external_id for external_id, _, _ in found])
                changes = [
                    (external_id, f"poll:{external_id}:{digest[:24]}")
                    for external_id, updated, digest in found
                    if not _older(updated, stored.get(external_id, (None, None))[0])
                ]
                new = inbox.record_changes(session, connection, changes)
                sync_state.set_watermark(session, connection, page.watermark, run_id=run_id)
                leases.take_lease(session, f"poll:{connection}", holder, LEASE)
            if page.watermark is not None and (watermark is None or page.watermark > watermark):
                watermark = page.watermark
            for external_id in new:
                ctx.queue.ingest(connection, external_id)
            queued += len(new)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with ctx.unit() as session:
            runs.finish_run(session, run_id, counts={"pages": pages, "seen": seen, "queued": queued}, error=error)
            sync_state.mark_poll(session, connection, finished=ctx.now())
    return PollResult(connection, pages=pages, seen=seen, queued=queued, watermark=watermark)


def _older(updated: datetime | None, stored: datetime | None) -> bool:
    """Strictly older than the stored copy (equal is not: same-second changes happen)."""
    return updated is not None and stored is not None and updated < stored
