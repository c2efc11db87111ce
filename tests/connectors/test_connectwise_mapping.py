"""Simulator record -> ConnectWise connector -> default mapping: the canonical ticket the seed scenario intended."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from psabridge.connectors.connectwise import ConnectWiseConnector
from psabridge.connectors.http import HttpRuntime
from psabridge.mapping import Mapper, MappingContext, load_mapping
from psabridge.markers import marker_for
from psabridge.model import NoteKind, Status, System
from psabridge.vendordata import VendorMetadata
from psabridge_sandbox.clock import SystemClock
from psabridge_sandbox.connectwise import ConnectWiseSimulator
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.scenarios import Scenario
from psabridge_sandbox.tickets import SeedTicket
from psabridge_sandbox.world import build_world

from .completion import check_pages_map_as_tickets_read_by_id
from .contract.harness import connection_settings
from .serving import serve

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mappings" / "connectwise.yaml"
ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


class Bench:
    def __init__(self, cw: ConnectWiseSimulator, connector: ConnectWiseConnector, metadata: VendorMetadata) -> None:
        self.cw = cw
        self.connector = connector
        self.metadata = metadata
        self.mapper: Mapper = load_mapping(MAPPING)
        self.context = MappingContext("msp-cw", System.CONNECTWISE, tenants=dict(connector.settings.tenants))

    def ticket_with(self, scenario: Scenario) -> tuple[str, SeedTicket]:
        for ticket_id, seed in self.cw._seeds.items():
            if scenario in seed.scenarios:
                return str(ticket_id), seed
        raise AssertionError(f"no seed ticket has {scenario}")


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    context = SandboxContext(
        service=service("connectwise"), world=build_world(0), anchor=ANCHOR, tickets=40, clock=SystemClock()
    )
    cw = ConnectWiseSimulator(context)
    with serve(cw.simulator) as root:
        cw.simulator.base_url = root
        entry = service("connectwise").entry(root + "/v4_6_release/apis/3.0", "127.0.0.1")
        settings = connection_settings(
            name="msp-cw",
            system="connectwise",
            base_url=entry["base_url"],
            secrets={"company": "psabridge", "public_key": "sandbox-public", "private_key": "sandbox-private",
                     "client_id": "5f2f8f0e-6a4b-4d2e-9d1c-2b7f0c3e4a51", "webhook_host": "127.0.0.1"},
            tenants=entry["tenants"],
        )  # fmt: skip
        connector = ConnectWiseConnector(settings, runtime=HttpRuntime(namespace="cw-mapping-test"))
        try:
            yield Bench(cw, connector, connector.metadata())
        finally:
            connector.close()
            cw.simulator.close()


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario.P1_OUTAGE,
        Scenario.PASSWORD_RESET_VERIFIED,
        Scenario.ESCALATION_BARE,
        Scenario.CLOSED_WITH_TIME,
        Scenario.PATCH_TUESDAY,
    ],
)
def test_a_seed_ticket_maps_to_the_canonical_ticket_it_was_made_from(bench: Bench, scenario: Scenario) -> None:
    external_id, seed = bench.ticket_with(scenario)

    result = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata)

    ticket = result.ticket
    assert result.findings == ()
    assert (ticket.external_id, ticket.tenant) == (external_id, seed.tenant.key)
    assert (ticket.summary, ticket.description) == (seed.summary, seed.description)
    assert (ticket.status, ticket.priority, ticket.impact, ticket.urgency) == (
        seed.status, seed.priority, seed.impact, seed.urgency,
    )  # fmt: skip
    assert (ticket.kind, ticket.category, ticket.subcategory, ticket.source) == (
        seed.kind, seed.category, seed.subcategory, seed.source,
    )  # fmt: skip
    assert (ticket.queue, ticket.tier) == (seed.queue.name, seed.tier)
    assert ticket.requester is not None and ticket.requester.email == seed.requester.email
    assert (ticket.assignee.name if ticket.assignee else None) == (seed.assignee.name if seed.assignee else None)
    assert (ticket.asset.name if ticket.asset else None) == (seed.asset.name if seed.asset else None)
    # The description note is the body, not a note; every other note keeps its kind and text.
    assert [(n.kind, n.text) for n in ticket.notes] == [(n.kind, n.text) for n in seed.notes]
    assert [e.minutes for e in ticket.time_entries] == [e.minutes for e in seed.time_entries]
    assert set(seed.error_codes) <= set(ticket.error_codes)
    assert ticket.created_at == seed.created_at and ticket.closed_at == seed.closed_at


def test_tickets_built_from_list_pages_map_as_the_tickets_read_by_id(bench: Bench) -> None:
    compared = check_pages_map_as_tickets_read_by_id(bench.connector, bench.mapper, bench.context, bench.metadata)
    assert compared == len(bench.cw.tickets) == 40


def test_an_outbound_patch_is_what_update_ticket_accepts(bench: Bench) -> None:
    external_id, _ = bench.ticket_with(Scenario.P3_DEGRADED)
    raw = bench.connector.get_ticket(external_id)

    out = bench.mapper.outbound(
        {"status": "on_hold", "priority": "P1", "impact": "high"}, bench.context, bench.metadata, current=raw
    )
    assert out.problems == ()
    bench.connector.update_ticket(external_id, out.patch)

    again = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata).ticket
    assert (again.status, again.priority, again.impact) == (Status.ON_HOLD, "P1", "high")


def test_a_mirror_created_from_a_mapping_patch_carries_its_marker_and_body(bench: Bench) -> None:
    out = bench.mapper.outbound(
        {"summary": "Mirror: scanner offline", "tenant": "acme", "queue": "Acme Service", "status": "new",
         "priority": "P3"},
        bench.context, bench.metadata,
    )  # fmt: skip
    assert out.problems == ()
    marker = marker_for("mirror-test-001")
    fields = {**out.patch, "initialDescription": "The scanner at the front desk is offline."}

    created = bench.connector.create_ticket(fields, marker=marker)
    external_id = bench.connector.external_id_of(created)

    assert bench.connector.find_by_marker(marker) == external_id
    ticket = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata).ticket
    assert (ticket.queue, ticket.tenant, ticket.status) == ("Acme Service", "acme", Status.NEW)
    assert ticket.description is not None and ticket.description.startswith("The scanner at the front desk")
    note = bench.connector.add_note(external_id, "Driver reinstalled.", kind=NoteKind.INTERNAL, marker=marker)
    mapped = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata).ticket
    ours = [n for n in mapped.notes if n.external_id == str(note["id"])]
    assert [(n.kind, n.text, n.origin) for n in ours] == [(NoteKind.INTERNAL, "Driver reinstalled.", "mirror-test-001")]
