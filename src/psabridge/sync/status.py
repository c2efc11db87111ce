"""Per-connection state for ``psabridge status``: watermark, last run, backlog, dead letters, rate budget left.

Read-only: it queries the store (and Redis for a shared budget), never a vendor.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from psabridge.connectors import connector_class
from psabridge.connectors.budget import BudgetLimits, budget_for
from psabridge.connectors.rest import HttpConnector
from psabridge.errors import PsaBridgeError
from psabridge.settings import ConnectionSettings, Settings
from psabridge.store import Database
from psabridge.store.models import DeadLetter, InboxDelivery, OutboxAction, Run, SyncState
from psabridge.store.repo import OPEN_DELIVERY

__all__ = ["connection_status"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def connection_status(settings: Settings, db: Database) -> dict[str, Any]:
    """Per connection (in config order): state, last run, backlog, dead letters, budget."""
    with db.session() as session:
        states = {s.connection: s for s in session.scalars(sa.select(SyncState))}
        open_deliveries = Counter(
            dict(
                session.execute(
                    sa.select(InboxDelivery.connection, sa.func.count())
                    .where(InboxDelivery.status.in_(OPEN_DELIVERY))
                    .group_by(InboxDelivery.connection)
                ).all()
            )
        )
        failed_deliveries = Counter(
            dict(
                session.execute(
                    sa.select(InboxDelivery.connection, sa.func.count())
                    .where(InboxDelivery.status == "failed")
                    .group_by(InboxDelivery.connection)
                ).all()
            )
        )
        outbox = Counter(
            {
                (target, status): count
                for target, status, count in session.execute(
                    sa.select(OutboxAction.target, OutboxAction.status, sa.func.count()).group_by(
                        OutboxAction.target, OutboxAction.status
                    )
                )
            }
        )
        dead: Counter[str] = Counter()
        dispatch_targets = dict(session.execute(sa.select(OutboxAction.id, OutboxAction.target)).all())
        for actor, args in session.execute(
            sa.select(DeadLetter.actor, DeadLetter.args).where(DeadLetter.replayed_at.is_(None))
        ):
            if actor == "dispatch" and args:
                dead[str(dispatch_targets.get(int(args[0]), "?"))] += 1
            elif args:
                dead[str(args[0])] += 1
        out: dict[str, Any] = {}
        for conn in settings.connections:
            state = states.get(conn.name)
            last = session.scalars(
                sa.select(Run).where(Run.connection == conn.name).order_by(Run.started_at.desc(), Run.id.desc())
            ).first()
            out[conn.name] = {
                "system": conn.system.value,
                "enabled": conn.enabled,
                "watermark": _iso(state.watermark) if state else None,
                "last_poll_finished_at": _iso(state.last_poll_finished_at) if state else None,
                "last_run": None
                if last is None
                else {
                    "kind": last.kind,
                    "status": last.status,
                    "started_at": _iso(last.started_at),
                    "finished_at": _iso(last.finished_at),
                    "counts": dict(last.counts),
                    "error": last.error,
                },
                "backlog": {
                    "deliveries": int(open_deliveries.get(conn.name, 0)),
                    "write_backs": int(outbox.get((conn.name, "pending"), 0) + outbox.get((conn.name, "sending"), 0)),
                },
                "failed": {
                    "deliveries": int(failed_deliveries.get(conn.name, 0)),
                    "write_backs": int(outbox.get((conn.name, "failed"), 0) + outbox.get((conn.name, "dead"), 0)),
                },
                "dead_letters": int(dead.get(conn.name, 0)),
                "budget": _budget(conn, settings.broker, settings.namespace),
            }
    return out


def _budget(conn: ConnectionSettings, broker_url: str, namespace: str) -> dict[str, Any]:
    try:
        cls = connector_class(conn.system.value)
        defaults = cls.budget_defaults if issubclass(cls, HttpConnector) else BudgetLimits()
        budget = budget_for(
            conn.name, BudgetLimits.resolve(conn.rate_budget, defaults), broker_url=broker_url, namespace=namespace
        )
        snapshot = budget.snapshot()
    except PsaBridgeError as exc:
        return {"error": str(exc)}
    return {
        "limit": snapshot.limits.requests,
        "per_seconds": snapshot.limits.per,
        "remaining": snapshot.remaining,
        "shared": snapshot.shared,
    }
