"""`psabridge status`: per connection the watermark, last run, backlog, dead letters, refusals, findings, budget."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from psabridge.cli.common import ConfigOption, ConnectionOption, load, require_connection
from psabridge.store import Database, upgrade
from psabridge.sync.status import connection_status


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    connection: ConnectionOption = None,
    config: ConfigOption = None,
) -> None:
    """Show each connection's sync state and its open findings per checklist step (one's, with --connection)."""
    settings = load(config, quiet_logging=as_json)
    require_connection(settings, connection)
    upgrade(settings.database)
    db = Database(settings.database)
    try:
        report = connection_status(settings, db, only=connection)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for name, state in report.items():
        typer.echo(f"{name} ({state['system']}{'' if state['enabled'] else ', disabled'})")
        typer.echo(f"  watermark      {state['watermark'] or 'none yet (the first poll backfills)'}")
        typer.echo(f"  last run       {_run(state['last_run'])}")
        backlog, failed = state["backlog"], state["failed"]
        typer.echo(f"  backlog        {backlog['deliveries']} to ingest, {backlog['write_backs']} to write")
        typer.echo(f"  failed         {failed['deliveries']} deliveries, {failed['write_backs']} write-backs")
        typer.echo(f"  dead letters   {state['dead_letters']}")
        if state["refused_cross_tenant"]:
            typer.echo(f"  cross-tenant   {state['refused_cross_tenant']} write(s) refused (see dlq list)")
        typer.echo(f"  open findings  {_findings(state['open_findings'])}")
        if state["held_back"]["writes"]:
            held = state["held_back"]
            older = f"{held['tickets']} ticket(s) older than act_since"
            typer.echo(f"  held back      {held['writes']} write(s) on {older}")
        typer.echo(f"  rate budget    {_budget(state['budget'])}")


def _run(run: dict[str, Any] | None) -> str:
    if run is None:
        return "none"
    counts = ", ".join(f"{k} {v}" for k, v in run["counts"].items())
    when = (run["finished_at"] or run["started_at"] or "")[:19]
    return f"{run['kind']} {run['status']} at {when}" + (f" ({counts})" if counts else "")


def _findings(by_step: dict[str, int]) -> str:
    if not by_step:
        return "none"
    total = sum(by_step.values())
    # One line per checklist step (or rule, for the mapping's and mirroring's findings), most first.
    lines = [f"{total} (psabridge findings --open)"]
    lines.extend(f"                   {count:>5}  {step}" for step, count in by_step.items())
    return "\n".join(lines)


def _budget(budget: dict[str, Any]) -> str:
    if "error" in budget:
        return f"unknown ({budget['error']})"
    parts = [f"{w['name']} {w['remaining']} of {w['limit']} per {w['per_seconds']:g}s left" for w in budget["windows"]]
    if budget["concurrency"] is not None:
        parts.append(f"{budget['concurrency']} in flight per endpoint")
    if not parts:
        return "no limit configured"
    scope = "shared" if budget["shared"] else "this process only"
    return "; ".join(parts) + f" ({scope})"
