"""The `psabridge` command: one entry point, one sub-command group per concern, each with --help and --config."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from psabridge.cli import (
    config_cmd,
    db_cmd,
    deliveries_cmd,
    demo_cmd,
    dlq_cmd,
    findings_cmd,
    mapping_cmd,
    reconcile_cmd,
    rules_cmd,
    sandbox_cmd,
    serve_cmd,
    status_cmd,
    webhooks_cmd,
)
from psabridge.cli.common import EXIT_CONFIG, package_version, take_log_options

app = typer.Typer(
    name="psabridge",
    help="Keep help-desk tickets in step between ConnectWise, Autotask, ServiceNow and Freshservice, "
    "and run the help-desk checklist on every ticket. Every command takes --config FILE and, anywhere on the "
    "line, -v (debug: a line per vendor request), -q/-qq (warnings/errors only) or --log-level LEVEL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"psabridge {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """The root command: --version; every command also takes -v/-q/--log-level and --config."""


app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.command("demo")(demo_cmd.demo)
app.add_typer(sandbox_cmd.app, name="sandbox")
app.add_typer(mapping_cmd.app, name="mapping")
app.add_typer(rules_cmd.app, name="rules")
app.command("reconcile")(reconcile_cmd.reconcile_cmd)
app.command("serve")(serve_cmd.serve)
app.command("worker")(serve_cmd.worker)
app.add_typer(dlq_cmd.app, name="dlq")
app.add_typer(deliveries_cmd.app, name="deliveries")
app.add_typer(webhooks_cmd.app, name="webhooks")
app.command("status")(status_cmd.status)
app.command("findings")(findings_cmd.findings)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: -v/-q/--log-level are taken from anywhere on the line, the rest goes to ``app``."""
    try:
        args = take_log_options(sys.argv[1:] if argv is None else argv)
    except typer.BadParameter as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        raise SystemExit(EXIT_CONFIG) from exc
    app(args, prog_name="psabridge")
