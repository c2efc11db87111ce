"""`psabridge mapping check|preview`: validate mapping files (also against live picklists), preview a record."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, die, load
from psabridge.connectors.base import Connector
from psabridge.default_mappings import UnknownMappingError, resolve_mapping
from psabridge.errors import PsaBridgeError
from psabridge.mapping import MappingContext, check_live, check_mapping
from psabridge.mapping.engine import Mapper
from psabridge.model import SETTABLE_FIELDS, ticket_key
from psabridge.settings import ConnectionSettings, Settings
from psabridge.store import Database, tickets
from psabridge.vendordata import VendorMetadata
from psabridge.yamlsource import Problem

app = typer.Typer(
    help="Mapping files: validate them (exit 2 on invalid files, 1 on live mismatches) and preview what a raw "
    "vendor record becomes.",
    no_args_is_help=True,
)

ConnectorFactory = Callable[[ConnectionSettings], Connector]


def _registry_factory(settings: ConnectionSettings) -> Connector:
    """The connector registry (``psabridge.connectors.get_connector``), looked up when first needed."""
    factory = getattr(importlib.import_module("psabridge.connectors"), "get_connector", None)
    if factory is None:
        raise PsaBridgeError("no connector registry is installed (psabridge.connectors.get_connector)")
    connector: Connector = factory(settings)
    return connector


connector_factory: ConnectorFactory = _registry_factory
"""How commands get a connector for a connection; tests replace it with a fake."""


def _print_problems(problems: list[Problem], prefix: str = "") -> None:
    for problem in problems:
        typer.echo(f"{prefix}{problem}", err=True)


# --- check -----------------------------------------------------------------------------------------------------------


@app.command("check")
def check(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Mapping files, or builtin:<vendor> for a default psabridge ships, to check "
            "(default: every connection's file and the files beside them)."
        ),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Also compare mapped values with each connection's live metadata.")
    ] = False,
    connection: Annotated[
        list[str] | None, typer.Option("--connection", help="Only this connection (repeatable).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Validate mapping files: schema, canonical field names, duplicate keys, map targets, ambiguous inverses.

    Every problem is printed as `file:line path: message`. With --live, each connection's connector fetches the
    vendor's statuses and picklists, and every live value without a mapping is an error.
    """
    settings: Settings | None = None
    if not files or live or connection:
        settings = load(config, quiet_logging=True)
    connections = _selected(settings, connection) if settings is not None else []
    try:
        targets = [resolve_mapping(file, Path.cwd()) for file in files or []]
    except UnknownMappingError as exc:
        die(str(exc), EXIT_CONFIG)
    if not targets:
        for conn in connections:
            if conn.mapping is not None:
                targets.append(conn.mapping)
                targets.extend(sorted(conn.mapping.parent.glob("*.yaml")))
    problems = 0
    mappers: dict[Path, Mapper] = {}
    for path in dict.fromkeys(p.resolve() for p in targets):
        mapper, found = check_mapping(path)
        if mapper is None:
            _print_problems(found)
            problems += len(found)
            continue
        mappers[path] = mapper
        overlays = f", tenant overlays: {', '.join(mapper.tenants)}" if mapper.tenants else ""
        rules = len(mapper.compiled().rules)
        typer.echo(f"ok: {path} ({mapper.system.value}, {rules} fields{overlays})")
    for conn in connections:
        mapper = mappers.get(conn.mapping.resolve()) if conn.mapping is not None else None
        if mapper is None:
            continue
        found = _settings_problems(conn, mapper, settings)
        _print_problems(found)
        problems += len(found)
    if problems:
        typer.echo(f"{problems} problem(s) in mapping files", err=True)
        raise typer.Exit(EXIT_CONFIG)
    if live:
        _check_live(connections, mappers)


def _selected(settings: Settings, names: list[str] | None) -> list[ConnectionSettings]:
    if not names:
        return [c for c in settings.connections if c.enabled]
    try:
        return [settings.connection(name) for name in names]
    except PsaBridgeError as exc:
        die(exc.message, EXIT_CONFIG)


def _settings_problems(conn: ConnectionSettings, mapper: Mapper, settings: Settings | None) -> list[Problem]:
    out: list[Problem] = []
    file = str(conn.mapping)
    if mapper.system != conn.system:
        message = f"is {mapper.system.value}; connection {conn.name!r} is {conn.system.value}"
        out.append(Problem(file, 1, "system", message))
    known = set(settings.tenants) if settings is not None else set()
    for tenant in mapper.tenants:
        if tenant not in known:
            out.append(Problem(file, None, f"tenants.{tenant}", f"no tenant {tenant!r} under tenants: in the settings"))
    return out


def _check_live(connections: list[ConnectionSettings], mappers: dict[Path, Mapper]) -> None:
    failed = False
    for conn in connections:
        mapper = mappers.get(conn.mapping.resolve()) if conn.mapping is not None else None
        if mapper is None:
            continue
        try:
            connector = connector_factory(conn)
            try:
                metadata = connector.metadata(refresh=True)
            finally:
                connector.close()
        except PsaBridgeError as exc:
            typer.echo(f"[{conn.name}] cannot fetch the vendor's metadata: {exc}", err=True)
            failed = True
            continue
        report = check_live(mapper, metadata)
        for problem in report.warnings:
            typer.echo(f"[{conn.name}] warning: {problem}")
        _print_problems(report.errors, f"[{conn.name}] ")
        counted = ", ".join(f"{len(v)} {k}" for k, v in sorted(metadata.fields.items()))
        status = "ok" if report.ok else f"{len(report.errors)} error(s)"
        typer.echo(f"[{conn.name}] live check {status} against {counted or 'no metadata fields'}")
        failed = failed or not report.ok
    if failed:
        raise typer.Exit(EXIT_FAILED)


# --- preview ---------------------------------------------------------------------------------------------------------

_INPUT_HELP = "A raw record as the vendor's API returns it: one record or a list envelope ('-' reads stdin)."
_SET_HELP = (
    "Outbound: a canonical change FIELD=VALUE (repeatable; default: every settable field of the record's ticket)."
)


@app.command("preview")
def preview(
    connection: Annotated[str, typer.Option("--connection", help="The connection whose mapping to use.")],
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help=_INPUT_HELP),
    ] = None,
    ticket: Annotated[
        str | None,
        typer.Option(
            "--ticket",
            help="Fetch this ticket through the connector: its number as people write it (INC0010001, #1234, "
            "T20261203.0001; looked up in the store) or the vendor's id.",
        ),
    ] = None,
    direction: Annotated[
        Literal["inbound", "outbound"],
        typer.Option("--direction", help="inbound: the canonical ticket; outbound: the vendor patch write-back sends."),
    ] = "inbound",
    set_fields: Annotated[
        list[str] | None,
        typer.Option("--set", help=_SET_HELP),
    ] = None,
    metadata_file: Annotated[
        Path | None, typer.Option("--metadata", help="Vendor metadata (VendorMetadata JSON) for lookups offline.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print what a raw record becomes (JSON): each field with the rule that produced it, and unmapped values.

    With --input it works offline: no vendor is asked and no connection's secrets need to be set.
    """
    if (input_file is None) == (ticket is None):
        die("give --input FILE or --ticket ID (one of them)", EXIT_CONFIG)
    settings = load(config, quiet_logging=True, secrets=input_file is None)
    try:
        conn = settings.connection(connection)
    except PsaBridgeError as exc:
        die(exc.message, EXIT_CONFIG)
    assert conn.mapping is not None
    mapper, problems = check_mapping(conn.mapping)
    if mapper is None:
        _print_problems(problems)
        raise typer.Exit(EXIT_CONFIG)
    metadata = _read_metadata(metadata_file) if metadata_file is not None else None
    if ticket is not None:
        try:
            external_id = _external_id(settings, conn.name, ticket)
            connector = connector_factory(conn)
            try:
                records = [connector.get_ticket(external_id)]
                metadata = metadata or connector.metadata()
            finally:
                connector.close()
        except PsaBridgeError as exc:
            die(str(exc), EXIT_FAILED)
    else:
        assert input_file is not None
        records = mapper.records(_read_json(input_file))
        if not records:
            die(f"{input_file}: no records found (expected a record, a list or the vendor's envelope)", EXIT_FAILED)
    context = MappingContext.for_connection(conn)
    changes = _parse_sets(set_fields or [])
    out: list[dict[str, Any]] = []
    for raw in records:
        try:
            result = mapper.inbound(raw, context, metadata, explain=True)
        except PsaBridgeError as exc:
            die(str(exc), EXIT_FAILED)
        if direction == "inbound":
            out.append(
                {
                    "ticket": result.ticket.model_dump(mode="json"),
                    "unmapped": result.ticket.unmapped,
                    "findings": [_finding(f) for f in result.findings],
                    "trace": [t.as_dict() for t in result.trace],
                }
            )
            continue
        wanted = changes or _settable(result.ticket.model_dump(mode="json"))
        patch = mapper.outbound(wanted, context, metadata, current=raw, explain=True)
        out.append(
            {
                "changes": wanted,
                "patch": patch.patch,
                "problems": [_finding(f) for f in patch.problems],
                "trace": [t.as_dict() for t in patch.trace],
            }
        )
    typer.echo(json.dumps(out[0] if len(out) == 1 else out, indent=2, ensure_ascii=False, default=str))


def _external_id(settings: Settings, connection: str, ref: str) -> str:
    """The vendor id of the ticket ``ref`` names: a stored ticket's number or id, else ``ref`` itself (``#`` off)."""
    prefix = ticket_key(connection, "")
    sqlite_file = settings.database.removeprefix("sqlite:///") if settings.database.startswith("sqlite:///") else None
    if sqlite_file is not None and not Path(sqlite_file).exists():
        return ref.strip().lstrip("#")  # no store yet (and none made by asking)
    try:
        db = Database(settings.database)
        try:
            with db.session() as session:
                keys = [k for k in tickets.find_ticket_keys(session, ref) if k.startswith(prefix)]
        finally:
            db.dispose()
    except Exception:  # noqa: BLE001 - no store (yet): the vendor's id is all there is
        keys = []
    if len(keys) > 1:
        die(f"{ref!r} names {len(keys)} tickets of {connection} ({', '.join(keys[:5])}): give the vendor id")
    if keys:
        return keys[0][len(prefix) :]
    return ref.strip().lstrip("#")


def _finding(finding: Any) -> dict[str, Any]:
    return {"field": finding.field, "code": finding.code, "raw": finding.raw, "message": finding.message}


def _settable(ticket: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ticket.items() if k in SETTABLE_FIELDS and v not in (None, "", {}, [])}


def _parse_sets(items: list[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            die(f"--set {item!r}: write FIELD=VALUE", EXIT_CONFIG)
        try:
            changes[name.strip()] = json.loads(text)
        except ValueError:
            changes[name.strip()] = text
    return changes


def _read_json(path: Path) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as exc:
        die(f"{path}: {exc.strerror or exc}", EXIT_FAILED)
    except ValueError as exc:
        die(f"{path}: not JSON ({exc})", EXIT_FAILED)


def _read_metadata(path: Path) -> VendorMetadata:
    try:
        return VendorMetadata.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        die(f"{path}: {exc.strerror or exc}", EXIT_FAILED)
    except ValueError as exc:
        die(f"{path}: not vendor metadata JSON ({exc})", EXIT_FAILED)
