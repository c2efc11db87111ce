"""Reconcile, for cron: compare each vendor with the store and each mirror with its source; repair drift.

Per connection: page through the vendor's tickets changed in the window (``since``, or everything with ``full``)
and ingest each list page as a poll does (page.py): a record equal to the stored copy costs nothing, only what
differs is read and stored, so a second full reconcile of an unchanged vendor costs its list pages. With ``full``,
closed tickets older than the connection's ``backfill_since`` that the store does not hold stay out (as the backfill
left them out; ``since`` reaches further on demand), and stored tickets the vendor no longer listed are re-read by id.
Then per link: a mirror that was never created is created, a mirrored field whose owner's value the other side does
not hold is written again, notes and time entries not yet carried are carried. Repairs go through the same ingest
and outbox paths as live changes. Unfinished deliveries and write-backs are queued again.

A spent vendor budget paces the run (pacing.py): it waits for room, says so, and goes on, within its time limit.
The lock (a lease) covers the whole run, including the drain: with ``wait`` the reconcile waits for the work it
queued (tracked through the store, drain.py, so it ends when that work is done, whichever process does it). The run
and every ticket's outcome are recorded; a second reconcile while one runs is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from psabridge.errors import PsaBridgeError
from psabridge.holders import holder_id
from psabridge.log import get_logger
from psabridge.model import Action, SetFields, Ticket, split_ticket_key, ticket_key
from psabridge.settings import LinkSettings
from psabridge.store import Session, leases, links, outbox, runs, sync_state, tickets
from psabridge.store.links import MirrorLink
from psabridge.store.outbox import GAVE_UP, QueuedEntry
from psabridge.store.runs import RunKind
from psabridge.sync.context import SyncContext
from psabridge.sync.drain import drain, tracking
from psabridge.sync.ingest import IngestOutcome, IngestResult, ingest_ticket
from psabridge.sync.linking import plan_link
from psabridge.sync.mirror import MIRROR_FIELDS, mirror_origin, new_mirror
from psabridge.sync.outbox import queue_actions
from psabridge.sync.pacing import Pacer, paced_pages
from psabridge.sync.page import PageResult, ingest_page
from psabridge.sync.recovery import recover

__all__ = [
    "COUNTS",
    "Counts",
    "ReconcileLockedError",
    "ReconcileProgress",
    "ReconcileReport",
    "add_write_back_failures",
    "reconcile",
]

_log = get_logger("psabridge.sync")

COUNTS = ("seen", "created", "updated", "closed", "repaired", "failed")
LOCK = "reconcile"
LEASE = timedelta(hours=2)
"""How long the lock outlives a reconcile that died; a running one renews it page by page."""


class ReconcileLockedError(PsaBridgeError):
    """Another reconcile holds the lock."""


class ReconcileProgress(Protocol):
    """What a reconcile tells as it advances (the command line's progress display)."""

    def compared(self, connection: str, counts: Counts) -> None:
        """A list page of ``connection`` was compared and stored; ``counts`` are its totals so far."""

    def waiting(self, connection: str, seconds: float) -> None:
        """The run waits ``seconds`` for ``connection``'s vendor budget."""

    def draining(self, done: int, total: int, eta: float | None) -> None:
        """Of ``total`` jobs the run queued, ``done`` are done; about ``eta`` seconds are left (None: unknown)."""


@dataclass
class Counts:
    """One connection's numbers (see COUNTS) and its per-ticket outcomes."""

    seen: int = 0
    created: int = 0
    updated: int = 0
    closed: int = 0
    repaired: int = 0
    failed: int = 0
    unchanged: int = 0
    requests: int = 0
    items: list[tuple[str, str, str | None]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {name: int(getattr(self, name)) for name in COUNTS}


@dataclass
class ReconcileReport:
    """What a reconcile found and did, per connection."""

    dry_run: bool
    started_at: datetime
    connections: dict[str, Counts] = field(default_factory=dict)
    run_ids: dict[str, int] = field(default_factory=dict)
    unfinished: bool = False
    queued: int = 0
    left: int = 0

    @property
    def failed(self) -> int:
        """Failures in all connections."""
        return sum(c.failed for c in self.connections.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (``--json``)."""
        return {
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "unfinished": self.unfinished,
            "queued": self.queued,
            "left": self.left,
            "connections": {name: c.as_dict() for name, c in self.connections.items()},
            "runs": self.run_ids,
        }


def reconcile(
    ctx: SyncContext,
    *,
    connections: tuple[str, ...] | list[str] = (),
    since: datetime | None = None,
    full: bool = False,
    dry_run: bool = False,
    progress: ReconcileProgress | None = None,
    time_limit: float | None = None,
    wait: float | None = None,
    pacer: Pacer | None = None,
) -> ReconcileReport:
    """Compare and repair the chosen connections (default: every enabled one); see the module docstring.

    Args:
        ctx: the sync context.
        connections: the connections to reconcile (default: every enabled one).
        since: the window's start (ignored with ``full``).
        full: compare every ticket the vendor lists.
        dry_run: report what would change; write nothing.
        progress: told as the run advances.
        time_limit: seconds the comparing may take, waits for budgets included (None: no limit).
        wait: wait up to this many seconds for the work the run queued, under the lock (None: do not wait).
        pacer: how to wait for a spent budget (default: inline, within ``time_limit``, told to ``progress``).

    Raises:
        ReconcileLockedError: another reconcile is running.
        ConfigError: a named connection does not exist.
    """
    names = list(connections) or [c.name for c in ctx.settings.connections if c.enabled]
    for name in names:
        ctx.settings.connection(name)
    holder = holder_id()
    with ctx.unit() as session:
        if not leases.take_lease(session, LOCK, holder, LEASE):
            current = leases.lease_of(session, LOCK)
            since_text = current.acquired_at.isoformat() if current else "?"
            raise ReconcileLockedError(
                f"another reconcile is running (held by {current.holder if current else '?'} since {since_text})"
            )

    def keep_lock() -> None:
        with ctx.unit() as session:
            leases.take_lease(session, LOCK, holder, LEASE)

    report = ReconcileReport(dry_run=dry_run, started_at=ctx.now())
    pacer = pacer or Pacer.within(time_limit)
    if pacer.on_wait is None and progress is not None:
        pacer.on_wait = progress.waiting
    errors: dict[str, str] = {}
    try:
        with tracking(ctx) as tracked:
            for name in names:
                report.connections[name] = Counts()
                with ctx.unit() as session:
                    options = {"since": since.isoformat() if since else None, "full": full, "dry_run": dry_run}
                    report.run_ids[name] = runs.start_run(session, RunKind.RECONCILE, name, options)
                    if not dry_run:  # a first reconcile is the connection's first sync (the rules' act_since)
                        sync_state.mark_first_sync(session, name, report.started_at)
            for name in names:  # first every vendor against the store, so mirrors are compared on fresh copies
                try:
                    _compare(ctx, name, report.connections[name], since=since, full=full, dry_run=dry_run,
                             pacer=pacer, progress=progress, keep_lock=keep_lock)  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - one connection's failure must not stop the others' reconcile
                    report.connections[name].failed += 1
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    _log.error("reconcile failed", connection=name, error=errors[name])
                keep_lock()
            _repair_links(ctx, names, report, dry_run=dry_run)
            if not dry_run:  # others' unfinished work, queued again but not waited for (it is not this run's)
                recover(ctx, polls=False, queue=tracked.inner)
            if wait is not None and not dry_run:
                drained = drain(ctx, tracked, wait, progress=progress.draining if progress else None,
                                keep_alive=keep_lock)  # fmt: skip
                report.queued, report.left, report.unfinished = drained.total, drained.left, not drained.done
                if drained.backing_off:
                    _log.warning("write-backs back off past the wait", left=drained.left, late=drained.backing_off)
                add_write_back_failures(ctx, report, finish=False)
        for name in names:
            counts = report.connections[name]
            with ctx.unit() as session:
                runs.record_run_items(session, report.run_ids[name], counts.items)
                runs.finish_run(session, report.run_ids[name], counts=counts.as_dict(), error=errors.get(name))
    finally:
        with ctx.unit() as session:
            leases.release_lease(session, LOCK, holder)
    return report


def add_write_back_failures(ctx: SyncContext, report: ReconcileReport, *, finish: bool = True) -> None:
    """Count write-backs that failed since the reconcile started, per target connection, into the report.

    With ``finish`` also into the connections' runs (for a caller whose drain ran after the runs were finished).
    """
    with ctx.db.session() as session:
        failed = outbox.failed_since(session, report.started_at)
    for target, count in failed.items():
        counts = report.connections.get(target)
        if counts is None or not count:
            continue
        counts.failed += count
        if finish:
            with ctx.unit() as session:
                runs.finish_run(session, report.run_ids[target], counts=counts.as_dict())


def _compare(
    ctx: SyncContext,
    name: str,
    counts: Counts,
    *,
    since: datetime | None,
    full: bool,
    dry_run: bool,
    pacer: Pacer,
    progress: ReconcileProgress | None,
    keep_lock: Callable[[], None],
) -> None:
    connector = ctx.connector(name)
    reach = ctx.settings.connection(name).backfill_reach(ctx.now()) if full else None
    seen_ids: set[str] = set()
    for page in paced_pages(connector, None if full else since, pacer):
        records = []
        for record in page.records:
            external_id = connector.external_id_of(record)
            if external_id not in seen_ids:  # re-read in the overlap after a pause: compared already
                seen_ids.add(external_id)
                records.append(record)
        counts.seen += len(records)
        counts.requests += page.request_count
        result = ingest_page(ctx, name, records, pacer=pacer, listed_at=ctx.now(), reach=reach, dry_run=dry_run)
        _tally(result, counts)
        keep_lock()
        if progress is not None:
            progress.compared(name, counts)
    if full:
        with ctx.db.session() as session:
            stored_ids = tickets.stored_external_ids(session, name)
        for external_id in sorted(stored_ids - seen_ids):  # gone from the vendor's list: ask for it by id
            _tally_one(ctx, name, external_id, counts, dry_run=dry_run)


def _tally(result: PageResult, counts: Counts) -> None:
    """Add a page's outcomes to a connection's counts and items."""
    for item in result.results:
        _count(item, counts)
    counts.unchanged += len(result.unchanged)
    counts.requests += result.requests
    for key, why in result.failed:
        counts.failed += 1
        counts.items.append((key, "failed", why[:1000]))


def _count(result: IngestResult, counts: Counts) -> None:
    outcome = result.outcome
    if outcome == IngestOutcome.CREATED:
        counts.created += 1
    elif outcome in (IngestOutcome.UPDATED, IngestOutcome.DELETED):
        counts.updated += 1
    if result.closed:
        counts.closed += 1
    quiet = (IngestOutcome.UNCHANGED, IngestOutcome.STALE, IngestOutcome.ECHO, IngestOutcome.DEFERRED)
    if outcome not in quiet:  # an echo is our own write coming back: nothing to report
        detail = ", ".join(result.changed) or None
        counts.items.append((result.key, "closed" if result.closed else outcome.value, detail))


def _tally_one(ctx: SyncContext, name: str, external_id: str, counts: Counts, *, dry_run: bool) -> None:
    """Ingest one ticket by id (it is not on the vendor's list, or is the other side of a link) and count it."""
    try:
        result = ingest_ticket(ctx, name, external_id, dry_run=dry_run)
    except PsaBridgeError as exc:
        counts.failed += 1
        counts.items.append((ticket_key(name, external_id), "failed", str(exc)[:1000]))
        return
    _count(result, counts)


def _repair_links(ctx: SyncContext, names: list[str], report: ReconcileReport, *, dry_run: bool) -> None:
    """Repair the mirrors with a side in the reconciled connections (counted on the source's connection)."""
    with ctx.db.session() as session:
        touching = links.links_touching(session, names)
    for link in touching:
        counts = report.connections.get(link.source_connection) or report.connections[names[0]]
        for key in (link.source_key, link.target_key):  # a side whose connection was not compared: fetch it fresh
            if key is not None and split_ticket_key(key)[0] not in names:
                _tally_one(ctx, *split_ticket_key(key), Counts(), dry_run=dry_run)
        try:
            _repair_link(ctx, link.id, counts, dry_run=dry_run)
        except PsaBridgeError as exc:
            counts.failed += 1
            counts.items.append((link.source_key, "failed", str(exc)[:1000]))


def _repair_link(ctx: SyncContext, link_id: int, counts: Counts, *, dry_run: bool) -> None:
    dispatch: list[QueuedEntry] = []
    with ctx.unit(dry_run=dry_run) as session:
        link = links.get_link(session, link_id)
        assert link is not None
        settings = ctx.link(link.name)
        source = tickets.load_ticket(session, link.source_key)
        if settings is None or source is None:
            return
        actions = _link_drift(ctx, session, link, settings, source)
        if actions:
            keys = [a.idempotency_key() for a in actions]
            fresh = len(outbox.enqueue_actions(session, actions, now=ctx.now())) + outbox.reopen(
                session, keys, ctx.now()
            )
            dispatch = outbox.outbox_rows(session, keys)
            if fresh:  # the same repair done before (a value the other side cannot hold) is not counted again
                counts.repaired += fresh
                counts.items.append((link.source_key, "repaired", ", ".join(sorted({a.type for a in actions}))))
    if not dry_run:
        queue_actions(ctx, dispatch)


def _link_drift(
    ctx: SyncContext, session: Session, link: MirrorLink, settings: LinkSettings, source: Ticket
) -> list[Action]:
    if not link.is_created:
        action = new_mirror(settings, source)
        if action is None:
            return []
        status = outbox.status_of(session, action.idempotency_key())
        return [action] if status is None or status in GAVE_UP else []  # else it is on its way
    assert link.target_key is not None
    target = tickets.load_ticket(session, link.target_key)
    if target is None or outbox.count_unfinished(session, [link.source_key, link.target_key]):
        return []  # not stored yet, or writes on their way: compare once they landed
    actions: list[Action] = []
    data = {"from": source.model_dump(mode="json"), "to": target.model_dump(mode="json")}
    sync: dict[str, Any] = {**link.sync}
    for owner, other, ticket in (("from", "to", target), ("to", "from", source)):
        fields = {
            name: data[owner].get(name)
            for name in MIRROR_FIELDS
            if settings.own.get(name) == owner
            and data[owner].get(name) is not None
            and data[owner].get(name) != data[other].get(name)
        }
        if fields:
            digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
            actions.append(
                SetFields(
                    ticket_key=ticket.key,
                    target=ticket.connection,
                    origin=f"{mirror_origin(settings)}:repair@{digest}",
                    fields=fields,
                    reason=f"reconcile: {', '.join(sorted(fields))} differ from {owner} side",
                )
            )
            sync[other] = {**sync.get(other, {}), **fields}
    links.set_sync(session, link.id, sync)
    link = replace(link, sync=sync)
    # Notes and time entries not carried yet (fields were compared by value above).
    for ticket in (source, target):
        user = ctx.connector(ticket.connection).integration_user()
        carried, link = plan_link(ctx, session, ticket, link, integration_user=user)
        actions.extend(a for a in carried if not isinstance(a, SetFields))
    return actions
