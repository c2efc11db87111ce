"""`python3 run.py chaos [--short|--long]`: psabridge under faults, worker kills and a Redis restart, then checks.

It prints a table of the invariants and one JSON line, and exits 1 on any violation.

It starts its own Redis (another port, no persistence, so restarting it disturbs nobody), a fresh PostgreSQL
database, `psabridge sandbox serve` with fault profiles on every vendor (5xx, 429 storms, timeouts, duplicated,
reordered and dropped webhooks, records changing during paging), `psabridge serve` (webhooks and polls) and two
`psabridge worker` processes. While people change tickets through the vendors' APIs (new tickets, notes, time
entries, status changes on linked tickets; ServiceNow->ConnectWise and Freshservice->Autotask links), it kills a
worker with SIGKILL several times and restarts Redis once (then a reconcile repairs what the lost messages held).
Then faults go off, the bridge settles, a full reconcile runs and chaos/invariants.py compares vendor truth with
the store and the peers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # chaos/ and tests/ (the integration harness it drives the vendors with)

from tests.sync.bridge import PSABRIDGE, Bridge, Vendors, free_port  # noqa: E402

from chaos.driver import Driver  # noqa: E402
from chaos.invariants import CHECKS, Check, read_world  # noqa: E402
from chaos.services import OwnRedis, Sandbox, drop_database, fresh_database  # noqa: E402
from psabridge_sandbox.world import build_world  # noqa: E402

OWN = {"status": "to", "priority": "from", "notes": "both", "time_entries": "to"}
LINKS: tuple[dict[str, Any], ...] = (
    {"name": "acme-snow-to-cw", "from": {"connection": "acme-snow", "where": {"queue": "MSP Support"}},
     "to": {"connection": "msp-cw", "queue": "Acme Service", "tenant": "acme"}, "own": OWN},
    {"name": "globex-fs-to-at", "from": {"connection": "globex-fs", "where": {"queue": "MSP Escalations"}},
     "to": {"connection": "partner-at", "queue": "Service Desk", "tenant": "globex"}, "own": OWN},
)  # fmt: skip
CONNECTIONS = ("msp-cw", "partner-at", "acme-snow", "globex-fs")
# The sandbox's "chaos" profile without malformed bodies (a person's cut-off answer cannot be safely repeated) and
# with holds shorter than psabridge's read timeout here, so a hang is a timeout and not a slow answer.
FAULTS: dict[str, Any] = {"profile": "chaos", "malformed_rate": 0.0, "timeout_seconds": 6, "timeout_rate": 0.01,
                          "error_rate": 0.05, "storm_rate": 0.005, "storm_seconds": 2}  # fmt: skip
READ_TIMEOUT = 4.0
# Freshservice's Enterprise plan (the sandbox serves the same one): its per-minute limits stay on, but Growth's 80
# views a minute would make the run's length the Freshservice budget's rather than the faults'.
FRESHSERVICE_PLAN = "enterprise"


@dataclass(frozen=True)
class Plan:
    """How long and how hard."""

    tickets: int  # seed tickets per vendor
    seconds: float  # of driving
    kills: int  # worker SIGKILLs
    pause: float  # between two people's changes


PLANS = {"short": Plan(tickets=30, seconds=75, kills=3, pause=0.4), "long": Plan(tickets=300, seconds=600, kills=8,
                                                                                  pause=0.25)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 run.py chaos", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--short", action="store_const", const="short", dest="plan", help="about 4 minutes (CI)")
    size.add_argument("--long", action="store_const", const="long", dest="plan",
                      help="about 15 minutes, 300 tickets per vendor, 8 kills (the README's figures)")  # fmt: skip
    parser.add_argument("--seconds", type=float, help="override how long the people drive")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world, the faults and the people")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder and database (logs, store)")
    args = parser.parse_args(argv)
    plan = PLANS[args.plan or "short"]
    if args.seconds is not None:
        plan = Plan(plan.tickets, args.seconds, plan.kills, plan.pause)
    folder = Path(tempfile.mkdtemp(prefix="psabridge-chaos-"))
    print(f"chaos: {args.plan or 'short'} run, logs in {folder}", flush=True)
    started = time.monotonic()
    redis_server = OwnRedis(free_port(), folder)
    plan_env = {"PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN": FRESHSERVICE_PLAN}  # psabridge_sandbox.freshservice.PLAN_ENV
    sandbox = Sandbox(folder, port_base=_port_block(), tickets=plan.tickets, seed=args.seed, env=plan_env)
    database = ""
    bridge: Bridge | None = None
    vendors: Vendors | None = None
    try:
        redis_server.start()
        database = fresh_database()
        sandbox.start()
        sandbox.runner.world = build_world(args.seed)
        vendors = Vendors(sandbox.runner)  # type: ignore[arg-type]
        bridge = _bridge(folder, vendors, database, redis_server.url)
        checks, counts = _run(plan, args.seed, bridge, vendors, redis_server)
    except Exception:
        if bridge is not None:
            print(bridge.logs()[-6000:], file=sys.stderr)
        raise
    finally:
        if bridge is not None:
            bridge.stop()
        if vendors is not None:
            vendors.close()
        sandbox.stop()
        redis_server.stop()
        if database and not args.keep:
            drop_database(database)
    counts["seconds"] = round(time.monotonic() - started)
    failed = _report(checks, counts)
    if not args.keep and not failed:
        shutil.rmtree(folder, ignore_errors=True)
    elif args.keep:
        print(f"chaos: kept {folder} and {database}")
    return 1 if failed else 0


def _port_block() -> int:
    """A first port with the seven next ones free (the sandbox serves seven services in a row)."""
    for _ in range(50):
        base = free_port()
        if base < 60000 and all(_free(base + i) for i in range(1, 8)):
            return base
    raise RuntimeError("chaos: no block of eight free ports found")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _bridge(folder: Path, vendors: Vendors, database: str, broker: str) -> Bridge:
    bridge = Bridge(folder, vendors, database=database, broker=broker, namespace=f"chaos{uuid.uuid4().hex[:8]}",
                    poll_every="5s", connections=CONNECTIONS, links=LINKS)  # fmt: skip
    data = yaml.safe_load(bridge.config.read_text())
    for conn in data["connections"]:
        conn["backfill_since"] = "all"  # "every source ticket present once" is then every ticket the vendor has
        conn["timeouts"] = {"connect": 3.0, "read": READ_TIMEOUT}
        if conn["name"] == "globex-fs":
            conn.setdefault("options", {})["plan"] = FRESHSERVICE_PLAN
        if conn["name"] == "partner-at":
            conn["tenants"]["1003"] = "globex"  # psabridge_sandbox.autotask_data.LINKED_COMPANY_IDS
    bridge.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return bridge


def _faults(vendors: Vendors, profile: dict[str, Any]) -> None:
    for root in vendors.roots.values():
        httpx.put(f"{root}/_sandbox/faults", json=profile, timeout=10).raise_for_status()


def _run(
    plan: Plan, seed: int, bridge: Bridge, vendors: Vendors, redis_server: OwnRedis
) -> tuple[list[Check], dict[str, Any]]:
    counts: dict[str, Any] = {"plan": {"tickets_per_vendor": plan.tickets, "seconds": plan.seconds}}
    _faults(vendors, FAULTS)
    bridge.serve()
    workers = ["worker-1", "worker-2"]
    for name in workers:
        bridge.start(name, "worker", "--threads", "4")
    driver = Driver(vendors, bridge, seed=seed, run=uuid.uuid4().hex[:6])
    stop = threading.Event()
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            while not stop.is_set():
                driver.step()
                stop.wait(plan.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    people = threading.Thread(target=drive, name="people", daemon=True)
    people.start()
    kills = 0
    redis_restarted = False
    reconciles: list[int] = []
    repair: threading.Thread | None = None
    begun = time.monotonic()
    every = plan.seconds / (plan.kills + 1)
    while time.monotonic() - begun < plan.seconds and not errors:
        time.sleep(every)
        name = workers[kills % len(workers)]
        if name in bridge.processes:
            bridge.kill(name)  # SIGKILL to its process group: jobs, locks and budget slots abandoned mid-way
            kills += 1
            print(f"chaos: {time.monotonic() - begun:5.0f}s killed {name} (SIGKILL), restarting it", flush=True)
            bridge.start(name, "worker", "--threads", "4")
        if not redis_restarted and time.monotonic() - begun >= plan.seconds / 2:
            print(f"chaos: {time.monotonic() - begun:5.0f}s restarting Redis (its queues are lost)", flush=True)
            redis_server.restart()
            redis_restarted = True
            # what the lost messages held is found again by a reconcile (README: cron reconcile is the guarantee)
            repair = threading.Thread(target=lambda: reconciles.append(_reconcile(bridge, "--since", "1h")))
            repair.start()
    if repair is not None:
        repair.join()
    stop.set()
    people.join(60)
    if errors:
        raise RuntimeError(f"chaos: the people could not make their changes: {errors[0]!r}") from errors[0]
    print(f"chaos: people made {driver.expected.actions} changes; faults off, settling", flush=True)
    _faults(vendors, {"profile": "none"})
    for root in vendors.roots.values():
        httpx.post(f"{root}/_sandbox/webhooks/flush", timeout=60)
    _settle(bridge, vendors)
    reconciles.append(_reconcile(bridge, "--full"))
    _settle(bridge, vendors)
    for t in driver.expected.linked:
        if t.target_id is None:
            driver._mirror(t)
    world = read_world(
        vendors, bridge.db, driver.expected,
        link_tenants={str(lk["name"]): lk["to"].get("tenant") for lk in LINKS},
        connection_tenants={"acme-snow": "acme", "globex-fs": "globex", "msp-cw": None, "partner-at": None},
    )  # fmt: skip
    checks = [check(world) for check in CHECKS]
    counts["broker_messages_left"] = bridge.in_flight()["messages"]  # held by killed workers' ack sets, see _settle
    counts.update(worker_kills=kills, redis_restarts=int(redis_restarted), people_changes=driver.expected.actions,
                  reconcile_exit=reconciles, faults_seen=_faults_seen(vendors))  # fmt: skip
    if any(rc not in (0,) for rc in reconciles):
        checks.append(Check("reconcile exit status", {}, [f"reconcile exited {reconciles}"]))
    return checks, counts


def _settle(bridge: Bridge, vendors: Vendors, *, quiet: float = 10.0, timeout: float = 900.0) -> None:
    """Wait until nothing is unfinished in the store or held back by a simulator, and no write for ``quiet`` s.

    Messages a killed worker had fetched (Dramatiq keeps them in that worker's ack set until another worker's
    maintenance gives them back, which can take minutes) are not waited for: whatever they would have done, the
    full reconcile that follows finds and does, and a write they make later would be a duplicate the checks count.
    """
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        writes = sum(len(found) for found in vendors.writes().values())
        flight = bridge.in_flight()
        open_work = flight["write_backs"] + flight["deliveries"] + flight["webhooks"]
        if writes != last or open_work:
            last, since = writes, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"chaos: the bridge did not settle within {timeout:.0f}s: {flight}")
        time.sleep(1.0)


def _reconcile(bridge: Bridge, *args: str) -> int:
    """`psabridge reconcile` beside the running service; its exit status (its output goes to reconcile.log)."""
    with (bridge.folder / "reconcile.log").open("ab") as log:
        done = subprocess.run(  # noqa: S603 - our own console script
            [*PSABRIDGE, "reconcile", "--json", "--wait", "600", *args, "--config", str(bridge.config)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=1200, check=False,
        )  # fmt: skip
    print(f"chaos: reconcile {' '.join(args)} exited {done.returncode}", flush=True)
    return done.returncode


def _faults_seen(vendors: Vendors) -> dict[str, int]:
    """Requests each kind of fault answered, over every vendor."""
    seen: dict[str, int] = {}
    for root in vendors.roots.values():
        for r in httpx.get(f"{root}/_sandbox/requests", timeout=30).json()["requests"]:
            if r.get("fault"):
                seen[r["fault"]] = seen.get(r["fault"], 0) + 1
        for d in httpx.get(f"{root}/_sandbox/webhooks", timeout=30).json().get("deliveries", []):
            outcome = str(d.get("outcome"))
            if outcome != "delivered":
                seen[f"webhook {outcome}"] = seen.get(f"webhook {outcome}", 0) + 1
    return seen


def _report(checks: list[Check], counts: dict[str, Any]) -> bool:
    width = max(len(c.name) for c in checks)
    print()
    print(f"{'invariant':<{width}}  result  counts")
    print(f"{'-' * width}  ------  ------")
    for c in checks:
        shown = ", ".join(f"{k} {v}" for k, v in c.counts.items())
        print(f"{c.name:<{width}}  {'ok' if not c.violations else 'FAIL':<6}  {shown}")
        for v in c.violations[:30]:
            print(f"{'':<{width}}    - {v}")
    print()
    print(", ".join(f"{k}: {v}" for k, v in counts.items() if k != "reconcile_full"))
    failed = any(c.violations for c in checks)
    line = {
        "chaos": "failed" if failed else "passed",
        **counts,
        "checks": {c.name: {"ok": not c.violations, **c.counts, "violations": len(c.violations)} for c in checks},
    }
    print(json.dumps(line, sort_keys=False, default=str))  # fmt: skip
    return failed


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
