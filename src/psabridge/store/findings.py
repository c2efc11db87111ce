"""The findings repository: what rules (and the mapping) found on a ticket, replaced per rule, resolved when gone.

The checklist's findings also keep the engine's bookkeeping (``StoredFinding``): the occurrence, the rule's instance,
whether a note announced it and its resolution; ``save_evaluation`` stores what one evaluation found and resolved.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.rules.engine import FindingRecord, ResolvedFinding, StoredFinding
from psabridge.store.models import FindingRow, utcnow
from psabridge.store.statements import chunks

__all__ = [
    "FindingValues",
    "counts_by_rule_code",
    "open_counts_by_code",
    "save_evaluation",
    "stored_findings",
    "upsert_findings",
    "upsert_findings_many",
]

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
    upsert_findings_many(session, rule, {ticket_key: findings}, now=now)


def upsert_findings_many(
    session: Session,
    rule: str,
    by_ticket: Mapping[str, Sequence[FindingValues]],
    *,
    now: datetime | None = None,
    fresh: Collection[str] = (),
) -> None:
    """``upsert_findings`` for many tickets at once: one query for what they hold, one statement per kind of write.

    ``fresh`` names tickets known to hold no findings of ``rule`` yet (just created): they are not looked up.
    """
    now = now or utcnow()
    lookup = [key for key in by_ticket if key not in fresh]
    current: dict[str, dict[str, tuple[int, str, str, dict[str, Any], bool]]] = {}
    for chunk in chunks(lookup):
        query = sa.select(
            FindingRow.id,
            FindingRow.ticket_key,
            FindingRow.code,
            FindingRow.severity,
            FindingRow.message,
            FindingRow.data,
            FindingRow.resolved_at.is_(None),
        ).where(FindingRow.rule == rule, FindingRow.ticket_key.in_(chunk))
        for row_id, key, code, severity, message, data, is_open in session.execute(query):
            current.setdefault(key, {})[code] = (row_id, severity, message, data, bool(is_open))
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, findings in by_ticket.items():
        held = current.get(key, {})
        wanted = set()
        for code, severity, message, data in findings:
            if code in wanted:
                continue  # one row per code: the first report of it stands
            wanted.add(code)
            found = held.get(code)
            if found is None:
                inserts.append({"ticket_key": key, "rule": rule, "code": code, "severity": severity,
                                "message": message, "data": data, "created_at": now, "updated_at": now})  # fmt: skip
            elif found[1:] != (severity, message, data, True):
                updates.append({"_id": found[0], "severity": severity, "message": message, "data": data,
                                "resolved_at": None, "updated_at": now})  # fmt: skip
        for code, (row_id, severity, message, data, is_open) in held.items():
            if code not in wanted and is_open:
                updates.append({"_id": row_id, "severity": severity, "message": message, "data": data,
                                "resolved_at": now, "updated_at": now})  # fmt: skip
    table = cast(sa.Table, FindingRow.__table__)
    if inserts:
        session.execute(sa.insert(table), inserts)
    if updates:
        session.execute(sa.update(table).where(table.c.id == sa.bindparam("_id")), updates)


def open_counts_by_code(session: Session) -> list[tuple[str, int]]:
    """Open (unresolved) findings per code, most frequent first."""
    query = (
        sa.select(FindingRow.code, sa.func.count())
        .where(FindingRow.resolved_at.is_(None))
        .group_by(FindingRow.code)
        .order_by(sa.func.count().desc(), FindingRow.code)
    )
    return [(str(code), int(count)) for code, count in session.execute(query)]


def stored_findings(session: Session, ticket_key: str) -> tuple[StoredFinding, ...]:
    """Every finding stored for a ticket, open or resolved, as the rules engine reads them (by rule, code)."""
    query = (
        sa.select(
            FindingRow.rule,
            FindingRow.code,
            FindingRow.occurrence,
            FindingRow.instance,
            FindingRow.noted,
            FindingRow.resolved_at.is_not(None),
            FindingRow.resolution_noted,
            FindingRow.message,
        )
        .where(FindingRow.ticket_key == ticket_key)
        .order_by(FindingRow.rule, FindingRow.code)
    )
    return tuple(
        StoredFinding(rule, code, int(n), instance or "", bool(noted), bool(resolved), bool(announced), message)
        for rule, code, n, instance, noted, resolved, announced, message in session.execute(query)
    )


def save_evaluation(
    session: Session,
    ticket_key: str,
    found: Sequence[FindingRecord],
    resolved: Sequence[ResolvedFinding],
    *,
    now: datetime,
    stored: Sequence[StoredFinding] | None = None,
) -> None:
    """Store one evaluation's findings (upsert by ticket, rule and code) and mark the resolved ones.

    A finding's row keeps its severity, message, effect, step, occurrence, instance and whether it was noted; its data
    holds the evidence and the advice. A new occurrence reopens the row (its resolution not yet announced).
    ``stored``: the ticket's findings as the caller read them in this transaction (``stored_findings``); None: read
    here.
    """
    if stored is None:
        stored = stored_findings(session, ticket_key)
    held = {(f.rule, f.code): f.resolution_noted for f in stored}
    table = cast(sa.Table, FindingRow.__table__)
    row = (table.c.ticket_key == ticket_key) & (table.c.rule == sa.bindparam("_rule"))
    row &= table.c.code == sa.bindparam("_code")
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for record in found:
        f = record.finding
        values: dict[str, Any] = {
            "severity": f.severity,
            "message": f.message,
            "data": {"evidence": dict(f.evidence), "advice": f.advice},
            "occurrence": record.occurrence,
            "instance": f.instance,
            "noted": record.noted,
            "effect": record.effect,
            "step": f.step[:200],
            "resolved_at": None,
            "updated_at": now,
        }
        if (f.rule, f.code) not in held:
            inserts.append({**values, "ticket_key": ticket_key, "rule": f.rule, "code": f.code, "created_at": now,
                            "resolution_noted": False})  # fmt: skip
        else:
            announced = False if record.new else held[(f.rule, f.code)]
            updates.append({**values, "_rule": f.rule, "_code": f.code, "resolution_noted": announced})
    if inserts:
        session.execute(sa.insert(table), inserts)
    if updates:
        session.execute(sa.update(table).where(row), updates)
    for r in resolved:
        if (r.rule, r.code) not in held:
            continue
        changes: dict[str, Any] = {"updated_at": now}
        if r.newly:
            changes["resolved_at"] = now
        if r.announced:
            changes["resolution_noted"] = True
        session.execute(sa.update(table).where(row).values(**changes), {"_rule": r.rule, "_code": r.code})


def counts_by_rule_code(session: Session) -> list[tuple[str, str, int, int, int]]:
    """(rule, code, findings, of which open, of which a note announced) per rule and code, by rule and code."""
    query = (
        sa.select(
            FindingRow.rule,
            FindingRow.code,
            sa.func.count(),
            sa.func.count(FindingRow.id).filter(FindingRow.resolved_at.is_(None)),
            sa.func.count(FindingRow.id).filter(FindingRow.noted.is_(True)),
        )
        .group_by(FindingRow.rule, FindingRow.code)
        .order_by(FindingRow.rule, FindingRow.code)
    )
    return [
        (str(rule), str(code), int(total), int(unresolved), int(noted))
        for rule, code, total, unresolved, noted in session.execute(query)
    ]
