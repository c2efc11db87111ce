"""The runs repository: each poll and reconcile run with its counts, and what it did to each ticket (its report)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.log import mask_text
from psabridge.store.models import Run, RunItem, utcnow

__all__ = ["RunKind", "RunStatus", "RunSummary", "finish_run", "last_run", "record_run_items", "start_run"]


class RunKind(StrEnum):
    """What kind of run."""

    POLL = "poll"
    """A poll from the watermark (the first one, with none, is the backfill)."""
    RECONCILE = "reconcile"
    """A reconcile of one connection."""


class RunStatus(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    """It raised, or something in it failed (its items say what)."""


@dataclass(frozen=True)
class RunSummary:
    """A run as ``psabridge status`` shows it."""

    kind: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None


def start_run(session: Session, kind: RunKind, connection: str | None, options: dict[str, Any] | None = None) -> int:
    """Record the start of a run; returns its id."""
    run = Run(kind=kind.value, connection=connection, options=options or {})
    session.add(run)
    session.flush()
    return run.id


def record_run_items(session: Session, run_id: int, items: Iterable[tuple[str, str, str | None]]) -> None:
    """Per-ticket outcomes of a run: (ticket key, outcome, detail), written in one batch."""
    rows = [{"run_id": run_id, "ticket_key": k, "outcome": o, "detail": _masked(d)} for k, o, d in items]
    if rows:
        session.execute(sa.insert(RunItem), rows)


def _masked(text: str | None) -> str | None:
    return mask_text(text) if text is not None else None


def finish_run(session: Session, run_id: int, *, counts: dict[str, int], error: str | None = None) -> None:
    """Close a run with its counts; failed when an error is given or anything failed."""
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    run.finished_at = utcnow()
    run.counts = dict(counts)
    run.error = _masked(error)  # a vendor may echo our credentials in its error text
    run.status = RunStatus.FAILED.value if error or counts.get("failed", 0) else RunStatus.OK.value


def last_run(session: Session, connection: str) -> RunSummary | None:
    """The newest run of a connection, or None."""
    query = sa.select(Run).where(Run.connection == connection).order_by(Run.started_at.desc(), Run.id.desc())
    run = session.scalars(query).first()
    if run is None:
        return None
    return RunSummary(run.kind, RunStatus(run.status), run.started_at, run.finished_at, dict(run.counts), run.error)
