"""`psabridge serve` (receiver, poll schedule, embedded workers) and `psabridge worker` (Redis/RabbitMQ workers)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
import uvicorn

from psabridge.cli.common import EXIT_CONFIG, ConfigOption, die, load
from psabridge.cli.engine_opts import ThreadsOption, start_engine
from psabridge.log import get_logger
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
    """Run the webhook receiver and the poll schedule; with the embedded broker, the workers too."""
    settings = load(config)
    engine = start_engine(settings)
    if engine.embedded:
        engine.start_workers(threads)
        # The queue died with the last process: the store says what is unfinished (the scheduler polls at once).
        found = recover(engine.context, polls=False)
        _log.info("recovered", ingests=found.ingests, evaluations=found.evaluations, write_backs=found.dispatches)
    scheduler = Scheduler(engine.context)
    scheduler.start()
    try:
        uvicorn.run(
            create_app(engine.context),
            host=host or settings.webhooks.host,
            port=settings.webhooks.port if port is None else port,
            log_level="warning",
            access_log=False,
        )
    finally:
        scheduler.stop()
        engine.stop()


def worker(threads: ThreadsOption = 8, config: ConfigOption = None) -> None:
    """Run Dramatiq workers for the configured Redis or RabbitMQ broker until SIGTERM or Ctrl-C."""
    settings = load(config)
    if settings.broker == "embedded":
        die(
            "the embedded broker keeps its queue inside `psabridge serve`, which runs the workers itself; "
            "set broker: redis://... (or amqp://...) to run workers separately",
            EXIT_CONFIG,
        )
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
