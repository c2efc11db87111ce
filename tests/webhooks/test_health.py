"""/healthz, /readyz and /metrics: they tell a stopped database and a stopped broker (closed ports) from running ones,
count webhook deliveries, vendor requests and jobs where they happen, and show the store's backlog and findings."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dramatiq
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from psabridge import metrics
from psabridge.store import Database
from psabridge.store.models import FindingRow
from psabridge.sync.broker import BrokerOptions, build_broker
from psabridge.sync.policy import DeadJob
from psabridge.webhooks.app import create_app
from psabridge.webhooks.health import Health, stale_after
from tests.sandbox.conftest import AsgiClient
from tests.sync.conftest import RecordingQueue, World, make_world
from tests.sync.fakes import SECRET


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dead(_job: DeadJob) -> None:
    pass


@pytest.fixture
def world(tmp_path: Path, sqlite_db: Database) -> Iterator[World]:
    made = make_world(tmp_path, sqlite_db, RecordingQueue(), None)
    yield made
    made.ctx.close()


def samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def up(page: str, check: str) -> float:
    return samples(page)[("psabridge_up", (("check", check),))]


def test_healthz_answers_while_everything_else_is_down(world: World) -> None:
    world.ctx.db = Database(f"postgresql+psycopg://guest:guest@127.0.0.1:{_closed_port()}/test")
    client = AsgiClient(create_app(world.ctx, broker=build_broker(f"redis://127.0.0.1:{_closed_port()}/0", _dead)))
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_readyz_is_200_with_the_store_and_broker_up_and_names_each_check(world: World) -> None:
    client = AsgiClient(create_app(world.ctx, broker=build_broker("embedded", _dead)))
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ok"] is True and answer["down"] == {}
    assert set(answer["checks"]) == {"database", "broker", "connection:acme-snow", "connection:msp-cw"}
    page = client.get("/metrics").text
    assert up(page, "database") == 1.0 and up(page, "broker") == 1.0


def test_a_stopped_database_makes_readyz_503_naming_it_and_metrics_show_it_down(world: World) -> None:
    world.ctx.db = Database(f"postgresql+psycopg://guest:s3cr3tpw@127.0.0.1:{_closed_port()}/test")
    client = AsgiClient(create_app(world.ctx, broker=build_broker("embedded", _dead)))
    response = client.get("/readyz")
    assert response.status_code == 503
    down = response.json()["down"]
    assert set(down) == {"database"}
    assert "OperationalError" in down["database"] and "s3cr3tpw" not in response.text
    metrics_response = client.get("/metrics")
    assert metrics_response.status_code == 200
    page = metrics_response.text
    assert up(page, "database") == 0.0 and up(page, "broker") == 1.0
    assert "psabridge_findings_open" not in page  # unknown, not zero


@pytest.mark.parametrize(("scheme", "error"), [("redis", "ConnectionError"), ("amqp", "AMQPConnectionError")])
def test_a_stopped_broker_makes_readyz_503_naming_it_and_metrics_show_it_down(
    world: World, scheme: str, error: str
) -> None:
    url = f"{scheme}://guest:guest@127.0.0.1:{_closed_port()}/" + ("0" if scheme == "redis" else "")
    client = AsgiClient(create_app(world.ctx, broker=build_broker(url, _dead)))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert set(response.json()["down"]) == {"broker"}
    assert error in response.json()["down"]["broker"] and "guest:guest" not in response.text
    page = client.get("/metrics").text
    assert up(page, "broker") == 0.0 and up(page, "database") == 1.0
    assert "psabridge_queue_depth{" not in page


@pytest.mark.integration
def test_a_running_redis_broker_is_ready_and_its_queue_depth_is_counted(
    world: World, redis_url: str, namespace: str
) -> None:
    broker = build_broker(redis_url, _dead, BrokerOptions(namespace=namespace, connections=("acme-snow",)))

    @dramatiq.actor(broker=broker, queue_name="ingest.acme-snow")
    def job() -> None: ...

    job.send()
    job.send_with_options(delay=60_000)
    client = AsgiClient(create_app(world.ctx, broker=broker))
    assert client.get("/readyz").status_code == 200
    depth = samples(client.get("/metrics").text)
    assert depth[("psabridge_queue_depth", (("queue", "ingest.acme-snow"),))] == 2.0
    assert depth[("psabridge_queue_depth", (("queue", "poll.acme-snow"),))] == 0.0
    broker.flush_all()


def test_a_connection_without_a_recent_contact_is_not_ready(world: World) -> None:
    conn = world.ctx.settings.connection("acme-snow")
    limit = stale_after(conn).total_seconds()
    now = [time.time()]
    contacts: dict[str, float] = {}  # this process's answered requests (metrics.last_contacts in production)
    assert Health(world.ctx, None, clock=lambda: now[0], contacts=lambda: contacts).readiness().ok  # just started
    now[0] -= limit + 10
    health = Health(world.ctx, None, clock=lambda: now[0], contacts=lambda: contacts)  # started longer ago
    now[0] = time.time()
    ready = health.readiness()
    assert set(ready.down) == {"connection:acme-snow", "connection:msp-cw"}
    assert "no successful contact" in ready.down["connection:acme-snow"]
    contacts["acme-snow"] = now[0]  # a request answered in this process counts
    assert set(health.readiness().down) == {"connection:msp-cw"}
    now[0] += limit + timedelta(minutes=1).total_seconds()
    assert "last successful contact" in health.readiness().down["connection:acme-snow"]


def test_an_answered_vendor_request_is_a_contact() -> None:
    before = time.time()
    metrics.vendor_request("contact-conn", "tickets", 500, 1)
    assert "contact-conn" not in metrics.last_contacts()  # a failure is no contact
    metrics.vendor_request("contact-conn", "tickets", 200, 1)
    assert metrics.last_contacts()["contact-conn"] >= before


def test_webhook_deliveries_are_counted_accepted_duplicate_and_rejected_by_reason(world: World) -> None:
    client = AsgiClient(create_app(world.ctx))

    def count(outcome: str, reason: str = "", connection: str = "acme-snow") -> float:
        page = samples(client.get("/metrics").text)
        key = ("psabridge_webhook_deliveries_total", (("connection", connection), ("outcome", outcome),
                                                        ("reason", reason)))  # fmt: skip
        return page.get(key, 0.0)

    before = {k: count(*k) for k in [("accepted",), ("duplicate",), ("rejected", "verification")]}
    before_unknown = count("rejected", "verification", "unknown")
    body = json.dumps({"id": "77", "event": "updated", "delivery": "d-metrics"}).encode()
    for secret in (SECRET, SECRET, "wrong"):
        client.post("/webhooks/acme-snow", content=body, headers={"x-fake-secret": secret})
    client.post("/webhooks/no-such-thing", content=body, headers={"x-fake-secret": SECRET})
    assert count("accepted") == before[("accepted",)] + 1
    assert count("duplicate") == before[("duplicate",)] + 1
    assert count("rejected", "verification") == before[("rejected", "verification")] + 1
    assert count("rejected", "verification", "unknown") == before_unknown + 1  # the caller's name is no label


def test_metrics_show_open_findings_and_sla_milestones_from_the_store(world: World) -> None:
    with world.db.transaction() as session:
        for code, severity in [("response_warning", "warning"), ("resolution_breached", "error"),
                               ("plan_breached", "error")]:  # fmt: skip
            session.add(FindingRow(ticket_key="acme-snow:1", rule="sla", code=code, severity=severity, message="m"))
        session.add(FindingRow(ticket_key="acme-snow:1", rule="identity", code="unverified", severity="critical",
                               message="m"))  # fmt: skip
        session.add(FindingRow(ticket_key="acme-snow:2", rule="identity", code="unverified", severity="critical",
                               message="m", resolved_at=world.ctx.now()))  # fmt: skip
    page = samples(AsgiClient(create_app(world.ctx)).get("/metrics").text)
    assert page[("psabridge_sla_open", (("milestone", "breached"),))] == 2.0
    assert page[("psabridge_sla_open", (("milestone", "warning"),))] == 1.0
    assert page[("psabridge_findings_open", (("rule", "identity"), ("severity", "critical")))] == 1.0
    assert page[("psabridge_findings_open", (("rule", "sla"), ("severity", "error")))] == 2.0
    assert page[("psabridge_outbox_backlog", (("connection", "acme-snow"),))] == 0.0
    assert page[("psabridge_dead_letters", (("connection", "msp-cw"),))] == 0.0


def test_vendor_requests_retries_and_429s_are_counted_by_connection_endpoint_and_status() -> None:
    from psabridge.connectors.budget import BudgetLimits, budget_for
    from psabridge.connectors.http import HttpClient, HttpRuntime, RetryPolicy

    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(503), httpx.Response(200)])
    client = HttpClient(
        connection="metrics-conn",
        base_url="https://vendor.test/api",
        auth=None,
        timeout=httpx.Timeout(5.0),
        budget=budget_for("metrics-conn", BudgetLimits()),
        retry=RetryPolicy(backoff_initial=0.0, jitter=0.0),
        runtime=HttpRuntime(transport=httpx.MockTransport(lambda request: next(answers)), sleep=lambda s: None),
    )
    client.request("GET", "tickets")
    page = samples(metrics.exposition().decode())
    labels = (("connection", "metrics-conn"), ("endpoint", "tickets"))
    assert page[("psabridge_vendor_requests_total", (*labels, ("status", "429")))] == 1.0
    assert page[("psabridge_vendor_requests_total", (*labels, ("status", "503")))] == 1.0
    assert page[("psabridge_vendor_requests_total", (*labels, ("status", "200")))] == 1.0
    assert page[("psabridge_vendor_retries_total", labels)] == 2.0
    assert page[("psabridge_vendor_rate_limited_total", labels)] == 1.0
    assert "metrics-conn" in metrics.last_contacts()


def test_job_durations_are_recorded_by_actor_queue_and_outcome() -> None:
    broker = build_broker("embedded", _dead, BrokerOptions(max_retries=0))

    @dramatiq.actor(broker=broker, queue_name="ingest.metrics-jobs", max_retries=0)
    def metrics_job(fail: bool) -> None:
        if fail:
            raise ValueError("boom")

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        metrics_job.send(False)
        metrics_job.send(True)
        broker.join("ingest.metrics-jobs", timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    page = samples(metrics.exposition().decode())
    for outcome in ("ok", "failed"):
        key = ("psabridge_job_duration_seconds_count",
               (("actor", "metrics_job"), ("outcome", outcome), ("queue", "ingest.metrics-jobs")))  # fmt: skip
        assert page[key] == 1.0


def test_with_a_multiprocess_dir_serve_adds_up_every_process_of_the_host(tmp_path: Path) -> None:
    """Two "worker" processes count requests; a third (serve) renders the sum (prometheus-client multiprocess)."""
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from psabridge import metrics; metrics.vendor_request('mp-conn', 'tickets', 200, 1)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    render = "from psabridge import metrics; print(metrics.exposition().decode())"
    page = subprocess.run(
        [sys.executable, "-c", render], env=env, check=True, timeout=60, capture_output=True, text=True
    )
    labels = (("connection", "mp-conn"), ("endpoint", "tickets"), ("status", "200"))
    key = ("psabridge_vendor_requests_total", labels)
    assert samples(page.stdout)[key] == 2.0
