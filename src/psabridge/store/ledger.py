"""The ledger repository: the values psabridge itself set on tickets, so a person's later change is never fought."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.rules.base import LedgerEntry
from psabridge.store.models import LedgerRow

__all__ = ["ledger_of", "record_ledger"]


def record_ledger(session: Session, key: str, entries: Iterable[LedgerEntry]) -> int:
    """Append what psabridge set on a ticket (one statement); returns how many entries."""
    values = [
        {"ticket_key": key, "field": e.field, "value": e.value, "set_at": e.set_at, "origin": e.origin[:200]}
        for e in entries
    ]
    if values:
        session.execute(sa.insert(cast(sa.Table, LedgerRow.__table__)), values)
    return len(values)


def ledger_of(session: Session, key: str) -> tuple[LedgerEntry, ...]:
    """What psabridge set on a ticket, oldest first."""
    query = (
        sa.select(LedgerRow.field, LedgerRow.value, LedgerRow.set_at, LedgerRow.origin)
        .where(LedgerRow.ticket_key == key)
        .order_by(LedgerRow.set_at, LedgerRow.id)
    )
    return tuple(LedgerEntry(name, value, set_at, origin) for name, value, set_at, origin in session.execute(query))
