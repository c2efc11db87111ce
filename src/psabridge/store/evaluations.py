"""The evaluations repository: which tickets need evaluating, what each evaluation saw, rule states, wake-ups.

Per ticket one ``evaluations`` row: ``needed_since`` (the first change not evaluated yet; None: up to date) and a
``changes`` counter every change bumps, so an evaluation clears only the changes it saw (a change stored while it ran
keeps the ticket pending); the copy last evaluated (the rules' ``before``), its error signature (the knowledge step's
lookup key), what ``act_since`` held back, and the store's hands-off flag with its reason. Beside it each rule's
saved state (``rule_states``) and one durable wake-up per ticket (``wakeups``), which the scheduler's sweep turns into
"needs evaluation" in one transaction, so a restart loses none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.model import Status, Ticket
from psabridge.rules.base import State
from psabridge.store.models import EvaluationRow, RuleStateRow, TicketRow, WakeupRow, utcnow
from psabridge.store.statements import chunks, insert_ignore

__all__ = [
    "EvaluationRecord",
    "clear_needed",
    "due_wakeups",
    "evaluated_since",
    "evaluation_record",
    "hands_off_of",
    "keys_to_evaluate",
    "mark_needed",
    "needing_among",
    "needing_evaluation",
    "park",
    "record_evaluation",
    "rule_states",
    "save_rule_states",
    "set_hands_off",
    "set_wakeup",
    "signature_count",
    "signature_fixes",
    "take_due_wakeups",
    "wakeup_of",
    "would_write_among",
    "would_write_by_connection",
]

_DONE = [Status.RESOLVED.value, Status.CLOSED.value]


@dataclass(frozen=True)
class EvaluationRecord:
    """What the store knows of a ticket's evaluations.

    Attributes:
        ticket_key: the ticket.
        needed_since: the first change not evaluated yet (None: up to date).
        changes: the change counter (pass it back to ``record_evaluation``).
        evaluated_at: when it was last evaluated (None: never).
        before: the canonical ticket as last evaluated (None: never).
        signature: the error signature of that copy.
        would_write: actions ``act_since`` held back at the last evaluation.
        hands_off: the store marks the ticket hands-off.
        hands_off_reason: why, as the operator gave it (``rules hands-off --reason``).
    """

    ticket_key: str
    needed_since: datetime | None = None
    changes: int = 0
    evaluated_at: datetime | None = None
    before: Ticket | None = None
    signature: str | None = None
    would_write: int = 0
    hands_off: bool = False
    hands_off_reason: str | None = None


def _table() -> sa.Table:
    return cast(sa.Table, EvaluationRow.__table__)


def _blank(key: str, now: datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"ticket_key": key, "needed_since": None, "changes": 0, "would_write": 0,
                           "hands_off": False, "updated_at": now}  # fmt: skip
    row.update(values)
    return row


def mark_needed(session: Session, keys: Collection[str], now: datetime) -> None:
    """Record that these tickets changed and need evaluating (set-based: two statements for any number)."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    inserted = set(
        insert_ignore(session, _table(), [_blank(k, now, needed_since=now, changes=1) for k in wanted], "ticket_key")
    )
    rest = [k for k in wanted if k not in inserted]
    for chunk in chunks(rest):
        session.execute(
            sa.update(_table())
            .where(_table().c.ticket_key.in_(chunk))
            .values(
                changes=_table().c.changes + 1,
                needed_since=sa.func.coalesce(_table().c.needed_since, now),
                updated_at=now,
            )
        )


def evaluation_record(session: Session, key: str) -> EvaluationRecord:
    """The ticket's evaluation record (an empty one when it has none)."""
    row = session.get(EvaluationRow, key, populate_existing=True)
    if row is None:
        return EvaluationRecord(key)
    return EvaluationRecord(
        key,
        row.needed_since,
        row.changes,
        row.evaluated_at,
        Ticket.model_validate(row.before) if row.before else None,
        row.signature,
        row.would_write,
        row.hands_off,
        row.hands_off_reason,
    )


def record_evaluation(
    session: Session,
    key: str,
    *,
    seen: int,
    before: Ticket,
    evaluated_at: datetime,
    signature: str | None,
    would_write: int,
) -> bool:
    """Record an evaluation of the copy ``before``; clears "needs evaluation" unless a change came after ``seen``.

    Args:
        session: the transaction.
        key: the ticket.
        seen: ``EvaluationRecord.changes`` as read when the evaluation started.
        before: the copy evaluated (the next evaluation's ``before``).
        evaluated_at: the evaluation's time.
        signature: the copy's error signature.
        would_write: the actions ``act_since`` held back.

    Returns:
        True when the ticket is now up to date (no change arrived meanwhile).
    """
    values = {"evaluated_at": evaluated_at, "before": before.model_dump(mode="json"), "signature": signature,
              "would_write": would_write, "updated_at": evaluated_at}  # fmt: skip
    if insert_ignore(session, _table(), [_blank(key, evaluated_at, **values)], "ticket_key"):
        return True
    table = _table()
    session.execute(sa.update(table).where(table.c.ticket_key == key).values(**values))
    cleared = session.execute(
        sa.update(table).where(table.c.ticket_key == key, table.c.changes == seen).values(needed_since=None)
    )
    return bool(getattr(cleared, "rowcount", 0))


def clear_needed(session: Session, key: str, *, seen: int) -> bool:
    """Mark a ticket up to date without recording an evaluation (not stored, or the other side of a mirror pair).

    Returns False when a change arrived after ``seen`` (it stays pending).
    """
    table = _table()
    cleared = session.execute(
        sa.update(table).where(table.c.ticket_key == key, table.c.changes == seen).values(needed_since=None)
    )
    return bool(getattr(cleared, "rowcount", 0))


def park(session: Session, key: str) -> None:
    """Mark a ticket up to date whatever changed (its evaluation was dead-lettered: recovery must not resend it)."""
    session.execute(sa.update(_table()).where(_table().c.ticket_key == key).values(needed_since=None))


def needing_among(session: Session, keys: Collection[str]) -> set[str]:
    """The tickets among ``keys`` that still need evaluating."""
    found: set[str] = set()
    for chunk in chunks(sorted(set(keys))):
        query = sa.select(EvaluationRow.ticket_key).where(
            EvaluationRow.ticket_key.in_(chunk), EvaluationRow.needed_since.is_not(None)
        )
        found.update(session.scalars(query))
    return found


def needing_evaluation(session: Session, *, older_than: datetime | None = None, limit: int = 10_000) -> list[str]:
    """Tickets with changes not evaluated yet (``older_than``: only those waiting since then), longest waiting first."""
    query = sa.select(EvaluationRow.ticket_key).where(EvaluationRow.needed_since.is_not(None))
    if older_than is not None:
        query = query.where(EvaluationRow.needed_since <= older_than)
    return list(session.scalars(query.order_by(EvaluationRow.needed_since, EvaluationRow.ticket_key).limit(limit)))


def would_write_by_connection(session: Session) -> dict[str, tuple[int, int]]:
    """Per connection: (tickets whose last evaluation held writes back for act_since, the actions held back)."""
    query = (
        sa.select(TicketRow.connection, sa.func.count(), sa.func.sum(EvaluationRow.would_write))
        .join(TicketRow, TicketRow.key == EvaluationRow.ticket_key)
        .where(EvaluationRow.would_write > 0)
        .group_by(TicketRow.connection)
    )
    return {str(name): (int(tickets), int(actions or 0)) for name, tickets, actions in session.execute(query)}


def set_hands_off(
    session: Session, key: str, hands_off: bool, *, reason: str | None = None, now: datetime | None = None
) -> None:
    """Mark a ticket hands-off in the store (evaluated, nothing written) or clear the mark (and its reason)."""
    now = now or utcnow()
    values = {"hands_off": hands_off, "hands_off_reason": reason if hands_off else None}
    if not insert_ignore(session, _table(), [_blank(key, now, **values)], "ticket_key"):
        session.execute(sa.update(_table()).where(_table().c.ticket_key == key).values(**values, updated_at=now))


def hands_off_of(session: Session, keys: Collection[str]) -> dict[str, str | None]:
    """The tickets among ``keys`` the store marks hands-off, each with its reason (None: none given)."""
    found: dict[str, str | None] = {}
    for chunk in chunks(sorted(set(keys))):
        query = sa.select(EvaluationRow.ticket_key, EvaluationRow.hands_off_reason).where(
            EvaluationRow.ticket_key.in_(chunk), EvaluationRow.hands_off.is_(True)
        )
        found.update({str(key): reason for key, reason in session.execute(query)})
    return found


def keys_to_evaluate(
    session: Session, connections: Collection[str], *, keys: Collection[str] | None = None, every: bool = False
) -> dict[str, list[str]]:
    """Stored tickets (not deleted) of ``connections`` to evaluate, by connection, each list sorted.

    With ``every`` all of them; otherwise those never evaluated (no evaluation record: a store filled before the
    rules were switched on; or a record without an evaluation) and those still needing evaluation. ``keys`` narrows
    the choice to these tickets.
    """
    query = (
        sa.select(TicketRow.connection, TicketRow.key)
        .outerjoin(EvaluationRow, EvaluationRow.ticket_key == TicketRow.key)
        .where(TicketRow.connection.in_(sorted(set(connections))), TicketRow.deleted_at.is_(None))
    )
    if keys is not None:
        query = query.where(TicketRow.key.in_(sorted(set(keys))))
    if not every:
        query = query.where(
            sa.or_(
                EvaluationRow.ticket_key.is_(None),
                EvaluationRow.evaluated_at.is_(None),
                EvaluationRow.needed_since.is_not(None),
            )
        )
    found: dict[str, list[str]] = {}
    for connection, key in session.execute(query.order_by(TicketRow.connection, TicketRow.key)):
        found.setdefault(str(connection), []).append(str(key))
    return found


def evaluated_since(session: Session, keys: Collection[str], since: datetime) -> set[str]:
    """The tickets among ``keys`` evaluated at or after ``since``."""
    found: set[str] = set()
    for chunk in chunks(sorted(set(keys))):
        query = sa.select(EvaluationRow.ticket_key).where(
            EvaluationRow.ticket_key.in_(chunk), EvaluationRow.evaluated_at >= since
        )
        found.update(session.scalars(query))
    return found


def would_write_among(session: Session, keys: Collection[str]) -> dict[str, int]:
    """The actions ``act_since`` held back at the last evaluation of each of ``keys`` (only those holding some)."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(keys))):
        query = sa.select(EvaluationRow.ticket_key, EvaluationRow.would_write).where(
            EvaluationRow.ticket_key.in_(chunk), EvaluationRow.would_write > 0
        )
        found.update({str(key): int(count) for key, count in session.execute(query)})
    return found


# --- rule states -----------------------------------------------------------------------------------------------------


def rule_states(session: Session, key: str) -> dict[str, State]:
    """Each rule's saved state on a ticket, by rule id."""
    query = sa.select(RuleStateRow.rule, RuleStateRow.state).where(RuleStateRow.ticket_key == key)
    return {str(rule): cast(State, state) for rule, state in session.execute(query)}


def save_rule_states(
    session: Session, key: str, states: Mapping[str, State], now: datetime, *, held: Collection[str] | None = None
) -> None:
    """Store the rules' new states on a ticket (the others stay as they are).

    ``held``: the rules with a state stored already, when the caller read them in this transaction (``rule_states``);
    None: looked up here.
    """
    if not states:
        return
    table = cast(sa.Table, RuleStateRow.__table__)
    if held is None:
        held = set(session.scalars(sa.select(RuleStateRow.rule).where(RuleStateRow.ticket_key == key)))
    inserts = [
        {"ticket_key": key, "rule": r, "state": s, "updated_at": now} for r, s in states.items() if r not in held
    ]
    updates = [{"_rule": r, "state": s, "updated_at": now} for r, s in states.items() if r in held]
    if inserts:
        session.execute(sa.insert(table), inserts)
    if updates:
        session.execute(
            sa.update(table).where(table.c.ticket_key == key, table.c.rule == sa.bindparam("_rule")), updates
        )


# --- wake-ups --------------------------------------------------------------------------------------------------------


def set_wakeup(session: Session, key: str, due_at: datetime | None) -> None:
    """The ticket's one wake-up: when its rules want to look again (None: no wake-up)."""
    table = cast(sa.Table, WakeupRow.__table__)
    if due_at is None:
        session.execute(sa.delete(table).where(table.c.ticket_key == key))
        return
    if not insert_ignore(session, table, [{"ticket_key": key, "due_at": due_at}], "ticket_key"):
        session.execute(sa.update(table).where(table.c.ticket_key == key).values(due_at=due_at))


def wakeup_of(session: Session, key: str) -> datetime | None:
    """When the ticket's wake-up is due, if it has one."""
    return session.scalar(sa.select(WakeupRow.due_at).where(WakeupRow.ticket_key == key))


def due_wakeups(session: Session, now: datetime, *, limit: int = 10_000) -> list[str]:
    """Tickets whose wake-up is due at ``now``, earliest first."""
    query = sa.select(WakeupRow.ticket_key).where(WakeupRow.due_at <= now).order_by(WakeupRow.due_at).limit(limit)
    return list(session.scalars(query))


def take_due_wakeups(session: Session, now: datetime, *, limit: int = 10_000) -> list[str]:
    """The due wake-ups turned into "needs evaluation" (their rows removed), in the caller's transaction.

    Queue their evaluations after the commit; a crash before that leaves them needing evaluation, which recovery
    queues again, so no wake-up is lost.
    """
    keys = due_wakeups(session, now, limit=limit)
    if not keys:
        return []
    table = cast(sa.Table, WakeupRow.__table__)
    for chunk in chunks(keys):
        session.execute(sa.delete(table).where(table.c.ticket_key.in_(chunk), table.c.due_at <= now))
    mark_needed(session, keys, now)
    return keys


# --- knowledge: tickets sharing an error signature -------------------------------------------------------------------


def signature_fixes(session: Session, signature: str, *, since: datetime, exclude: str, limit: int = 5) -> list[Ticket]:
    """Resolved or closed tickets (any connection, any client) last evaluated with ``signature``, newest first.

    Only tickets changed at or after ``since`` (their vendor update time), ``exclude`` (the ticket itself) left out.
    """
    query = (
        sa.select(TicketRow.data)
        .join(EvaluationRow, EvaluationRow.ticket_key == TicketRow.key)
        .where(
            EvaluationRow.signature == signature,
            TicketRow.key != exclude,
            TicketRow.status.in_(_DONE),
            TicketRow.updated_at >= since,
            TicketRow.deleted_at.is_(None),
        )
        .order_by(TicketRow.updated_at.desc(), TicketRow.key)
        .limit(limit)
    )
    return [Ticket.model_validate(data) for data in session.scalars(query)]


def signature_count(session: Session, signature: str, *, since: datetime, include: str | None = None) -> int:
    """Tickets last evaluated with ``signature`` and changed since ``since``, plus ``include`` if it is not one."""
    query = (
        sa.select(sa.func.count())
        .select_from(TicketRow)
        .join(EvaluationRow, EvaluationRow.ticket_key == TicketRow.key)
        .where(EvaluationRow.signature == signature, TicketRow.updated_at >= since, TicketRow.deleted_at.is_(None))
    )
    if include is not None:
        query = query.where(TicketRow.key != include)
    return int(session.scalar(query) or 0) + (include is not None)
