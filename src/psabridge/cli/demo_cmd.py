"""`psabridge demo`: the main job on the embedded default, end to end in one process against the built-in sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from psabridge.cli.common import EXIT_FAILED, die, require_sandbox
from psabridge.demo import DemoOptions, DemoReport, run_demo
from psabridge.log import configure_logging


def demo(
    tickets: Annotated[int, typer.Option(min=1, max=100_000, help="Seed tickets per vendor.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the generated MSP world and its tickets.")] = 0,
    folder: Annotated[
        Path, typer.Option(help="Where the generated configuration, its secrets and the SQLite store go.")
    ] = Path("var/demo"),
    threads: Annotated[int, typer.Option(min=1, max=64, help="In-process worker threads.")] = 8,
    wait: Annotated[float, typer.Option(min=1, help="Longest wait, in seconds, for each step's queued work.")] = 300.0,
) -> None:
    """Run the bridge on the embedded default (SQLite, in-process broker) against the built-in vendor sandbox.

    Starts the simulators of ConnectWise, Autotask, ServiceNow, Freshservice, PagerDuty, Opsgenie and a chat
    webhook on ephemeral loopback ports, writes a configuration for them into FOLDER, backfills every connection,
    mirrors a client's ServiceNow P1 into ConnectWise and carries notes and status both ways, checks that nothing
    echoes, and prints a summary. Exit status 0 when every check passed, 1 otherwise.
    """
    require_sandbox("demo")
    configure_logging("warning", "console")
    options = DemoOptions(folder=folder, tickets=tickets, seed=seed, threads=threads, wait=wait)
    try:
        report = run_demo(options, typer.echo)
    except (OSError, RuntimeError) as exc:  # a port, the folder, or work that did not finish in time
        die(f"demo failed: {exc}", EXIT_FAILED)
    _print(report, options)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _print(report: DemoReport, options: DemoOptions) -> None:
    typer.echo("\nchecks:")
    for name, passed in report.checks:
        typer.echo(f"  {'ok  ' if passed else 'FAIL'} {name}")
    typer.echo("store:")
    typer.echo("  tickets     " + ", ".join(f"{name} {count}" for name, count in report.tickets.items()))
    typer.echo("  mirrors     " + (", ".join(f"{name} {n}" for name, n in report.mirrors.items()) or "none"))
    typer.echo("  write-backs " + (", ".join(f"{status} {n}" for status, n in report.write_backs.items()) or "none"))
    typer.echo(f"  dead letters {report.dead_letters}")
    if report.findings:
        shown = ", ".join(f"{code} {count}" for code, count in report.findings[:5])
        typer.echo(f"  findings    {sum(c for _, c in report.findings)} open ({shown})")
    config = options.folder / "psabridge.yaml"
    typer.echo(f"\nthe store stays: psabridge status --config {config}")
    typer.echo("run it live: psabridge sandbox serve --config-out var/sandbox/psabridge.yaml, then in a second shell")
    typer.echo("             psabridge serve --config var/sandbox/psabridge.yaml")
    typer.echo("demo " + ("passed" if report.ok else "FAILED"))
