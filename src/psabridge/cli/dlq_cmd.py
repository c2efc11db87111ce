"""`psabridge dlq list|show|replay|purge`: jobs that failed for good, to inspect, send again or drop."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from psabridge.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    ConfigOption,
    ConnectionOption,
    die,
    load,
    require_connection,
)
from psabridge.cli.engine_opts import start_engine
from psabridge.log import mask_secrets
from psabridge.store import Database, upgrade
from psabridge.store.deadletters import DeadLetterEntry
from psabridge.sync.deadletters import dead_letters_of, get_dead_letter, list_dead_letters, purge, replay

app = typer.Typer(help="Dead letters: jobs that will not be retried; replaying or purging them.", no_args_is_help=True)


def _row(dead: DeadLetterEntry) -> dict[str, Any]:
    return {
        "id": dead.id,
        "actor": dead.actor,
        "args": dead.args,
        "attempts": dead.attempts,
        "failed_at": dead.failed_at.isoformat(),
        "replayed_at": dead.replayed_at.isoformat() if dead.replayed_at else None,
        "error": mask_secrets(dead.error),  # stored masked; rows from before masking at rest are masked here
    }


def _db(config: Any, connection: str | None = None) -> Database:
    settings = load(config)
    require_connection(settings, connection)
    upgrade(settings.database)
    return Database(settings.database)


@app.command("list")
def list_cmd(
    include_replayed: Annotated[bool, typer.Option("--all", help="Also show replayed ones.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    connection: ConnectionOption = None,
    config: ConfigOption = None,
) -> None:
    """List dead letters, newest first (one connection's with --connection: a write-back's is its target's)."""
    db = _db(config, connection)
    try:
        rows = [_row(d) for d in dead_letters_of(db, connection, include_replayed=include_replayed, limit=limit)]
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no dead letters")
    for row in rows:
        error = row["error"]
        what = f"{error.get('type', '?')}: {str(error.get('message', ''))[:80]}"
        replayed = "  (replayed)" if row["replayed_at"] else ""
        args = " ".join(map(str, row["args"]))
        typer.echo(
            f"{row['id']:>6}  {row['failed_at'][:19]}  {row['actor']} {args}  x{row['attempts']}  {what}{replayed}"
        )


@app.command("show")
def show_cmd(
    dead_id: Annotated[int, typer.Argument(help="The dead letter's id.")], config: ConfigOption = None
) -> None:
    """Show one dead letter with its error and traceback."""
    db = _db(config)
    try:
        dead = get_dead_letter(db, dead_id)
    finally:
        db.dispose()
    if dead is None:
        die(f"no dead letter {dead_id}")
    typer.echo(json.dumps(_row(dead), indent=2))


@app.command("replay")
def replay_cmd(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids (or --all).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Replay every dead letter not replayed yet.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the replayed jobs (embedded broker).")] = 600.0,
    config: ConfigOption = None,
) -> None:
    """Send dead letters again (their write-backs go back to pending); with the embedded broker, run them now."""
    if not ids and not every:
        die("name dead letter ids, or --all", EXIT_CONFIG)
    settings = load(config)
    engine = start_engine(settings)
    try:
        wanted = list(ids or []) or [d.id for d in list_dead_letters(engine.context.db, limit=100_000)]
        if engine.embedded:
            engine.start_workers(4)
        try:
            done = replay(engine.context, wanted)
        except LookupError as exc:
            die(str(exc))
        finished = engine.drain(wait) if engine.embedded else True
        remaining = {d.id for d in list_dead_letters(engine.context.db, limit=100_000)}
    finally:
        engine.stop()
    typer.echo(f"replayed {len(done)} dead letter(s)")
    again = sorted(remaining - set(wanted))
    if again or not finished:
        typer.echo(f"failed again: {', '.join(map(str, again)) or 'not finished in time'}", err=True)
        raise typer.Exit(EXIT_FAILED)


@app.command("purge")
def purge_cmd(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids (or --connection, or --all).")] = None,
    connection: ConnectionOption = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter (of --connection, if given).")] = False,
    replayed: Annotated[bool, typer.Option("--replayed", help="Only those replayed already.")] = False,
    config: ConfigOption = None,
) -> None:
    """Delete dead letters for good: nothing is sent again (a write-back's outbox row stays failed, for `status`)."""
    if not ids and not every and connection is None:
        die("name dead letter ids, --connection NAME or --all", EXIT_CONFIG)
    db = _db(config, connection)
    try:
        letters = dead_letters_of(db, connection, include_replayed=True, limit=None)
        chosen = [d.id for d in letters if (not ids or d.id in ids) and (not replayed or d.replayed_at is not None)]
        missing = sorted(set(ids or []) - {d.id for d in letters})
        if missing:
            die(f"no dead letter {', '.join(map(str, missing))}" + (f" of {connection}" if connection else ""))
        deleted = purge(db, chosen)
    finally:
        db.dispose()
    typer.echo(f"purged {deleted} dead letter(s)")
