"""The `psabridge` command: one entry point, one sub-command group per concern, each with --help and --config."""

from __future__ import annotations

import typer

from psabridge.cli import (
    config_cmd,
    db_cmd,
    demo_cmd,
    dlq_cmd,
    findings_cmd,
    mapping_cmd,
    reconcile_cmd,
    rules_cmd,
    sandbox_cmd,
    serve_cmd,
    status_cmd,
)

app = typer.Typer(
    name="psabridge",
    help="Keep help-desk tickets in step between ConnectWise, Autotask, ServiceNow and Freshservice, "
    "and run the help-desk checklist on every ticket.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
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
app.command("status")(status_cmd.status)
app.command("findings")(findings_cmd.findings)


def main() -> None:
    """Console-script entry point."""
    app()
