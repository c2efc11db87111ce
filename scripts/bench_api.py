#!/usr/bin/env python3
"""Benchmark: API efficiency per vendor under the sandbox's default limits, one JSON line per vendor.

Usage: python3 run.py bench api [--tickets 300] [--vendors connectwise,autotask,servicenow,freshservice]
       [--database sqlite|postgresql]

The sandbox serves as the vendors limit (``psabridge sandbox serve``, default limits) and psabridge keeps its default
budgets. For each vendor, in a child process of its own, through ``poll_connection`` as the schedule runs it:

* backfill: the first poll of an empty store (every seeded ticket, ``backfill_since`` lifted): requests per synced
  ticket, by endpoint;
* idle poll: a second poll right after, with nothing changed at the vendor: its requests;
* one change: a person changes one ticket through the vendor's API, then a poll: its requests;
* 429s: every 429 the simulator answered psabridge during the three (self-caused: nothing else uses the sandbox,
  so this must be 0).

Request counts come from the simulator's own log of requests (``/_sandbox/requests``), so they are what the vendor
would see; they do not depend on the machine's load. Helpers are shared with scripts/bench_backfill.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backfill import CONNECTIONS, POSTGRES, ROOT, Requests, _Discard, database, sandbox


def _person_changes_one(vendor: str, base: str) -> None:
    """A person edits one seeded ticket through the vendor's API (as the integration tests' people do)."""
    from psabridge_sandbox import credentials as c

    if vendor == "connectwise":
        from psabridge_sandbox.connectwise import API_ROOT

        auth = httpx.BasicAuth(f"{c.CW_COMPANY}+{c.CW_PUBLIC_KEY}", c.CW_PRIVATE_KEY)
        with httpx.Client(base_url=base + API_ROOT, auth=auth, headers={"clientId": c.CW_CLIENT_ID}) as cw:
            first = cw.get("/service/tickets", params={"pageSize": 1, "orderBy": "id desc"}).raise_for_status()
            patch = [{"op": "replace", "path": "summary", "value": "bench api: one change"}]
            cw.patch(f"/service/tickets/{first.json()[0]['id']}", json=patch).raise_for_status()
    elif vendor == "autotask":
        zone = httpx.get(f"{base}/v1.0/zoneInformation", params={"user": c.AT_USERNAME}).json()["url"]
        headers = {"ApiIntegrationCode": c.AT_INTEGRATION_CODE, "UserName": c.AT_USERNAME, "Secret": c.AT_SECRET}
        with httpx.Client(base_url=zone.rstrip("/") + "/V1.0/", headers=headers) as at:
            body = {"MaxRecords": 1, "Filter": [{"op": "gt", "field": "id", "value": 0}]}
            ticket = at.post("Tickets/query", json=body).raise_for_status().json()["items"][0]
            at.patch("Tickets", json={"id": ticket["id"], "title": "bench api: one change"}).raise_for_status()
    elif vendor == "servicenow":
        with httpx.Client(base_url=base, auth=("dana.whitfield", c.SN_PASSWORD)) as sn:
            rows = sn.get("/api/now/table/incident", params={"sysparm_limit": 1}).raise_for_status().json()["result"]
            change = {"short_description": "bench api: one change"}
            sn.patch(f"/api/now/table/incident/{rows[0]['sys_id']}", json=change).raise_for_status()
    else:
        with httpx.Client(base_url=f"{base}/api/v2/", auth=(c.FS_API_KEY, "X")) as fs:
            params = {"per_page": 1, "updated_since": "2000-01-01T00:00:00Z"}
            ticket = fs.get("tickets", params=params).raise_for_status().json()["tickets"][0]
            fs.put(f"tickets/{ticket['id']}", json={"subject": "bench api: one change"}).raise_for_status()


def measure(vendor: str, config: str, root: str, db_kind: str) -> dict[str, Any]:
    """Backfill, idle poll and one-change poll of one vendor in this process; their request counts."""
    from psabridge.log import configure_logging
    from psabridge.settings import load_settings
    from psabridge.store import tickets
    from psabridge.sync.context import build_context
    from psabridge.sync.poll import poll_connection

    configure_logging("warning", "json")
    name = CONNECTIONS[vendor]
    settings = load_settings(config)
    settings.links = []
    settings.connection(name).backfill_since = None
    out: dict[str, Any] = {"bench": "api", "vendor": vendor, "database": db_kind, "limits": "vendor defaults"}
    with tempfile.TemporaryDirectory() as tmp, database(db_kind, Path(tmp), POSTGRES) as url:
        settings.database = url
        ctx = build_context(settings, _Discard())
        counter = Requests(root)
        too_many = 0
        try:
            wall = time.perf_counter()
            poll_connection(ctx, name)
            wall = time.perf_counter() - wall
            with ctx.db.session() as session:
                stored = tickets.count_by_connection(session)[name]
            by_endpoint, statuses = counter.take()
            too_many += statuses.get(429, 0)
            requests = sum(by_endpoint.values())
            out["backfill"] = {
                "tickets": stored,
                "requests": requests,
                "requests_per_ticket": round(requests / max(1, stored), 4),
                "by_endpoint": dict(sorted(by_endpoint.items())),
                "seconds": round(wall, 1),
            }
            time.sleep(1.1)  # past the second the backfill ended in, as the next scheduled poll would be
            poll_connection(ctx, name)
            by_endpoint, statuses = counter.take()
            too_many += statuses.get(429, 0)
            out["idle_poll"] = {"requests": sum(by_endpoint.values()), "by_endpoint": dict(sorted(by_endpoint.items()))}
            base = settings.connection(name).base_url
            _person_changes_one(vendor, root if vendor != "autotask" else base)
            counter.take()  # the person's own requests
            time.sleep(1.1)
            poll_connection(ctx, name)
            by_endpoint, statuses = counter.take()
            too_many += statuses.get(429, 0)
            out["one_change_poll"] = {
                "requests": sum(by_endpoint.values()),
                "by_endpoint": dict(sorted(by_endpoint.items())),
            }
            out["self_caused_429s"] = too_many
        finally:
            counter.close()
            ctx.close()
    return out


def main() -> int:
    """Serve the sandbox with default limits, measure each vendor in a child, print a JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300, help="seed tickets per vendor (Freshservice: ~26 a minute)")
    parser.add_argument("--vendors", default=",".join(CONNECTIONS))
    parser.add_argument("--database", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument("--measure", nargs=4, metavar=("VENDOR", "CONFIG", "ROOT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    failed = 0
    with sandbox(args.tickets, "on") as (config, roots):
        for vendor in args.vendors.split(","):
            command = [sys.executable, __file__, "--measure", vendor, str(config), roots[vendor], args.database]
            out = subprocess.run(command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True)
            if out.returncode != 0:
                print(json.dumps({"bench": "api", "vendor": vendor, "error": out.stderr.strip()[-2000:]}), flush=True)
                failed = 1
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["seed_tickets"] = args.tickets
            print(json.dumps(row), flush=True)
            failed |= int(row["self_caused_429s"] != 0)
    return failed


if __name__ == "__main__":
    sys.exit(main())
