"""`psabridge demo`: a morning at an MSP's help desk on the embedded default, against the built-in sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from psabridge.cli.common import EXIT_FAILED, die, require_sandbox
from psabridge.demo import SIZES, DemoOptions, DemoReport, run_demo
from psabridge.demo_summary import fields_written, notes_written, render_table, time_written
from psabridge.log import configure_logging

_SIZES = ", ".join(str(n) for n in SIZES)


def demo(
    tickets: Annotated[
        int, typer.Option(min=1, max=100_000, help=f"Seed tickets per vendor (tested: {_SIZES}).")
    ] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the generated MSP world and its tickets.")] = 0,
    folder: Annotated[
        Path, typer.Option(help="Where the generated configuration, rules, secrets and the SQLite store go.")
    ] = Path("var/demo"),
    threads: Annotated[int, typer.Option(min=1, max=64, help="In-process worker threads.")] = 8,
    wait: Annotated[float, typer.Option(min=1, help="Longest wait, in seconds, for each step's queued work.")] = 3600.0,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the service and the sandbox up at the end (Ctrl-C stops).")
    ] = False,
) -> None:
    """Play a morning at an MSP's help desk, end to end, on the embedded default against the built-in sandbox.

    Starts the simulators of ConnectWise, Autotask, ServiceNow, Freshservice, PagerDuty, Opsgenie and a chat
    webhook on ephemeral loopback ports (their default rate limits), writes a configuration for four clients on
    different systems and contract tiers into FOLDER (links ServiceNow to ConnectWise and Freshservice to Autotask),
    starts psabridge's webhook receiver and backfills every connection. Then people act through the vendors' APIs:
    a P1 outage, a password reset with no identity check, a ticket at the wrong priority, a bare "please assist"
    escalation, a ticket left quiet until its SLA warning, a weak resolution note and a close with no time logged;
    webhooks, polls and a reconcile carry the changes. It checks the outcomes, reconciles again to check nothing
    more is written, and prints a summary. Exit status 0 when every check passed, 1 otherwise.
    """
    require_sandbox("demo")
    configure_logging("warning", "console")
    options = DemoOptions(
        folder=folder, tickets=tickets, seed=seed, threads=threads, wait=wait, keep_running=keep_running
    )

    def finished(report: DemoReport) -> None:  # printed before --keep-running keeps everything up
        for line in summary_lines(report):
            typer.echo(line)

    try:
        report = run_demo(options, typer.echo, finished=finished)
    except (OSError, RuntimeError) as exc:  # a port, the folder, or work that did not finish in time
        die(f"demo failed: {exc}", EXIT_FAILED)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def summary_lines(report: DemoReport) -> list[str]:
    """The summary a person reads at the end: checks, totals, and where to look next."""
    s = report.summary
    lines = [""]
    rows = [("ok" if c.passed else "FAIL", c.name) for c in report.checks]
    lines += render_table("checks", ("result", "check"), rows)
    lines += [""]
    mirrors = ", ".join(f"{name} {n}" for name, n in s.mirrors.items()) or "none"
    lines += render_table("tickets synced", ("connection", "tickets"), list(s.tickets.items()))
    lines += [f"  mirrors created: {mirrors}", ""]
    totals = [
        ("notes written back", notes_written(s)),
        ("field changes written back", fields_written(s)),
        ("time entries written back", time_written(s)),
        ("write-backs not done", s.unfinished),
        ("escalations routed", s.routed),
        ("SLA warnings noted / found", "{1} / {0}".format(*s.sla.get("warnings", (0, 0)))),
        ("SLA breaches noted / found", "{1} / {0}".format(*s.sla.get("breaches", (0, 0)))),
        ("pages sent", s.pages),
        ("pages resolved", s.pages_resolved),
        ("incident channel posts", s.posts),
        ("webhooks delivered", s.webhooks),
        ("dead letters", s.dead_letters),
    ]
    lines += render_table("the morning", ("what", "count"), totals)
    lines += [""]
    steps = [(step, rule, total, unresolved, noted) for rule, step, total, unresolved, noted in s.steps]
    header = ("step", "rule", "findings", "open", "noted")
    lines += render_table("findings per checklist step", header, steps or [("-",) * 5])
    lines += [
        "  (the backfilled history gets findings but no notes: those tickets last changed before the first sync)",
        "",
    ]
    lines += render_table("the morning's tickets", ("story", "ticket"), list(report.tickets.items()))
    config = report.config or Path("var/demo/psabridge.yaml")
    number = report.tickets.get("password reset", "msp-cw #1").split(" ", 1)[-1].lstrip("#")  # a shell comment
    lines += [
        "",
        "where to look next:",
        f"  python3 run.py psabridge findings --open --config {config}",
        f"  python3 run.py psabridge rules explain --ticket {number} --connection msp-cw --config {config}",
        f"  python3 run.py psabridge status --config {config}",
        "demo " + ("passed" if report.ok else "FAILED"),
    ]
    return lines
