"""Run every registered simulator on loopback in one process: one uvicorn server per service, in a background thread.

``SandboxRunner`` is what ``psabridge sandbox serve`` uses, and what tests or the demo use in-process::

    with SandboxRunner(port_base=0, tickets=100) as sandbox:
        sandbox.infos["pagerduty"].url  # http://127.0.0.1:<ephemeral port>

Sockets are bound before anything is served, so a busy port fails fast with its name, and ephemeral ports
(``port_base=0``) are known before the first request.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import uvicorn

from psabridge_sandbox.clock import Clock, SystemClock
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.faults import profile_named
from psabridge_sandbox.registry import (
    DEFAULT_PORT_BASE,
    SERVICES,
    SandboxContext,
    ServiceSpec,
    default_anchor,
    load_simulators,
)
from psabridge_sandbox.world import build_world

__all__ = ["SandboxRunner", "ServiceInfo", "parse_faults"]


@dataclass(frozen=True)
class ServiceInfo:
    """Where a service listens (or would listen) and the credentials it accepts."""

    name: str
    url: str  # the service root, e.g. http://127.0.0.1:8701
    base_url: str  # what a psabridge connection or notifier is configured with
    accepts: Mapping[str, str]
    running: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"url": self.url, "base_url": self.base_url, "credentials": dict(self.accepts)}


def parse_faults(value: str | None) -> dict[str, str]:
    """``"flaky"`` (every service) or ``"flaky,connectwise=throttled"`` -> service name -> profile name.

    Raises:
        ValueError: an unknown service or profile.
    """
    names = [spec.name for spec in SERVICES]
    default = "none"
    chosen: dict[str, str] = {}
    for item in (value or "").split(","):
        service, sep, profile = item.strip().partition("=")
        if not sep:
            if service:
                default = profile_named(service).name
            continue
        if service not in names:
            raise ValueError(f"unknown service {service!r} in --faults; services: {', '.join(names)}")
        chosen[service] = profile_named(profile).name
    return {name: chosen.get(name, default) for name in names}


class SandboxRunner:
    """Builds the registered simulators and serves each on its own port until stopped.

    Args:
        host: the address to listen on (loopback by default).
        port_base: the first port (services use port_base + offset); 0 gives every service an ephemeral port.
        seed, tickets: the seed world and how many tickets each vendor holds.
        faults: service name -> fault profile name (see ``parse_faults``), or one profile for all.
        clock: the simulators' clock; anchor: the seed data's "now" (default: the clock's current hour).
        only: serve only these services (default: every registered one).
        limits: False lifts every vendor's rate limits (and Freshservice's plan), for benchmarks.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port_base: int = DEFAULT_PORT_BASE,
        seed: int = 0,
        tickets: int = 200,
        faults: Mapping[str, str] | str = "none",
        clock: Clock | None = None,
        anchor: datetime | None = None,
        only: tuple[str, ...] | None = None,
        limits: bool = True,
    ) -> None:
        self.host = host
        self.port_base = port_base
        self.seed = seed
        self.tickets = tickets
        self.faults = parse_faults(faults) if isinstance(faults, str) else dict(faults)
        self.clock = clock or SystemClock()
        self.anchor = anchor or default_anchor(self.clock)
        self.only = only
        self.limits = limits
        self.world = build_world(seed)
        self.simulators: dict[str, Simulator] = {}
        self.infos: dict[str, ServiceInfo] = {}
        self._sockets: dict[str, socket.socket] = {}
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def missing(self) -> list[str]:
        """Services without a registered simulator (not served)."""
        return [name for name, info in self.infos.items() if not info.running]

    def start(self, timeout: float = 30.0) -> None:
        """Build, bind and serve every registered simulator; return once all listen.

        Raises:
            OSError: a port is taken (the message names the service and port).
            RuntimeError: a server did not start within ``timeout`` seconds.
        """
        factories = load_simulators()
        wanted = [spec for spec in SERVICES if self.only is None or spec.name in self.only]
        try:
            for spec in wanted:
                factory = factories.get(spec.name)
                if factory is None:
                    port = DEFAULT_PORT_BASE + spec.offset if self.port_base == 0 else self.port_base + spec.offset
                    self.infos[spec.name] = self._info(spec, port, running=False)
                    continue
                sock = self._bind(spec)
                self._sockets[spec.name] = sock
                context = SandboxContext(
                    service=spec,
                    world=self.world,
                    anchor=self.anchor,
                    seed=self.seed,
                    tickets=self.tickets,
                    faults=self.faults.get(spec.name, "none"),
                    clock=self.clock,
                    limits=self.limits,
                )
                simulator = factory(context)
                info = self._info(spec, sock.getsockname()[1], running=True)
                simulator.base_url = info.url
                self.simulators[spec.name] = simulator
                self.infos[spec.name] = info
        except BaseException:
            self._close_sockets()
            raise
        self._servers = [
            uvicorn.Server(
                uvicorn.Config(
                    simulator,
                    log_level="warning",
                    access_log=False,
                    lifespan="off",
                    timeout_graceful_shutdown=1,
                )
            )
            for simulator in self.simulators.values()
        ]
        self._thread = threading.Thread(target=self._serve, name="sandbox-servers", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not all(server.started for server in self._servers):
            if self._failure is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the sandbox servers did not start: {self._failure!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox servers did not start within {timeout:.0f}s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving, stop background work, release the ports."""
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for simulator in self.simulators.values():
            simulator.close()
        self._close_sockets()

    def __enter__(self) -> SandboxRunner:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _bind(self, spec: ServiceSpec) -> socket.socket:
        port = 0 if self.port_base == 0 else self.port_base + spec.offset
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so; without it every response
        # (headers and body are two writes) waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"{spec.name}: cannot listen on {self.host}:{port}: {exc.strerror}") from exc
        return sock

    def _info(self, spec: ServiceSpec, port: int, *, running: bool) -> ServiceInfo:
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"http://{host}:{port}"
        return ServiceInfo(spec.name, url, url + spec.base_path, spec.accepts, running)

    def _serve(self) -> None:
        sockets = list(self._sockets.values())

        async def main() -> None:
            await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in zip(self._servers, sockets, strict=True)))

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported to start(); a thread cannot raise to its owner
            self._failure = exc

    def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
