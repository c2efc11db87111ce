"""Tenant isolation at the outbox: no write carries one client's ticket into another client's system or company.

The MSP's ConnectWise holds two clients' companies (AcmeDental -> acme, GlobexLogistics -> globex); Acme's
ServiceNow is Acme's alone. Each cross-tenant path is refused before anything is sent, dead-lettered with the reason,
and counted by ``status``; the same links' same-tenant traffic still flows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from psabridge.mapping import MappingRegistry
from psabridge.model import SetFields, System
from psabridge.rules import RulesRegistry
from psabridge.settings import Settings
from psabridge.store import Database
from psabridge.store import links as link_store
from psabridge.store import outbox as outbox_store
from psabridge.store.models import DeadLetter, OutboxAction
from psabridge.sync.context import SyncContext, set_context
from psabridge.sync.locks import locks_for
from psabridge.sync.mirror import link_marker
from psabridge.sync.outbox import queue_actions
from psabridge.sync.status import connection_status

from .conftest import HERE, TEST_OPTIONS, Clock, CountingQueue, World, rules_off
from .fakes import FakeConnector, FakeVendor

COMPANIES = {"AcmeDental": "acme", "GlobexLogistics": "globex"}


def _mapping(folder: Path, system: System, *, tenant_rule: bool) -> str:
    path = folder / f"tenancy-{system.value}.yaml"
    text = (HERE / "fake_mapping.yaml").read_text().replace("SYSTEM", system.value)
    if tenant_rule:  # the company a record belongs to, as ConnectWise's company.identifier
        text = text.replace("fields:\n", "tenant: {path: company, outbound: {to: company}}\nfields:\n", 1)
    path.write_text(text)
    return str(path)


def _settings(folder: Path, database: str, links: list[dict[str, Any]]) -> Settings:
    return Settings(
        database=database,
        rules=str(rules_off(folder)),
        broker="embedded",
        tenants={"acme": {"name": "Acme Dental"}, "globex": {"name": "Globex Logistics"}},
        connections=[
            {
                "name": "acme-snow",
                "system": "servicenow",
                "tenant": "acme",
                "base_url": "http://snow.invalid",
                "mapping": _mapping(folder, System.SERVICENOW, tenant_rule=False),
            },
            {
                "name": "msp-cw",
                "system": "connectwise",
                "tenants": COMPANIES,
                "base_url": "http://cw.invalid",
                "mapping": _mapping(folder, System.CONNECTWISE, tenant_rule=True),
            },
        ],
        links=links,
    )


NOTES_BOTH = {"status": "to", "notes": "both"}
QUEUE_ONLY = {  # issue 13's first case: selects by queue only, in a connection that holds several clients
    "name": "cw-escalations-to-acme",
    "from": {"connection": "msp-cw", "where": {"queue": "Acme Escalations"}},
    "to": {"connection": "acme-snow"},
    "own": NOTES_BOTH,
}
WRONG_TO_TENANT = {  # issue 13's second case: to.tenant names the wrong client
    "name": "acme-snow-to-cw",
    "from": {"connection": "acme-snow", "where": {"queue": "MSP Support"}},
    "to": {"connection": "msp-cw", "queue": "Acme Service", "tenant": "globex"},
    "own": NOTES_BOTH,
}
RIGHT_TO_TENANT = {**WRONG_TO_TENANT, "to": {**WRONG_TO_TENANT["to"], "tenant": "acme"}}  # type: ignore[dict-item]


@pytest.fixture
def make(tmp_path: Path, db: Database, broker: StubBroker, worker: dramatiq.Worker) -> Iterator[Any]:
    """Builds the world of this module with the given links, on the in-process broker (SQLite and PostgreSQL)."""
    from psabridge.sync.actors import ActorQueue

    made: list[World] = []

    def build(*links: dict[str, Any]) -> World:
        settings = _settings(tmp_path, db.url, list(links))
        mappings = MappingRegistry(settings.connections)
        mappings.load_all()
        vendors = {"acme-snow": FakeVendor("snow", System.SERVICENOW), "msp-cw": FakeVendor("cw", System.CONNECTWISE)}
        clock = Clock()
        evaluated: list[str] = []
        ctx = SyncContext(
            settings=settings,
            db=db,
            mappings=mappings,
            locks=locks_for("embedded", db, wait=10),
            queue=CountingQueue(ActorQueue(), evaluated),
            rules=RulesRegistry(settings.rules, tenants=settings.tenants),
            clock=clock,
            options=TEST_OPTIONS,
            connector_factory=lambda conn: FakeConnector(conn, vendors[conn.name]),
        )
        world = World(ctx, vendors["acme-snow"], vendors["msp-cw"], broker, clock, evaluated)
        set_context(ctx)
        made.append(world)
        return world

    broker.flush_all()
    try:
        yield build
    finally:
        broker.flush_all()
        set_context(None)
        for world in made:
            world.ctx.close()


def refusals(world: World) -> tuple[list[str], dict[str, int]]:
    """The dead letters' reasons, and the refused writes ``status`` counts per connection."""
    with world.db.session() as s:
        reasons = [str(d.error.get("message")) for d in s.scalars(sa.select(DeadLetter).order_by(DeadLetter.id))]
    status = connection_status(world.ctx.settings, world.db)
    return reasons, {name: state["refused_cross_tenant"] for name, state in status.items()}


def test_a_link_filtered_only_by_queue_never_copies_another_clients_ticket(make: Any) -> None:
    world = make(QUEUE_ONLY)
    # Given Globex's ticket, with an internal note, lands in the queue the link watches in the MSP's ConnectWise
    title = "Possible ransomware at Berlin HQ"
    globex = world.cw.create(queue="Acme Escalations", company="GlobexLogistics", title=title)
    world.cw.note(globex, "Domain admin creds were on the share, rotate them", kind="internal")
    # and an Acme ticket in the same queue
    acme = world.cw.create(queue="Acme Escalations", company="AcmeDental", title="Printer offline")
    world.deliver("msp-cw", globex)
    world.deliver("msp-cw", acme)
    world.run(fail_fast=False)
    # Then Acme's ServiceNow gets Acme's ticket only: nothing of Globex's, not its title, not its note
    created = [world.snow.tickets[i] for verb, i in world.snow.writes if verb == "create"]
    assert [t["title"] for t in created] == ["Printer offline"]
    assert not any("ransomware" in str(t) or "Domain admin" in str(t) for t in world.snow.tickets.values())
    # and the refused write is dead-lettered with its reason, its outbox row failed, and counted for acme-snow
    reasons, refused = refusals(world)
    assert len(reasons) == 1 and "cross-tenant write refused" in reasons[0]
    assert f"msp-cw:{globex}" in reasons[0] and "tenant 'globex'" in reasons[0] and "tenant 'acme'" in reasons[0]
    assert refused == {"acme-snow": 1, "msp-cw": 0}
    with world.db.session() as s:
        rows = s.scalars(sa.select(OutboxAction).where(OutboxAction.ticket_key == f"msp-cw:{globex}")).all()
    assert [(r.action_type, r.status) for r in rows] == [("create_mirror", "failed")]
    assert rows[0].last_error is not None and "cross-tenant" in rows[0].last_error


def test_a_link_whose_to_tenant_names_the_wrong_client_creates_nothing_under_its_company(make: Any) -> None:
    world = make(WRONG_TO_TENANT)
    # Given eight of Acme's tickets handed to the MSP queue, the link naming Globex's company
    ids = [world.snow.create(queue="MSP Support", title=f"Acme issue {n}") for n in range(8)]
    for snow_id in ids:
        world.deliver("acme-snow", snow_id)
    world.run(fail_fast=False)
    # Then no ticket is created in ConnectWise at all (under Globex's company or any other)
    assert world.cw.writes == []
    reasons, refused = refusals(world)
    assert len(reasons) == 8 and all("cross-tenant write refused" in r for r in reasons)
    assert refused == {"acme-snow": 0, "msp-cw": 8}


def test_the_right_to_tenant_creates_the_mirror_under_the_clients_company(make: Any) -> None:
    world = make(RIGHT_TO_TENANT)
    snow_id = world.snow.create(queue="MSP Support", title="VPN drops")
    world.deliver("acme-snow", snow_id)
    world.run()
    [(verb, cw_id)] = world.cw.writes
    assert verb == "create" and world.cw.tickets[cw_id]["company"] == "AcmeDental"
    assert refusals(world) == ([], {"acme-snow": 0, "msp-cw": 0})


def test_notes_over_a_link_that_crosses_tenants_are_refused(make: Any) -> None:
    world = make(QUEUE_ONLY)
    # Given a link row made before the guard existed: Globex's CW ticket mirrored into Acme's ServiceNow
    globex = world.cw.create(queue="Service Desk", company="GlobexLogistics", title="Payroll export fails")
    mirror = world.snow.create(queue="MSP Support", title="Payroll export fails")
    world.deliver("msp-cw", globex)
    world.deliver("acme-snow", mirror)
    world.run()
    with world.ctx.unit() as s:
        link, _ = link_store.ensure_link(
            s,
            name=QUEUE_ONLY["name"],
            source_key=f"msp-cw:{globex}",
            source_connection="msp-cw",
            target_connection="acme-snow",
            marker=link_marker(f"msp-cw:{globex}", "acme-snow"),
        )
        link_store.record_created(s, link.id, target_external_id=mirror, target_key=f"acme-snow:{mirror}", sync={})
    # When a technician adds an internal note to Globex's ticket
    world.cw.note(globex, "Globex's VPN pre-shared key is in the vault entry GX-7", kind="internal")
    world.deliver("msp-cw", globex)
    world.run(fail_fast=False)
    # Then the note never reaches Acme's ServiceNow
    assert world.snow.writes == []
    reasons, refused = refusals(world)
    assert len(reasons) == 1 and "add_note" in reasons[0] and "over link 'cw-escalations-to-acme'" in reasons[0]
    assert refused["acme-snow"] == 1


def test_a_rule_cannot_move_a_ticket_to_another_clients_company(make: Any) -> None:
    world = make()
    acme = world.cw.create(company="AcmeDental")
    world.deliver("msp-cw", acme)
    world.run()
    # When a rule's write would set Acme's ticket under Globex's company
    move = SetFields(ticket_key=f"msp-cw:{acme}", target="msp-cw", origin="rule:test", fields={"tenant": "globex"})
    with world.ctx.unit() as s:
        rows = outbox_store.enqueue_new(s, [move], now=world.ctx.now())
    queue_actions(world.ctx, rows)
    world.run(fail_fast=False)
    assert world.cw.writes == [] and world.cw.tickets[acme]["company"] == "AcmeDental"
    reasons, refused = refusals(world)
    assert len(reasons) == 1 and "would give tenant 'acme''s ticket to tenant 'globex'" in reasons[0]
    assert refused["msp-cw"] == 1
