"""A minimal local stand-in for the evaluate actor (issue 11's end-to-end tests run on it until the rules
integration lands): ingest, evaluate a stored ticket with the rules engine, put its actions in the outbox and carry
them out, sweep due wake-ups.

The interface the tests use is ``RulesBench.ingest``, ``evaluate``, ``sweep`` and ``drain``. Everything the real
pipeline keeps in the store (transitions, rule states, stored findings, the ledger, wake-ups) is kept here in memory
per ticket, exactly as ``psabridge.rules``' docstring says the evaluate actor loads it; the SLA state goes to the
canonical ticket through the store (``tickets.set_sla``). When the evaluate actor is merged, ``evaluate`` delegates to
it and the tests stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psabridge.model import RouteToQueue, SetFields, Ticket
from psabridge.rules import (
    ConnectionView,
    EvaluationInput,
    LedgerEntry,
    LinkView,
    RuleSet,
    StoredFinding,
    TenantView,
    Transition,
    evaluate_ticket,
)
from psabridge.rules.base import TRACKED_FIELDS
from psabridge.rules.engine import Evaluation
from psabridge.rules.sla import sla_of
from psabridge.store import links, outbox, tickets
from psabridge.sync.context import SyncContext
from psabridge.sync.ingest import IngestOutcome, IngestResult, ingest_ticket
from psabridge.sync.outbox import DispatchResult, dispatch_action, queue_actions


class CollectingQueue:
    """The work queue of the bench: follow-up work waits here until ``RulesBench.drain``."""

    def __init__(self) -> None:
        self.waiting: list[tuple[str, tuple[Any, ...]]] = []
        self.seen: list[tuple[str, tuple[Any, ...]]] = []

    def _put(self, kind: str, *args: Any) -> None:
        self.waiting.append((kind, args))
        self.seen.append((kind, args))

    def ingest(self, connection: str, external_id: str, *, delay: float | None = None) -> None:
        self._put("ingest", connection, external_id)

    def dispatch(self, outbox_id: int, target: str | None = None, *, delay: float | None = None) -> None:
        self._put("dispatch", outbox_id)

    def notify(self, outbox_id: int) -> None:
        self._put("notify", outbox_id)

    def poll(self, connection: str, *, delay: float | None = None) -> None:
        self._put("poll", connection)


@dataclass
class _Kept:
    """What the store would keep for one ticket."""

    transitions: list[Transition] = field(default_factory=list)
    states: dict[str, Any] = field(default_factory=dict)
    findings: dict[tuple[str, str], StoredFinding] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    before: Ticket | None = None
    wake_at: datetime | None = None


class RulesBench:
    """Runs the rules as the evaluate actor will, over a real sync context (connectors, store, outbox)."""

    def __init__(self, ctx: SyncContext, rules: RuleSet) -> None:
        self.ctx = ctx
        self.rules = rules
        self.queue = ctx.queue
        assert isinstance(self.queue, CollectingQueue)
        self.kept: dict[str, _Kept] = {}
        self.evaluations: list[Evaluation] = []
        self.dispatched: list[DispatchResult] = []

    # --- ingest: a change notification, with the transitions it makes ------------------------------------------------

    def ingest(self, connection: str, external_id: str, *, at: datetime | None = None) -> IngestResult:
        """Ingest one ticket; record its transitions; evaluate it when the change is real; carry out what follows."""
        key = f"{connection}:{external_id}"
        with self.ctx.db.session() as session:
            before = tickets.load_ticket(session, key)
        result = ingest_ticket(self.ctx, connection, external_id)
        with self.ctx.db.session() as session:
            after = tickets.load_ticket(session, key)
        kept = self.kept.setdefault(key, _Kept())
        if before is not None and after is not None and result.outcome != IngestOutcome.STALE:
            moment = at or after.updated_at or self.ctx.now()
            by = "bridge" if result.outcome == IngestOutcome.ECHO else "human"
            for name in TRACKED_FIELDS:
                old, new = _text(getattr(before, name)), _text(getattr(after, name))
                if old != new:
                    kept.transitions.append(Transition(name, old, new, moment, by))  # type: ignore[arg-type]
        if result.outcome in (IngestOutcome.CREATED, IngestOutcome.UPDATED):
            self.evaluate(key, at)
        self.drain()
        return result

    # --- evaluate: the evaluate actor's work -------------------------------------------------------------------------

    def evaluate(self, key: str, now: datetime | None = None) -> Evaluation:
        """Evaluate the stored ticket at ``now``; keep its findings, states and wake-up; queue its actions."""
        now = now or self.ctx.now()
        kept = self.kept.setdefault(key, _Kept())
        with self.ctx.db.session() as session:
            ticket = tickets.load_ticket(session, key)
            pairs = links.links_of(session, key)
        assert ticket is not None, key
        link = LinkView()
        for pair in pairs:
            if pair.source_key == key:
                link = LinkView("source", pair.target_key, pair.name)
            elif pair.target_key == key:
                link = LinkView("target", pair.source_key, pair.name)
        settings = self.ctx.settings
        tenant = TenantView()
        if ticket.tenant and ticket.tenant in settings.tenants:
            tenant = TenantView.of(ticket.tenant, **settings.tenants[ticket.tenant].model_dump())
        conn = settings.connection(ticket.connection)
        data = EvaluationInput(
            ticket=ticket,
            now=now,
            before=kept.before,
            transitions=tuple(kept.transitions),
            tenant=tenant,
            link=link,
            connection=ConnectionView(conn.name, conn.system, client_owned=conn.tenant is not None),
            states=dict(kept.states),
            ledger=tuple(kept.ledger),
            findings=tuple(kept.findings.values()),
        )
        evaluation = evaluate_ticket(data, self.rules)
        self.evaluations.append(evaluation)
        if not evaluation.evaluated:
            return evaluation
        self._keep(kept, evaluation, ticket)
        sla_state = next((r.outcome.state for r in evaluation.results if r.rule == "sla"), None)
        computed = sla_of(sla_state) if sla_state else None
        with self.ctx.unit() as session:
            if computed is not None:
                stamped = computed.model_copy(update={"computed_at": now})
                tickets.set_sla(session, key, stamped.model_dump(mode="json"))
            # Due at once in real time (``now`` may be a simulated later moment: a sweep in a test).
            keys = outbox.enqueue_actions(session, evaluation.actions, now=self.ctx.now())
            rows = outbox.outbox_rows(session, keys)
        for action in evaluation.actions:
            if action.idempotency_key() in keys:
                kept.ledger.extend(_ledger(action, now))
        queue_actions(self.ctx, rows)
        return evaluation

    def _keep(self, kept: _Kept, evaluation: Evaluation, ticket: Ticket) -> None:
        for record in evaluation.findings:
            f = record.finding
            kept.findings[(f.rule, f.code)] = StoredFinding(
                f.rule, f.code, record.occurrence, f.instance, record.noted, message=f.message
            )
        for resolved in evaluation.resolved:
            old = kept.findings.get((resolved.rule, resolved.code))
            if old is not None:
                kept.findings[(resolved.rule, resolved.code)] = StoredFinding(
                    old.rule,
                    old.code,
                    old.occurrence,
                    old.instance,
                    old.noted,
                    resolved=True,
                    resolution_noted=old.resolution_noted or resolved.announced,
                    message=old.message,
                )
        kept.states.update(evaluation.states)
        kept.wake_at = evaluation.wake_at
        kept.before = ticket

    # --- the scheduler's sweep and the workers ----------------------------------------------------------------------

    def sweep(self, now: datetime) -> list[str]:
        """Evaluate every ticket whose wake-up is due at ``now`` (the scheduler's sweep); the keys evaluated."""
        due = [key for key, kept in self.kept.items() if kept.wake_at is not None and kept.wake_at <= now]
        for key in due:
            self.evaluate(key, now)
        self.drain()
        return due

    def drain(self) -> None:
        """Carry out queued work (pages and posts, write-backs, follow-up ingests) until none is left."""
        for _ in range(1000):
            if not self.queue.waiting:
                return
            kind, args = self.queue.waiting.pop(0)
            if kind in ("dispatch", "notify"):
                self.dispatched.append(dispatch_action(self.ctx, int(args[0])))
            elif kind == "ingest":
                self.ingest(str(args[0]), str(args[1]))
        raise AssertionError("the bench's queue did not drain")

    def findings(self, key: str) -> Iterator[StoredFinding]:
        """The findings kept for a ticket."""
        yield from self.kept.get(key, _Kept()).findings.values()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _ledger(action: Any, now: datetime) -> list[LedgerEntry]:
    if isinstance(action, SetFields):
        return [LedgerEntry(name, _text(value), now, action.origin) for name, value in action.fields.items()]
    if isinstance(action, RouteToQueue):
        return [LedgerEntry("queue", action.queue, now, action.origin)]
    return []
