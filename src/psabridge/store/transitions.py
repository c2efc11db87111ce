"""The transitions repository: each change of a ticket's tracked fields (status, priority, queue, assignee, tier)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.model import Party, Ticket
from psabridge.rules.base import TRACKED_FIELDS, By, Transition
from psabridge.store.models import TransitionRow
from psabridge.store.statements import chunks

__all__ = ["field_text", "record_transitions", "transitions_between", "transitions_of", "transitions_of_many"]


def field_text(value: Any) -> str | None:
    """A tracked field's value as a transition stores it: enum values, an assignee's id or name, a number."""
    if value is None:
        return None
    if isinstance(value, Party):
        return value.external_id or value.name or value.email
    return str(getattr(value, "value", value))


def transitions_between(before: Ticket | None, after: Ticket, at: datetime, by: By) -> list[Transition]:
    """The transitions from ``before`` to ``after`` (none for a ticket first seen: it was created so)."""
    if before is None:
        return []
    found: list[Transition] = []
    for name in TRACKED_FIELDS:
        old, new = field_text(getattr(before, name)), field_text(getattr(after, name))
        if old != new:
            found.append(Transition(name, old, new, at, by))
    return found


def record_transitions(session: Session, rows: Iterable[tuple[str, Transition]]) -> int:
    """Store (ticket key, transition) pairs in one statement; returns how many."""
    values = [
        {"ticket_key": key, "field": t.field, "before": t.before, "after": t.after, "at": t.at, "by": t.by}
        for key, t in rows
    ]
    if values:
        session.execute(sa.insert(cast(sa.Table, TransitionRow.__table__)), values)
    return len(values)


def transitions_of(session: Session, key: str) -> tuple[Transition, ...]:
    """A ticket's transitions, oldest first."""
    return transitions_of_many(session, [key]).get(key, ())


def transitions_of_many(session: Session, keys: Sequence[str]) -> dict[str, tuple[Transition, ...]]:
    """The transitions of many tickets, oldest first each (tickets without any are absent)."""
    found: dict[str, list[Transition]] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        query = (
            sa.select(
                TransitionRow.ticket_key,
                TransitionRow.field,
                TransitionRow.before,
                TransitionRow.after,
                TransitionRow.at,
                TransitionRow.by,
            )
            .where(TransitionRow.ticket_key.in_(chunk))
            .order_by(TransitionRow.ticket_key, TransitionRow.at, TransitionRow.id)
        )
        for key, name, before, after, at, by in session.execute(query):
            who: By = "bridge" if by == "bridge" else "human"
            found.setdefault(key, []).append(Transition(name, before, after, at, who))
    return {key: tuple(items) for key, items in found.items()}
