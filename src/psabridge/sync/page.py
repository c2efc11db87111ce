"""Ingest from the list page: poll and reconcile store the records their list pages hold, a page per transaction.

Per page, in this order::

    one query                 the stored copy (update time, version, raw record) of each of the page's tickets
    skip                      records older than the stored copy (stale), and closed tickets older than the run's
                              reach that the store does not hold (outside the backfill window)
    defer                     tickets holding psabridge's own write that awaits its echo: handed to the ticket's own
                              ingest (queued after the commit), which re-reads it under the ticket's lock
    Connector.complete_page   full raw tickets for what changed; the unchanged cost nothing (paced: a spent budget
                              waits, see pacing.py)
    scrub + map inbound       per ticket; a mapping error fails that ticket alone (recorded as a dead letter that
                              ``dlq replay`` re-reads), never the page
    one transaction           store_changes (set-based upserts of tickets, raw records and findings, transitions,
                              "needs evaluation"), then each of PLANNERS per real change, the outbox rows, the
                              deliveries it covers, and the caller's own step (the poll's watermark)
    after the commit          the outbox actions are dispatched, real changes queued for evaluation (the rules),
                              deferred tickets queued for ingest

Why the page path needs no per-ticket lock (the connection's poll or reconcile lease covers the page, so no other page
of the connection runs at the same time):

* Older never overwrites newer: ``store.tickets.upsert_tickets`` locks the rows it compares with (``FOR UPDATE`` on
  PostgreSQL, the write lock first on SQLite), so a concurrent webhook ingest of the same ticket either committed
  before (the page then sees its copy and a list record older than it is stale) or waits for the page and then
  compares with what the page wrote. The list record may be older than the webhook's re-read and still carry the
  same update time (same-second changes): the next poll re-reads the newest page (the watermark is inclusive, with
  the connector's overlap window), sees the content differ and stores it.
* Echoes stay exact: a write-back records what it wrote on the ticket (``written``) under the ticket's lock. The page
  path never consumes that record: a ticket holding one (seen by the first query, or by the locked query in the
  transaction) is deferred to its own ingest, so a list record read before our write cannot eat the mark that
  recognises the write's echo.
* Dispatch holds the ticket's lock only around the vendor write and its own rows; it changes no column the page path
  writes except through ``written``, which the page path only reads.

One bad record never fails the page: strings the database cannot store are removed first (scrub.py, with a finding),
and when the database still refuses a value (``StoreRefusedError``), the page is stored again ticket by ticket so
only the ticket it belongs to fails.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from psabridge.connectors.base import Connector, PageCompletion
from psabridge.errors import MappingError, PermanentError, PsaBridgeError, RateLimitedError
from psabridge.log import get_logger
from psabridge.mapping import InboundResult
from psabridge.model import Action, split_ticket_key, ticket_key
from psabridge.store import Session, StoreRefusedError, deadletters, inbox, outbox, tickets
from psabridge.store.outbox import QueuedEntry
from psabridge.store.tickets import StoredCopy
from psabridge.sync.context import SyncContext
from psabridge.sync.ingest import IngestOutcome, IngestResult, StoredChange, plan_change, store_changes
from psabridge.sync.outbox import queue_actions
from psabridge.sync.pacing import Pacer
from psabridge.sync.scrub import scrub_record, with_scrub_findings
from psabridge.vendordata import RawRecord

__all__ = ["PageResult", "PageStep", "ingest_page"]

_log = get_logger("psabridge.sync")

PageStep = Callable[[Session], None]
"""The caller's own work inside a complete page's transaction (the poll's watermark, a lease renewal)."""


@dataclass
class PageResult:
    """What ingesting one list page did.

    Attributes:
        results: one per ticket stored (created, updated, unchanged, echo) or found stale at store time.
        unchanged: tickets whose list record equals the stored copy (nothing read, nothing written).
        stale: records older than the stored copy.
        outside: closed tickets older than the run's reach that the store does not hold (not stored).
        deferred: tickets handed to their own ingest (psabridge's write awaits its echo).
        failed: (ticket key, why) of tickets that could not be mapped or stored.
        requests: vendor requests completing the page cost (not counting the list page itself).
        complete: every record of the page was dealt with (False: a rate limit stopped it part-way).
    """

    results: list[IngestResult] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stale: int = 0
    outside: int = 0
    deferred: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0
    complete: bool = True


def ingest_page(
    ctx: SyncContext,
    connection: str,
    records: Sequence[RawRecord],
    *,
    pacer: Pacer,
    listed_at: datetime,
    reach: datetime | None = None,
    step: PageStep | None = None,
    dry_run: bool = False,
) -> PageResult:
    """Store one list page's records (see the module docstring) and run ``step`` in the same transaction.

    Args:
        ctx: the sync context.
        connection: the connection the page came from.
        records: the raw list records, as ``iter_changes`` gave them.
        pacer: how to wait when the vendor's budget is spent while completing the page.
        listed_at: when the page was read: open deliveries of its tickets received before it are covered by it.
        reach: closed tickets last changed before this time that the store does not hold are not stored.
        step: the caller's work in the page's transaction, run only when the whole page was dealt with.
        dry_run: do everything but commit, dispatch and queue.

    Raises:
        RateLimitedError: the pacer hands waits back; what was completed before is stored, ``step`` is not run.
        RunTimeLimitError: the wait would outlast the run; as above.
    """
    connector = ctx.connector(connection)
    result = PageResult()
    newest = _newest_by_id(connector, records)
    scrubbed: dict[str, list[str]] = {}  # external id -> where NUL characters were removed from its list record
    for external_id, record in newest.items():
        newest[external_id], paths = scrub_record(record)  # compared clean, as the clean copy was stored
        if paths:
            scrubbed[external_id] = paths
    with ctx.db.session() as session:
        stored = tickets.stored_copies(session, connection, list(newest))
    todo: list[RawRecord] = []
    for external_id, record in newest.items():
        copy = stored.get(external_id)
        if copy is not None and copy.written:
            result.deferred.append(external_id)
        elif copy is not None and _older(connector.updated_at_of(record), copy):
            result.stale += 1
        elif copy is None and _outside(ctx, connection, connector, record, reach):
            result.outside += 1
        else:
            todo.append(record)
    previous = {external_id: copy.raw for external_id, copy in stored.items() if copy.raw is not None}
    completion, limited = _complete(connector, todo, previous, pacer, result)
    result.requests = completion.request_count
    result.unchanged.extend(completion.unchanged)
    mapped = _map(ctx, connection, connector, completion.full, result, scrubbed, newest)
    result.complete = limited is None
    final = step if result.complete else None
    _store(ctx, connection, mapped, result, listed_at=listed_at, step=final, dry_run=dry_run)
    if limited is not None:
        raise limited
    return result


def _newest_by_id(connector: Connector, records: Sequence[RawRecord]) -> dict[str, RawRecord]:
    """The page's records by external id; a record listed twice keeps its newest copy."""
    found: dict[str, RawRecord] = {}
    for record in records:
        external_id = connector.external_id_of(record)
        current = found.get(external_id)
        if current is None or _newer_or_equal(connector.updated_at_of(record), connector.updated_at_of(current)):
            found[external_id] = record
    return found


def _newer_or_equal(one: datetime | None, other: datetime | None) -> bool:
    return one is None or other is None or one >= other


def _older(updated: datetime | None, copy: StoredCopy) -> bool:
    """Strictly older than the stored copy (equal is not: same-second changes happen)."""
    return updated is not None and copy.updated_at is not None and updated < copy.updated_at


def _outside(
    ctx: SyncContext, connection: str, connector: Connector, record: RawRecord, reach: datetime | None
) -> bool:
    """A closed ticket last changed before the run's reach (its list record says so): not stored.

    An open ticket is always stored, whatever its age; so is a record whose status the mapping cannot tell.
    """
    if reach is None:
        return False
    updated = connector.updated_at_of(record)
    if updated is None or updated >= reach:
        return False
    try:
        status = ctx.mappings.mapper(connection).inbound(record, ctx.mappings.context(connection)).ticket.status
    except MappingError:
        return False  # the full record's mapping reports it
    return status is not None and not status.is_open


def _complete(
    connector: Connector, records: list[RawRecord], stored: dict[str, RawRecord], pacer: Pacer, result: PageResult
) -> tuple[PageCompletion, RateLimitedError | None]:
    """``complete_page`` through the pacer; what was completed, and the rate limit the pacer handed back, if any.

    After a wait the records not completed yet are completed in halves, so a page that costs more than the budget's
    window still gets through; with a pacer that hands waits back, what was completed is returned with the error. A
    ticket the vendor refuses for good (PermanentError) is found by halving too, and fails alone (``result.failed``).
    A completion cut short returns nothing of what it read: a connector that reads ticket by ticket (the default) is
    completed ticket by ticket, so nothing is read twice. A job's pacer ends the page part-way once its time slice is
    up (``SliceEndedError``, handed back like a wait), after it completed something.
    """
    full: list[RawRecord] = []
    unchanged: list[str] = []
    requests = 0
    if _reads_by_id(connector):
        # The default completion reads ticket by ticket anyway: completing one at a time costs no request more, and a
        # wait for the budget then repeats no read (a completion cut short by a rate limit returns nothing).
        pending: deque[list[RawRecord]] = deque([record] for record in records)
    else:
        pending = deque([records] if records else [])
    progressed = False
    while pending:
        try:
            if progressed:  # a job always gets something done before its slice can end it
                pacer.check_slice(connector.name)
        except RateLimitedError as ended:
            return PageCompletion(full, tuple(unchanged), requests), ended
        chunk = pending.popleft()
        ids = [connector.external_id_of(record) for record in chunk]
        try:
            done = connector.complete_page(chunk, {i: stored[i] for i in ids if i in stored})
        except RateLimitedError as exc:
            try:
                pacer.wait(connector.name, exc)
            except RateLimitedError as handed_back:
                return PageCompletion(full, tuple(unchanged), requests), handed_back
            pending.extendleft(reversed(_halves(chunk)))
            continue
        except PermanentError as exc:
            if len(chunk) == 1:
                result.failed.append((ticket_key(connector.name, connector.external_id_of(chunk[0])), str(exc)))
            else:
                pending.extendleft(reversed(_halves(chunk)))
            continue
        full.extend(done.full)
        unchanged.extend(done.unchanged)
        requests += done.request_count
        progressed = True
    return PageCompletion(full, tuple(unchanged), requests), None


def _reads_by_id(connector: Connector) -> bool:
    """Whether the connector completes a page ticket by ticket (neither ``complete_page`` nor ``read_full`` of its own).

    Vendors build full records from the list page in ``read_full`` (sub-resources in bulk for the whole page); such a
    connector must get the page whole, or its bulk reads would be made once per ticket.
    """
    kind = type(connector)
    return kind.complete_page is Connector.complete_page and kind.read_full is Connector.read_full


def _halves(chunk: list[RawRecord]) -> list[list[RawRecord]]:
    if len(chunk) == 1:
        return [chunk]
    middle = len(chunk) // 2
    return [chunk[:middle], chunk[middle:]]


def _map(
    ctx: SyncContext,
    connection: str,
    connector: Connector,
    full: list[RawRecord],
    result: PageResult,
    scrubbed: dict[str, list[str]],
    listed: Mapping[str, RawRecord],
) -> list[tuple[InboundResult, RawRecord]]:
    """Each full record scrubbed and mapped; a record that cannot be mapped fails alone.

    ``listed`` holds the page's list records, already scrubbed, by external id.
    """
    mapper = ctx.mappings.mapper(connection)
    context = ctx.mappings.context(connection)
    metadata = connector.metadata()
    mapped: list[tuple[InboundResult, RawRecord]] = []
    for raw in full:
        external_id = connector.external_id_of(raw)
        key = ticket_key(connection, external_id)
        try:
            scrubbed_raw, dirty = _scrub_full(raw, listed.get(external_id))
            found = sorted({*scrubbed.get(external_id, ()), *dirty})
            inbound = with_scrub_findings(mapper.inbound(scrubbed_raw, context, metadata), found)
            if inbound.ticket.key != key:
                raise MappingError(
                    f"ticket {external_id!r} maps to id {inbound.ticket.external_id!r}: check the external_id rule",
                    connection=connection,
                )
        except PsaBridgeError as exc:
            result.failed.append((key, str(exc)))
            continue
        mapped.append((inbound, scrubbed_raw))
    return mapped


def _scrub_full(raw: RawRecord, listed: RawRecord | None) -> tuple[RawRecord, list[str]]:
    """``scrub_record`` of a full record, looking only at what it does not share with its scrubbed list record.

    Connectors build a full record from the list record (its values, the same objects) plus sub-resources, so the
    list fields need no second look: only the other keys are dumped, and the whole record only when they hold a NUL.
    """
    if listed is None:
        return scrub_record(raw)
    if raw is listed:
        return raw, []
    extras = {key: value for key, value in raw.items() if key not in listed or listed[key] is not value}
    if not extras or not scrub_record(extras)[1]:
        return raw, []
    return scrub_record(raw)


@dataclass
class _Stored:
    """What one committed transaction of a page stored (merged into the PageResult only after the commit)."""

    results: list[IngestResult] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    dispatch: list[QueuedEntry] = field(default_factory=list)
    evaluate: list[str] = field(default_factory=list)


def _store(
    ctx: SyncContext,
    connection: str,
    mapped: list[tuple[InboundResult, RawRecord]],
    result: PageResult,
    *,
    listed_at: datetime,
    step: PageStep | None,
    dry_run: bool,
) -> None:
    """Store the mapped tickets in one transaction (ticket by ticket when the database refuses a value)."""
    batches: list[_Stored] = []
    try:
        with ctx.unit(dry_run=dry_run) as session:
            stored = _store_batch(ctx, session, connection, mapped, listed_at=listed_at)
            _finish(session, connection, result.failed, result.deferred + stored.deferred, listed_at, step)
        batches.append(stored)
    except StoreRefusedError:
        batches = _store_one_by_one(ctx, connection, mapped, result, listed_at=listed_at, dry_run=dry_run)
        with ctx.unit(dry_run=dry_run) as session:
            deferred = result.deferred + [d for b in batches for d in b.deferred]
            _finish(session, connection, result.failed, deferred, listed_at, step)
    for stored in batches:
        result.results.extend(stored.results)
        result.deferred.extend(stored.deferred)
    if dry_run:
        return
    for stored in batches:
        queue_actions(ctx, stored.dispatch)
        for key in stored.evaluate:
            ctx.queue.evaluate(key)
    for external_id in result.deferred:
        ctx.queue.ingest(connection, external_id)


def _store_one_by_one(
    ctx: SyncContext,
    connection: str,
    mapped: list[tuple[InboundResult, RawRecord]],
    result: PageResult,
    *,
    listed_at: datetime,
    dry_run: bool,
) -> list[_Stored]:
    """The page again, a transaction per ticket: the one the database refuses fails alone."""
    batches: list[_Stored] = []
    for item in mapped:
        try:
            with ctx.unit(dry_run=dry_run) as session:
                batches.append(_store_batch(ctx, session, connection, [item], listed_at=listed_at))
        except StoreRefusedError as exc:
            key = item[0].ticket.key
            _log.warning("ticket not stored", ticket=key, error=str(exc))
            result.failed.append((key, str(exc)))
    return batches


def _store_batch(
    ctx: SyncContext,
    session: Session,
    connection: str,
    mapped: list[tuple[InboundResult, RawRecord]],
    *,
    listed_at: datetime,
) -> _Stored:
    """store_changes, the planners per real change and the outbox rows, inside the caller's transaction."""
    out = _Stored()
    if not mapped:
        return out
    now = ctx.now()
    user = ctx.connector(connection).integration_user()
    changes = store_changes(session, mapped, integration_user=user, now=now, from_page=True)
    planned: list[tuple[StoredChange, list[str]]] = []
    actions: list[Action] = []
    for change in changes:
        if change.outcome == IngestOutcome.DEFERRED:
            out.deferred.append(change.ticket.external_id)
            continue
        if change.needs_evaluation:
            out.evaluate.append(change.ticket.key)
        wanted = plan_change(ctx, session, change)
        actions.extend(wanted)
        planned.append((change, [a.idempotency_key() for a in wanted]))
    new = outbox.enqueue_actions(session, actions, now=now)
    out.dispatch = outbox.outbox_rows(session, new)
    ids = {key: row.id for key, row in zip(new, out.dispatch, strict=True)}
    for change, keys in planned:
        out.results.append(
            IngestResult(
                change.ticket.key,
                change.outcome,
                change.changed,
                change.closed,
                evaluated=change.is_real,
                outbox_ids=tuple(ids[k] for k in keys if k in ids),
            )
        )
    covered = [c.ticket.external_id for c, _ in planned if c.outcome != IngestOutcome.STALE]
    inbox.close_deliveries_many(session, connection, covered, upto=listed_at)
    return out


def _finish(
    session: Session,
    connection: str,
    failed: list[tuple[str, str]],
    deferred: list[str],
    listed_at: datetime,
    step: PageStep | None,
) -> None:
    """The page's bookkeeping in its transaction: failures as dead letters, deferrals as deliveries, the step."""
    for key, error in failed:
        digest = hashlib.sha256(f"{key}\n{error}".encode()).hexdigest()[:40]
        deadletters.add_dead_letter(
            session,
            message_id=f"page:{digest}",
            queue=f"ingest.{connection}",
            actor="ingest",
            args=[connection, split_ticket_key(key)[1]],
            kwargs={},
            error={"type": "PageIngestError", "message": error},
            attempts=1,
        )
    if deferred:
        stamp = listed_at.isoformat()
        inbox.record_changes(session, connection, [(e, f"deferred:{e}:{stamp}") for e in deferred], event="page")
    if step is not None:
        step(session)
