"""End to end against the sandbox (all four vendors, PagerDuty, Opsgenie and the chat sink on loopback): P1 paging
once per incident in every system, resolved with the ticket and again on a reopen; a mirrored P1 pages once; an
out-of-scope Tier 1 ticket is routed in its own vendor; a quiet ticket gets its SLA warning once on time; and a
second reconcile writes nothing.

The real pipeline runs it: ingest stores a change and marks it as needing evaluation, the ``evaluate`` actor runs the
rules and writes their actions to the outbox, the ``dispatch`` and ``notify`` actors carry them out (the in-process
broker and worker); the scheduler's wake-up sweep (``wake_due``) is called with the pipeline's clock moved forward.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
import sqlalchemy as sa
import yaml
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name

from psabridge.connectors.base import Connector
from psabridge.rules import StoredFinding
from psabridge.settings import load_settings
from psabridge.store import evaluations, findings, tickets, upgrade
from psabridge.store import outbox as outbox_store
from psabridge.store.links import links_of
from psabridge.store.models import AuditEntry, OutboxAction
from psabridge.sync.context import SyncContext, build_context, set_context
from psabridge.sync.evaluate import EvaluateResult, evaluate_stored, wake_due
from psabridge.sync.reconcile import reconcile
from psabridge_sandbox.configout import write_config
from psabridge_sandbox.people import WRITES
from psabridge_sandbox.runner import SandboxRunner
from tests.conftest import ROOT

from .conftest import TEST_OPTIONS, Clock

pytestmark = pytest.mark.slow

SYSTEMS = {  # connection -> the tenant a person opens the ticket for, and what the vendor needs besides
    "msp-cw": ("acme", {}),
    "partner-at": ("umbrella", {}),
    "acme-snow": ("acme", {}),
    "globex-fs": ("globex", {"email": "mary.okafor@globex.example"}),
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxRunner]:
    with SandboxRunner(port_base=0, tickets=0) as runner:
        yield runner


class Pipeline:
    """The sync context on the in-process broker and worker, driven as webhooks and the scheduler would."""

    def __init__(self, ctx: SyncContext, broker: StubBroker, clock: Clock) -> None:
        self.ctx = ctx
        self.broker = broker
        self.clock = clock

    def run(self) -> None:
        """Run every queued job (and what it queues) to completion."""
        for _ in range(100):
            queues = sorted(self.broker.get_declared_queues())
            names = [n for q in queues for n in (q, dq_name(q))]
            for queue in queues:
                self.broker.join(queue, fail_fast=True, timeout=60_000)
            if not any(self.broker.queues[n].unfinished_tasks for n in names):
                return
        raise AssertionError("the queues never emptied")

    def ingest(self, connection: str, external_id: str) -> None:
        """A change notification (the webhook receiver queues an ingest), and everything that follows."""
        self.ctx.queue.ingest(connection, external_id)
        self.run()

    def evaluate(self, key: str) -> EvaluateResult:
        """Evaluate a stored ticket now (what the evaluate actor calls), and run what it queued."""
        result = evaluate_stored(self.ctx, key, force=True)
        self.run()
        return result

    def sweep(self, when: datetime) -> list[str]:
        """The scheduler's wake-up sweep with the clock at ``when``; the tickets it queued."""
        self.clock.until(when)
        keys = wake_due(self.ctx)
        self.run()
        return keys

    def wake_at(self, key: str) -> datetime | None:
        with self.ctx.db.session() as session:
            return evaluations.wakeup_of(session, key)

    def findings(self, key: str) -> tuple[StoredFinding, ...]:
        with self.ctx.db.session() as session:
            return findings.stored_findings(session, key)

    def written(self) -> int:
        """Vendor writes the dispatcher made (the audit's ``written``)."""
        with self.ctx.db.session() as session:
            query = sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.outcome == "written")
            return int(session.scalar(query) or 0)


@pytest.fixture
def bench(tmp_path: Path, sandbox: SandboxRunner, broker: StubBroker, worker: dramatiq.Worker) -> Iterator[Pipeline]:
    from psabridge.sync.actors import ActorQueue

    config = write_config(tmp_path / "psabridge.yaml", sandbox.infos, world=sandbox.world, host="127.0.0.1")
    data = yaml.safe_load(config.read_text())
    rules = yaml.safe_load((ROOT / "config" / "rules.yaml").read_text())
    rules["tenants"]["globex"] = {"rules": {"paging": {"pager": "opsgenie"}}}  # one client pages through Opsgenie
    # The clients' own systems are routed in only because the matrix names them (their groups are the clients').
    names = {"default": "Networking", "acme-snow": "Networking", "globex-fs": "Networking"}
    rules["rules"]["routing"]["queues"]["networking"] = names
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    data.update(rules="rules.yaml", log={"level": "warning", "format": "json"})
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    settings = load_settings(config)
    upgrade(settings.database)
    broker.flush_all()
    clock = Clock()
    ctx = build_context(settings, ActorQueue(), options=TEST_OPTIONS)
    ctx.clock = clock
    set_context(ctx)
    try:
        yield Pipeline(ctx, broker, clock)
    finally:
        broker.flush_all()
        set_context(None)
        ctx.close()


class Person:
    """Someone at a vendor, changing tickets through its API (canonical fields through the shipped mapping)."""

    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx

    def _parts(self, connection: str) -> tuple[Connector, Any]:
        return self.ctx.connector(connection), self.ctx.mappings.mapper(connection)

    def open(self, connection: str, summary: str, **fields: Any) -> str:
        connector, mapper = self._parts(connection)
        tenant, extra = SYSTEMS[connection]
        wanted = {"summary": summary, "status": "new", "priority": "P1", "queue": "Service Desk", **fields}
        if self.ctx.settings.connection(connection).tenant is None:
            wanted["tenant"] = tenant
        out = mapper.outbound(wanted, self.ctx.mappings.context(connection), connector.metadata(), create=True)
        created = connector.create_ticket({**out.patch, **extra}, marker=f"person-{uuid.uuid4().hex[:8]}")
        return connector.external_id_of(created)

    def change(self, connection: str, external_id: str, **fields: Any) -> None:
        connector, mapper = self._parts(connection)
        current = connector.get_ticket(external_id)
        out = mapper.outbound(fields, self.ctx.mappings.context(connection), connector.metadata(), current=current)
        assert out.patch, out.problems
        connector.update_ticket(external_id, out.patch)


def incidents(sandbox: SandboxRunner, key: str) -> list[dict[str, Any]]:
    """PagerDuty incidents and Opsgenie alerts opened for a ticket (every life of it)."""
    prefix = f"psabridge:{key}#"
    pd = [i for i in sandbox.simulators["pagerduty"].state()["incidents"] if i["dedup_key"].startswith(prefix)]
    og = [a for a in sandbox.simulators["opsgenie"].state()["alerts"] if a["alias"].startswith(prefix)]
    return [*pd, *({"dedup_key": a["alias"], "status": a["status"]} for a in og)]


def posts(sandbox: SandboxRunner, words: str) -> list[str]:
    return [m["text"] for m in sandbox.simulators["chat"].state()["messages"] if words in m["text"]]


def vendor_writes(sandbox: SandboxRunner) -> int:
    total = 0
    for info in sandbox.infos.values():
        if info.running:
            recorded = httpx.get(f"{info.url}/_sandbox/requests", timeout=10).json()["requests"]
            # Autotask's queries are POSTs that read: not writes.
            total += sum(1 for r in recorded if r["method"] in WRITES and not r["path"].endswith("/query"))
    return total


def outbox_rows(bench: Pipeline) -> int:
    with bench.ctx.db.session() as session:
        return int(session.query(OutboxAction).count())


def test_a_p1_in_each_system_pages_once_resolves_with_the_ticket_and_pages_again_on_a_reopen(
    bench: Pipeline, sandbox: SandboxRunner
) -> None:
    person = Person(bench.ctx)
    tag = uuid.uuid4().hex[:6]
    keys: dict[str, str] = {}
    for connection in SYSTEMS:
        summary = f"Email down for the whole office {tag} {connection}"
        external_id = person.open(connection, summary, description="None of us can send or receive email.")
        bench.ingest(connection, external_id)
        keys[connection] = f"{connection}:{external_id}"
        bench.ingest(connection, external_id)  # a second notification of the same change: nothing more
        assert [i["status"] for i in incidents(sandbox, keys[connection])] in (["triggered"], ["open"]), connection
        assert len(posts(sandbox, summary)) == 1, connection
        [post] = posts(sandbox, summary)
        assert "Client: " in post and "Ticket: " in post
    og_keys = [i["dedup_key"] for i in incidents(sandbox, keys["globex-fs"])]
    assert og_keys == [f"psabridge:{keys['globex-fs']}#1"]  # Globex pages through Opsgenie

    for connection, key in keys.items():
        external_id = key.split(":", 1)[1]
        person.change(connection, external_id, status="resolved")
        bench.ingest(connection, external_id)
        assert [i["status"] for i in incidents(sandbox, key)] in (["resolved"], ["closed"]), connection

    for connection, key in keys.items():
        external_id = key.split(":", 1)[1]
        person.change(connection, external_id, status="in_progress")
        bench.ingest(connection, external_id)
        found = incidents(sandbox, key)
        assert [i["dedup_key"] for i in found] == [f"psabridge:{key}#1", f"psabridge:{key}#2"], connection
        assert len(posts(sandbox, f"{tag} {connection}")) == 2, connection


def test_a_mirrored_p1_pages_once(bench: Pipeline, sandbox: SandboxRunner) -> None:
    person = Person(bench.ctx)
    summary = f"Dentrix server down at all three clinics {uuid.uuid4().hex[:6]}"
    sys_id = person.open("acme-snow", summary, queue="MSP Support")
    bench.ingest("acme-snow", sys_id)
    with bench.ctx.db.session() as session:
        [pair] = links_of(session, f"acme-snow:{sys_id}")
    assert pair.target_key is not None and pair.target_key.startswith("msp-cw:")
    assert len(incidents(sandbox, f"acme-snow:{sys_id}")) == 1
    assert incidents(sandbox, pair.target_key) == []  # the mirror is not evaluated: no second page
    assert len(posts(sandbox, summary)) == 1
    assert not bench.evaluate(pair.target_key).evaluated  # a mirror pair is evaluated on its source side only


@pytest.mark.parametrize("connection", list(SYSTEMS))
def test_an_out_of_scope_tier1_ticket_is_routed_to_the_configured_queue_in_its_vendor(
    bench: Pipeline, sandbox: SandboxRunner, connection: str
) -> None:
    person = Person(bench.ctx)
    summary = f"VPN drops every few minutes {uuid.uuid4().hex[:6]}"
    external_id = person.open(
        connection,
        summary,
        priority="P3",
        description="The VPN keeps dropping for me since this morning; the firewall shows the tunnel flapping.",
    )
    bench.ingest(connection, external_id)
    raw = bench.ctx.connector(connection).get_ticket(external_id)
    mapped = bench.ctx.mappings.mapper(connection).inbound(
        raw, bench.ctx.mappings.context(connection), bench.ctx.connector(connection).metadata()
    )
    assert mapped.ticket.queue == "Networking", connection
    key = f"{connection}:{external_id}"
    [route] = [f for f in bench.findings(key) if f.rule == "routing"]
    assert route.code == "route" and route.noted
    assert "the hand-off still lacks" in route.message.lower()
    written = bench.written()
    bench.ingest(connection, external_id)  # the echo of our own move: nothing routed again
    assert bench.written() == written


def test_a_quiet_ticket_gets_its_sla_warning_once_without_any_new_change(
    bench: Pipeline, sandbox: SandboxRunner
) -> None:
    person = Person(bench.ctx)
    summary = f"Outlook slow to open attachments {uuid.uuid4().hex[:6]}"
    external_id = person.open("msp-cw", summary, priority="P3", description="Outlook is slow for me today.")
    key = f"msp-cw:{external_id}"
    bench.ingest("msp-cw", external_id)
    wake = bench.wake_at(key)
    assert wake is not None and wake > bench.ctx.now()
    with bench.ctx.db.session() as session:
        stored = tickets.load_ticket(session, key)
    assert stored is not None and stored.sla is not None and stored.sla.response_due is not None
    assert "response_due" in stored.sla.computed and stored.sla.policy == "Standard SLA"  # ConnectWise's own name

    def warnings() -> list[str]:
        texts = [str(n.get("text", "")) for n in bench.ctx.connector("msp-cw").list_notes(external_id)]
        return [t for t in texts if "First response due" in t]

    assert warnings() == []
    assert bench.sweep(wake) == [key]  # the scheduler's sweep: no new change arrived
    assert len(warnings()) == 1 and "50% of the" in warnings()[0]
    assert bench.sweep(wake + timedelta(seconds=30)) == []  # the next milestone is later
    bench.clock.later(15)
    assert bench.evaluate(key).evaluated  # evaluated again anyway: nothing new to say
    assert len(warnings()) == 1


def test_a_second_reconcile_writes_nothing(bench: Pipeline, sandbox: SandboxRunner) -> None:
    person = Person(bench.ctx)
    summary = f"Phones down in the warehouse {uuid.uuid4().hex[:6]}"
    external_id = person.open("partner-at", summary, description="None of us can take calls.")
    bench.ingest("partner-at", external_id)
    with bench.ctx.db.session() as session:
        stored = tickets.load_ticket(session, f"partner-at:{external_id}")
    assert stored is not None and stored.sla is not None and stored.sla.response_due is not None
    # Autotask without an SLA of its own (no serviceLevelAgreementID): psabridge's due times were written back.
    raw = bench.ctx.connector("partner-at").get_ticket(external_id)
    assert raw["serviceLevelAgreementID"] is None
    due = stored.sla.response_due.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert str(raw["firstResponseDueDateTime"]).replace(".000", "") == due
    first = reconcile(bench.ctx, connections=list(SYSTEMS))
    bench.run()
    writes, rows, pages = vendor_writes(sandbox), outbox_rows(bench), len(incidents(sandbox, stored.key))
    second = reconcile(bench.ctx, connections=list(SYSTEMS))
    bench.run()
    assert second.failed == 0 and first.failed == 0
    assert sum(c.repaired for c in second.connections.values()) == 0
    assert (vendor_writes(sandbox), outbox_rows(bench), len(incidents(sandbox, stored.key))) == (writes, rows, pages)
    with bench.ctx.db.session() as session:
        assert set(outbox_store.count_by_status(session)) == {"done"}
