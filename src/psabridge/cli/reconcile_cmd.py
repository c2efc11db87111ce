"""`psabridge reconcile`: the cron entry. Compare every vendor with the store and mirrors with their source, repair.

Exit status: 0 all well; 1 something failed (or queued work did not finish in time); 2 configuration problems;
3 another reconcile is running. The lock is held until the work the reconcile queued is done (``--wait``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, die, is_terminal, load
from psabridge.cli.engine_opts import EXIT_LOCKED, ThreadsOption, parse_since, start_engine
from psabridge.errors import ConfigError
from psabridge.settings import parse_duration
from psabridge.sync.context import SyncContext

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
from psabridge.sync.reconcile import (
    COUNTS,
    Counts,
    ReconcileLockedError,
    ReconcileProgress,
    ReconcileReport,
    reconcile,
)


def reconcile_cmd(
    connection: Annotated[
        list[str] | None, typer.Option("--connection", help="Only this connection (repeat for more).")
    ] = None,
    since: Annotated[
        str,
        typer.Option(
            help="How far back to compare: a duration (24h, 7d) or an ISO time with a timezone; reaches past "
            "backfill_since when asked."
        ),
    ] = "24h",
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Compare every ticket the vendor lists with the store (reading only what differs); closed tickets "
            "older than backfill_since that the store does not hold stay out.",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait, holding the lock, for the work the reconcile queued (write-backs)."),
    ] = 600.0,
    time_limit: Annotated[
        str, typer.Option("--time-limit", help="How long comparing may take, waits for vendor budgets included.")
    ] = "2h",
    threads: ThreadsOption = 4,
    config: ConfigOption = None,
) -> None:
    """Compare each vendor with the store and each mirror with its source; repair drift; report counts."""
    settings = load(config, quiet_logging=as_json)
    window = parse_since(since, datetime.now(UTC))
    try:
        limit = parse_duration(time_limit).total_seconds()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--time-limit") from exc
    engine = start_engine(settings)
    try:
        if engine.embedded and not dry_run:
            engine.start_workers(threads)
        options = _Options(connection or [], window, full, dry_run, limit, None if dry_run else wait)
        try:
            report = _run(engine.context, options, show=is_terminal() and not as_json)
        except ReconcileLockedError as exc:
            typer.echo(f"reconcile: {exc}; nothing done", err=True)
            raise typer.Exit(EXIT_LOCKED) from exc
        except ConfigError as exc:
            die(str(exc), EXIT_CONFIG)
    finally:
        engine.stop()
    _print(report, as_json)
    if report.failed or report.unfinished:
        raise typer.Exit(EXIT_FAILED)


@dataclass(frozen=True)
class _Options:
    names: list[str]
    since: datetime
    full: bool
    dry_run: bool
    time_limit: float
    wait: float | None


def _run(ctx: SyncContext, options: _Options, *, show: bool) -> ReconcileReport:
    def go(progress: ReconcileProgress | None) -> ReconcileReport:
        return reconcile(
            ctx,
            connections=options.names,
            since=options.since,
            full=options.full,
            dry_run=options.dry_run,
            progress=progress,
            time_limit=options.time_limit,
            wait=options.wait,
        )

    if not show:
        return go(None)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as bar:
        return go(_Bar(bar))


class _Bar:
    """The reconcile's progress on a terminal: a line per connection, one for the drain, and the totals."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}
        self.totals: dict[str, Counts] = {}

    def _line(self, name: str, text: str) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task(name)
        self.bar.update(self.tasks[name], description=text)

    def compared(self, connection: str, counts: Counts) -> None:
        self.totals[connection] = counts
        self._line(
            connection,
            f"{connection}: {counts.seen} compared, {counts.created} created, {counts.updated} updated, "
            f"{counts.unchanged} unchanged, {counts.failed} failed",
        )
        seen = sum(c.seen for c in self.totals.values())
        stored = sum(c.created + c.updated for c in self.totals.values())
        self._line("*total*", f"total: {seen} compared, {stored} stored")

    def waiting(self, connection: str, seconds: float) -> None:
        self._line(connection, f"{connection}: waiting {seconds:.0f}s for the vendor's rate budget")

    def draining(self, done: int, total: int, eta: float | None) -> None:
        left = f", about {eta:.0f}s left" if eta is not None else ""
        self._line("*drain*", f"queued work: {done} of {total} done{left}")


def _print(report: ReconcileReport, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    head = "connection".ljust(16) + "".join(name.rjust(10) for name in COUNTS)
    typer.echo(("dry run: nothing was written\n" if report.dry_run else "") + head)
    for name, counts in report.connections.items():
        values = counts.as_dict()
        typer.echo(name.ljust(16) + "".join(str(values[c]).rjust(10) for c in COUNTS))
    if report.unfinished:
        typer.echo(
            f"{report.left} of {report.queued} queued jobs did not finish in time; they stay in the outbox (and the "
            "inbox) and are done by serve, a worker or the next run",
            err=True,
        )
