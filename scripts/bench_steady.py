#!/usr/bin/env python3
"""Benchmark: steady-state webhook-to-write-back latency with Redis and real worker processes, one JSON line a rate.

Usage: python3 run.py bench steady [--rates 20,100,500] [--seconds 20] [--backfill-tickets 20000] [--workers 2]
       [--threads 8] [--incidents 50] [--pair-tickets 200] [--drain 120]

Per rate, a fresh bridge as production runs it: `psabridge serve` (webhook receiver and poll schedule) and
``--workers`` `psabridge worker` processes on a Redis of the benchmark's own, a fresh PostgreSQL database, against
two `psabridge sandbox serve` processes with their rate limits off (``--limits off``: 500 changes a second is far
beyond any vendor's published limit, so the figure is psabridge's own). The first sandbox holds the measured pair,
ServiceNow -> ConnectWise with the acme-snow-to-cw link; the second holds ``--backfill-tickets`` Autotask tickets,
whose first poll (a backfill of another connection, on the same workers and store) starts with the bridge and is
still running while the changes are measured (``backfill_running`` says whether it was, throughout).

Before measuring, the client opens ``--incidents`` incidents in the linked queue and the bridge mirrors them (with
the seed's own). A change is a client's work note on one of the mirrored incidents, chosen at random (a PATCH
through ServiceNow's table API, as a person makes it); ServiceNow's business rule calls `serve`'s webhook; the
bridge re-reads the incident, plans the mirror's note and writes it to ConnectWise. Latency is from the moment the
PATCH was answered to the moment the write-back's outbox row was marked done (after ConnectWise answered), both on
this machine's clock. Changes are paced at ``rate`` a second for ``--seconds`` from 16 threads; ``achieved_rate``
says what the people managed. A change not written back within ``--drain`` seconds of the last one counts in
``not_written_back``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chaos.services import OwnRedis, Sandbox, drop_database, fresh_database  # noqa: E402
from tests.sync.bridge import Bridge, Vendors, free_port, wait_for  # noqa: E402

from psabridge.store.models import OutboxAction, TicketRow  # noqa: E402
from psabridge_sandbox.world import build_world  # noqa: E402

LINK = {"name": "acme-snow-to-cw", "from": {"connection": "acme-snow", "where": {"queue": "MSP Support"}},
        "to": {"connection": "msp-cw", "queue": "Acme Service", "tenant": "acme"},
        "own": {"status": "to", "priority": "from", "notes": "both", "time_entries": "to"}}  # fmt: skip


PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
TOKEN = re.compile(r"#steady-\d+-\d+#")


def _ports() -> int:
    from chaos.run import _port_block

    return _port_block()


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)


def _stamp(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class Phase:
    """One rate against a fresh bridge."""

    def __init__(self, args: argparse.Namespace, rate: int, folder: Path, pair: Sandbox, bulk: Sandbox) -> None:
        self.args = args
        self.rate = rate
        self.folder = folder
        self.pair = pair
        self.bulk = bulk

    def run(self) -> dict[str, Any]:
        redis_server = OwnRedis(free_port(), self.folder)
        redis_server.start()
        database = fresh_database()
        vendors = Vendors(self.pair.runner)  # type: ignore[arg-type]
        bridge = Bridge(self.folder, vendors, database=database, broker=redis_server.url,
                        namespace=f"steady{uuid.uuid4().hex[:8]}", poll_every="10m",
                        connections=("acme-snow", "msp-cw", "partner-at"), links=(LINK,))  # fmt: skip
        try:
            self._configure(bridge)
            bridge.serve()
            for n in range(self.args.workers):
                bridge.start(f"worker-{n}", "worker", "--threads", str(self.args.threads))
            return self._measure(bridge, vendors)
        finally:
            bridge.stop()
            vendors.close()
            redis_server.stop()
            drop_database(database)

    def _configure(self, bridge: Bridge) -> None:
        data = yaml.safe_load(bridge.config.read_text())
        bulk_at = self.bulk.runner.infos["autotask"].base_url
        for conn in data["connections"]:
            conn["rate_budget"] = {"vendor_limits": False}  # the sandboxes serve with --limits off
            conn["backfill_since"] = "all"
            if conn["name"] == "partner-at":
                conn["base_url"] = bulk_at
        bridge.config.write_text(yaml.safe_dump(data, sort_keys=False))

    def _stored(self, bridge: Bridge, connection: str) -> int:
        with bridge.db.session() as s:
            count = s.scalar(sa.select(sa.func.count()).where(TicketRow.connection == connection))
        return int(count or 0)

    def _measure(self, bridge: Bridge, vendors: Vendors) -> dict[str, Any]:
        for n in range(self.args.incidents):  # the client's open incidents for the MSP, each mirrored once
            vendors.open_incident(f"Steady {self.rate}/{n}: file share slow")
        mirrored = wait_for("the pair's backfill and mirrors", lambda: self._mirrors(bridge), timeout=600, every=1)
        backfill_before = self._stored(bridge, "partner-at")
        incidents = sorted(mirrored)
        rng = random.Random(self.rate)
        changes: dict[str, float] = {}
        lock = threading.Lock()
        count = int(self.rate * self.args.seconds)
        start = time.monotonic() + 0.5
        wall_start = time.time() + 0.5
        failures = 0

        def change(i: int) -> None:
            nonlocal failures
            time.sleep(max(0.0, start + i / self.rate - time.monotonic()))
            token = f"#steady-{self.rate}-{i}#"
            sys_id = rng.choice(incidents)
            try:
                body = {"work_notes": f"{token} still slow"}
                vendors.sn.patch(f"/api/now/table/incident/{sys_id}", json=body, timeout=30).raise_for_status()
            except httpx.HTTPError:
                with lock:
                    failures += 1
                return
            with lock:
                changes[token] = time.time()

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(change, range(count)))
        driven = time.time() - wall_start
        backfill_mid = self._stored(bridge, "partner-at")
        done = self._written(bridge, changes, self.args.drain)
        backfill_after = self._stored(bridge, "partner-at")
        latencies = [done[token] - at for token, at in changes.items() if token in done]
        return {
            "bench": "steady",
            "rate": self.rate,
            "changes": len(changes),
            "change_failures": failures,
            "achieved_rate": round(len(changes) / driven, 1) if driven else None,
            "written_back": len(latencies),
            "not_written_back": len(changes) - len(latencies),
            "latency_ms": {name: _percentile(latencies, share) for name, share in PERCENTILES},
            "workers": self.args.workers,
            "threads": self.args.threads,
            "mirrored_incidents": len(incidents),
            "backfill": {
                "connection": "partner-at",
                "of": self.args.backfill_tickets,
                "stored_before": backfill_before,
                "stored_after_changes": backfill_mid,
                "stored_after_drain": backfill_after,
            },
            "backfill_running": backfill_before < backfill_mid < self.args.backfill_tickets,
        }

    def _mirrors(self, bridge: Bridge) -> set[str] | None:
        links = bridge.links()
        created = {lk.source_key.split(":", 1)[1] for lk in links if lk.state == "created"}
        busy = bridge.busy()
        return created if created and len(created) == len(links) and not busy["write_backs"] else None

    def _written(self, bridge: Bridge, changes: dict[str, float], drain: float) -> dict[str, float]:
        """Token -> when its write-back was done, waiting up to ``drain`` seconds for the last ones."""
        deadline = time.monotonic() + drain
        found: dict[str, float] = {}
        seen: set[int] = set()
        while True:
            with bridge.db.session() as s:
                rows = s.execute(
                    sa.select(OutboxAction.id, OutboxAction.action, OutboxAction.sent_at)
                    .where(OutboxAction.status == "done", OutboxAction.target == "msp-cw")
                    .order_by(OutboxAction.id)
                ).all()
            for row_id, action, sent_at in rows:
                if row_id in seen:
                    continue
                seen.add(int(row_id))
                for token in TOKEN.findall(json.dumps(action)):
                    if token in changes and token not in found and sent_at is not None:
                        found[token] = _stamp(sent_at)
            if len(found) >= len(changes) or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def main() -> int:
    """Serve the two sandboxes once, then one fresh bridge per rate; a JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="20,100,500")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long changes are made at each rate")
    parser.add_argument("--drain", type=float, default=120.0, help="how long to wait for the last write-backs")
    parser.add_argument("--backfill-tickets", type=int, default=20_000)
    parser.add_argument("--pair-tickets", type=int, default=200, help="seed tickets of the measured pair's sandbox")
    parser.add_argument("--incidents", type=int, default=50, help="incidents opened for the link before measuring")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="psabridge-steady-") as tmp:
        work = Path(tmp)
        (work / "pair").mkdir()
        (work / "bulk").mkdir()
        pair = Sandbox(work / "pair", port_base=_ports(), tickets=args.pair_tickets, seed=0, env={})
        bulk = Sandbox(work / "bulk", port_base=_ports(), tickets=args.backfill_tickets, seed=1, env={})
        pair.args += ["--limits", "off"]
        bulk.args += ["--limits", "off"]
        try:
            pair.start(timeout=300)
            bulk.start(timeout=900)
            pair.runner.world = build_world(0)
            for rate in [int(r) for r in args.rates.split(",") if r]:
                folder = work / f"rate-{rate}"
                folder.mkdir()
                row = Phase(args, rate, folder, pair, bulk).run()
                print(json.dumps(row), flush=True)
        finally:
            pair.stop()
            bulk.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
