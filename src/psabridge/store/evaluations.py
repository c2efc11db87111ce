"""The evaluations repository: which tickets need evaluating, what each evaluation saw, rule states, wake-ups.

Per ticket one ``evaluations`` row: ``needed_since`` (the first change not evaluated yet; None: up to date) and a
``changes`` counter every change bumps, so an evaluation clears only the changes it saw (a change stored while it ran
keeps the ticket pending); the copy last evaluated (the rules' ``before``), its error signature (the knowledge step's
lookup key), what ``act_since`` held back, and the store's hands-off flag. Beside it each rule's saved state
(``rule_states``) and one durable wake-up per ticket (``wakeups``), which the scheduler's sweep turns into "needs
evaluation" in one transaction, so a restart loses none.
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
    "count_needing_evaluation",
    "due_wakeups",
    "evaluation_record",
    "is_gone",
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
    """

    ticket_key: str
    needed_since: datetime | None = None
    changes: int = 0
    evaluated_at: datetime | None = None
    before: Ticket | None = None
    signature: str | None = None
    would_write: int = 0
    hands_off: bool = False


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


def is_gone(session: Session, key: str) -> bool:
    """Whether the ticket is marked deleted (gone from its vendor): nothing is evaluated or written for it."""
    query = sa.select(TicketRow.deleted_at.is_not(None)).where(TicketRow.key == key)
    return bool(session.scalar(query))


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


def count_needing_evaluation(session: Session) -> int:
    """How many tickets wait for an evaluation."""
    query = sa.select(sa.func.count()).where(EvaluationRow.needed_since.is_not(None))
    return int(session.scalar(query) or 0)


def would_write_by_connection(session: Session) -> dict[str, tuple[int, int]]:
    """Per connection: (tickets whose last evaluation held writes back for act_since, the actions held back)."""
    connection = sa.func.substr(EvaluationRow.ticket_key, 1, sa.func.instr(EvaluationRow.ticket_key, ":") - 1)
    if session.get_bind().dialect.name == "postgresql":
        connection = sa.func.split_part(EvaluationRow.ticket_key, ":", 1)
    query = (
        sa.select(connection, sa.func.count(), sa.func.sum(EvaluationRow.would_write))
        .where(EvaluationRow.would_write > 0)
        .group_by(connection)
    )
    return {str(name): (int(tickets), int(actions or 0)) for name, tickets, actions in session.execute(query)}


def set_hands_off(session: Session, key: str, hands_off: bool, *, now: datetime | None = None) -> None:
    """Mark a ticket hands-off in the store (evaluated, nothing written) or clear the mark."""
    now = now or utcnow()
    if not insert_ignore(session, _table(), [_blank(key, now, hands_off=hands_off)], "ticket_key"):
        session.execute(sa.update(_table()).where(_table().c.ticket_key == key).values(hands_off=hands_off))


# --- rule states -----------------------------------------------------------------------------------------------------


def rule_states(session: Session, key: str) -> dict[str, State]:
    """Each rule's saved state on a ticket, by rule id."""
    query = sa.select(RuleStateRow.rule, RuleStateRow.state).where(RuleStateRow.ticket_key == key)
    return {str(rule): cast(State, state) for rule, state in session.execute(query)}


def save_rule_states(session: Session, key: str, states: Mapping[str, State], now: datetime) -> None:
    """Store the rules' new states on a ticket (the others stay as they are)."""
    if not states:
        return
    table = cast(sa.Table, RuleStateRow.__table__)
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
        sa.select(TicketRow.key)
        .join(EvaluationRow, EvaluationRow.ticket_key == TicketRow.key)
        .where(EvaluationRow.signature == signature, TicketRow.updated_at >= since, TicketRow.deleted_at.is_(None))
    )
    keys = set(session.scalars(query))
    if include is not None:
        keys.add(include)
    return len(keys)
