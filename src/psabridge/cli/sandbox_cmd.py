"""`psabridge sandbox serve`: run the vendor simulators on loopback and say where they are and what they accept.

The simulators are a distribution of their own (psabridge-sandbox, importable as psabridge_sandbox) that psabridge
does not depend on: the command imports it when it runs, and says how to install it when it is missing.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, die, require_sandbox

__all__ = ["DEFAULT_PORT_BASE", "FAULT_PROFILES", "app"]

app = typer.Typer(help="The built-in vendor sandbox: simulators of the vendor and paging APIs.", no_args_is_help=True)

DEFAULT_PORT_BASE = 8701
"""The sandbox's first port, which config/psabridge.yaml points at (psabridge_sandbox.registry.DEFAULT_PORT_BASE)."""
FAULT_PROFILES = ("none", "flaky", "throttled", "slow", "malformed", "churn", "webhooks", "chaos")
"""The sandbox's fault profiles, for --help without importing it (psabridge_sandbox.faults.PROFILES)."""


class Limits(StrEnum):
    """Whether the simulators enforce the vendors' rate limits."""

    ON = "on"
    OFF = "off"


@app.command("serve")
def serve(
    tickets: Annotated[int, typer.Option(min=0, help="Seed tickets per vendor (a handful to 100,000).")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the generated MSP world and its tickets.")] = 0,
    faults: Annotated[
        str,
        typer.Option(
            help="Fault profile for every service and/or SERVICE=PROFILE pairs, comma-separated "
            f"(profiles: {', '.join(FAULT_PROFILES)}). Change it while running: PUT /_sandbox/faults.",
        ),
    ] = "none",
    urls_file: Annotated[
        Path | None, typer.Option(help="Write each service's URL and credentials here (JSON keyed by service).")
    ] = None,
    config_out: Annotated[
        Path | None,
        typer.Option(help="Write a complete psabridge configuration pointing at the sandbox (secrets beside it)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port_base: Annotated[
        int,
        typer.Option(min=0, max=65535, help="First port; services use the next ones in order. 0: ephemeral ports."),
    ] = DEFAULT_PORT_BASE,
    anchor: Annotated[
        str | None,
        typer.Option(help="The seed data's 'now' (ISO 8601 with timezone); default: the current hour."),
    ] = None,
    limits: Annotated[
        Limits,
        typer.Option(
            help="on: every simulator limits as its vendor does (default). off: rate limits, thread caps and "
            "Freshservice's plan are lifted, so a benchmark measures psabridge's own cost (pair it with "
            "rate_budget.vendor_limits: false in the connections).",
            case_sensitive=False,
        ),
    ] = Limits.ON,
) -> None:
    """Run every registered simulator until Ctrl+C (or SIGTERM), printing each base URL and its credentials."""
    require_sandbox("sandbox serve")
    from psabridge_sandbox.configout import write_config, write_urls
    from psabridge_sandbox.runner import SandboxRunner, parse_faults

    try:
        chosen = parse_faults(faults)
        when = _anchor(anchor)
    except ValueError as exc:
        die(str(exc), EXIT_CONFIG)
    runner = SandboxRunner(
        host=host,
        port_base=port_base,
        seed=seed,
        tickets=tickets,
        faults=chosen,
        anchor=when,
        limits=limits is Limits.ON,
    )
    try:
        runner.start()
    except (OSError, RuntimeError) as exc:
        die(str(exc), EXIT_FAILED)
    try:
        for name, info in runner.infos.items():
            if info.running:
                accepts = "  ".join(f"{key}={value}" for key, value in info.accepts.items())
                fault = f"  [faults: {chosen[name]}]" if chosen[name] != "none" else ""
                typer.echo(f"{name:<13} {info.base_url}  {accepts}{fault}")
            else:
                typer.echo(f"{name:<13} not available yet (no simulator registered)")
        if config_out is not None:
            webhook_port = 8700 if port_base in (0, DEFAULT_PORT_BASE) else max(port_base - 1, 0)
            written = write_config(
                config_out,
                runner.infos,
                world=runner.world,
                host=host,
                webhook_port=webhook_port,
                limits=limits is Limits.ON,
            )
            typer.echo(f"config written: {written} (check it: psabridge config check --config {written})")
        if urls_file is not None:
            typer.echo(f"urls written: {write_urls(urls_file, runner.infos)}")
        running = len(runner.infos) - len(runner.missing)
        lifted = "" if limits is Limits.ON else ", rate limits off"
        typer.echo(
            f"sandbox ready: {running} service(s), {tickets} seed ticket(s) per vendor, seed {seed}{lifted}; "
            "Ctrl+C stops"
        )
        sys.stdout.flush()
        _wait_for_signal()
    finally:
        runner.stop()
    typer.echo("sandbox stopped")


def _anchor(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--anchor {value!r} is not an ISO 8601 datetime (e.g. 2026-11-20T12:00:00Z)") from None
    if when.tzinfo is None:
        raise ValueError(f"--anchor {value!r} has no timezone (add Z or +00:00)")
    return when.astimezone(UTC)


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
