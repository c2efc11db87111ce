"""`psabridge reconcile`: the cron entry. Compare every vendor with the store and mirrors with their source, repair.

Exit status: 0 all well; 1 something failed (or queued work did not finish in time); 2 configuration problems;
3 another reconcile is running.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, die, is_terminal, load
from psabridge.cli.engine_opts import EXIT_LOCKED, ThreadsOption, parse_since, start_engine
from psabridge.errors import ConfigError
from psabridge.sync.context import SyncContext
from psabridge.sync.reconcile import COUNTS, ReconcileLockedError, ReconcileReport, add_write_back_failures, reconcile


def reconcile_cmd(
    connection: Annotated[
        list[str] | None, typer.Option("--connection", help="Only this connection (repeat for more).")
    ] = None,
    since: Annotated[
        str, typer.Option(help="How far back to compare: a duration (24h, 7d) or an ISO time with a timezone.")
    ] = "24h",
    full: Annotated[
        bool, typer.Option("--full", help="Compare every ticket by content hash, not only recent.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for queued write-backs to finish (embedded broker).")
    ] = 600.0,
    threads: ThreadsOption = 4,
    config: ConfigOption = None,
) -> None:
    """Compare each vendor with the store and each mirror with its source; repair drift; report counts."""
    settings = load(config, quiet_logging=as_json)
    window = parse_since(since, datetime.now(UTC))
    engine = start_engine(settings)
    try:
        if engine.embedded and not dry_run:
            engine.start_workers(threads)
        try:
            report = _run(engine.context, connection or [], window, full, dry_run, as_json)
        except ReconcileLockedError as exc:
            typer.echo(f"reconcile: {exc}; nothing done", err=True)
            raise typer.Exit(EXIT_LOCKED) from exc
        except ConfigError as exc:
            die(str(exc), EXIT_CONFIG)
        if engine.embedded and not dry_run:
            report.unfinished = not engine.drain(wait)
            add_write_back_failures(engine.context, report)
    finally:
        engine.stop()
    _print(report, as_json)
    if report.failed or report.unfinished:
        raise typer.Exit(EXIT_FAILED)


def _run(
    ctx: SyncContext, names: list[str], since: datetime, full: bool, dry_run: bool, as_json: bool
) -> ReconcileReport:
    if not is_terminal() or as_json:
        return reconcile(ctx, connections=names, since=since, full=full, dry_run=dry_run)
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(connection: str, seen: int) -> None:
            if connection not in tasks:
                tasks[connection] = bar.add_task(connection)
            bar.update(tasks[connection], description=f"{connection}: {seen} tickets compared")

        return reconcile(ctx, connections=names, since=since, full=full, dry_run=dry_run, progress=advance)


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
        typer.echo("queued work did not finish in time; it stays in the outbox and is sent on the next run", err=True)
