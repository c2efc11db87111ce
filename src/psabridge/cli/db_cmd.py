"""`psabridge db upgrade|downgrade|current`: database migrations."""

from __future__ import annotations

import typer

from psabridge.cli.common import ConfigOption, load
from psabridge.store import current_revision, downgrade, upgrade
from psabridge.store.migrate import head_revision

app = typer.Typer(help="Database migrations (SQLite or PostgreSQL, same migrations).", no_args_is_help=True)


def _where(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


@app.command("upgrade")
def upgrade_cmd(config: ConfigOption = None, revision: str = typer.Option("head", help="Target revision.")) -> None:
    """Apply migrations (creates the SQLite file if needed)."""
    settings = load(config)
    upgrade(settings.database, revision)
    typer.echo(f"database {_where(settings.database)} at revision {current_revision(settings.database)}")


@app.command("downgrade")
def downgrade_cmd(
    revision: str = typer.Argument(..., help="Target revision, or 'base' to remove every table."),
    config: ConfigOption = None,
) -> None:
    """Revert migrations down to REVISION."""
    settings = load(config)
    downgrade(settings.database, revision)
    typer.echo(f"database {_where(settings.database)} at revision {current_revision(settings.database)}")


@app.command("current")
def current_cmd(config: ConfigOption = None) -> None:
    """Show the database's revision and the newest one this version knows."""
    settings = load(config)
    typer.echo(f"current: {current_revision(settings.database)}  head: {head_revision()}")
