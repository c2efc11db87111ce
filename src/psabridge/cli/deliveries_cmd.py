"""`psabridge deliveries list|retry`: webhook deliveries that failed (unreadable, or their ingest dead-lettered)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, ConnectionOption, die, load, require_connection
from psabridge.cli.engine_opts import start_engine
from psabridge.store import Database, upgrade
from psabridge.store.inbox import DeliveryEntry
from psabridge.sync.deliveries import failed_deliveries, retry_deliveries

app = typer.Typer(
    help="Failed webhook deliveries (`status` counts them): list them, and retry their tickets' ingest.",
    no_args_is_help=True,
)


def _row(entry: DeliveryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "connection": entry.connection,
        "delivery_id": entry.delivery_id,
        "ticket": entry.external_id,
        "event": entry.event,
        "received_at": entry.received_at.isoformat(),
        "failed_at": entry.processed_at.isoformat() if entry.processed_at else None,
        "error": entry.error,
        "body_chars": entry.body_chars,
    }


@app.command("list")
def list_cmd(
    connection: ConnectionOption = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """List failed deliveries, newest first, with why each failed."""
    settings = load(config, quiet_logging=as_json)
    require_connection(settings, connection)
    upgrade(settings.database)
    db = Database(settings.database)
    try:
        rows = [_row(d) for d in failed_deliveries(db, connection, limit=limit)]
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no failed deliveries")
    for row in rows:
        ticket = row["ticket"] or "(unreadable)"
        error = str(row["error"] or "")[:90]
        typer.echo(f"{row['id']:>6}  {row['received_at'][:19]}  {row['connection']} {ticket}  {error}")


@app.command("retry")
def retry_cmd(
    ids: Annotated[list[int] | None, typer.Argument(help="Delivery ids (or --all).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every failed delivery (of --connection, if given).")] = False,
    connection: ConnectionOption = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the ingests (embedded broker).")] = 600.0,
    config: ConfigOption = None,
) -> None:
    """Queue the ingest of each failed delivery's ticket again (it re-reads the ticket from the vendor)."""
    if not ids and not every:
        die("name delivery ids, or --all", EXIT_CONFIG)
    settings = load(config)
    require_connection(settings, connection)
    engine = start_engine(settings)
    try:
        if engine.embedded:
            engine.start_workers(4)
        done = retry_deliveries(engine.context, ids or None, connection)
        finished = engine.drain(wait) if engine.embedded else True
    finally:
        engine.stop()
    typer.echo(f"retried {len(done.reopened)} delivery(ies): {len(done.queued)} ticket ingest(s) queued")
    for delivery_id, why in sorted(done.skipped.items()):
        typer.echo(f"not retried {delivery_id}: {why}", err=True)
    if not finished:
        typer.echo("the ingests did not finish in time", err=True)
    if (ids and done.skipped) or not finished:
        raise typer.Exit(EXIT_FAILED)
