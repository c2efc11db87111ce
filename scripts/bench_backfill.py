#!/usr/bin/env python3
"""Benchmark: a backfill through the whole pipeline, per vendor and size, against the sandbox, next to a plain client.

Usage: python3 run.py bench backfill [--sizes 10000,100000] [--vendors connectwise,autotask,servicenow,freshservice]
       [--databases sqlite,postgresql] [--postgres URL] [--limited-size 10000] [--limited-vendors ...] [--no-plain]
       [--baseline EARLIER.jsonl]

Prints one JSON line per vendor, size and database, then one per vendor for the run under the default limits:

* unlimited sandbox (``psabridge sandbox serve --limits off`` when that exists, else this script serves the simulators
  with their rate and in-flight limits removed and Freshservice on its ``unlimited`` plan; our budgets raised to
  match), in a process of its own: the first poll of an empty store (the backfill: list pages, ``complete_page``,
  mapping, set-based store, through ``poll_connection``), on SQLite and on PostgreSQL, then a full reconcile with
  nothing changed. Figures: tickets per second of wall time and per CPU second of this process (one core), vendor
  requests per ticket by endpoint (from the sandbox's recorded requests), requests of the second full reconcile,
  429s and other refusals, peak RSS of the process;
* a plain client in the same sandbox: httpx reading the list pages plus the reads each vendor forces or offers in
  bulk (ConnectWise: notes per ticket, time entries in bulk; Autotask and ServiceNow: notes and time entries in bulk
  per page; Freshservice: conversations per ticket), per-ticket reads overlapped on 8 threads, parsing only;
* default limits (``sandbox serve`` as it is, our default budgets): the wall time of a ``--limited-size`` backfill,
  next to its floor: the longer of the time the vendor's published limits need for the plain client's request count
  (its tightest window: overall or per endpoint) and the plain client's own time unlimited (both scaled to the size).

Each measurement runs in a fresh child process (its RSS is its own); the sandbox serves from another.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PSABRIDGE = str(Path(sys.executable).with_name("psabridge"))
CONNECTIONS = {
    "connectwise": "msp-cw",
    "autotask": "partner-at",
    "servicenow": "acme-snow",
    "freshservice": "globex-fs",
}
POSTGRES = os.environ.get("PSABRIDGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# The vendors' published limits, as the sandbox enforces them: (overall requests, per seconds, {endpoint: (n, per)}).
LIMITS: dict[str, tuple[int, float, dict[str, tuple[int, float]]]] = {
    "connectwise": (1200, 60.0, {}),  # the sandbox's Cloudflare rule (connectwise.py CLOUDFLARE_LIMIT)
    "autotask": (10_000, 3600.0, {}),  # per database per hour (and 3 threads per endpoint)
    "servicenow": (50_000, 3600.0, {}),  # the sandbox's rate-limit rule (an admin sets the real one)
    "freshservice": (200, 60.0, {"GET /api/v2/tickets": (70, 60.0), "GET /api/v2/tickets/{id}": (80, 60.0)}),  # Growth
}
_ID = re.compile(r"^(\d+|[0-9a-f]{32}|[0-9a-f-]{36})$")


# --- the sandbox ------------------------------------------------------------------------------------------------------


def serve_here(tickets: int, limits: str, workdir: Path) -> None:
    """Serve every simulator in this process (``--limits off`` when the sandbox CLI does not offer it yet)."""
    from psabridge_sandbox.configout import write_config, write_urls
    from psabridge_sandbox.freshservice import PLAN_ENV
    from psabridge_sandbox.runner import SandboxRunner

    if limits == "off":
        os.environ[PLAN_ENV] = "unlimited"
    runner = SandboxRunner(port_base=0, tickets=tickets)
    runner.start(timeout=900)
    if limits == "off":
        for simulator in runner.simulators.values():
            simulator.rate_limits.clear()
            simulator.concurrency_limits.clear()
    write_config(workdir / "psabridge.yaml", runner.infos, world=runner.world, host="127.0.0.1")
    write_urls(workdir / "urls.json", runner.infos)
    threading.Event().wait()


@contextmanager
def sandbox(tickets: int, limits: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """A sandbox process with ``tickets`` per vendor; yields its config file and each service's root URL."""
    with tempfile.TemporaryDirectory(prefix="psabridge-bench-") as tmp:
        work = Path(tmp)
        help_text = subprocess.run([PSABRIDGE, "sandbox", "serve", "--help"], capture_output=True, text=True).stdout
        if "--limits" in help_text:
            command = [PSABRIDGE, "sandbox", "serve", "--tickets", str(tickets), "--port-base", "0",
                       "--limits", limits, "--urls-file", str(work / "urls.json"),
                       "--config-out", str(work / "psabridge.yaml")]  # fmt: skip
        else:
            command = [sys.executable, __file__, "--serve", str(tickets), limits, str(work)]
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 900
            urls = work / "urls.json"
            while not (urls.exists() and urls.stat().st_size and (work / "psabridge.yaml").exists()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the sandbox did not start (exit {proc.returncode})")
                time.sleep(0.5)
            time.sleep(0.5)
            roots = {name: str(info["url"]) for name, info in json.loads(urls.read_text()).items()}
            yield work / "psabridge.yaml", roots
        finally:
            proc.terminate()
            proc.wait(timeout=60)


class Requests:
    """The requests one simulator recorded, fetched in the background (its log keeps only the newest 200,000)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.client = httpx.Client(timeout=120)
        self.seq = self._last_seq()
        self.by_endpoint: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _last_seq(self) -> int:
        found = self.client.get(f"{self.root}/_sandbox/requests").json()["requests"]
        return max((int(r["seq"]) for r in found), default=0)

    def _fetch(self) -> None:
        with self._mutex:
            found = self.client.get(f"{self.root}/_sandbox/requests", params={"since": self.seq}).json()["requests"]
            for item in found:
                self.seq = max(self.seq, int(item["seq"]))
                self.by_endpoint[f"{item['method']} {endpoint(item['path'])}"] += 1
                self.statuses[int(item["status"])] += 1

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            self._fetch()

    def take(self) -> tuple[Counter[str], Counter[int]]:
        """What was recorded since the last ``take`` (by endpoint, by status)."""
        self._fetch()
        with self._mutex:
            found = (self.by_endpoint, self.statuses)
            self.by_endpoint, self.statuses = Counter(), Counter()
            return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


def endpoint(path: str) -> str:
    """A path with its ids replaced by ``{id}`` (``/service/tickets/12/notes`` -> ``/service/tickets/{id}/notes``)."""
    parts = path.split("/")
    return "/".join("{id}" if _ID.match(part) else part for part in parts)


# --- the pipeline -------------------------------------------------------------------------------------------------


class _Discard:
    def ingest(self, connection: str, external_id: str, *, delay: float | None = None) -> None:
        """Nothing is queued in a backfill without links; a deferred ticket would be ingested by a worker."""

    def dispatch(self, outbox_id: int, target: str | None = None, *, delay: float | None = None) -> None:
        """No write-backs: the benchmark has no links."""

    def poll(self, connection: str, *, delay: float | None = None) -> None:
        """Polls are run directly."""

    def evaluate(self, ticket_key: str, *, delay: float | None = None) -> None:
        """The rules' evaluation of a stored ticket is a job of its own (``bench rules`` measures it), not ingest."""

    def notify(self, outbox_id: int) -> None:
        """No pages or chat posts in a backfill."""


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@contextmanager
def database(kind: str, folder: Path, postgres: str) -> Iterator[str]:
    """A fresh, migrated store: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    from psabridge.store import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        upgrade(url)
        yield url
        return
    import sqlalchemy as sa

    name = f"psabridge_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pipeline(vendor: str, config: str, root: str, db_kind: str, mode: str, postgres: str) -> dict[str, Any]:
    """One backfill (and, unlimited, a second full reconcile) in this process; its figures."""
    from psabridge.log import configure_logging
    from psabridge.settings import load_settings
    from psabridge.store import tickets
    from psabridge.sync.context import build_context
    from psabridge.sync.poll import poll_connection
    from psabridge.sync.reconcile import reconcile

    configure_logging("warning", "json")
    name = CONNECTIONS[vendor]
    settings = load_settings(config)
    settings.links = []  # the backfill alone: no mirrors
    settings.connection(name).backfill_since = None  # every seeded ticket, however old
    out: dict[str, Any] = {"vendor": vendor, "database": db_kind, "mode": mode}
    with tempfile.TemporaryDirectory() as tmp, database(db_kind, Path(tmp), postgres) as url:
        settings.database = url
        ctx = build_context(settings, _Discard())
        counter = Requests(root)
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            polled = poll_connection(ctx, name)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            with ctx.db.session() as session:
                stored = tickets.count_by_connection(session)[name]
            by_endpoint, statuses = counter.take()
            requests = sum(by_endpoint.values())
            out.update(
                tickets=stored,
                seconds=round(wall, 2),
                tickets_per_s=round(stored / wall, 1) if wall else None,
                tickets_per_cpu_s=round(stored / cpu, 1) if cpu else None,
                requests=requests,
                requests_per_ticket=round(requests / max(1, stored), 4),
                by_endpoint={k: round(v / max(1, stored), 4) for k, v in sorted(by_endpoint.items())},
                status_429=statuses.get(429, 0),
                refused=sum(n for status, n in statuses.items() if status >= 400 and status != 429),
                failed=polled.counts.get("failed", 0),
            )
            if mode == "unlimited":
                wall = time.perf_counter()
                report = reconcile(ctx, connections=[name], full=True)
                second, second_statuses = counter.take()
                counts = report.connections[name]
                out["second_full_reconcile"] = {
                    "requests": sum(second.values()),
                    "by_endpoint": dict(sorted(second.items())),
                    "seconds": round(time.perf_counter() - wall, 2),
                    "stored": counts.created + counts.updated,
                    "status_429": second_statuses.get(429, 0),
                }
        finally:
            counter.close()
            ctx.close()
    out["peak_rss_mib"] = _rss_mib()
    return out


# --- the plain client ---------------------------------------------------------------------------------------------


def plain(vendor: str, config: str, root: str) -> dict[str, Any]:
    """The plain client's read of every ticket with its sub-resources, in this process; its figures."""
    from psabridge.settings import load_settings

    settings = load_settings(config)
    base = settings.connection(CONNECTIONS[vendor]).base_url
    counter = Requests(root)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(8) as pool:
            count = PLAIN[vendor](base, pool)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        by_endpoint, statuses = counter.take()
    finally:
        counter.close()
    requests = sum(by_endpoint.values())
    return {
        "tickets": count,
        "seconds": round(wall, 2),
        "tickets_per_s": round(count / wall, 1) if wall else None,
        "tickets_per_cpu_s": round(count / cpu, 1) if cpu else None,
        "requests": requests,
        "by_endpoint": {k: v for k, v in sorted(by_endpoint.items())},
        "status_429": statuses.get(429, 0),
    }


def _json(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json()


def _plain_connectwise(base: str, pool: ThreadPoolExecutor) -> int:
    from psabridge_sandbox.credentials import CW_CLIENT_ID, CW_COMPANY, CW_PRIVATE_KEY, CW_PUBLIC_KEY

    auth = httpx.BasicAuth(f"{CW_COMPANY}+{CW_PUBLIC_KEY}", CW_PRIVATE_KEY)
    headers = {"clientId": CW_CLIENT_ID}
    if not base.rstrip("/").endswith("/apis/3.0"):  # the codebase first, as every ConnectWise client does
        info = _json(httpx.get(f"{base.rstrip('/')}/login/companyinfo/{CW_COMPANY}", headers=headers, timeout=120))
        base = f"{base.rstrip('/')}/{info['Codebase']}apis/3.0"
    client = httpx.Client(base_url=base, auth=auth, headers=headers, timeout=120)
    count, last = 0, 0
    while True:
        params = {"pageSize": 1000, "orderBy": "id asc", "conditions": f"id > {last}"}
        page = _json(client.get("/service/tickets", params=params))
        if not page:
            return count
        ids = [t["id"] for t in page]
        list(pool.map(lambda i: _json(client.get(f"/service/tickets/{i}/notes", params={"pageSize": 1000})), ids))
        for start in range(0, len(ids), 150):  # as the connector: 150 ids a condition
            listed = ",".join(map(str, ids[start : start + 150]))
            conditions = f'chargeToType = "ServiceTicket" and chargeToId in ({listed})'
            _json(client.get("/time/entries", params={"conditions": conditions, "pageSize": 1000}))
        count += len(page)
        last = ids[-1]


def _plain_autotask(base: str, pool: ThreadPoolExecutor) -> int:
    from psabridge_sandbox.credentials import AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME

    zone = _json(httpx.get(f"{base}/v1.0/zoneInformation", params={"user": AT_USERNAME}))["url"]
    headers = {"ApiIntegrationCode": AT_INTEGRATION_CODE, "UserName": AT_USERNAME, "Secret": AT_SECRET}
    client = httpx.Client(base_url=zone.rstrip("/") + "/", headers=headers, timeout=120)
    count, last = 0, -1
    while True:
        body = {"MaxRecords": 500, "Filter": [{"op": "gt", "field": "id", "value": last}]}
        items = _json(client.post("v1.0/Tickets/query", json=body))["items"]
        if not items:
            return count
        ids = [t["id"] for t in items]
        for entity in ("TicketNotes", "TimeEntries"):
            _all_autotask(client, entity, {"op": "in", "field": "ticketID", "value": ids})
        count += len(items)
        last = max(ids)


def _all_autotask(client: httpx.Client, entity: str, condition: dict[str, Any]) -> None:
    body = {"MaxRecords": 500, "Filter": [condition]}
    answer = _json(client.post(f"v1.0/{entity}/query", json=body))
    while answer.get("pageDetails", {}).get("nextPageUrl"):
        answer = _json(client.post(answer["pageDetails"]["nextPageUrl"], json=body))


def _plain_servicenow(base: str, pool: ThreadPoolExecutor) -> int:
    from psabridge_sandbox.credentials import SN_PASSWORD, SN_USERNAME

    client = httpx.Client(base_url=base, auth=(SN_USERNAME, SN_PASSWORD), timeout=120)
    count, last = 0, ""
    while True:
        query = f"sys_id>{last}^ORDERBYsys_id" if last else "ORDERBYsys_id"
        page = _json(client.get("/api/now/table/incident", params={"sysparm_query": query, "sysparm_limit": 1000}))
        rows = page["result"]
        if not rows:
            return count
        sys_ids = [r["sys_id"] for r in rows]
        for start in range(0, len(sys_ids), 150):  # as the connector: a request line stays under Tomcat's 8 KB
            ids = ",".join(sys_ids[start : start + 150])
            for table, field in (("sys_journal_field", "element_id"), ("task_time_worked", "task")):
                params = {"sysparm_query": f"{field}IN{ids}", "sysparm_limit": 10_000}
                _json(client.get(f"/api/now/table/{table}", params=params))
        count += len(rows)
        last = rows[-1]["sys_id"]


def _plain_freshservice(base: str, pool: ThreadPoolExecutor) -> int:
    from psabridge_sandbox.credentials import FS_API_KEY

    client = httpx.Client(base_url=base, auth=(FS_API_KEY, "X"), timeout=120)
    count, number = 0, 1
    while True:
        params = {"per_page": 100, "page": number, "updated_since": "2000-01-01T00:00:00Z", "order_type": "asc"}
        rows = _json(client.get("/api/v2/tickets", params=params))["tickets"]
        if not rows:
            return count
        list(pool.map(lambda t: _json(client.get(f"/api/v2/tickets/{t['id']}/conversations")), rows))
        count += len(rows)
        number += 1


PLAIN: dict[str, Callable[[str, ThreadPoolExecutor], int]] = {
    "connectwise": _plain_connectwise,
    "autotask": _plain_autotask,
    "servicenow": _plain_servicenow,
    "freshservice": _plain_freshservice,
}


def floor_seconds(vendor: str, by_endpoint: dict[str, int]) -> float:
    """The least time the vendor's limits allow for these requests (its tightest window)."""
    overall, per, endpoints = LIMITS[vendor]
    floor = sum(by_endpoint.values()) / overall * per
    for name, (limit, window) in endpoints.items():
        floor = max(floor, by_endpoint.get(name, 0) / limit * window)
    return floor


# --- driving it ---------------------------------------------------------------------------------------------------


UNLIMITED_BUDGET = {"REQUESTS": "100000000", "PER": "60", "CONCURRENCY": "64"}


def _child(args: list[str], *, unlimited: bool) -> dict[str, Any]:
    env = dict(os.environ)
    if unlimited:
        for name in CONNECTIONS.values():
            for key, value in UNLIMITED_BUDGET.items():
                env[f"PSABRIDGE_CONNECTIONS__{name.upper().replace('-', '_')}__RATE_BUDGET__{key}"] = value
    out = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{out.stderr[-4000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    """Parse arguments, run every measurement, print a JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--vendors", default=",".join(CONNECTIONS))
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=POSTGRES, help="a PostgreSQL server database to create bench ones from")
    parser.add_argument("--limited-size", type=int, default=10_000, help="0: skip the run under the default limits")
    parser.add_argument("--limited-vendors", default=None, help="default: --vendors")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain client")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="JSON lines of an earlier run: their plain-client figures give the floors of this run's limited backfills "
        "(run the unlimited sizes once, then the limited ones per vendor with --sizes '' --baseline FILE)",
    )
    parser.add_argument("--serve", nargs=3, metavar=("TICKETS", "LIMITS", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--pipeline", nargs=5, metavar=("VENDOR", "CONFIG", "ROOT", "DB", "MODE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--plain", nargs=3, metavar=("VENDOR", "CONFIG", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_here(int(args.serve[0]), args.serve[1], Path(args.serve[2]))
        return 0
    if args.pipeline:
        vendor, config, root, db_kind, mode = args.pipeline
        print(json.dumps(pipeline(vendor, config, root, db_kind, mode, args.postgres)))
        return 0
    if args.plain:
        print(json.dumps(plain(*args.plain)))
        return 0
    vendors = args.vendors.split(",")
    plain_by_vendor: dict[tuple[str, int], dict[str, Any]] = {}
    if args.baseline is not None:
        for line in args.baseline.read_text().splitlines():
            earlier = json.loads(line) if line.strip().startswith("{") else {}
            if "plain" in earlier:
                plain_by_vendor[(earlier["vendor"], int(earlier["size"]))] = earlier["plain"]
    for size in [int(s) for s in args.sizes.split(",") if s]:
        with sandbox(size, "off") as (config, roots):
            for vendor in vendors:
                root = roots[vendor]
                baseline = None if args.no_plain else _child(["--plain", vendor, str(config), root], unlimited=True)
                if baseline is not None:
                    plain_by_vendor[(vendor, size)] = baseline
                for db_kind in args.databases.split(","):
                    row = _child(["--pipeline", vendor, str(config), root, db_kind, "unlimited"], unlimited=True)
                    row["size"] = size
                    if baseline is not None:
                        row["plain"] = baseline
                        row["vs_plain"] = round(baseline["seconds"] / row["seconds"], 3) if row["seconds"] else None
                    print(json.dumps(row), flush=True)
    if args.limited_size:
        limited = (args.limited_vendors or args.vendors).split(",")
        with sandbox(args.limited_size, "on") as (config, roots):
            for vendor in limited:
                row = _child(["--pipeline", vendor, str(config), roots[vendor], "sqlite", "limited"], unlimited=False)
                row["size"] = args.limited_size
                minimal = plain_by_vendor.get((vendor, args.limited_size)) or next(
                    (v for (name, _), v in plain_by_vendor.items() if name == vendor), None
                )
                if minimal is not None:
                    scale = args.limited_size / max(1, minimal["tickets"])
                    needed = {k: round(v * scale) for k, v in minimal["by_endpoint"].items()}
                    row["floor_limits_seconds"] = round(floor_seconds(vendor, needed), 1)
                    row["floor_plain_seconds"] = round(minimal["seconds"] * scale, 1)
                    row["floor_seconds"] = max(row["floor_limits_seconds"], row["floor_plain_seconds"])
                    row["vs_floor"] = round(row["seconds"] / row["floor_seconds"], 3) if row["floor_seconds"] else None
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
