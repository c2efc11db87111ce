"""The sync-state repository: each connection's polling watermark, which only ever moves forward, and poll times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.store.models import SyncState

__all__ = [
    "PollState",
    "first_synced_at",
    "get_watermark",
    "mark_first_sync",
    "mark_poll",
    "poll_states",
    "set_watermark",
]


@dataclass(frozen=True)
class PollState:
    """Where a connection's polling stands (``psabridge status``)."""

    connection: str
    watermark: datetime | None
    last_poll_started_at: datetime | None
    last_poll_finished_at: datetime | None


def get_watermark(session: Session, connection: str) -> datetime | None:
    """The stored watermark of a connection (None: never polled, so a backfill is due)."""
    return session.scalar(sa.select(SyncState.watermark).where(SyncState.connection == connection))


def first_synced_at(session: Session, connection: str) -> datetime | None:
    """When the connection's first poll (its backfill) started, or None when it was never polled."""
    return session.scalar(sa.select(SyncState.first_synced_at).where(SyncState.connection == connection))


def set_watermark(session: Session, connection: str, watermark: datetime | None, *, run_id: int | None = None) -> None:
    """Store a connection's watermark; never moves it backwards."""
    state = session.get(SyncState, connection)
    if state is None:
        session.add(SyncState(connection=connection, watermark=watermark, last_run_id=run_id))
        session.flush()
        return
    if watermark is not None and (state.watermark is None or watermark > state.watermark):
        state.watermark = watermark
    if run_id is not None:
        state.last_run_id = run_id


def mark_poll(
    session: Session, connection: str, *, started: datetime | None = None, finished: datetime | None = None
) -> None:
    """Note when a connection's poll started or finished (for ``psabridge status``).

    The first poll's start is kept as ``first_synced_at``: the rules' default ``act_since``.
    """
    state = session.get(SyncState, connection)
    if state is None:
        state = SyncState(connection=connection, watermark=None)
        session.add(state)
    if started is not None:
        state.last_poll_started_at = started
        if state.first_synced_at is None:
            state.first_synced_at = started
    if finished is not None:
        state.last_poll_finished_at = finished


def mark_first_sync(session: Session, connection: str, at: datetime) -> None:
    """Keep ``at`` as the connection's ``first_synced_at`` unless it has one.

    A first reconcile syncs as a first poll does: what it finds is history, and the rules act only on what changes
    after it (their default ``act_since``).
    """
    state = session.get(SyncState, connection)
    if state is None:
        session.add(SyncState(connection=connection, watermark=None, first_synced_at=at))
    elif state.first_synced_at is None:
        state.first_synced_at = at


def poll_states(session: Session) -> dict[str, PollState]:
    """Every connection's polling state, by connection name."""
    return {
        row.connection: PollState(row.connection, row.watermark, row.last_poll_started_at, row.last_poll_finished_at)
        for row in session.scalars(sa.select(SyncState))
    }
