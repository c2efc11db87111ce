"""Per-connection state for ``psabridge status``: watermark, last run, backlog, dead letters, refusals, findings.

Refusals are the cross-tenant writes the outbox refused (sync/tenancy.py); the rate budget left is shown too.

Read-only: it queries the store (and Redis for a shared budget), never a vendor.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from psabridge.connectors import connector_class
from psabridge.connectors.budget import BudgetLimits, budget_for
from psabridge.connectors.rest import HttpConnector
from psabridge.errors import PsaBridgeError
from psabridge.log import mask_text
from psabridge.settings import ConnectionSettings, Settings
from psabridge.store import Database, Session, audit, deadletters, evaluations, inbox, outbox, runs, sync_state
from psabridge.store.finding_reports import open_counts_by_step
from psabridge.store.inbox import InboxStatus
from psabridge.store.outbox import GAVE_UP, SENDABLE
from psabridge.sync.deadletters import connections_of
from psabridge.sync.tenancy import REFUSED

__all__ = ["connection_status"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def connection_status(settings: Settings, db: Database, *, only: str | None = None) -> dict[str, Any]:
    """Per connection (config order; ``only``: that one): state, last run, backlog, dead letters, findings, budget."""
    with db.session() as session:
        states = sync_state.poll_states(session)
        open_deliveries = inbox.count_by_connection(session, inbox.OPEN)
        failed_deliveries = inbox.count_by_connection(session, [InboxStatus.FAILED])
        write_backs = outbox.count_by_target(session)
        dead = _dead_letters_by_connection(session)
        refused = audit.count_by_outcome(session, REFUSED)
        open_findings = open_counts_by_step(session)
        held_back = evaluations.would_write_by_connection(session)
        out: dict[str, Any] = {}
        for conn in settings.connections:
            if only is not None and conn.name != only:
                continue
            state = states.get(conn.name)
            last = runs.last_run(session, conn.name)
            out[conn.name] = {
                "system": conn.system.value,
                "enabled": conn.enabled,
                "watermark": _iso(state.watermark) if state else None,
                "last_poll_finished_at": _iso(state.last_poll_finished_at) if state else None,
                "last_run": None
                if last is None
                else {
                    "kind": last.kind,
                    "status": last.status.value,
                    "started_at": _iso(last.started_at),
                    "finished_at": _iso(last.finished_at),
                    "counts": dict(last.counts),
                    "error": mask_text(last.error) if last.error else last.error,  # rows stored before masking
                },
                "backlog": {
                    "deliveries": int(open_deliveries.get(conn.name, 0)),
                    "write_backs": sum(write_backs.get((conn.name, status), 0) for status in SENDABLE),
                },
                "failed": {
                    "deliveries": int(failed_deliveries.get(conn.name, 0)),
                    "write_backs": sum(write_backs.get((conn.name, status), 0) for status in GAVE_UP),
                },
                "dead_letters": int(dead.get(conn.name, 0)),
                "refused_cross_tenant": int(refused.get(conn.name, 0)),
                "open_findings": open_findings.get(conn.name, {}),
                # the writes the rules held back on history (tickets last changed before act_since): findings only
                "held_back": dict(zip(("tickets", "writes"), held_back.get(conn.name, (0, 0)), strict=True)),
                "budget": _budget(conn, settings.broker, settings.namespace),
            }
    return out


def _dead_letters_by_connection(session: Session) -> Counter[str]:
    """Dead letters not replayed, per connection: a write-back's on its target, any other job's on its connection."""
    letters = deadletters.list_dead_letters(session, limit=None)
    return Counter(connections_of(session, letters).values())


def _budget(conn: ConnectionSettings, broker_url: str, namespace: str) -> dict[str, Any]:
    """The limits the connector really enforces (``budget_limits``: the vendor's, by plan, under ``rate_budget``)."""
    try:
        cls = connector_class(conn.system.value)
        limits = cls.budget_limits(conn) if issubclass(cls, HttpConnector) else BudgetLimits()
        snapshot = budget_for(conn.name, limits, broker_url=broker_url, namespace=namespace).snapshot()
    except PsaBridgeError as exc:
        return {"error": str(exc)}
    return {
        "limit": snapshot.limits.requests,
        "per_seconds": snapshot.limits.per,
        "remaining": snapshot.remaining,
        "shared": snapshot.shared,
        "concurrency": snapshot.limits.concurrency,
        "windows": [
            {
                "name": usage.window.name,
                "limit": usage.window.limit,
                "per_seconds": usage.window.per,
                "every_request": usage.window.every,
                "used": usage.used,
                "remaining": usage.remaining,
            }
            for usage in snapshot.windows
        ],
    }
