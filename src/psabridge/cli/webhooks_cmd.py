"""`psabridge webhooks register|list`: the vendors' subscriptions that send changes to `psabridge serve`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, ConnectionOption, die, load, require_connection
from psabridge.connectors import get_connector
from psabridge.connectors.base import Connector
from psabridge.errors import PsaBridgeError
from psabridge.settings import ConnectionSettings, Settings

app = typer.Typer(
    help="Vendor webhooks: register (ConnectWise callback, Autotask webhooks; ServiceNow and Freshservice: the "
    "settings to paste) and list what is registered.",
    no_args_is_help=True,
)


def _vendor_connector(settings: Settings, conn: ConnectionSettings) -> Connector:
    return get_connector(conn, broker_url=settings.broker, namespace=settings.namespace)


connector_factory: Callable[[Settings, ConnectionSettings], Connector] = _vendor_connector
"""How these commands get a connector; tests replace it."""


def receiver_url(base: str, connection: str) -> str:
    """The connection's receiver URL: ``base`` as given when it ends in ``/webhooks/<connection>``, else with it."""
    base = base.rstrip("/")
    suffix = f"/webhooks/{connection}"
    return base if base.endswith(suffix) else base + suffix


@app.command("register")
def register(
    connection: Annotated[str, typer.Option("--connection", help="The connection to register (its name).")],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="The public URL vendors reach `psabridge serve` at (https://bridge.example.com; "
            "/webhooks/<connection> is added), default webhooks.public_url.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Create or update the connection's webhook subscription; for vendors without an API, print what to set up.

    ConnectWise: a ticket callback (level Owner, self-suppressed). Autotask: a ticket and a ticket-note webhook with
    the fields psabridge maps and the API user excluded, signed with the webhook_secret credential. ServiceNow and
    Freshservice: the business rule / Workflow Automator settings to paste (the secret is never printed).
    """
    settings = load(config, quiet_logging=as_json)
    require_connection(settings, connection)
    base = url or settings.webhooks.public_url
    if not base:
        die("give --url PUBLIC_URL (or set webhooks.public_url)", EXIT_CONFIG)
    if not base.startswith(("https://", "http://")):
        die(f"--url {base!r} is not an http(s) URL", EXIT_CONFIG)
    target = receiver_url(base, connection)
    try:
        with connector_factory(settings, settings.connection(connection)) as connector:
            setup = connector.webhook_setup(target)
            made = None if setup is not None else connector.register_webhooks(target)
    except PsaBridgeError as exc:
        die(str(exc), EXIT_FAILED)
    if setup is not None:
        if as_json:
            typer.echo(json.dumps({"connection": connection, "url": target, "manual": setup}, indent=2))
        else:
            typer.echo(setup.rstrip())
        return
    assert made is not None
    if as_json:
        typer.echo(json.dumps({"connection": connection, "url": target, "registered": made}, indent=2, default=str))
        return
    for name, entry in made.items():
        what = entry.get("name") or f"{name} webhook"
        typer.echo(f"{connection}: {what} {entry.get('change', 'registered')} (id {entry.get('id')}) -> {target}")


@app.command("list")
def list_cmd(
    connection: ConnectionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show what each connection has registered with its vendor (asks the vendor)."""
    settings = load(config, quiet_logging=as_json)
    require_connection(settings, connection)
    report: dict[str, Any] = {}
    failed = False
    for conn in settings.connections:
        if (connection is not None and conn.name != connection) or not conn.enabled:
            continue
        try:
            with connector_factory(settings, conn) as connector:
                public = receiver_url(settings.webhooks.public_url or "<public url>", conn.name)
                manual = connector.webhook_setup(public)
                report[conn.name] = {"manual": True} if manual is not None else {"webhooks": connector.webhooks()}
        except PsaBridgeError as exc:
            failed = True
            report[conn.name] = {"error": str(exc)}
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        for name, entry in report.items():
            if "error" in entry:
                typer.echo(f"{name}: cannot tell: {entry['error']}")
            elif entry.get("manual"):
                typer.echo(f"{name}: set up by hand in the vendor (`psabridge webhooks register --connection {name}`)")
            elif not entry["webhooks"]:
                typer.echo(f"{name}: nothing registered")
            for hook in entry.get("webhooks", []):
                state = "active" if hook.get("active") else "inactive"
                typer.echo(f"{name}: {hook.get('name')} {hook.get('id')} {state} -> {hook.get('url')}")
    if failed:
        raise typer.Exit(EXIT_FAILED)
