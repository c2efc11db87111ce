"""What every command shares: the --config option, loading settings with located errors, exit codes."""

from __future__ import annotations

import importlib
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from psabridge.log import configure_logging
from psabridge.settings import Settings, SettingsError, config_path, load_settings

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "LOG_LEVELS",
    "SANDBOX_INSTALL_HINT",
    "ConfigOption",
    "ConnectionOption",
    "die",
    "load",
    "log_level",
    "package_version",
    "parse_instant",
    "require_connection",
    "require_sandbox",
    "reset_log_options",
    "take_log_options",
]

LOG_LEVELS = ("debug", "info", "warning", "error")
_VERBOSITY = ("error", "warning", "info", "debug")  # -qq, -q, (default), -v
_override: dict[str, Any] = {"level": None, "verbose": 0, "quiet": 0}

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


def load(config: Path | None, *, quiet_logging: bool = False, secrets: bool = True) -> Settings:
    """Load settings or exit 2, printing every problem as `file:line path: message`.

    Args:
        config: the --config file.
        quiet_logging: log warnings only (the command prints JSON or a report), unless -v/-q/--log-level say.
        secrets: False: secrets that cannot be read are no problem (commands that need no vendor).
    """
    try:
        settings = load_settings(config, secrets=secrets)
    except SettingsError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(exc.problems)} problem(s) in {config_path(config)}", err=True)
        raise typer.Exit(EXIT_CONFIG) from exc
    configure_logging(log_level("warning" if quiet_logging else settings.log.level), settings.log.format)
    return settings


ConnectionOption = Annotated[
    str | None, typer.Option("--connection", help="Only this connection (its name in the settings).")
]


def require_connection(settings: Settings, name: str | None) -> None:
    """Exit 2 naming the configured connections when ``name`` is not one of them (None: no choice made)."""
    names = [c.name for c in settings.connections]
    if name is not None and name not in names:
        die(f"no connection named {name!r}; configured: {', '.join(names) or 'none'}", EXIT_CONFIG)


def log_level(default: str) -> str:
    """The level the command line asks for (--log-level, else -v/-q from ``default``), else ``default``."""
    if _override["level"]:
        return str(_override["level"])
    steps = int(_override["verbose"]) - int(_override["quiet"])
    if not steps:
        return default
    start = _VERBOSITY.index(default) if default in _VERBOSITY else _VERBOSITY.index("info")
    return _VERBOSITY[max(0, min(len(_VERBOSITY) - 1, start + steps))]


def reset_log_options() -> None:
    """Forget -v/-q/--log-level of an earlier invocation in this process (the root command does, first)."""
    _override.update(level=None, verbose=0, quiet=0)


def take_log_options(args: list[str]) -> list[str]:
    """Take -v/-vv, -q/-qq and --log-level LEVEL from anywhere on the command line (before ``--``).

    They apply to every command wherever they stand (``psabridge status -v``, ``psabridge -q reconcile``), so they
    are read here rather than declared on each command; the rest of ``args`` is returned for the commands.

    Raises:
        typer.BadParameter: --log-level without a known level.
    """
    reset_log_options()
    rest: list[str] = []
    items = iter(args)
    for arg in items:
        if arg == "--":
            rest.append(arg)
            rest.extend(items)
            break
        if arg in ("-v", "-vv", "-vvv", "--verbose"):
            _override["verbose"] += 1 if arg == "--verbose" else len(arg) - 1
        elif arg in ("-q", "-qq", "--quiet"):
            _override["quiet"] += 1 if arg == "--quiet" else len(arg) - 1
        elif arg == "--log-level" or arg.startswith("--log-level="):
            value = arg.partition("=")[2] if "=" in arg else next(items, "")
            if value.lower() not in LOG_LEVELS:
                raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level")
            _override["level"] = value.lower()
        else:
            rest.append(arg)
    if any(_override.values()):
        configure_logging(log_level("info"))  # for commands that load no settings; load() refines it
    return rest


def package_version() -> str:
    """The installed version of psabridge."""
    try:
        return version("psabridge")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout that was never installed
        return "unknown"


def is_terminal() -> bool:
    """Whether stdout is a terminal (progress bars, colours)."""
    return sys.stdout.isatty()
