"""`psabridge rules evaluate|hands-off`: evaluating stored tickets on request, and the store's hands-off flag.

``rules evaluate`` goes through the evaluate step (sync/reevaluate.py): the tickets are marked as needing evaluation
and the evaluate actor runs them, in this process with the embedded broker, else in ``serve``/``worker``. ``rules
hands-off`` sets or clears the flag the evaluate step reads (evaluated, nothing written on the ticket).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, die, load
from psabridge.cli.engine_opts import ThreadsOption, start_engine
from psabridge.errors import ConfigError, PsaBridgeError
from psabridge.settings import Settings
from psabridge.store import Database, Session, evaluations, tickets, upgrade
from psabridge.sync.reevaluate import EvaluateReport, evaluate_tickets

__all__ = ["evaluate", "hands_off", "resolve_ticket"]

_COUNTS = ("tickets", "evaluated", "left", "skipped", "findings", "writes", "held_back")


def resolve_ticket(session: Session, ref: str, connections: list[str] | None = None) -> str:
    """The one stored ticket ``ref`` names (key, human number or vendor id), in ``connections`` if given; or exit 1."""
    keys = tickets.find_ticket_keys(session, ref)
    if connections:
        keys = [k for k in keys if k.partition(":")[0] in connections]
    if not keys:
        where = f" in {', '.join(connections)}" if connections else ""
        die(f"no stored ticket {ref!r}{where} (give its key, human number or vendor id)", EXIT_FAILED)
    if len(keys) > 1:
        die(f"{ref!r} names {len(keys)} tickets ({', '.join(keys[:5])}): give --connection or the key", EXIT_FAILED)
    return keys[0]


def evaluate(
    connection: Annotated[
        list[str] | None,
        typer.Option("--connection", help="Only this connection (repeat for more; default: every enabled one)."),
    ] = None,
    ticket: Annotated[
        str | None, typer.Option("--ticket", help="Only this ticket: its key, human number (INC0010001, #1234) or id.")
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Every stored ticket (after a rules.yaml change), not only those never evaluated or pending."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Evaluate here and count what would be written; store and queue nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    wait: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for the evaluations and their write-backs (0: queue and return; with the embedded "
            "broker the tickets then stay pending until serve picks them up)."
        ),
    ] = 600.0,
    threads: ThreadsOption = 4,
    config: ConfigOption = None,
) -> None:
    """Evaluate stored tickets through the evaluate step and print counts per connection.

    Without --all: tickets never evaluated (a store filled before the rules were switched on) and those still
    needing evaluation; with --all: every stored ticket of the connections. The evaluate actor does the work (in this
    process with the embedded broker, else serve or a worker), so it writes exactly what an evaluation after a change
    would: history (tickets last changed before the connection's act_since) gets findings, nothing written; a
    connection never synced gets its first sync now. Exit 1 when evaluations did not finish within --wait.
    """
    settings = load(config, quiet_logging=True)
    try:
        names = _connections(settings, connection)
    except ConfigError as exc:
        die(str(exc), EXIT_CONFIG)
    try:
        engine = start_engine(settings)  # loads the rules file: a broken one exits 2 here, before anything is queued
    except ConfigError as exc:
        die(str(exc), EXIT_CONFIG)
    try:
        keys = None
        if ticket is not None:
            with engine.context.db.session() as session:
                keys = [resolve_ticket(session, ticket, connection)]
            names = [keys[0].partition(":")[0]]
        if engine.embedded and not dry_run:
            engine.start_workers(threads)
        waiting = wait if wait > 0 else None
        report = evaluate_tickets(engine.context, names, keys=keys, every=every, dry_run=dry_run, wait=waiting)
    except ConfigError as exc:
        die(str(exc), EXIT_CONFIG)
    except PsaBridgeError as exc:
        die(f"cannot evaluate: {exc}", EXIT_FAILED)
    finally:
        engine.stop()
    _print(report, as_json)
    if report.left:
        raise typer.Exit(EXIT_FAILED)


def _connections(settings: Settings, given: list[str] | None) -> list[str]:
    if given:
        for name in given:
            settings.connection(name)  # an unknown name is a ConfigError naming the connections
        return list(dict.fromkeys(given))
    return [c.name for c in settings.connections if c.enabled]


def _print(report: EvaluateReport, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    if report.dry_run:
        typer.echo("dry run: nothing was stored or written; writes = what would be written")
    elif not report.waited:
        typer.echo("queued: serve or a worker evaluates them (evaluated and findings count what is done so far)")
    typer.echo("connection".ljust(16) + "".join(name.rjust(11) for name in _COUNTS))
    for name, counts in report.connections.items():
        values = counts.as_dict()
        typer.echo(name.ljust(16) + "".join(str(values[c]).rjust(11) for c in _COUNTS))
    if report.left:
        typer.echo(
            f"{report.left} evaluation(s) did not finish in time; the tickets stay marked as needing evaluation and "
            "serve, a worker or the next run does them",
            err=True,
        )


def hands_off(
    ticket: Annotated[
        str, typer.Option("--ticket", help="The ticket: its key, human number (INC0010001, #1234) or id.")
    ],
    connection: Annotated[
        str | None, typer.Option("--connection", help="Look the ticket up in this connection only.")
    ] = None,
    off: Annotated[bool, typer.Option("--off", help="Clear the flag: the bridge writes to the ticket again.")] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown by findings and rules explain; at most 500 characters).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Mark a stored ticket hands-off: the bridge still evaluates it and stores findings, but writes nothing on it.

    For a ticket a person handles outside the checklist (a legal hold, a sensitive incident). `findings --ticket`
    and `rules explain` show the flag and its reason. --off clears it and marks the ticket as needing evaluation,
    so the next evaluation (serve, or `psabridge rules evaluate --ticket ...`) writes what the checklist holds.
    """
    if reason is not None and len(reason) > 500:
        raise typer.BadParameter(f"the reason has {len(reason)} characters; at most 500", param_hint="--reason")
    if off and reason is not None:
        raise typer.BadParameter("a reason goes with setting the flag, not with --off", param_hint="--reason")
    settings = load(config, quiet_logging=True)
    if connection is not None:
        try:
            settings.connection(connection)
        except ConfigError as exc:
            die(str(exc), EXIT_CONFIG)
    upgrade(settings.database)
    db = Database(settings.database)
    try:
        with db.transaction() as session:
            key = resolve_ticket(session, ticket, [connection] if connection else None)
            evaluations.set_hands_off(session, key, not off, reason=reason)
            if off:
                evaluations.mark_needed(session, [key], datetime.now(UTC))
    except PsaBridgeError as exc:
        die(f"cannot write the store: {exc}", EXIT_FAILED)
    finally:
        db.dispose()
    if off:
        typer.echo(f"{key}: hands-off cleared; it needs evaluation (serve does it, or psabridge rules evaluate)")
    else:
        typer.echo(f"{key}: hands-off" + (f" ({reason})" if reason else "") + ": evaluated, nothing written on it")
