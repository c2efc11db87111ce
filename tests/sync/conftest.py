"""Pipeline fixtures: the in-process broker (set up once, before the actors), fake vendors, a world to drive them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import sqlalchemy as sa
import yaml
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name

from psabridge.mapping import MappingRegistry
from psabridge.model import Action, System, Ticket
from psabridge.rules import CHECKLIST, RulesRegistry
from psabridge.settings import Settings
from psabridge.store import Database, tickets, utcnow
from psabridge.store import outbox as outbox_store
from psabridge.store.models import AuditEntry, Link, OutboxAction
from psabridge.sync.broker import EMBEDDED, BrokerOptions, setup_broker, start_workers, stop_workers
from psabridge.sync.context import SyncContext, set_context
from psabridge.sync.locks import locks_for
from psabridge.sync.outbox import queue_actions
from psabridge.sync.runtime import _record_dead

from .fakes import FakeConnector, FakeVendor

HERE = Path(__file__).parent
TEST_OPTIONS = BrokerOptions(
    namespace="psabridge-test",
    max_retries=3,
    min_backoff_ms=10,
    max_backoff_ms=40,
    time_limit_ms=20_000,
    keep_dead_letters=True,
    connections=("acme-snow", "msp-cw"),
)


@pytest.fixture(scope="session")
def broker() -> StubBroker:
    """The process's embedded broker, set up before the actors are imported (as every entry point does)."""
    stub = setup_broker(EMBEDDED, _record_dead, TEST_OPTIONS)
    import psabridge.sync.actors  # noqa: F401 - declares the actors on this broker

    assert isinstance(stub, StubBroker)
    return stub


@pytest.fixture(scope="session")
def worker(broker: StubBroker) -> Iterator[dramatiq.Worker]:
    """Worker threads on the embedded broker for the whole session (process_boot emitted, so time limits hold)."""
    started = start_workers(broker, threads=4)
    yield started
    stop_workers(broker, started)


def write_mapping(folder: Path, system: System) -> Path:
    path = folder / f"fake-{system.value}.yaml"
    path.write_text((HERE / "fake_mapping.yaml").read_text().replace("SYSTEM", system.value))
    return path


def settings_for(folder: Path, database: str, *, own: dict[str, str] | None = None, **extra: Any) -> Settings:
    """Two fake connections (a client's ServiceNow, the MSP's ConnectWise) and the demo's mirror link."""
    return Settings(**settings_data(folder, database, own=own, **extra))


def settings_data(folder: Path, database: str, *, own: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """The settings of ``settings_for`` as plain data (to write a config file)."""
    data: dict[str, Any] = {
        "database": database,
        "broker": "embedded",
        "tenants": {"acme": {"name": "Acme Dental"}},
        "connections": [
            {
                "name": "acme-snow",
                "system": "servicenow",
                "tenant": "acme",
                "base_url": "http://snow.invalid",
                "mapping": str(write_mapping(folder, System.SERVICENOW)),
            },
            {
                "name": "msp-cw",
                "system": "connectwise",
                "base_url": "http://cw.invalid",
                "mapping": str(write_mapping(folder, System.CONNECTWISE)),
            },
        ],
        "links": [
            {
                "name": "acme-snow-to-cw",
                "from": {"connection": "acme-snow", "where": {"queue": "MSP Support"}},
                "to": {"connection": "msp-cw", "queue": "Acme Service"},
                "own": own or {"status": "to", "priority": "from", "notes": "both", "time_entries": "to"},
            }
        ],
        **extra,
    }
    return data


class RecordingQueue:
    """A work queue that only records what was queued (pipeline functions without a broker)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.evaluated: list[str] = []

    def ingest(self, connection: str, external_id: str, *, delay: float | None = None) -> None:
        self.calls.append(("ingest", (connection, external_id)))

    def dispatch(self, outbox_id: int, target: str | None = None, *, delay: float | None = None) -> None:
        self.calls.append(("dispatch", (outbox_id,)))

    def evaluate(self, ticket_key: str, *, delay: float | None = None) -> None:
        self.calls.append(("evaluate", (ticket_key,)))
        self.evaluated.append(ticket_key)

    def poll(self, connection: str, *, delay: float | None = None) -> None:
        self.calls.append(("poll", (connection,)))

    def notify(self, outbox_id: int) -> None:
        self.calls.append(("notify", (outbox_id,)))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == kind]


class Clock:
    """The pipeline's clock in tests: the wall clock, or a frozen time, moved forward by ``later``."""

    def __init__(self) -> None:
        self.frozen: datetime | None = None
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return (self.frozen or utcnow()) + self.shift

    def freeze(self) -> datetime:
        """Stop the clock at now; returns that time."""
        self.frozen, self.shift = self(), timedelta(0)
        return self.frozen

    def later(self, seconds: float) -> None:
        """Move the clock forward."""
        self.shift += timedelta(seconds=seconds)

    def until(self, when: datetime) -> None:
        """Move the clock forward to ``when`` (no further than it is already)."""
        self.shift += max(timedelta(0), when - self())


@dataclass
class World:
    """Two fake vendors, the sync context around them, and helpers to drive and inspect."""

    ctx: SyncContext
    snow: FakeVendor
    cw: FakeVendor
    broker: StubBroker | None
    clock: Clock
    evaluated: list[str] = field(default_factory=list)
    """Tickets whose evaluation was queued (a real change, a wake-up), in order."""

    @property
    def db(self) -> Database:
        return self.ctx.db

    def deliver(self, connection: str, external_id: str) -> None:
        """A change notification: queue an ingest, as the webhook receiver does."""
        self.ctx.queue.ingest(connection, external_id)

    def run(self, *, fail_fast: bool = True) -> None:
        """Run every queued job (and what it queues) to completion."""
        assert self.broker is not None
        for _ in range(100):
            queues = sorted(self.broker.get_declared_queues())  # the stages' and each connection's
            names = [n for q in queues for n in (q, dq_name(q))]
            for queue in queues:
                self.broker.join(queue, fail_fast=fail_fast, timeout=30_000)
            if not any(self.broker.queues[n].unfinished_tasks for n in names):
                if not fail_fast:  # the failures were expected: later runs must not trip over them
                    for letters in self.broker.dead_letters_by_queue.values():
                        letters.clear()
                return
        raise AssertionError("the queues never emptied")

    def emit(self, actions: Sequence[Action]) -> list[int]:
        """Write actions to the outbox and queue them, as the evaluate step does for the rules' actions."""
        with self.ctx.unit() as session:
            rows = outbox_store.enqueue_new(session, actions, now=self.ctx.now())
        queue_actions(self.ctx, rows)
        return [row.id for row in rows]

    def ticket(self, key: str) -> Ticket | None:
        with self.db.session() as s:
            return tickets.load_ticket(s, key)

    def links(self) -> list[Link]:
        with self.db.session() as s:
            return list(s.scalars(sa.select(Link)))

    def outbox(self) -> list[OutboxAction]:
        with self.db.session() as s:
            return list(s.scalars(sa.select(OutboxAction).order_by(OutboxAction.id)))

    def audit(self) -> list[AuditEntry]:
        with self.db.session() as s:
            return list(s.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)))

    def mirror_of(self, source_id: str) -> str:
        """The CW id of a ServiceNow ticket's mirror."""
        [link] = [lk for lk in self.links() if lk.source_key == f"acme-snow:{source_id}"]
        assert link.state == "created" and link.target_external_id is not None
        return link.target_external_id


class CountingQueue:
    """Passes everything on to ``inner`` and counts the evaluations queued (``World.evaluated``)."""

    def __init__(self, inner: Any, evaluated: list[str]) -> None:
        self.inner = inner
        self.evaluated = evaluated

    def evaluate(self, ticket_key: str, *, delay: float | None = None) -> None:
        self.evaluated.append(ticket_key)
        self.inner.evaluate(ticket_key, delay=delay)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def rules_off(folder: Path) -> Path:
    """A rules file with every checklist rule disabled: the evaluate step runs and writes nothing (pipeline tests)."""
    path = folder / "rules-off.yaml"
    path.write_text(yaml.safe_dump({"rules": {rule.id: {"enabled": False} for rule in CHECKLIST}}))
    return path


def make_world(
    tmp_path: Path, db: Database, queue: Any, broker: StubBroker | None, *, own: dict[str, str] | None = None
) -> World:
    settings = settings_for(tmp_path, db.url, own=own, rules=str(rules_off(tmp_path)))
    mappings = MappingRegistry(settings.connections)
    mappings.load_all()
    vendors = {"acme-snow": FakeVendor("snow", System.SERVICENOW), "msp-cw": FakeVendor("cw", System.CONNECTWISE)}
    clock = Clock()
    evaluated: list[str] = []
    if isinstance(queue, RecordingQueue):
        queue.evaluated = evaluated
    else:
        queue = CountingQueue(queue, evaluated)
    ctx = SyncContext(
        settings=settings,
        db=db,
        mappings=mappings,
        locks=locks_for("embedded", db, wait=10),
        queue=queue,
        rules=RulesRegistry(settings.rules, tenants=settings.tenants),
        clock=clock,
        options=TEST_OPTIONS,
        connector_factory=lambda conn: FakeConnector(conn, vendors[conn.name]),
    )
    return World(ctx, vendors["acme-snow"], vendors["msp-cw"], broker, clock, evaluated)


def restarted(world: World, queue: Any) -> SyncContext:
    """A context as a restarted process builds it: a new engine on the same store, new locks, mappings and
    connectors (over the same fake vendors), the same clock and options; close it after use."""
    db = Database(world.db.url)
    mappings = MappingRegistry(world.ctx.settings.connections)
    mappings.load_all()
    vendors = {"acme-snow": world.snow, "msp-cw": world.cw}
    return SyncContext(
        settings=world.ctx.settings,
        db=db,
        mappings=mappings,
        locks=locks_for("embedded", db, wait=10),
        queue=queue,
        rules=world.ctx.rules,
        clock=world.clock,
        options=world.ctx.options,
        connector_factory=lambda conn: FakeConnector(conn, vendors[conn.name]),
    )


@pytest.fixture
def world(tmp_path: Path, db: Database, broker: StubBroker, worker: dramatiq.Worker) -> Iterator[World]:
    """The pipeline on the in-process broker and worker, over SQLite and PostgreSQL."""
    from psabridge.sync.actors import ActorQueue

    broker.flush_all()
    made = make_world(tmp_path, db, ActorQueue(), broker)
    set_context(made.ctx)
    try:
        yield made
    finally:
        broker.flush_all()
        set_context(None)
        made.ctx.close()


@pytest.fixture
def vendors() -> Iterator[Any]:
    """The vendor simulators on loopback with no seeded tickets, driven as people would (bridge.Vendors)."""
    from psabridge_sandbox.runner import SandboxRunner

    from .bridge import Vendors

    with SandboxRunner(port_base=0, tickets=0) as runner:
        made = Vendors(runner)
        yield made
        made.close()


@pytest.fixture
def plain(tmp_path: Path, sqlite_db: Database) -> Iterator[World]:
    """The pipeline without a broker: follow-up work is only recorded (RecordingQueue)."""
    made = make_world(tmp_path, sqlite_db, RecordingQueue(), None)
    yield made
    made.ctx.close()
