"""The findings repository: what rules (and the mapping) found on a ticket, replaced per rule, resolved when gone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.store.models import FindingRow, utcnow

__all__ = ["FindingValues", "open_counts_by_code", "upsert_findings"]

FindingValues = tuple[str, str, str, dict[str, Any]]
"""One finding as a rule reports it: (code, severity, message, data)."""


def upsert_findings(
    session: Session,
    ticket_key: str,
    rule: str,
    findings: Sequence[FindingValues],
    *,
    now: datetime | None = None,
) -> None:
    """Replace a rule's open findings on a ticket: (code, severity, message, data) each; others are resolved."""
    now = now or utcnow()
    current = {
        f.code: f
        for f in session.scalars(
            sa.select(FindingRow).where(FindingRow.ticket_key == ticket_key, FindingRow.rule == rule)
        )
    }
    wanted = {code for code, *_ in findings}
    for code, severity, message, data in findings:
        row = current.get(code)
        if row is None:
            session.add(
                FindingRow(ticket_key=ticket_key, rule=rule, code=code, severity=severity, message=message, data=data)
            )
        else:
            row.severity, row.message, row.data, row.resolved_at = severity, message, data, None
    for code, row in current.items():
        if code not in wanted and row.resolved_at is None:
            row.resolved_at = now


def open_counts_by_code(session: Session) -> list[tuple[str, int]]:
    """Open (unresolved) findings per code, most frequent first."""
    query = (
        sa.select(FindingRow.code, sa.func.count())
        .where(FindingRow.resolved_at.is_(None))
        .group_by(FindingRow.code)
        .order_by(sa.func.count().desc(), FindingRow.code)
    )
    return [(str(code), int(count)) for code, count in session.execute(query)]
