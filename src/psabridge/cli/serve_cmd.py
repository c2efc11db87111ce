"""`psabridge serve` (receiver, poll schedule, embedded workers) and `psabridge worker` (Redis/RabbitMQ workers)."""

from __future__ import annotations

import errno
import signal
import socket
import threading
from typing import Annotated

import typer
import uvicorn

from psabridge.cli.common import EXIT_CONFIG, ConfigOption, die, load
from psabridge.cli.engine_opts import ThreadsOption, start_engine
from psabridge.log import get_logger
from psabridge.metrics import serve_process_metrics
from psabridge.sync.recovery import recover
from psabridge.sync.scheduler import Scheduler
from psabridge.webhooks.app import create_app

_log = get_logger("psabridge.serve")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: webhooks.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: webhooks.port).")] = None,
    threads: ThreadsOption = 8,
    config: ConfigOption = None,
) -> None:
    """Run the webhook receiver and the poll schedule; with the embedded broker, the workers too.

    Prints where it listens; each poll logs a line with its counts. A port already in use exits 2.
    """
    settings = load(config)
    address = host or settings.webhooks.host
    listener = listen(address, settings.webhooks.port if port is None else port)
    engine = start_engine(settings)
    if engine.embedded:
        engine.start_workers(threads)
        # The queue died with the last process: the store says what is unfinished (the scheduler polls at once).
        found = recover(engine.context, polls=False)
        _log.info("recovered", ingests=found.ingests, evaluations=found.evaluations, write_backs=found.dispatches)
    scheduler = Scheduler(engine.context)
    scheduler.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine.context, broker=engine.broker),
            log_level="warning",
            log_config=None,  # uvicorn's records go through our logging (log.py), not its plain-text handlers
            access_log=False,
        )
    )
    bound = listener.getsockname()
    shown = f"[{bound[0]}]" if listener.family == socket.AF_INET6 else bound[0]
    # A log line, not a bare print: with JSON logs (not a terminal) stderr stays one JSON document per line.
    _log.info(
        "serve listening",
        url=f"http://{shown}:{bound[1]}",
        routes="POST /webhooks/<connection>, GET /healthz, /readyz, /metrics",
        connections=sum(c.enabled for c in settings.connections),
        broker=settings.broker.split("://", 1)[0],
    )
    try:
        server.run(sockets=[listener])
    finally:
        scheduler.stop()
        engine.stop()
        listener.close()


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for uvicorn, or exit 2 with why (a port in use, an address not ours)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        die(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_CONFIG)
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may bind while old sockets linger
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "the address is already in use (another psabridge serve?)" if exc.errno == errno.EADDRINUSE else (
            exc.strerror or str(exc))  # fmt: skip
        die(f"cannot listen on {host}:{port}: {reason}; choose another with --port or webhooks.port", EXIT_CONFIG)
    sock.set_inheritable(True)
    return sock


def worker(
    threads: ThreadsOption = 8,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve this process's counters on 127.0.0.1:PORT/metrics (without PROMETHEUS_MULTIPROC_DIR, "
            "where serve's /metrics adds up the host's processes).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run Dramatiq workers for the configured Redis or RabbitMQ broker until SIGTERM or Ctrl-C."""
    settings = load(config)
    if settings.broker == "embedded":
        die(
            "the embedded broker keeps its queue inside `psabridge serve`, which runs the workers itself; "
            "set broker: redis://... (or amqp://...) to run workers separately",
            EXIT_CONFIG,
        )
    if metrics_port is not None:
        try:
            serve_process_metrics(metrics_port)
        except OSError as exc:
            die(f"cannot serve metrics on 127.0.0.1:{metrics_port}: {exc.strerror or exc}", EXIT_CONFIG)
    engine = start_engine(settings, threads=threads)
    recover(engine.context, polls=False)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    _log.info("workers running", threads=threads, broker=settings.broker.split("@")[-1])
    try:
        stop.wait()
    finally:
        engine.stop()
