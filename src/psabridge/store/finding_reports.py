"""Findings as admins read them: a filtered list with each finding's ticket, and open counts per connection and step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.store.models import FindingRow, TicketRow

__all__ = ["FindingView", "list_findings", "open_counts_by_step"]


@dataclass(frozen=True, slots=True)
class FindingView:
    """One stored finding with the ticket it is on.

    ``step`` is the checklist step of a rule's finding; findings of the mapping and of mirroring have none (their
    ``rule`` is ``mapping`` or ``mirror``). ``evidence`` and ``advice`` are what the rule relied on and recommends.
    """

    ticket_key: str
    number: str | None
    connection: str | None
    tenant: str | None
    rule: str
    code: str
    step: str | None
    severity: str
    effect: str | None
    message: str
    evidence: dict[str, Any]
    advice: str | None
    occurrence: int
    noted: bool
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None

    @property
    def is_open(self) -> bool:
        """It still holds (not resolved)."""
        return self.resolved_at is None


def list_findings(
    session: Session,
    *,
    ticket_keys: Sequence[str] | None = None,
    rule: str | None = None,
    tenant: str | None = None,
    open_only: bool = False,
    limit: int | None = None,
) -> list[FindingView]:
    """Stored findings, newest change first; each filter given must hold (``ticket_keys`` empty: none match)."""
    query = sa.select(FindingRow, TicketRow.number, TicketRow.connection, TicketRow.tenant).outerjoin(
        TicketRow, TicketRow.key == FindingRow.ticket_key
    )
    if ticket_keys is not None:
        query = query.where(FindingRow.ticket_key.in_(list(ticket_keys)))
    if rule is not None:
        query = query.where(FindingRow.rule == rule)
    if tenant is not None:
        query = query.where(TicketRow.tenant == tenant)
    if open_only:
        query = query.where(FindingRow.resolved_at.is_(None))
    query = query.order_by(FindingRow.updated_at.desc(), FindingRow.ticket_key, FindingRow.rule, FindingRow.code)
    if limit is not None:
        query = query.limit(limit)
    return [_view(row, number, connection, tenant) for row, number, connection, tenant in session.execute(query)]


def _view(row: FindingRow, number: str | None, connection: str | None, tenant: str | None) -> FindingView:
    data = row.data or {}
    # A rule's finding keeps {"evidence", "advice"}; the mapping's and mirroring's keep their own data: shown as is.
    evidence = data.get("evidence") if "evidence" in data else data
    advice = data.get("advice")
    return FindingView(
        ticket_key=row.ticket_key,
        number=number,
        connection=connection or row.ticket_key.partition(":")[0] or None,
        tenant=tenant,
        rule=row.rule,
        code=row.code,
        step=row.step,
        severity=row.severity,
        effect=row.effect,
        message=row.message,
        evidence=dict(evidence) if isinstance(evidence, dict) else {},
        advice=str(advice) if advice else None,
        occurrence=int(row.occurrence or 1),
        noted=bool(row.noted),
        created_at=row.created_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
    )


def open_counts_by_step(session: Session) -> dict[str, dict[str, int]]:
    """Open findings per connection and checklist step (a finding without a step counts under its rule)."""
    step = sa.func.coalesce(FindingRow.step, FindingRow.rule)
    query = (
        sa.select(TicketRow.connection, step, sa.func.count())
        .join(TicketRow, TicketRow.key == FindingRow.ticket_key)
        .where(FindingRow.resolved_at.is_(None))
        .group_by(TicketRow.connection, step)
        .order_by(TicketRow.connection, sa.func.count().desc(), step)
    )
    out: dict[str, dict[str, int]] = {}
    for connection, name, count in session.execute(query):
        out.setdefault(str(connection), {})[str(name)] = int(count)
    return out
