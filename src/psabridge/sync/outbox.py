"""The write-back dispatcher: carries out one outbox action through mapping.outbound and the connector, exactly once.

An action goes ``pending -> sending -> done`` (or ``failed``/``dead``; store/outbox.py). ``sending`` is committed
before the vendor is called, so an action found in ``sending`` may have landed on an earlier attempt that crashed or
timed out: such a retry looks for the action's marker at the vendor first (a note, a time entry, a mirror) and only
writes when it is not there. Field changes are idempotent by nature and pages carry a dedup key. Every write, skip
and failure goes to the audit table; the values written are remembered on the ticket so their echo is recognised at
the next ingest. Each action type has its handler in ``HANDLERS``.

Back-off that survives a restart: a failed attempt that will be retried sets the row's ``next_attempt_at``: the
vendor's Retry-After when it gave one (RateLimitedError), else exponential back-off with jitter
(policy.backoff_seconds, bounded by the broker options), and the dispatcher raises BackingOffError so the worker
retries the message exactly then. No dispatch sends a row before that time: a message that arrives early anyway (a
recovery sweep or a start-up after a crash queueing every unfinished row, a duplicate) raises NotDueError, which
the actor turns into a Dramatiq retry delayed until the row is due. The message re-schedules itself; it is not
dropped, so nothing waits for the next recovery sweep.

Pages and channel posts (``NOTIFY_TYPES``) go to their own queue (``queue_actions``: the ``notify`` actor), so a P1
never waits behind backfill write-backs, and are carried out without the ticket's lock: they change no ticket. A
page may be sent again (its dedup key makes that harmless); a channel post whose earlier attempt may have landed (a
read timeout after it was sent) is not posted again: chat services do not de-duplicate, and a missing post is better
than a doubled one (the audit says ``skipped``). A failure that proves the vendor never acted (a 429, no connection,
a chat service's 5xx) leaves the row pending, so the next attempt sends without looking first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import JsonValue

from psabridge.connectors.base import NewTimeEntry
from psabridge.connectors.notifier import PageEvent
from psabridge.errors import (
    BackingOffError,
    BugError,
    ConfigError,
    MappingError,
    NotDueError,
    PermanentError,
    PsaBridgeError,
    RateLimitedError,
    TenancyError,
)
from psabridge.log import get_logger
from psabridge.markers import marker_for, with_marker
from psabridge.model import (
    Action,
    AddNote,
    AddTimeEntry,
    CreateMirror,
    PageOnCall,
    PostToChannel,
    RouteToQueue,
    SetFields,
    split_ticket_key,
    ticket_key,
)
from psabridge.rules.base import LedgerEntry
from psabridge.store import Session, audit, findings, ledger, outbox, tickets
from psabridge.store.links import LinkState
from psabridge.store.outbox import SENDABLE, OutboxEntry, OutboxStatus, QueuedEntry
from psabridge.store.transitions import field_text
from psabridge.sync.context import SyncContext
from psabridge.sync.echo import value_hash
from psabridge.sync.linking import mark_creating, mirror_link, record_mirror
from psabridge.sync.mirror import MIRROR_FIELDS, create_fields
from psabridge.sync.policy import backoff_seconds
from psabridge.sync.tenancy import REFUSED, write_refusal

__all__ = [
    "HANDLERS",
    "NOTIFY_TYPES",
    "Attempt",
    "DispatchOutcome",
    "DispatchResult",
    "Handler",
    "dispatch_action",
    "moved_with",
    "queue_actions",
]

RULES_ORIGIN = "rules."
"""The origin prefix of the rules' actions (``rules.<rule id>``): their field changes go to the ledger."""

NOTIFY_TYPES = frozenset({"page_on_call", "post_to_channel"})
"""Action types the ``notify`` queue carries (pages and channel posts): no ticket lock, no write-back behind them."""

_log = get_logger("psabridge.sync")


class DispatchOutcome(StrEnum):
    """What dispatching one outbox action did."""

    WRITTEN = "written"
    FOUND = "found"
    """An earlier attempt had landed: nothing written again."""
    SKIPPED = "skipped"
    """Nothing to write (the mirror exists), or the row failed and was not reopened."""
    ALREADY_DONE = "already_done"
    """The row was done before this dispatch."""


@dataclass(frozen=True)
class DispatchResult:
    """What dispatching one outbox action did.

    Attributes:
        outbox_id: the outbox row.
        outcome: see DispatchOutcome.
        detail: one line for logs.
    """

    outbox_id: int
    outcome: DispatchOutcome
    detail: str = ""


@dataclass(frozen=True)
class Attempt:
    """One attempt at an action.

    Attributes:
        key: the action's idempotency key (its marker at the vendor).
        maybe_landed: an earlier attempt was cut short after it may have reached the vendor: look before writing.
    """

    key: str
    maybe_landed: bool


@dataclass
class _Done:
    """A carried-out action: what to record in the same transaction as marking it done."""

    outcome: DispatchOutcome
    result: dict[str, Any] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    set_at: datetime | None = None  # the vendor's update time of a field write (the ledger's time)
    then: Callable[[Session], list[Action]] | None = None  # more work, planned inside the completing transaction
    ingest: list[tuple[str, str]] = field(default_factory=list)  # tickets to ingest after the commit


Handler = Callable[[SyncContext, Any, Attempt], _Done]
"""Carries out one action type: (context, the action, the attempt) -> what was done."""


def dispatch_action(ctx: SyncContext, outbox_id: int) -> DispatchResult:
    """Carry out outbox action ``outbox_id`` unless it is done already (or not due yet).

    Under the ticket's lock, the unfinished actions queued before it for the same ticket and target are carried out
    first, oldest first, so one ticket's write-backs reach the vendor in the order they were planned (notes read in
    the order they were written) whichever worker's message comes first; their own messages then find them done.

    Raises:
        NotDueError: the row backs off after a failed attempt until ``next_attempt_at`` (nothing was sent), or an
            earlier action for the same ticket does (this one waits for it).
        BackingOffError: this attempt failed (its cause says why); the row is due again after the back-off (pending,
            or sending if the write may have landed).
        RateLimitedError: the vendor asked to wait; the row is pending again, due after the vendor's delay.
        TenancyError: the write would cross tenants (sync/tenancy.py); refused unsent, the row is marked failed.
        ConfigError, PermanentError, BugError: retrying cannot help; the row is marked failed.
    """
    with ctx.db.session() as session:
        entry = _sendable(ctx, outbox.get_entry(session, outbox_id), outbox_id)
    if isinstance(entry, DispatchResult):
        return entry
    action = entry.action
    if action.type in NOTIFY_TYPES:
        sent = [_send(ctx, outbox_id)]
    else:
        with ctx.locks.hold(action.ticket_key):
            sent = _in_order(ctx, outbox_id, action)
    _after(ctx, sent)
    return sent[-1][0]


def _after(ctx: SyncContext, sent: list[_Sent]) -> None:
    """Queue what carried-out actions left to do: their follow-up rows and the tickets to ingest."""
    for _result, follow_ups, ingest in sent:
        queue_actions(ctx, follow_ups)
        for connection, external_id in ingest:
            ctx.queue.ingest(connection, external_id)


_Sent = tuple[DispatchResult, list[QueuedEntry], list[tuple[str, str]]]
"""What one carried-out action leaves to do after the lock: its result, follow-up rows to queue, tickets to ingest."""


def _in_order(ctx: SyncContext, outbox_id: int, action: Action) -> list[_Sent]:
    """The earlier unfinished actions for the ticket and target, then this one (under the ticket's lock)."""
    with ctx.db.session() as session:
        earlier = outbox.unfinished_before(session, outbox_id, action.ticket_key, action.target)
    sent: list[_Sent] = []
    for older in earlier:
        try:
            sent.append(_send(ctx, older))
        except (NotDueError, BackingOffError, RateLimitedError) as exc:
            _after(ctx, sent)
            # It waits or failed this attempt (its row keeps its back-off): this one waits for it.
            raise NotDueError(
                f"outbox action {outbox_id} waits for outbox action {older} of the same ticket: {exc}",
                retry_after=max(exc.retry_after or 0.0, 0.1),
                details={"outbox_id": outbox_id, "after": older},
            ) from exc
        except (ConfigError, PermanentError, BugError):
            continue  # failed for good (the row says why; a replay or reconcile reopens it): it no longer blocks
    try:
        sent.append(_send(ctx, outbox_id))
    except Exception:
        _after(ctx, sent)
        raise
    return sent


def _send(ctx: SyncContext, outbox_id: int) -> _Sent:
    """Carry out one action whose ticket's lock is held (or that needs none)."""
    with ctx.unit() as session:
        entry = _sendable(ctx, outbox.lock_entry(session, outbox_id), outbox_id)
        if isinstance(entry, DispatchResult):
            return entry, [], []
        action = entry.action
        refused = write_refusal(ctx, session, action)
        if refused is None:
            outbox.mark_sending(session, outbox_id, ctx.now())
        else:  # never sent: failed for good, dead-lettered by the worker, counted by status (audit "refused")
            outbox.record_failure(session, outbox_id, refused, now=ctx.now(), status=OutboxStatus.FAILED)
            _audit(session, action, entry.idempotency_key, REFUSED, error=refused)
    if refused is not None:
        _log.warning("write-back refused", action=action.type, ticket=action.ticket_key, target=action.target)
        raise TenancyError(refused, connection=action.target, details={"outbox_id": outbox_id})
    attempt = Attempt(entry.idempotency_key, maybe_landed=entry.status == OutboxStatus.SENDING)
    try:
        done = HANDLERS[type(action)](ctx, action, attempt)
    except Exception as exc:
        delay = _failed(ctx, entry, exc)
        if delay is None or isinstance(exc, RateLimitedError):
            raise  # final; or the vendor's own delay, which the worker honours (policy.py)
        raise BackingOffError(f"{exc} (retried in {delay:.3f}s)", retry_after=delay) from exc
    follow_ups: list[QueuedEntry] = []
    with ctx.unit() as session:
        outbox.mark_done(session, outbox_id, done.result, ctx.now())
        after = done.after if done.after is not None else done.result
        _audit(session, action, attempt.key, done.outcome, before=done.before, after=after)
        if done.written:
            tickets.add_written(session, action.ticket_key, done.written)
            ledger.record_ledger(session, action.ticket_key, _ledger_entries(action, done, done.set_at or ctx.now()))
        if done.then is not None:
            follow_ups = outbox.enqueue_new(session, done.then(session), now=ctx.now())
    _log.info("write-back", action=action.type, ticket=action.ticket_key, target=action.target, outcome=done.outcome)
    return DispatchResult(outbox_id, done.outcome), follow_ups, list(done.ingest)


def _ledger_entries(action: Action, done: _Done, now: datetime) -> list[LedgerEntry]:
    """What a rule's field change set, for the ledger (never fight a human); nothing for other write-backs."""
    if not action.origin.startswith(RULES_ORIGIN) or done.outcome != DispatchOutcome.WRITTEN:
        return []
    if isinstance(action, SetFields):
        values: dict[str, Any] = dict(action.fields)
    elif isinstance(action, RouteToQueue):
        values = {"queue": action.queue, "tier": action.tier, "assignee": action.assignee}
    else:
        return []
    return [
        LedgerEntry(name, field_text(value), now, action.origin)
        for name, value in values.items()
        if name in done.written and value is not None
    ]


def _sendable(ctx: SyncContext, entry: OutboxEntry | None, outbox_id: int) -> OutboxEntry | DispatchResult:
    """The entry when it may be sent now; else the result of a stale message.

    Raises:
        BugError: there is no such row.
        NotDueError: it is backing off.
    """
    if entry is None:
        raise BugError(f"outbox action {outbox_id} does not exist")
    if entry.status not in SENDABLE:  # done, or failed and not reopened (replay and reconcile reopen it)
        outcome = DispatchOutcome.ALREADY_DONE if entry.status == OutboxStatus.DONE else DispatchOutcome.SKIPPED
        return DispatchResult(outbox_id, outcome, f"status {entry.status}")
    now = ctx.now()
    if not entry.due(now):
        assert entry.next_attempt_at is not None
        wait = (entry.next_attempt_at - now).total_seconds()
        why = f" (attempt {entry.attempts} failed: {entry.last_error})" if entry.last_error else ""
        raise NotDueError(
            f"outbox action {outbox_id} is not due until {entry.next_attempt_at.isoformat()}{why}",
            retry_after=wait,
            details={"outbox_id": outbox_id},
        )
    return entry


def _failed(ctx: SyncContext, entry: OutboxEntry, exc: Exception) -> float | None:
    """Record a failed attempt; returns the seconds until the next one, or None when there will be none.

    Permanent errors are final (``failed``). A rate limit was refused before anything was written: pending again,
    due after the vendor's delay. Anything else (a timeout, an unexpected error) leaves the row ``sending``, due after
    the back-off: the write may have landed, so the next attempt looks for it first.
    """
    final = isinstance(exc, ConfigError | PermanentError | BugError)
    now = ctx.now()
    delay: float | None = None
    status: OutboxStatus | None = OutboxStatus.FAILED if final else None
    if not final:
        delay = backoff_seconds(
            entry.attempts + 1,
            min_backoff_ms=ctx.options.min_backoff_ms,
            max_backoff_ms=ctx.options.max_backoff_ms,
            retry_after=exc.retry_after if isinstance(exc, RateLimitedError) else None,
        )
        refused = isinstance(exc, PsaBridgeError) and bool(exc.details.get("refused"))
        if isinstance(exc, RateLimitedError) or refused:  # the vendor certainly did not act: nothing may have landed
            status = OutboxStatus.PENDING
    next_attempt_at = now + timedelta(seconds=delay) if delay is not None else None
    with ctx.unit() as session:
        outbox.record_failure(session, entry.id, str(exc), now=now, status=status, next_attempt_at=next_attempt_at)
        _audit(session, entry.action, entry.idempotency_key, "failed" if final else "retry", error=str(exc)[:2000])
    return delay


def _audit(
    session: Session,
    action: Action,
    key: str,
    outcome: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    audit.record_audit(
        session,
        connection=action.target,
        ticket_key=action.ticket_key,
        action_type=action.type,
        idempotency_key=key,
        origin=action.origin,
        request=action.model_dump(mode="json"),
        before=before,
        after=after,
        outcome=outcome,
        error=error,
    )


def _external_id(action: Action) -> str:
    """The vendor id of the ticket an action writes to (its ticket lives in the action's target connection)."""
    connection, external_id = split_ticket_key(action.ticket_key)
    if connection != action.target:
        raise BugError(f"action for {action.ticket_key} targets connection {action.target}")
    return external_id


def _add_note(ctx: SyncContext, action: AddNote, attempt: Attempt) -> _Done:
    connector = ctx.connector(action.target)
    external_id = _external_id(action)
    marker = marker_for(attempt.key)
    if attempt.maybe_landed and any(
        marker in json.dumps(note, default=str) for note in connector.list_notes(external_id)
    ):
        return _Done(DispatchOutcome.FOUND, result={"marker": marker})
    note = connector.add_note(external_id, action.text, kind=action.kind, marker=marker)
    return _Done(DispatchOutcome.WRITTEN, result={"marker": marker, "note": _brief(note)})


def _add_time_entry(ctx: SyncContext, action: AddTimeEntry, attempt: Attempt) -> _Done:
    connector = ctx.connector(action.target)
    external_id = _external_id(action)
    marker = marker_for(attempt.key)
    if attempt.maybe_landed and marker in json.dumps(connector.get_ticket(external_id), default=str):
        return _Done(DispatchOutcome.FOUND, result={"marker": marker})
    entry = NewTimeEntry(
        minutes=action.minutes, note=action.note, started_at=action.started_at or ctx.now(), who=action.who
    )
    created = connector.add_time_entry(external_id, entry, marker=marker)
    return _Done(DispatchOutcome.WRITTEN, result={"marker": marker, "time_entry": _brief(created)})


def _set_fields(ctx: SyncContext, action: SetFields, attempt: Attempt) -> _Done:
    return _write_fields(ctx, action, dict(action.fields))


def _route_to_queue(ctx: SyncContext, action: RouteToQueue, attempt: Attempt) -> _Done:
    changes: dict[str, JsonValue] = {"queue": action.queue}
    if action.tier is not None:
        changes["tier"] = action.tier
    if action.assignee is not None:
        changes["assignee"] = {"name": action.assignee}
    return _write_fields(ctx, action, changes)


def _write_fields(ctx: SyncContext, action: Action, changes: dict[str, JsonValue]) -> _Done:
    connection = action.target
    connector = ctx.connector(connection)
    external_id = _external_id(action)
    mapper = ctx.mappings.mapper(connection)
    context = ctx.mappings.context(connection)
    with ctx.db.session() as session:
        current = tickets.load_raw(session, action.ticket_key)
        stored = tickets.load_ticket(session, action.ticket_key)
    if current is None:
        current = connector.get_ticket(external_id)
    out = mapper.outbound(changes, context, connector.metadata(), current=current)
    problems = {p.field for p in out.problems if p.severity == "error"}
    if problems:
        with ctx.unit() as session:
            findings.upsert_findings(
                session, action.ticket_key, "writeback", [p.as_row() for p in out.problems], now=ctx.now()
            )
    if not out.patch:
        raise MappingError(
            f"nothing of {', '.join(sorted(changes))} can be written to {connection}: "
            + "; ".join(p.message for p in out.problems),
            connection=connection,
        )
    answer = connector.update_ticket(external_id, out.patch)
    written = {name: value_hash(value) for name, value in changes.items() if name not in problems}
    stored_data = stored.model_dump(mode="json") if stored is not None else {}
    try:
        after = mapper.inbound({**current, **answer}, context, connector.metadata()).ticket.model_dump(mode="json")
    except PsaBridgeError:
        after = {}
    # Fields the vendor derives from the ones we wrote (the mapping's ``derived:``, e.g. ServiceNow's priority from
    # impact and urgency) change too; only those, so a person's change to anything else that reached the vendor
    # meanwhile is not taken for ours.
    for name in moved_with(written, mapper.derived):
        if name in after and after[name] != stored_data.get(name):
            written.setdefault(name, value_hash(after[name]))
    before = {name: stored_data.get(name) for name in changes}
    # The ledger's time is the vendor's update time of this write when its answer shows one: the transitions a
    # person's later change makes are stamped in the vendor's time too, so "changed after psabridge set it" compares
    # one clock with itself.
    moved_at = after.get("updated_at")
    set_at = None
    if isinstance(moved_at, str) and moved_at != stored_data.get("updated_at"):
        set_at = datetime.fromisoformat(moved_at)
    return _Done(
        DispatchOutcome.WRITTEN,
        result={"patch": out.patch},
        written=written,
        before=before,
        after={"fields": dict(changes)},
        set_at=set_at,
    )


def moved_with(written: Iterable[str], derived: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Fields that may change when the fields ``written`` are written, by the mapping's ``derived`` declaration.

    A derived field changes when one it derives from is written; the fields it derives from change when it is
    written (the vendor takes those instead).
    """
    names = set(written)
    moved: set[str] = set()
    for name, sources in derived.items():
        if name in names:
            moved.update(sources)
        if names & set(sources):
            moved.add(name)
    return moved - names


def _create_mirror(ctx: SyncContext, action: CreateMirror, attempt: Attempt) -> _Done:
    link_settings = ctx.link(action.link)
    if link_settings is None:
        raise ConfigError(f"link {action.link!r} is not configured (or disabled)")
    target = action.target
    connector = ctx.connector(target)
    with ctx.db.session() as session:
        link = mirror_link(session, action.ticket_key, target)
        source = tickets.load_ticket(session, action.ticket_key)
    if link.state == LinkState.CREATED and link.target_external_id:
        return _Done(DispatchOutcome.SKIPPED, result={"target": link.target_key})
    marker = marker_for(link.marker)
    if source is None:
        raise BugError(f"mirror source {action.ticket_key} is not stored")
    # Always look first: the marker is derived from the source and the target connection, so a mirror made by an
    # earlier attempt (a lost answer, a crash, even a store restored from an old backup) is linked, not duplicated.
    external_id = connector.find_by_marker(marker)
    outcome = DispatchOutcome.FOUND
    fields = create_fields(link_settings, source)
    created: dict[str, Any] = {}
    if external_id is None:
        mapper = ctx.mappings.mapper(target)
        out = mapper.outbound(fields, ctx.mappings.context(target), connector.metadata(), create=True)
        if out.problems:
            with ctx.unit() as session:
                findings.upsert_findings(session, action.ticket_key, "mirror", [p.as_row() for p in out.problems])
        with ctx.unit() as session:
            mark_creating(session, link)
        created = connector.create_ticket(out.patch, marker=marker)
        external_id = connector.external_id_of(created)
        outcome = DispatchOutcome.WRITTEN
    target_key = ticket_key(target, external_id)
    seen_to: dict[str, Any] = {k: v for k, v in fields.items() if k in MIRROR_FIELDS}
    if created:
        try:
            mapped = ctx.mappings.mapper(target).inbound(created, ctx.mappings.context(target), connector.metadata())
            data = mapped.ticket.model_dump(mode="json")
            seen_to = {name: data.get(name) for name in MIRROR_FIELDS}
        except PsaBridgeError:
            pass  # the answer was partial: the fields we sent stand in for it

    def then(session: Session) -> list[Action]:
        return record_mirror(
            ctx, session, source, target, target_external_id=external_id, target_key=target_key, seen_to=seen_to
        )

    return _Done(
        outcome,
        result={"target": target_key, "marker": marker},
        after={"target": target_key, "fields": fields},
        then=then,
        ingest=[(target, external_id)],
    )


def _page_on_call(ctx: SyncContext, action: PageOnCall, attempt: Attempt) -> _Done:
    event = PageEvent(
        event=action.event,
        dedup_key=action.dedup_key,
        summary=action.summary,
        severity=action.severity,
        source=action.ticket_key,
        details={"reason": action.reason, "origin": action.origin},
    )
    return _Done(DispatchOutcome.WRITTEN, result=ctx.notifier(action.target).page(event))


def _post_to_channel(ctx: SyncContext, action: PostToChannel, attempt: Attempt) -> _Done:
    if attempt.maybe_landed:  # an incoming webhook cannot be read back: at most once
        reason = "an earlier attempt may have posted it (sent, no answer): not posted again"
        return _Done(DispatchOutcome.SKIPPED, result={"skipped": reason})
    return _Done(
        DispatchOutcome.WRITTEN, result=ctx.notifier(action.target).post(with_marker(action.text, attempt.key))
    )


def queue_actions(ctx: SyncContext, rows: Iterable[QueuedEntry]) -> None:
    """Hand outbox rows to their queues, after the transaction that wrote them committed.

    Pages and channel posts go to ``notify``; everything else to its target connection's ``dispatch`` queue.
    """
    for row in rows:
        if row.action_type in NOTIFY_TYPES:
            ctx.queue.notify(row.id)
        else:
            ctx.queue.dispatch(row.id, row.target)


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    """A small, JSON-safe extract of a vendor answer for the outbox result."""
    return {k: v for k, v in record.items() if isinstance(v, str | int | float | bool) and len(str(v)) < 200}


HANDLERS: dict[type[Any], Handler] = {
    AddNote: _add_note,
    AddTimeEntry: _add_time_entry,
    SetFields: _set_fields,
    RouteToQueue: _route_to_queue,
    CreateMirror: _create_mirror,
    PageOnCall: _page_on_call,
    PostToChannel: _post_to_channel,
}
"""The handler of every action type (a test checks that each member of the Action union has one)."""
