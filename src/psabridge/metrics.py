"""Prometheus metrics: the counters the HTTP layer, the receiver and the workers bump, and their text exposition.

The events are counted where they happen, through the functions here only: ``vendor_request`` (connectors/http.py,
one call per attempt), ``webhook_delivery`` (webhooks/app.py, one call per answered delivery) and ``job_finished``
(the broker's ``JobMetrics`` middleware, one call per job run). What the store knows (backlogs, dead letters,
findings, SLA milestones) and what the broker and the budgets know (queue depth, budget left) are read when
``/metrics`` is scraped and rendered with ``gauges`` (webhooks/health.py gathers them).

Several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (the same empty directory for ``serve`` and every
``worker`` on a host, created before they start and emptied when they all restart), the counters are kept in that
directory and ``serve``'s ``/metrics`` adds up every process of the host (prometheus-client's multiprocess mode).
Without it each process counts its own: ``serve`` shows its own on ``/metrics`` and ``worker --metrics-port P``
serves a worker's (the store's figures are the same from every process).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE",
    "PROCESS",
    "UNKNOWN_CONNECTION",
    "Gauges",
    "exposition",
    "job_finished",
    "last_contacts",
    "serve_process_metrics",
    "vendor_request",
    "webhook_delivery",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text format's content type."""

PROCESS = CollectorRegistry()
"""This process's counters (in multiprocess mode their values live in PROMETHEUS_MULTIPROC_DIR as well)."""

_REQUESTS = Counter(
    "psabridge_vendor_requests",
    "Vendor API requests sent (every attempt), by connection, endpoint class and HTTP status ('error': no answer)",
    ["connection", "endpoint", "status"],
    registry=PROCESS,
)
_RETRIES = Counter(
    "psabridge_vendor_retries",
    "Vendor API requests that were a retry of an earlier attempt",
    ["connection", "endpoint"],
    registry=PROCESS,
)
_RATE_LIMITED = Counter(
    "psabridge_vendor_rate_limited",
    "Vendor API answers of 429 (too many requests)",
    ["connection", "endpoint"],
    registry=PROCESS,
)
_WEBHOOKS = Counter(
    "psabridge_webhook_deliveries",
    "Webhook deliveries answered: accepted (new), duplicate (seen before) or rejected, by reason",
    ["connection", "outcome", "reason"],
    registry=PROCESS,
)
_JOBS = Histogram(
    "psabridge_job_duration_seconds",
    "Time a worker spent on one job, by actor, queue and outcome (ok, failed)",
    ["actor", "queue", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
    registry=PROCESS,
)

UNKNOWN_CONNECTION = "unknown"
"""The connection label of a webhook to a name no enabled connection has (callers choose the URL: bounded labels)."""

_REJECTED_BY_STATUS = {
    400: "unreadable",
    401: "verification",
    411: "length_required",
    413: "too_large",
    415: "content_type",
    431: "headers_too_large",
    503: "unavailable",
}

_lock = threading.Lock()
_contacts: dict[str, float] = {}


def vendor_request(connection: str, endpoint: str, status: int | None, attempt: int) -> None:
    """Count one attempt at a vendor request (``status`` None: no answer); a 2xx-3xx marks the vendor reached."""
    _REQUESTS.labels(connection, endpoint, "error" if status is None else str(status)).inc()
    if attempt > 1:
        _RETRIES.labels(connection, endpoint).inc()
    if status == 429:
        _RATE_LIMITED.labels(connection, endpoint).inc()
    if status is not None and status < 400:
        with _lock:
            _contacts[connection] = time.time()


def last_contacts() -> dict[str, float]:
    """When this process last had a successful answer from each connection's vendor (Unix time)."""
    with _lock:
        return dict(_contacts)


def webhook_delivery(connection: str, status: int, *, duplicate: bool = False) -> None:
    """Count one answered webhook delivery by its answer (``connection``: a configured name or UNKNOWN_CONNECTION)."""
    if status == 202:
        _WEBHOOKS.labels(connection, "duplicate" if duplicate else "accepted", "").inc()
    else:
        _WEBHOOKS.labels(connection, "rejected", _REJECTED_BY_STATUS.get(status, str(status))).inc()


def job_finished(actor: str, queue: str, seconds: float, *, failed: bool) -> None:
    """Record one job's run time."""
    _JOBS.labels(actor, queue, "failed" if failed else "ok").observe(seconds)


@dataclass
class Gauges:
    """What is read at scrape time: the checks, and the store's, broker's and budgets' figures (None: unknown)."""

    up: dict[str, bool] = field(default_factory=dict)
    """Per check (database, broker, connection:<name>): whether it is up."""
    last_contact: dict[str, float] = field(default_factory=dict)
    """Per connection: Unix time of the last successful contact with its vendor."""
    queue_depth: dict[str, int] = field(default_factory=dict)
    budget_left: dict[tuple[str, str], int] = field(default_factory=dict)
    """Per (connection, window): requests left in the rate budget."""
    inbox_backlog: dict[str, int] = field(default_factory=dict)
    failed_deliveries: dict[str, int] = field(default_factory=dict)
    outbox_backlog: dict[str, int] = field(default_factory=dict)
    failed_write_backs: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    open_findings: dict[tuple[str, str], int] | None = None
    """Per (rule, severity): open findings; None when the store could not be read."""
    sla: dict[str, int] | None = None
    """Open SLA findings per milestone kind (warning, breached); None when the store could not be read."""


def _family(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items(), key=lambda item: str(item[0])):
        family.add_metric(list(key) if isinstance(key, tuple) else [str(key)], float(value))
    return family


class _GaugeCollector(Collector):
    def __init__(self, gauges: Gauges) -> None:
        self.gauges = gauges

    def collect(self) -> Iterable[Metric]:
        g = self.gauges
        yield _family("psabridge_up", "Whether a dependency is reachable (1) or not (0)", ["check"],
                      {k: int(v) for k, v in g.up.items()})  # fmt: skip
        yield _family("psabridge_connection_last_contact_timestamp_seconds",
                      "Unix time of the last successful contact with the connection's vendor", ["connection"],
                      g.last_contact)  # fmt: skip
        yield _family("psabridge_queue_depth", "Messages waiting in a broker queue", ["queue"], g.queue_depth)
        yield _family("psabridge_rate_budget_remaining", "Requests left in a connection's rate budget window",
                      ["connection", "window"], g.budget_left)  # fmt: skip
        yield _family("psabridge_inbox_backlog", "Webhook deliveries and found changes waiting for their ingest",
                      ["connection"], g.inbox_backlog)  # fmt: skip
        yield _family("psabridge_inbox_failed", "Webhook deliveries that failed (psabridge deliveries list)",
                      ["connection"], g.failed_deliveries)  # fmt: skip
        yield _family("psabridge_outbox_backlog", "Write-backs waiting to be sent, by target connection",
                      ["connection"], g.outbox_backlog)  # fmt: skip
        yield _family("psabridge_outbox_failed", "Write-backs that gave up, by target connection", ["connection"],
                      g.failed_write_backs)  # fmt: skip
        yield _family("psabridge_dead_letters", "Dead letters not replayed (psabridge dlq list)", ["connection"],
                      g.dead_letters)  # fmt: skip
        if g.open_findings is not None:
            yield _family("psabridge_findings_open", "Open findings, by rule and severity", ["rule", "severity"],
                          g.open_findings)  # fmt: skip
        if g.sla is not None:
            yield _family("psabridge_sla_open", "Open SLA findings: targets running out (warning) or missed (breached)",
                          ["milestone"], g.sla)  # fmt: skip


def _process_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return PROCESS


def exposition(gauges: Gauges | None = None) -> bytes:
    """The Prometheus text page: the counters (this host's processes in multiprocess mode), then ``gauges``."""
    page = generate_latest(_process_registry())
    if gauges is not None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_GaugeCollector(gauges))
        page += generate_latest(registry)
    return page


def serve_process_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve this process's counters on ``host:port`` /metrics in a daemon thread (``worker --metrics-port``)."""
    start_http_server(port, addr=host, registry=_process_registry())
