"""Simulator record -> ServiceNow connector -> default mapping: the canonical ticket the seed scenario intended."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from psabridge.connectors.http import HttpRuntime
from psabridge.connectors.servicenow import ServiceNowConnector
from psabridge.mapping import Mapper, MappingContext, load_mapping
from psabridge.markers import marker_for
from psabridge.model import Level, NoteKind, Priority, Status, System
from psabridge.vendordata import VendorMetadata
from psabridge_sandbox.clock import SystemClock
from psabridge_sandbox.credentials import SN_PASSWORD, SN_USERNAME, SN_WEBHOOK_SECRET
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.scenarios import Scenario
from psabridge_sandbox.servicenow import ServiceNowSimulator
from psabridge_sandbox.tickets import SeedTicket
from psabridge_sandbox.world import build_world

from .completion import check_pages_map_as_tickets_read_by_id
from .contract.harness import connection_settings
from .serving import serve

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mappings" / "servicenow.yaml"
ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


class Bench:
    def __init__(self, sn: ServiceNowSimulator, seeds: list[SeedTicket], connector: ServiceNowConnector) -> None:
        self.sn = sn
        self.connector = connector
        self.metadata: VendorMetadata = connector.metadata()
        self.mapper: Mapper = load_mapping(MAPPING)
        self.context = MappingContext("acme-snow", System.SERVICENOW, tenant="acme")
        # Incidents are seeded in SeedTicket order: the n-th incident is the n-th seed ticket.
        rows = sn.instance.tables["incident"].rows()
        self.seeds = {str(row.id): seed for row, seed in zip(rows, seeds, strict=True)}

    def ticket_with(self, scenario: Scenario) -> tuple[str, SeedTicket]:
        for sys_id, seed in self.seeds.items():
            if scenario in seed.scenarios:
                return sys_id, seed
        raise AssertionError(f"no seed ticket has {scenario}")


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    context = SandboxContext(
        service=service("servicenow"), world=build_world(0), anchor=ANCHOR, tickets=40, clock=SystemClock()
    )
    sn = ServiceNowSimulator(context)
    with serve(sn.simulator) as root:
        sn.simulator.base_url = root
        settings = connection_settings(
            name="acme-snow",
            system="servicenow",
            base_url=root,
            secrets={"username": SN_USERNAME, "password": SN_PASSWORD, "webhook_secret": SN_WEBHOOK_SECRET},
            tenant="acme",
        )
        connector = ServiceNowConnector(settings, runtime=HttpRuntime(namespace="sn-mapping-test"))
        try:
            yield Bench(sn, context.seed_tickets(), connector)
        finally:
            connector.close()
            sn.simulator.close()


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario.P1_OUTAGE,
        Scenario.PASSWORD_RESET_VERIFIED,
        Scenario.ESCALATION_BARE,
        Scenario.CLOSED_WITH_TIME,
        Scenario.RESOLUTION_POOR,
        Scenario.PATCH_TUESDAY,
    ],
)
def test_a_seed_ticket_maps_to_the_canonical_ticket_it_was_made_from(bench: Bench, scenario: Scenario) -> None:
    external_id, seed = bench.ticket_with(scenario)

    result = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata)

    ticket = result.ticket
    assert result.findings == ()
    assert (ticket.external_id, ticket.tenant) == (external_id, "acme")
    assert (ticket.summary, ticket.description) == (seed.summary, seed.description)
    assert (ticket.status, ticket.priority, ticket.impact, ticket.urgency) == (
        seed.status, seed.priority, seed.impact, seed.urgency,
    )  # fmt: skip
    # ServiceNow stores choice values (lower case); the seed speaks in labels
    assert (ticket.category, ticket.subcategory) == (seed.category.casefold(), seed.subcategory.casefold())
    assert (ticket.kind, ticket.source) == ("incident", seed.source)
    assert (ticket.queue, ticket.tier) == (seed.queue.name, seed.tier)
    assert ticket.requester is not None and ticket.requester.name == seed.requester.name
    assert (ticket.assignee.name if ticket.assignee else None) == (seed.assignee.name if seed.assignee else None)
    assert (ticket.asset.name if ticket.asset else None) == (seed.asset.name if seed.asset else None)
    # Journal entries keep their kind and text; the resolution is close_notes, read as the resolution note
    assert [(n.kind, n.text) for n in ticket.notes] == [(n.kind, n.text) for n in seed.notes]
    resolution = [n for n in ticket.notes if n.kind is NoteKind.RESOLUTION]
    if resolution and seed.assignee is not None:
        assert resolution[0].author == seed.assignee.name
    # time rows come in the order they were logged (sys_created_on); the seed lists them by start
    logged = sorted((e.started_at, e.minutes, e.who) for e in ticket.time_entries)
    assert logged == [(e.started_at, e.minutes, e.technician.name) for e in seed.time_entries]
    assert {c.upper() for c in seed.error_codes} <= {c.upper() for c in ticket.error_codes}  # hex case normalised
    assert (ticket.created_at, ticket.closed_at) == (seed.created_at, seed.closed_at)


def test_a_list_record_maps_without_the_extras(bench: Bench) -> None:
    pages = list(bench.connector.iter_changes(ANCHOR.replace(day=1)))
    record = pages[0].records[0]

    result = bench.mapper.inbound(record, bench.context, bench.metadata)

    assert result.ticket.external_id == record["sys_id"]
    assert result.ticket.notes == () and result.ticket.queue is not None


def test_tickets_built_from_list_pages_map_as_the_tickets_read_by_id(bench: Bench) -> None:
    compared = check_pages_map_as_tickets_read_by_id(bench.connector, bench.mapper, bench.context, bench.metadata)
    assert compared == len(bench.sn.instance.tables["incident"]) == 40


def test_an_outbound_patch_is_what_update_ticket_accepts(bench: Bench) -> None:
    external_id, _ = bench.ticket_with(Scenario.P3_DEGRADED)
    raw = bench.connector.get_ticket(external_id)

    out = bench.mapper.outbound(
        {"status": "on_hold", "priority": "P1", "queue": "MSP Support"}, bench.context, bench.metadata, current=raw
    )
    assert out.problems == ()
    assert "priority" not in out.patch and (out.patch["impact"], out.patch["urgency"]) == ("1", "1")
    bench.connector.update_ticket(external_id, out.patch)

    again = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata).ticket
    assert (again.status, again.priority, again.impact, again.queue) == (
        Status.ON_HOLD,
        Priority.P1,
        Level.HIGH,
        "MSP Support",
    )
    stored = bench.sn.instance.tables["incident"][external_id].data
    assert (stored["priority"], stored["sys_updated_by"]) == ("1", SN_USERNAME)


def test_a_mirror_created_from_a_mapping_patch_carries_its_marker_and_notes_come_back(bench: Bench) -> None:
    out = bench.mapper.outbound(
        {"summary": "Mirror: scanner offline", "description": "The scanner at the front desk is offline.",
         "status": "new", "priority": "P2", "queue": "MSP Support", "source": "phone"},
        bench.context, bench.metadata,
    )  # fmt: skip
    assert out.problems == ()
    marker = marker_for("mirror-test-001")

    created = bench.connector.create_ticket(out.patch, marker=marker)
    external_id = bench.connector.external_id_of(created)

    assert bench.connector.find_by_marker(marker) == external_id
    note = bench.connector.add_note(external_id, "Driver reinstalled.", kind=NoteKind.INTERNAL, marker=marker)
    bench.connector.add_note(external_id, "Fixed for good.", kind=NoteKind.RESOLUTION, marker=marker)
    mapped = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata).ticket
    assert (mapped.queue, mapped.status, mapped.priority, mapped.summary) == (
        "MSP Support", Status.NEW, Priority.P2, "Mirror: scanner offline",
    )  # fmt: skip
    assert [(n.kind, n.text, n.origin) for n in mapped.notes] == [
        (NoteKind.INTERNAL, "Driver reinstalled.", "mirror-test-001"),
        (NoteKind.RESOLUTION, "Fixed for good.", "mirror-test-001"),
    ]
    assert mapped.notes[0].external_id == note["sys_id"] and mapped.notes[0].author == SN_USERNAME
