"""The write-back dispatcher: carries out one outbox action through mapping.outbound and the connector, exactly once.

An action goes ``pending -> sending -> done`` (or ``failed``/``dead``). ``sending`` is committed before the vendor is
called, so an action found in ``sending`` may have landed on an earlier attempt that crashed or timed out: such a
retry looks for the action's marker at the vendor first (a note, a time entry, a mirror) and only writes when it is
not there. Field changes are idempotent by nature and pages carry a dedup key. Every write, skip and failure goes to
the audit table; the values written are remembered on the ticket so their echo is recognised at the next ingest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import JsonValue
from sqlalchemy.orm import Session

from psabridge.connectors.base import NewTimeEntry
from psabridge.connectors.notifier import PageEvent
from psabridge.errors import (
    BugError,
    ConfigError,
    MappingError,
    PermanentError,
    PsaBridgeError,
    RateLimitedError,
)
from psabridge.log import get_logger
from psabridge.markers import marker_for, with_marker
from psabridge.model import (
    Action,
    ActionAdapter,
    AddNote,
    AddTimeEntry,
    CreateMirror,
    PageOnCall,
    PostToChannel,
    RouteToQueue,
    SetFields,
    ticket_key,
)
from psabridge.store import repo
from psabridge.store.models import Link, OutboxAction
from psabridge.sync.context import SyncContext
from psabridge.sync.echo import value_hash
from psabridge.sync.ingest import plan_links
from psabridge.sync.mirror import MIRROR_FIELDS, create_fields

__all__ = ["DispatchResult", "dispatch_action"]

_log = get_logger("psabridge.sync")

Outcome = Literal["written", "found", "skipped", "already_done"]

SENDABLE = ("pending", "sending")
"""Outbox states a dispatch may act on."""

DERIVED: dict[str, tuple[str, ...]] = {
    "priority": ("impact", "urgency"),
    "impact": ("priority",),
    "urgency": ("priority",),
    "queue": ("tier",),
}
"""Canonical fields a vendor may derive from another one we write (ITSM priority matrix, support tier by queue)."""


@dataclass(frozen=True)
class DispatchResult:
    """What dispatching one outbox action did.

    Attributes:
        outbox_id: the outbox row.
        outcome: written; found (an earlier attempt had landed, nothing written again); skipped (nothing to write,
            or the row failed and was not reopened); already_done (the row was done before this run).
        detail: one line for logs.
    """

    outbox_id: int
    outcome: Outcome
    detail: str = ""


@dataclass
class _Done:
    """A carried-out action: what to record in the same transaction as marking it done."""

    outcome: Outcome
    result: dict[str, Any] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    then: Callable[[Session], list[Action]] | None = None  # more work, planned inside the completing transaction
    ingest: list[tuple[str, str]] = field(default_factory=list)  # tickets to ingest after the commit


def dispatch_action(ctx: SyncContext, outbox_id: int) -> DispatchResult:
    """Carry out outbox action ``outbox_id`` unless it is done already.

    Raises:
        RetryLaterError (RateLimitedError): try again later (the row stays pending, or sending if it may have landed).
        ConfigError, PermanentError, BugError: retrying cannot help; the row is marked failed.
    """
    with ctx.db.session() as session:
        row = session.get(OutboxAction, outbox_id)
        if row is None:
            raise BugError(f"outbox action {outbox_id} does not exist")
        if row.status not in SENDABLE:
            return _not_sendable(outbox_id, row.status)
        action = ActionAdapter.validate_python(row.action)
        key = row.idempotency_key
    with ctx.locks.hold(action.ticket_key):
        with ctx.unit() as session:
            row = session.get(OutboxAction, outbox_id, with_for_update=True)
            assert row is not None
            if row.status not in SENDABLE:
                return _not_sendable(outbox_id, row.status)
            maybe_landed = row.status == "sending"
            row.status = "sending"
            row.attempts += 1
            row.updated_at = ctx.now()
        try:
            done = _carry_out(ctx, action, key, maybe_landed=maybe_landed)
        except Exception as exc:
            _failed(ctx, outbox_id, action, key, exc)
            raise
        follow_ups: list[int] = []
        with ctx.unit() as session:
            row = session.get(OutboxAction, outbox_id)
            assert row is not None
            row.status = "done"
            row.result = done.result
            row.last_error = None
            row.sent_at = row.updated_at = ctx.now()
            repo.record_audit(
                session,
                connection=action.target,
                ticket_key=action.ticket_key,
                action_type=action.type,
                idempotency_key=key,
                origin=action.origin,
                request=action.model_dump(mode="json"),
                before=done.before,
                after=done.after if done.after is not None else done.result,
                outcome=done.outcome,
            )
            if done.written:
                repo.add_written(session, action.ticket_key, done.written)
            if done.then is not None:
                keys = repo.enqueue_actions(session, done.then(session), now=ctx.now())
                follow_ups = repo.outbox_ids(session, keys)
    for follow_up in follow_ups:
        ctx.queue.dispatch(follow_up)
    for connection, external_id in done.ingest:
        ctx.queue.ingest(connection, external_id)
    _log.info("write-back", action=action.type, ticket=action.ticket_key, target=action.target, outcome=done.outcome)
    return DispatchResult(outbox_id, done.outcome)


def _not_sendable(outbox_id: int, status: str) -> DispatchResult:
    """A stale message: the row is done, or failed and not reopened (replay and reconcile reopen it)."""
    return DispatchResult(outbox_id, "already_done" if status == "done" else "skipped", f"status {status}")


def _failed(ctx: SyncContext, outbox_id: int, action: Action, key: str, exc: Exception) -> None:
    """Record a failed attempt: final for permanent errors, pending again when the vendor surely did not take it.

    Anything else (a timeout, an unexpected error) leaves the row ``sending``: the write may have landed, so the next
    attempt looks for it first.
    """
    final = isinstance(exc, ConfigError | PermanentError | BugError)
    with ctx.unit() as session:
        row = session.get(OutboxAction, outbox_id)
        if row is None:
            return
        row.last_error = str(exc)[:2000]
        row.updated_at = ctx.now()
        if final:
            row.status = "failed"
        elif isinstance(exc, RateLimitedError):
            row.status = "pending"  # refused before anything was written
        repo.record_audit(
            session,
            connection=action.target,
            ticket_key=action.ticket_key,
            action_type=action.type,
            idempotency_key=key,
            origin=action.origin,
            request=action.model_dump(mode="json"),
            outcome="failed" if final else "retry",
            error=str(exc)[:2000],
        )


def _external_id(action: Action) -> str:
    prefix = f"{action.target}:"
    if not action.ticket_key.startswith(prefix):
        raise BugError(f"action for {action.ticket_key} targets connection {action.target}")
    return action.ticket_key[len(prefix) :]


def _carry_out(ctx: SyncContext, action: Action, key: str, *, maybe_landed: bool) -> _Done:
    if isinstance(action, AddNote):
        return _add_note(ctx, action, key, maybe_landed=maybe_landed)
    if isinstance(action, AddTimeEntry):
        return _add_time_entry(ctx, action, key, maybe_landed=maybe_landed)
    if isinstance(action, SetFields):
        return _set_fields(ctx, action, dict(action.fields))
    if isinstance(action, RouteToQueue):
        changes: dict[str, JsonValue] = {"queue": action.queue}
        if action.tier is not None:
            changes["tier"] = action.tier
        if action.assignee is not None:
            changes["assignee"] = {"name": action.assignee}
        return _set_fields(ctx, action, changes)
    if isinstance(action, CreateMirror):
        return _create_mirror(ctx, action)
    if isinstance(action, PageOnCall):
        event = PageEvent(
            event=action.event,
            dedup_key=action.dedup_key,
            summary=action.summary,
            severity=action.severity,
            source=action.ticket_key,
            details={"reason": action.reason, "origin": action.origin},
        )
        return _Done("written", result=ctx.notifier(action.target).page(event))
    if isinstance(action, PostToChannel):
        return _Done("written", result=ctx.notifier(action.target).post(with_marker(action.text, key)))
    raise BugError(f"no dispatcher for action type {action.type!r}")  # pragma: no cover - the union is exhaustive


def _add_note(ctx: SyncContext, action: AddNote, key: str, *, maybe_landed: bool) -> _Done:
    connector = ctx.connector(action.target)
    external_id = _external_id(action)
    marker = marker_for(key)
    if maybe_landed and any(marker in json.dumps(note, default=str) for note in connector.list_notes(external_id)):
        return _Done("found", result={"marker": marker})
    note = connector.add_note(external_id, action.text, kind=action.kind, marker=marker)
    return _Done("written", result={"marker": marker, "note": _brief(note)})


def _add_time_entry(ctx: SyncContext, action: AddTimeEntry, key: str, *, maybe_landed: bool) -> _Done:
    connector = ctx.connector(action.target)
    external_id = _external_id(action)
    marker = marker_for(key)
    if maybe_landed and marker in json.dumps(connector.get_ticket(external_id), default=str):
        return _Done("found", result={"marker": marker})
    entry = NewTimeEntry(
        minutes=action.minutes, note=action.note, started_at=action.started_at or ctx.now(), who=action.who
    )
    created = connector.add_time_entry(external_id, entry, marker=marker)
    return _Done("written", result={"marker": marker, "time_entry": _brief(created)})


def _set_fields(ctx: SyncContext, action: Action, changes: dict[str, JsonValue]) -> _Done:
    connection = action.target
    connector = ctx.connector(connection)
    external_id = _external_id(action)
    mapper = ctx.mappings.mapper(connection)
    context = ctx.mappings.context(connection)
    with ctx.db.session() as session:
        current = repo.load_raw(session, action.ticket_key)
        stored = repo.load_ticket(session, action.ticket_key)
    if current is None:
        current = connector.get_ticket(external_id)
    out = mapper.outbound(changes, context, connector.metadata(), current=current)
    problems = {p.field for p in out.problems if p.severity == "error"}
    if problems:
        with ctx.unit() as session:
            repo.upsert_findings(
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
    # Fields the vendor derives from the ones we wrote (ServiceNow's priority from impact and urgency) change too;
    # only those, so a person's change to anything else that reached the vendor meanwhile is not taken for ours.
    for name in {d for written_name in written for d in DERIVED.get(written_name, ())}:
        if name in after and after[name] != stored_data.get(name):
            written.setdefault(name, value_hash(after[name]))
    before = {name: stored_data.get(name) for name in changes}
    return _Done(
        "written", result={"patch": out.patch}, written=written, before=before, after={"fields": dict(changes)}
    )


def _create_mirror(ctx: SyncContext, action: CreateMirror) -> _Done:
    link_settings = ctx.link(action.link)
    if link_settings is None:
        raise ConfigError(f"link {action.link!r} is not configured (or disabled)")
    target = action.target
    connector = ctx.connector(target)
    with ctx.db.session() as session:
        link = _link(session, action)
        source = repo.load_ticket(session, action.ticket_key)
        if link.state == "created" and link.target_external_id:
            return _Done("skipped", result={"target": link.target_key})
        marker = marker_for(link.marker)
    if source is None:
        raise BugError(f"mirror source {action.ticket_key} is not stored")
    # Always look first: the marker is derived from the source and the target connection, so a mirror made by an
    # earlier attempt (a lost answer, a crash, even a store restored from an old backup) is linked, not duplicated.
    external_id = connector.find_by_marker(marker)
    outcome: Outcome = "found"
    fields = create_fields(link_settings, source)
    created: dict[str, Any] = {}
    if external_id is None:
        mapper = ctx.mappings.mapper(target)
        out = mapper.outbound(fields, ctx.mappings.context(target), connector.metadata(), create=True)
        if out.problems:
            with ctx.unit() as session:
                repo.upsert_findings(session, action.ticket_key, "mirror", [p.as_row() for p in out.problems])
        with ctx.unit() as session:
            _link(session, action).state = "creating"
        created = connector.create_ticket(out.patch, marker=marker)
        external_id = connector.external_id_of(created)
        outcome = "written"
    target_key = ticket_key(target, external_id)
    seen_to: dict[str, Any] = {k: v for k, v in fields.items() if k in MIRROR_FIELDS}
    if created:
        try:
            mapped = ctx.mappings.mapper(target).inbound(created, ctx.mappings.context(target), connector.metadata())
            data = mapped.ticket.model_dump(mode="json")
            seen_to = {name: data.get(name) for name in MIRROR_FIELDS}
        except PsaBridgeError:
            pass  # the answer was partial: the fields we sent stand in for it
    source_data = source.model_dump(mode="json")

    def then(session: Session) -> list[Action]:
        link = _link(session, action)
        link.target_external_id = external_id
        link.target_key = target_key
        link.state = "created"
        link.sync = {"from": {name: source_data.get(name) for name in MIRROR_FIELDS}, "to": seen_to}
        # Notes (and time entries) the source already had are carried across now that the mirror exists.
        current = repo.load_ticket(session, action.ticket_key) or source
        return plan_links(
            ctx, session, current, [link], integration_user=ctx.connector(source.connection).integration_user()
        )

    return _Done(
        outcome,
        result={"target": target_key, "marker": marker},
        after={"target": target_key, "fields": fields},
        then=then,
        ingest=[(target, external_id)],
    )


def _link(session: Session, action: CreateMirror) -> Link:
    link = session.scalars(
        sa.select(Link).where(Link.source_key == action.ticket_key, Link.target_connection == action.target)
    ).one_or_none()
    if link is None:
        raise BugError(f"no link row for {action.ticket_key} -> {action.target}")
    return link


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    """A small, JSON-safe extract of a vendor answer for the outbox result."""
    return {k: v for k, v in record.items() if isinstance(v, str | int | float | bool) and len(str(v)) < 200}
