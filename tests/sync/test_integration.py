"""End to end against real services: the ServiceNow and ConnectWise simulators on loopback sending their webhooks to
`psabridge serve`, a `psabridge worker` process on Redis, PostgreSQL as the store."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .bridge import Bridge, Vendors, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start_bridge(tmp_path: Path, vendors: Vendors, database: str, broker: str, namespace: str, **kw: Any) -> Bridge:
    bridge = Bridge(tmp_path, vendors, database=database, broker=broker, namespace=namespace, **kw)
    bridge.serve()
    bridge.worker()
    return bridge


@pytest.fixture
def bridge(tmp_path: Path, vendors: Vendors, postgres_url: str, redis_url: str, namespace: str) -> Iterator[Bridge]:
    made = start_bridge(tmp_path, vendors, postgres_url, redis_url, namespace)
    yield made
    made.stop()


def cw_writes(vendors: Vendors, path_part: str, method: str = "POST") -> int:
    return sum(1 for w in vendors.writes()["connectwise"] if w["method"] == method and path_part in w["path"])


def test_a_servicenow_ticket_is_mirrored_once_and_notes_and_status_flow_as_ownership_says(
    bridge: Bridge, vendors: Vendors
) -> None:
    # A client opens an incident for the MSP queue: exactly one ConnectWise mirror, and the link records both
    sys_id = vendors.open_incident("Laptop will not boot")
    cw_id = bridge.mirror_of(sys_id)
    bridge.settle()
    assert [t["id"] for t in vendors.cw_tickets("Laptop will not boot")] == [int(cw_id)]
    link = bridge.link_of(sys_id)
    assert link is not None and link.target_key == f"msp-cw:{cw_id}"
    assert vendors.cw_ticket(cw_id)["board"]["name"] == "Acme Service"

    # A note on either side appears once on the other
    vendors.sn_update(sys_id, work_notes="Customer rebooted twice, same BSOD")
    wait_for("the client's note in ConnectWise", lambda: any("same BSOD" in n for n in vendors.cw_notes(cw_id)))
    vendors.cw_note(cw_id, "Replaced the SSD; imaging now")
    wait_for("the technician's note in ServiceNow", lambda: any("imaging now" in n for n in vendors.sn_notes(sys_id)))

    # Status belongs to ConnectWise, priority to ServiceNow
    vendors.cw_status(cw_id, "In Progress")
    wait_for("ServiceNow In Progress", lambda: vendors.incident(sys_id)["state"] == "2")
    vendors.sn_update(sys_id, impact="1", urgency="1")
    wait_for("ConnectWise P1", lambda: vendors.cw_ticket(cw_id)["priority"]["name"].startswith("Priority 1"))
    vendors.sn_update(sys_id, state="3")  # on hold, in ServiceNow: not its field to decide
    bridge.settle()
    assert vendors.cw_ticket(cw_id)["status"]["name"] == "In Progress"

    # No echo loop: from the writes seen once settled, the bridge comes to rest (nothing left in the store, the
    # simulators' webhook queues or the broker) without writing anything more
    assert sum("same BSOD" in n for n in vendors.cw_notes(cw_id)) == 1
    assert sum("imaging now" in n for n in vendors.sn_notes(sys_id)) == 1
    writes = vendors.writes()
    assert bridge.quiesce() == writes
    assert cw_writes(vendors, "/service/tickets", "POST") - cw_writes(vendors, "/notes") == 1  # one create
    assert bridge.dead_letters() == []


def test_a_duplicated_reordered_stream_of_webhooks_gives_the_same_end_state(bridge: Bridge, vendors: Vendors) -> None:
    sys_id = vendors.open_incident("Outlook keeps asking for the password")
    cw_id = bridge.mirror_of(sys_id)
    bridge.settle()
    # Both vendors now deliver every notification twice half the time and hold some back behind later ones
    vendors.faults(webhook_duplicate_rate=0.6, webhook_reorder_rate=0.5, webhook_delay_ms=[0, 400])
    vendors.sn_update(sys_id, work_notes="Happens on the laptop only")
    vendors.sn_update(sys_id, impact="2", urgency="1")  # P2
    vendors.cw_status(cw_id, "In Progress")
    vendors.cw_note(cw_id, "Cleared the credential cache")
    vendors.sn_update(sys_id, work_notes="Fixed, thanks!")
    vendors.cw_status(cw_id, "Completed")
    for root in (vendors.sn_root, vendors.cw_root):  # let held-back deliveries go
        httpx.post(f"{root}/_sandbox/webhooks/flush", timeout=30)
    bridge.settle()
    incident, ticket = vendors.incident(sys_id), vendors.cw_ticket(cw_id)
    assert (incident["state"], incident["priority"]) == ("6", "2")  # resolved, as ConnectWise says; P2
    assert ticket["status"]["name"] == "Completed" and ticket["priority"]["name"].startswith("Priority 2")
    cw_notes, sn_notes = vendors.cw_notes(cw_id), vendors.sn_notes(sys_id)
    assert sum("laptop only" in n for n in cw_notes) == 1 and sum("Fixed, thanks" in n for n in cw_notes) == 1
    assert sum("credential cache" in n for n in sn_notes) == 1


def test_a_worker_killed_mid_job_loses_nothing_after_a_restart(
    tmp_path: Path, vendors: Vendors, postgres_url: str, redis_url: str, namespace: str
) -> None:
    # Slots of the shared rate budget the killed worker held are leases that end on their own (connectors/budget.py).
    bridge = start_bridge(tmp_path, vendors, postgres_url, redis_url, namespace)
    try:
        _killed_mid_job(bridge, vendors)
    finally:
        bridge.stop()


def _killed_mid_job(bridge: Bridge, vendors: Vendors) -> None:
    vendors.faults(latency_ms=[50, 150])  # every vendor call is slow: the kill lands inside jobs
    titles = [f"Printer {n} offline" for n in range(8)]
    ids = [vendors.open_incident(title) for title in titles]
    wait_for("the first mirror", lambda: any(lk.state == "created" for lk in bridge.links()))
    bridge.kill("worker")  # SIGKILL: no clean-up, jobs and locks abandoned mid-way
    bridge.worker()
    for sys_id in ids:
        bridge.mirror_of(sys_id)
    bridge.settle(timeout=120)
    assert [len(vendors.cw_tickets(title)) for title in titles] == [1] * len(titles)
    assert bridge.dead_letters() == []


def _pings(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def test_redis_restarted_mid_run_loses_nothing_after_restart_and_reconcile(
    tmp_path: Path, vendors: Vendors, postgres_url: str, namespace: str
) -> None:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--daemonize", "no"]  # fmt: skip
    if shutil.which("redis-server") is None:
        from tests.conftest import service_unavailable

        service_unavailable("redis-server", "PATH", "the redis-server program is not installed")
    redis_proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bridge: Bridge | None = None
    try:
        wait_for("our redis-server", lambda: _pings(port), timeout=20)
        bridge = start_bridge(tmp_path, vendors, postgres_url, f"redis://127.0.0.1:{port}/0", namespace)
        vendors.faults(latency_ms=[50, 150])
        titles = [f"Scanner {n} jams" for n in range(8)]
        ids = [vendors.open_incident(title) for title in titles]
        wait_for("the first mirror", lambda: any(lk.state == "created" for lk in bridge.links()))  # type: ignore[union-attr]
        # Redis dies with every queued message (no persistence) and comes back empty
        redis_proc.kill()
        redis_proc.wait(5)
        time.sleep(1)
        redis_proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("redis-server again", lambda: _pings(port), timeout=20)
        result = bridge.reconcile("--since", "1h")
        assert result.returncode == 0, result.stdout + result.stderr
        for sys_id in ids:
            bridge.mirror_of(sys_id)
        bridge.settle(timeout=120)
        assert [len(vendors.cw_tickets(title)) for title in titles] == [1] * len(titles)
    finally:
        if bridge is not None:
            bridge.stop()
        redis_proc.kill()
        redis_proc.wait(5)
