#!/usr/bin/env python3
"""Ingest throughput: poll and ingest a simulated ServiceNow instance through the real connector, mapping and store.

Usage: python3 run.py bench sync_ingest [--tickets N] [--threads T ...] [--database URL]
Serves the sandbox on loopback in its own process (`psabridge sandbox serve`), polls acme-snow once (recording N
deliveries), then ingests every ticket with T threads (each ingest: ticket lock, the connector's GETs, map, upsert,
plan) on a fresh database per run. Prints the poll's and the ingests' wall time and tickets per second.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from psabridge.log import configure_logging
from psabridge.settings import load_settings
from psabridge.store import upgrade
from psabridge.sync.context import build_context
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.poll import poll_connection


class _Collect:
    def __init__(self) -> None:
        self.ingests: list[tuple[str, str]] = []

    def ingest(self, connection: str, external_id: str) -> None:
        self.ingests.append((connection, external_id))

    def dispatch(self, outbox_id: int) -> None:
        """Write-backs are not part of this benchmark."""

    def poll(self, connection: str) -> None:
        """Polls are run directly."""


def run(config: Path, folder: Path, threads: int, database: str | None) -> dict[str, Any]:
    settings = load_settings(config)
    settings.database = database or f"sqlite:///{folder / 'bench.db'}"
    settings.links = []  # ingest only: no mirrors
    upgrade(settings.database)
    queue = _Collect()
    ctx = build_context(settings, queue)
    started = time.perf_counter()
    polled = poll_connection(ctx, "acme-snow")
    poll_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(lambda item: ingest_ticket(ctx, *item).outcome, queue.ingests))
    seconds = time.perf_counter() - started
    ctx.close()
    return {"tickets": polled.queued, "poll_s": poll_seconds, "ingest_s": seconds, "created": outcomes.count("created")}


def main(argv: list[str]) -> int:
    """Run once per thread count and print a line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file per run")
    args = parser.parse_args(argv)
    configure_logging("warning", "console")
    print(f"{'threads':>7} {'tickets':>8} {'poll s':>7} {'ingest s':>9} {'tickets/s':>10}")
    with tempfile.TemporaryDirectory() as sandbox_dir:
        config, urls = Path(sandbox_dir) / "psabridge.yaml", Path(sandbox_dir) / "urls.json"
        command = [str(Path(sys.executable).with_name("psabridge")), "sandbox", "serve", "--port-base", "0",
                   "--tickets", str(args.tickets), "--config-out", str(config), "--urls-file", str(urls)]  # fmt: skip
        sandbox = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not (urls.exists() and json.loads(urls.read_text() or "{}")):
                if time.monotonic() > deadline or sandbox.poll() is not None:
                    raise SystemExit("the sandbox did not start")
                time.sleep(0.2)
            for threads in args.threads:
                with tempfile.TemporaryDirectory() as folder:
                    found = run(config, Path(folder), threads, args.database)
                rate = found["tickets"] / found["ingest_s"]
                row = (threads, found["tickets"], found["poll_s"], found["ingest_s"], rate)
                print("{:7d} {:8d} {:7.2f} {:9.2f} {:10.0f}".format(*row))
        finally:
            sandbox.terminate()
            sandbox.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
