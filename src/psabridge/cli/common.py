"""What every command shares: the --config option, loading settings with located errors, exit codes."""

from __future__ import annotations

import importlib
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from psabridge.log import configure_logging
from psabridge.settings import Settings, SettingsError, config_path, load_settings

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "SANDBOX_INSTALL_HINT",
    "ConfigOption",
    "die",
    "load",
    "parse_instant",
    "require_sandbox",
]

EXIT_FAILED = 1
EXIT_CONFIG = 2

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file (default: $PSABRIDGE_CONFIG, else config/psabridge.yaml).",
        show_default=False,
    ),
]


def die(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print an error to stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_instant(value: str, what: str) -> datetime:
    """An ISO time with its offset (``Z`` accepted) from an option, or a BadParameter naming ``what``."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{what} {value!r} is not an ISO time (e.g. 2026-05-14T09:30:00-04:00)") from exc
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{what} {value!r} has no time zone: write e.g. {value}Z or {value}-04:00")
    return moment


SANDBOX_INSTALL_HINT = "pip install packages/psabridge-sandbox (from a psabridge checkout)"


def require_sandbox(command: str) -> None:
    """Import the vendor sandbox (``psabridge_sandbox``), or exit 2 with a one-line hint on how to install it."""
    try:
        importlib.import_module("psabridge_sandbox")
    except ModuleNotFoundError as exc:
        if exc.name != "psabridge_sandbox":  # the sandbox is there but something it needs is not: show that
            raise
        die(f"`psabridge {command}` needs the vendor sandbox, not installed here: {SANDBOX_INSTALL_HINT}", EXIT_CONFIG)


def load(config: Path | None, *, quiet_logging: bool = False) -> Settings:
    """Load settings or exit 2, printing every problem as `file:line path: message`."""
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(exc.problems)} problem(s) in {config_path(config)}", err=True)
        raise typer.Exit(EXIT_CONFIG) from exc
    configure_logging("warning" if quiet_logging else settings.log.level, settings.log.format)
    return settings


def is_terminal() -> bool:
    """Whether stdout is a terminal (progress bars, colours)."""
    return sys.stdout.isatty()
