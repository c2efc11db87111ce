"""Read-only store queries for /readyz and /metrics: is the database there, and what the findings say now."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.rules.sla import SlaRule
from psabridge.store.models import FindingRow

__all__ = ["SLA_MILESTONES", "open_findings_by_rule", "open_sla_milestones", "ping"]

SLA_MILESTONES = ("warning", "breached")


def ping(session: Session) -> None:
    """Run the cheapest query there is (raises the driver's error when the database cannot answer)."""
    session.execute(sa.text("SELECT 1"))


def open_findings_by_rule(session: Session) -> dict[tuple[str, str], int]:
    """Open (unresolved) findings per (rule, severity)."""
    query = (
        sa.select(FindingRow.rule, FindingRow.severity, sa.func.count())
        .where(FindingRow.resolved_at.is_(None))
        .group_by(FindingRow.rule, FindingRow.severity)
    )
    return {(str(rule), str(severity)): int(count) for rule, severity, count in session.execute(query)}


def open_sla_milestones(session: Session) -> dict[str, int]:
    """Open SLA findings per milestone: ``warning`` (a target running out), ``breached`` (missed)."""
    counts = dict.fromkeys(SLA_MILESTONES, 0)
    query = (
        sa.select(FindingRow.code, sa.func.count())
        .where(FindingRow.resolved_at.is_(None), FindingRow.rule == SlaRule.id)  # the clocks' milestones
        .group_by(FindingRow.code)
    )
    for code, count in session.execute(query):
        for milestone in SLA_MILESTONES:
            if str(code).endswith(f"_{milestone}"):
                counts[milestone] += int(count)
    return counts
