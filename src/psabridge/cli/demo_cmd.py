"""`psabridge demo`: the main job on the embedded default, end to end in one process."""

from __future__ import annotations

import typer

from psabridge.cli.common import ConfigOption, load
from psabridge.store import current_revision, upgrade


def demo(config: ConfigOption = None) -> None:
    """Set up the embedded default (SQLite, in-process broker) and run what the bridge has so far."""
    settings = load(config)
    upgrade(settings.database)
    typer.echo(f"config ok: {settings.source} ({len(settings.connections)} connections)")
    typer.echo(f"database ready: {settings.database} at revision {current_revision(settings.database)}")
