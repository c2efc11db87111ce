"""What the sync verbs share: booting the engine for a command, its worker threads, and test hooks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from psabridge.connectors.base import Connector
from psabridge.settings import ConnectionSettings, Settings, parse_duration
from psabridge.store import upgrade
from psabridge.sync.runtime import Engine, boot

__all__ = ["EXIT_LOCKED", "ThreadsOption", "connector_factory", "parse_since", "start_engine"]

EXIT_LOCKED = 3
"""Exit status when another reconcile holds the lock (cron can tell it from a failure)."""

ThreadsOption = Annotated[int, typer.Option("--threads", min=1, max=64, help="Worker threads in this process.")]

connector_factory: Callable[[ConnectionSettings], Connector] | None = None
"""How the sync verbs build connectors (None: the vendor connectors); tests replace it with fakes."""


def start_engine(settings: Settings, *, threads: int | None = None) -> Engine:
    """Migrate the database if needed, boot the broker and context, and start in-process workers when asked."""
    upgrade(settings.database)
    engine = boot(settings, connector_factory=connector_factory)
    if threads:
        engine.start_workers(threads)
    return engine


def parse_since(value: str, now: datetime) -> datetime:
    """``24h``/``90m``/``7d`` back from ``now``, or an ISO time with a timezone.

    Raises:
        typer.BadParameter: neither, or an ISO time without a timezone (it would be read in the wrong zone).
    """
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is neither a duration (24h, 7d) nor an ISO time") from exc
    if when.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no timezone: write e.g. {value}Z or {value}+02:00")
    return when.astimezone(UTC)
