"""Simulator record -> Freshservice connector -> default mapping: the canonical ticket the seed scenario intended."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from psabridge.connectors.freshservice import FreshserviceConnector
from psabridge.connectors.http import HttpRuntime
from psabridge.mapping import Mapper, MappingContext, load_mapping
from psabridge.markers import marker_for
from psabridge.model import Kind, NoteKind, Status, System
from psabridge.vendordata import VendorMetadata
from psabridge_sandbox.clock import SystemClock
from psabridge_sandbox.credentials import FS_API_KEY, FS_WEBHOOK_SECRET
from psabridge_sandbox.freshservice import FreshserviceSimulator
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.scenarios import Scenario
from psabridge_sandbox.tickets import SeedTicket
from psabridge_sandbox.world import build_world

from .completion import check_pages_map_as_tickets_read_by_id
from .contract.harness import connection_settings
from .serving import serve

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mappings" / "freshservice.yaml"
ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
# What Freshservice cannot hold, and so comes back otherwise: one open status (an assigned ticket reads as being
# worked), no cancelled status, alerts are incidents, and a resolution is a private note.
STATUS_READ_BACK = {Status.ASSIGNED: Status.IN_PROGRESS, Status.CANCELLED: Status.CLOSED}
KIND_READ_BACK = {Kind.ALERT: Kind.INCIDENT}
NOTE_READ_BACK = {NoteKind.RESOLUTION: NoteKind.INTERNAL}


class Bench:
    def __init__(self, fs: FreshserviceSimulator, connector: FreshserviceConnector, metadata: VendorMetadata) -> None:
        self.fs = fs
        self.connector = connector
        self.metadata = metadata
        self.mapper: Mapper = load_mapping(MAPPING)
        self.context = MappingContext("globex-fs", System.FRESHSERVICE, tenant="globex")

    def ticket_with(self, *scenarios: Scenario) -> tuple[str, SeedTicket]:
        for ticket_id, seed in self.fs._seeds.items():
            if set(scenarios) <= seed.scenarios:
                return str(ticket_id), seed
        raise AssertionError(f"no seed ticket has {scenarios}")


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    context = SandboxContext(
        service=service("freshservice"), world=build_world(0), anchor=ANCHOR, tickets=60, clock=SystemClock()
    )
    fs = FreshserviceSimulator(context, plan="unlimited")
    with serve(fs.simulator) as root:
        fs.simulator.base_url = root
        settings = connection_settings(
            name="globex-fs", system="freshservice", base_url=root, tenant="globex",
            secrets={"api_key": FS_API_KEY, "webhook_secret": FS_WEBHOOK_SECRET},
            rate_budget={"vendor_limits": False},  # the sandbox's unlimited plan
        )  # fmt: skip
        connector = FreshserviceConnector(settings, runtime=HttpRuntime(namespace="fs-mapping-test"))
        try:
            yield Bench(fs, connector, connector.metadata())
        finally:
            connector.close()
            fs.simulator.close()


@pytest.mark.parametrize(
    "scenarios",
    [
        (Scenario.P1_OUTAGE, Scenario.VIP_REQUESTER),
        (Scenario.PASSWORD_RESET_VERIFIED,),
        (Scenario.ESCALATION_BARE,),
        (Scenario.CLOSED_WITH_TIME, Scenario.RESOLUTION_GOOD),
        (Scenario.PATCH_TUESDAY,),
        (Scenario.MONITORING_ALERT,),
    ],
    ids=lambda scenarios: "+".join(s.value for s in scenarios),
)
def test_a_seed_ticket_maps_to_the_canonical_ticket_it_was_made_from(
    bench: Bench, scenarios: tuple[Scenario, ...]
) -> None:
    external_id, seed = bench.ticket_with(*scenarios)

    result = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata)

    ticket = result.ticket
    assert result.findings == ()
    assert (ticket.external_id, ticket.tenant) == (external_id, "globex")
    assert (ticket.summary, ticket.description) == (seed.summary, seed.description)
    assert (ticket.status, ticket.priority, ticket.impact, ticket.urgency) == (
        STATUS_READ_BACK.get(seed.status, seed.status), seed.priority, seed.impact, seed.urgency,
    )  # fmt: skip
    assert (ticket.kind, ticket.category, ticket.subcategory, ticket.source) == (
        KIND_READ_BACK.get(seed.kind, seed.kind), seed.category, seed.subcategory, seed.source,
    )  # fmt: skip
    assert (ticket.queue, ticket.tier) == (seed.queue.name, seed.tier)
    assert ticket.requester is not None
    assert (ticket.requester.email, ticket.requester.name) == (seed.requester.email, seed.requester.name)
    assert (ticket.assignee.name if ticket.assignee else None) == (seed.assignee.name if seed.assignee else None)
    assert (ticket.asset.name if ticket.asset else None) == (seed.asset.name if seed.asset else None)
    assert [(n.kind, n.text) for n in ticket.notes] == [
        (NOTE_READ_BACK.get(n.kind, n.kind), n.text) for n in seed.notes
    ]
    assert [e.minutes for e in ticket.time_entries] == [e.minutes for e in seed.time_entries]
    assert set(seed.error_codes) <= set(ticket.error_codes)
    assert ticket.created_at == seed.created_at and ticket.closed_at == seed.closed_at
    assert ticket.sla is not None and ticket.sla.resolved_at == (seed.resolved_at or seed.closed_at)


def test_list_records_map_without_the_extras(bench: Bench) -> None:
    page = next(iter(bench.connector.iter_changes(None)))
    seeds = bench.fs._seeds

    for record in page.records[:20]:
        result = bench.mapper.inbound(record, bench.context, bench.metadata)
        seed = seeds[int(record["id"])]
        assert result.findings == ()
        assert (result.ticket.summary, result.ticket.queue, result.ticket.priority) == (
            seed.summary, seed.queue.name, seed.priority,
        )  # fmt: skip


def test_tickets_built_from_list_pages_map_as_the_tickets_read_by_id(bench: Bench) -> None:
    compared = check_pages_map_as_tickets_read_by_id(bench.connector, bench.mapper, bench.context, bench.metadata)
    listed = [row for row in bench.fs.tickets.rows() if not (row.data["deleted"] or row.data["spam"])]
    assert compared == len(listed) > 40


def test_an_outbound_patch_is_what_update_ticket_accepts(bench: Bench) -> None:
    external_id, _ = bench.ticket_with(Scenario.P3_DEGRADED)
    raw = bench.connector.get_ticket(external_id)

    out = bench.mapper.outbound(
        {"status": "on_hold", "priority": "P1", "impact": "high", "queue": "Security", "assignee": "Amara Nwosu"},
        bench.context, bench.metadata, current=raw,
    )  # fmt: skip
    assert out.problems == ()
    assert set(out.patch) <= {"status", "priority", "impact", "group_id", "responder_id"}
    bench.connector.update_ticket(external_id, out.patch)

    again = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata).ticket
    assert (again.status, again.priority, again.impact, again.queue) == (Status.ON_HOLD, "P1", "high", "Security")
    assert again.assignee is not None and again.assignee.name == "Amara Nwosu"


def test_a_mirror_created_from_a_mapping_patch_carries_its_marker_and_body(bench: Bench) -> None:
    out = bench.mapper.outbound(
        {"summary": "Mirror: scanner offline", "description": "The scanner at the front desk is offline.\nSince 9am.",
         "queue": "MSP Escalations", "status": "new", "priority": "P3"},
        bench.context, bench.metadata,
    )  # fmt: skip
    assert out.problems == ()
    marker = marker_for("mirror-test-001")

    created = bench.connector.create_ticket({**out.patch, "email": "cfo@globex.example"}, marker=marker)
    external_id = bench.connector.external_id_of(created)

    assert bench.connector.find_by_marker(marker) == external_id
    ticket = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata).ticket
    assert (ticket.queue, ticket.status, ticket.priority) == ("MSP Escalations", Status.NEW, "P3")
    assert ticket.description == "The scanner at the front desk is offline.\nSince 9am."  # the marker is ours
    assert ticket.requester is not None and ticket.requester.email == "cfo@globex.example"
    note = bench.connector.add_note(external_id, "Driver reinstalled.", kind=NoteKind.INTERNAL, marker=marker)
    mapped = bench.mapper.inbound(bench.connector.get_ticket(external_id), bench.context, bench.metadata).ticket
    ours = [n for n in mapped.notes if n.external_id == str(note["id"])]
    assert [(n.kind, n.text, n.origin) for n in ours] == [(NoteKind.INTERNAL, "Driver reinstalled.", "mirror-test-001")]
    assert bench.connector.integration_user() == str(note["user_id"])
