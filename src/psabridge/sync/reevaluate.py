"""Evaluating stored tickets on an operator's request (``psabridge rules evaluate``), through the evaluate step.

Without ``every``: tickets never evaluated (a store filled before migration 0003, or before the rules file was
switched on) and those still needing evaluation; with ``every``: every stored ticket (after a rules.yaml change).
The chosen tickets are marked as needing evaluation in one transaction and ``evaluate`` is queued for each, so the
evaluate actor (``evaluate_stored``) does the work, whichever process runs it, exactly as after a change; with
``wait`` the run watches the store until they are done (drain.py). A dry run evaluates each ticket inline in a
rolled-back transaction and queues nothing. ``act_since`` holds as always: a connection never synced gets its first
sync now (as a first reconcile does), so the history found here is evaluated and nothing is written to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psabridge.store import evaluations, outbox, sync_state
from psabridge.store.finding_reports import open_counts_among
from psabridge.sync.context import SyncContext
from psabridge.sync.drain import drain, tracking
from psabridge.sync.evaluate import evaluate_stored

__all__ = ["EvaluateCounts", "EvaluateReport", "evaluate_tickets"]


@dataclass
class EvaluateCounts:
    """One connection's figures.

    Attributes:
        tickets: tickets chosen (queued, or evaluated inline by a dry run).
        evaluated: of those, evaluated by this run (a dry run: the rules ran on them).
        left: still waiting for their evaluation when the wait ended (0 when not waited for).
        skipped: neither: the mirror side of a pair (evaluated on its source), or an evaluation that failed for good
            (``psabridge dlq list``).
        findings: open findings on those tickets (a dry run: the findings the evaluation found).
        writes: write-backs to the connection's tickets the evaluations queued (a dry run: actions that would be
            written, pages and posts included).
        held_back: actions ``act_since`` held back (history: stored findings, nothing written).
    """

    tickets: int = 0
    evaluated: int = 0
    left: int = 0
    skipped: int = 0
    findings: int = 0
    writes: int = 0
    held_back: int = 0

    def as_dict(self) -> dict[str, int]:
        """The figures by name."""
        return dict(self.__dict__)


@dataclass
class EvaluateReport:
    """What ``evaluate_tickets`` did, per connection; ``waited``: whether it waited for the work it queued."""

    dry_run: bool
    waited: bool
    connections: dict[str, EvaluateCounts] = field(default_factory=dict)

    @property
    def left(self) -> int:
        """Tickets whose evaluation had not finished when the wait ended."""
        return sum(c.left for c in self.connections.values())

    def as_dict(self) -> dict[str, Any]:
        """The report as ``rules evaluate --json`` prints it."""
        return {"dry_run": self.dry_run, "waited": self.waited, "left": self.left,
                "connections": {name: c.as_dict() for name, c in self.connections.items()}}  # fmt: skip


def evaluate_tickets(
    ctx: SyncContext,
    connections: Sequence[str],
    *,
    keys: Sequence[str] | None = None,
    every: bool = False,
    dry_run: bool = False,
    wait: float | None = None,
) -> EvaluateReport:
    """Evaluate stored tickets of ``connections`` (``keys``: only these) through the evaluate step.

    Args:
        ctx: the sync context (its queue reaches the evaluate actor).
        connections: the connections (each must be configured: a ConfigError names the known ones).
        keys: only these tickets (None: all the connection's that qualify).
        every: every stored ticket, not only those never evaluated or still needing evaluation.
        dry_run: evaluate inline, roll back, queue nothing; count what would be written.
        wait: seconds to wait for the queued evaluations and their write-backs (None: do not wait).
    """
    for name in connections:
        ctx.settings.connection(name)
    ctx.rules.rules()  # a rules file that never loaded is a RulesFileError here, before anything is queued
    with ctx.db.session() as session:
        chosen = evaluations.keys_to_evaluate(session, connections, keys=keys, every=every)
    report = EvaluateReport(dry_run=dry_run, waited=wait is not None and not dry_run)
    for name in connections:
        report.connections[name] = EvaluateCounts(tickets=len(chosen.get(name, [])))
    if dry_run:
        for name, names in chosen.items():
            _dry_run(ctx, names, report.connections[name])
        return report
    everything = [key for names in chosen.values() for key in names]
    now = ctx.now()
    with ctx.unit() as session:
        for name in chosen:  # act_since: what a never-synced connection holds is history
            sync_state.mark_first_sync(session, name, now)
        evaluations.mark_needed(session, everything, now)
    with tracking(ctx) as tracked:
        for key in everything:
            tracked.evaluate(key)
        if wait is not None:
            drain(ctx, tracked, wait)
        dispatched = tracked.snapshot()[0]
    _count(ctx, chosen, dispatched, report, now)
    return report


def _dry_run(ctx: SyncContext, keys: Sequence[str], counts: EvaluateCounts) -> None:
    for key in keys:
        result = evaluate_stored(ctx, key, force=True, dry_run=True)
        if not result.evaluated or result.evaluation is None:
            counts.skipped += 1
            continue
        counts.evaluated += 1
        counts.findings += len(result.evaluation.findings)
        counts.writes += len(result.evaluation.actions)
        counts.held_back += result.evaluation.would_write


def _count(
    ctx: SyncContext, chosen: dict[str, list[str]], dispatched: set[int], report: EvaluateReport, started: datetime
) -> None:
    everything = [key for names in chosen.values() for key in names]
    with ctx.db.session() as session:
        pending = evaluations.needing_among(session, everything)
        done = evaluations.evaluated_since(session, everything, started)
        held = evaluations.would_write_among(session, everything)
        found = open_counts_among(session, everything)
        targets = Counter(outbox.targets_of(session, dispatched).values())
    for name, names in chosen.items():
        counts = report.connections[name]
        counts.evaluated = sum(1 for k in names if k in done)
        counts.left = sum(1 for k in names if k in pending and k not in done) if report.waited else 0
        if report.waited:
            counts.skipped = len(names) - counts.evaluated - counts.left
        counts.findings = sum(found.get(k, 0) for k in names)
        counts.held_back = sum(held.get(k, 0) for k in names)
        counts.writes = targets.get(name, 0)
