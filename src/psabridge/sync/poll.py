"""Polling: read a connection's changes since its watermark and ingest each list page as it comes (page.py).

Each page is stored in one transaction with the watermark it covers, so a crash between pages loses nothing and
repeats nothing but the page it was on; the next poll starts from the watermark (minus the connector's overlap
window), and a record re-read there is recognised as unchanged at no cost. The first poll of a connection (no
watermark) is its backfill: it stores every open ticket and the closed ones changed within the connection's
``backfill_since`` (90 days unless configured; ``all`` stores everything). A lease keeps two schedulers from polling
one connection at once.

A spent vendor budget is handed to the poll's pacer (pacing.py): a direct call waits and goes on; a poll job gets the
error back once the pages read so far are stored, and sends itself again for when the budget has room. A pacer's
time limit ends the poll after the page it is on, with ``more`` set: the caller polls again to go on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from psabridge.errors import RateLimitedError
from psabridge.holders import holder_id
from psabridge.log import get_logger
from psabridge.store import Session, leases, runs, sync_state
from psabridge.store.runs import RunKind
from psabridge.sync.context import SyncContext
from psabridge.sync.ingest import IngestOutcome
from psabridge.sync.pacing import Pacer, paced_pages
from psabridge.sync.page import PageResult, ingest_page

__all__ = ["LEASE", "PollResult", "poll_connection"]

_log = get_logger("psabridge.sync")

LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class PollResult:
    """What one poll did.

    Attributes:
        connection: the connection polled.
        skipped: another poll of the connection was running.
        pages: pages read.
        seen: records read.
        counts: tickets by what ingesting them did (created, updated, unchanged, stale, outside, deferred, failed,
            echo) and ``requests``, the vendor requests completing the pages cost beyond the list pages.
        watermark: the watermark stored at the end.
        more: the pacer's time limit ended the poll before its last page: poll again to go on.
    """

    connection: str
    skipped: bool = False
    pages: int = 0
    seen: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    watermark: datetime | None = None
    more: bool = False

    @property
    def stored(self) -> int:
        """Tickets created or updated."""
        return self.counts.get("created", 0) + self.counts.get("updated", 0)


def poll_connection(ctx: SyncContext, connection: str, *, pacer: Pacer | None = None) -> PollResult:
    """Poll one connection from its stored watermark (its backfill when it has none).

    Args:
        ctx: the sync context.
        connection: the connection to poll.
        pacer: how to wait for a spent budget (default: wait inline, no time limit).

    Raises:
        RateLimitedError: the pacer hands waits back (what was read before is stored).
        RunTimeLimitError: a wait would outlast the pacer's time limit (as above).
    """
    holder = holder_id()
    name = f"poll:{connection}"
    with ctx.unit() as session:
        if not leases.take_lease(session, name, holder, LEASE):
            return PollResult(connection, skipped=True)
    try:
        return _poll(ctx, connection, holder, pacer or Pacer())
    finally:
        with ctx.unit() as session:
            leases.release_lease(session, name, holder)


def _poll(ctx: SyncContext, connection: str, holder: str, pacer: Pacer) -> PollResult:
    connector = ctx.connector(connection)
    settings = ctx.settings.connection(connection)
    with ctx.unit() as session:
        since = sync_state.get_watermark(session, connection)
        run_id = runs.start_run(session, RunKind.POLL, connection, {"since": since.isoformat() if since else None})
        sync_state.mark_poll(session, connection, started=ctx.now())
    pages = seen = 0
    counts: Counter[str] = Counter()
    failures: list[tuple[str, str, str | None]] = []
    watermark = since
    more = False
    error: str | None = None
    try:
        for page in paced_pages(connector, since, pacer):
            pages += 1
            seen += len(page.records)

            def step(session: Session, mark: datetime | None = page.watermark) -> None:
                sync_state.set_watermark(session, connection, mark, run_id=run_id)
                leases.take_lease(session, f"poll:{connection}", holder, LEASE)

            result = ingest_page(
                ctx,
                connection,
                page.records,
                pacer=pacer,
                listed_at=ctx.now(),
                reach=settings.backfill_reach(ctx.now()),
                step=step,
            )
            _count(result, counts)
            failures.extend((key, "failed", why[:1000]) for key, why in result.failed)
            if page.watermark is not None and (watermark is None or page.watermark > watermark):
                watermark = page.watermark
            if pacer.out_of_time():
                more = True
                break
    except RateLimitedError:
        counts["paused"] = 1  # handed back to the caller, who polls again when the budget has room
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with ctx.unit() as session:
            runs.record_run_items(session, run_id, failures)
            totals = {"pages": pages, "seen": seen, **counts}
            runs.finish_run(session, run_id, counts=totals, error=error)
            sync_state.mark_poll(session, connection, finished=ctx.now())
    if counts["failed"]:
        _log.warning("poll: tickets failed", connection=connection, failed=counts["failed"], run=run_id)
    changed = {k: v for k, v in counts.items() if v and k != "requests"}
    _log.info("poll", connection=connection, pages=pages, seen=seen, requests=counts["requests"], more=more,
              counts=changed)  # fmt: skip
    return PollResult(connection, pages=pages, seen=seen, counts=dict(counts), watermark=watermark, more=more)


def _count(result: PageResult, counts: Counter[str]) -> None:
    """Add a page's outcomes to a run's counts."""
    for item in result.results:
        counts[item.outcome.value] += 1
        if item.closed:
            counts["closed"] += 1
    counts[IngestOutcome.UNCHANGED.value] += len(result.unchanged)
    counts[IngestOutcome.STALE.value] += result.stale
    counts["outside"] += result.outside
    counts[IngestOutcome.DEFERRED.value] += len(result.deferred)
    counts["failed"] += len(result.failed)
    counts["requests"] += result.requests
