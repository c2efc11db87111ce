"""What /readyz and /metrics report: the database, the broker, each connection's last contact, the store's counts.

Ready means: the database answers ``SELECT 1``, the broker answers (a queue-depth query), and every enabled
connection had a successful contact with its vendor (a finished poll, from the store, or a request answered in this
process) within ``stale_after(connection)``. A connection never contacted yet counts as ready during the same span
after this process started (the first poll backfills). Reasons are short, and any credential in them is masked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dramatiq

from psabridge import metrics
from psabridge.log import mask_secrets
from psabridge.settings import ConnectionSettings
from psabridge.store import health, sync_state
from psabridge.sync.broker import broker_problem, queue_depths
from psabridge.sync.context import SyncContext
from psabridge.sync.status import connection_status

__all__ = ["MIN_STALE", "Health", "Readiness", "stale_after"]

MIN_STALE = timedelta(minutes=10)
"""The shortest span without a vendor contact that makes a connection not ready."""


def stale_after(conn: ConnectionSettings) -> timedelta:
    """How long a connection may go without a successful vendor contact: three polls, at least MIN_STALE."""
    return max(3 * conn.poll_every, MIN_STALE)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return str(mask_secrets(f"{type(exc).__name__}: {text}"[:300]))


@dataclass
class Readiness:
    """The checks' verdicts: ``down`` names each failed check with its reason; ``checks`` holds every one."""

    checks: dict[str, dict[str, Any]]

    @property
    def down(self) -> dict[str, str]:
        """The checks that failed, each with its reason."""
        return {name: str(check.get("reason", "down")) for name, check in self.checks.items() if not check["ok"]}

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.down


class Health:
    """The readiness checks and the scrape-time gauges of one running receiver.

    Args:
        ctx: the sync context (its settings and store).
        broker: the process's broker (None: not checked).
        clock: Unix time (tests move it).
        contacts: this process's last successful vendor contacts (default ``metrics.last_contacts``).
    """

    def __init__(
        self,
        ctx: SyncContext,
        broker: dramatiq.Broker | None,
        *,
        clock: Callable[[], float] = time.time,
        contacts: Callable[[], dict[str, float]] = metrics.last_contacts,
    ) -> None:
        self.ctx = ctx
        self.broker = broker
        self._clock = clock
        self._contacts = contacts
        self._started = clock()

    def readiness(self) -> Readiness:
        """Check the database, the broker and every enabled connection's last contact."""
        checks: dict[str, dict[str, Any]] = {}
        polled: dict[str, float] = {}
        try:
            with self.ctx.db.session() as session:
                health.ping(session)
                polled = {
                    name: state.last_poll_finished_at.timestamp()
                    for name, state in sync_state.poll_states(session).items()
                    if state.last_poll_finished_at is not None
                }
            checks["database"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - any driver error means "down"
            checks["database"] = {"ok": False, "reason": _reason(exc)}
        if self.broker is not None:
            problem = broker_problem(self.broker)
            checks["broker"] = {"ok": True} if problem is None else {"ok": False, "reason": str(mask_secrets(problem))}
        contacts = self._contacts()
        now = self._clock()
        for conn in self.ctx.settings.connections:
            if not conn.enabled:
                continue
            seen = max(polled.get(conn.name, 0.0), contacts.get(conn.name, 0.0)) or None
            limit = stale_after(conn).total_seconds()
            check: dict[str, Any] = {"ok": True, "last_contact": seen}
            if seen is None and now - self._started > limit:
                check = {"ok": False, "last_contact": None, "reason": f"no successful contact in {limit:g}s"}
            elif seen is not None and now - seen > limit:
                check = {"ok": False, "last_contact": seen, "reason": f"last successful contact {now - seen:.0f}s ago"}
            checks[f"connection:{conn.name}"] = check
        return Readiness(checks)

    def gauges(self) -> metrics.Gauges:
        """The readiness verdicts and the store's, broker's and budgets' figures (what is down is left out)."""
        ready = self.readiness()
        gauges = metrics.Gauges(up={name: check["ok"] for name, check in ready.checks.items()})
        gauges.last_contact = {
            name.split(":", 1)[1]: float(check["last_contact"])
            for name, check in ready.checks.items()
            if name.startswith("connection:") and check.get("last_contact")
        }
        if self.broker is not None and ready.checks["broker"]["ok"]:
            try:
                gauges.queue_depth = queue_depths(self.broker)
            except Exception:  # noqa: BLE001 - it went down since the check: leave the depths out
                gauges.up["broker"] = False
        if not ready.checks["database"]["ok"]:
            return gauges
        try:
            self._store_gauges(gauges)
        except Exception:  # noqa: BLE001 - it went down since the check: leave the store's figures out
            gauges.up["database"] = False
        return gauges

    def _store_gauges(self, gauges: metrics.Gauges) -> None:
        report = connection_status(self.ctx.settings, self.ctx.db)
        for name, state in report.items():
            gauges.inbox_backlog[name] = state["backlog"]["deliveries"]
            gauges.outbox_backlog[name] = state["backlog"]["write_backs"]
            gauges.failed_deliveries[name] = state["failed"]["deliveries"]
            gauges.failed_write_backs[name] = state["failed"]["write_backs"]
            gauges.dead_letters[name] = state["dead_letters"]
            for window in state["budget"].get("windows", []):
                gauges.budget_left[(name, str(window["name"]))] = int(window["remaining"])
        with self.ctx.db.session() as session:
            gauges.open_findings = health.open_findings_by_rule(session)
            gauges.sla = health.open_sla_milestones(session)
