"""Round trip: Autotask simulator -> connector (real HTTP on loopback) -> mapping -> the seed ticket it came from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from psabridge.connectors.autotask import AutotaskConnector
from psabridge.connectors.http import HttpRuntime
from psabridge.mapping import Mapper, MappingContext, load_mapping
from psabridge.markers import marker_for
from psabridge.model import NoteKind, Status, System
from psabridge_sandbox import credentials as cred
from psabridge_sandbox.autotask import AutotaskSimulator
from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.tickets import SeedTicket
from psabridge_sandbox.world import build_world

from .completion import check_pages_map_as_tickets_read_by_id
from .conftest import FakeTime
from .contract.harness import connection_settings
from .serving import serve

ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
MAPPING = Path(__file__).resolve().parents[2] / "config" / "mappings" / "autotask.yaml"
TENANTS = {"0": "initech", "1001": "initech", "1002": "umbrella"}


@dataclass
class Sandbox:
    at: AutotaskSimulator
    seeds: list[SeedTicket]
    connector: AutotaskConnector
    mapper: Mapper
    context: MappingContext


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    context = SandboxContext(
        service=service("autotask"), world=build_world(0), anchor=ANCHOR, tickets=40, clock=FakeClock(ANCHOR)
    )
    at = AutotaskSimulator(context)
    with ExitStack() as stack:
        stack.callback(at.simulator.close)
        root = stack.enter_context(serve(at.simulator))
        secrets = {
            "username": cred.AT_USERNAME,
            "secret": cred.AT_SECRET,
            "integration_code": cred.AT_INTEGRATION_CODE,
            "webhook_secret": cred.AT_WEBHOOK_SECRET,
        }
        settings = connection_settings(
            name="partner-at",
            system="autotask",
            base_url=root + "/atservicesrest",
            secrets=secrets,
            tenants=TENANTS,
            options={"threshold_check": False},
        )
        time = FakeTime(ANCHOR)
        connector = AutotaskConnector(settings, runtime=HttpRuntime(namespace="at-mapping", now=time.now))
        stack.callback(connector.close)
        yield Sandbox(
            at,
            context.seed_tickets(),
            connector,
            load_mapping(MAPPING),
            MappingContext("partner-at", System.AUTOTASK, tenants=TENANTS),
        )


EXPECTED_STATUS = {Status.RESOLVED: Status.CLOSED}  # Autotask has no resolved status: Complete reads back as closed


@pytest.mark.parametrize("number", range(1, 17), ids=lambda n: f"seed-{n}")
def test_a_seed_ticket_comes_back_as_itself_through_connector_and_mapping(sandbox: Sandbox, number: int) -> None:
    seed = sandbox.seeds[number - 1]
    raw = sandbox.connector.get_ticket(str(350000 + seed.number))

    result = sandbox.mapper.inbound(raw, sandbox.context, sandbox.connector.metadata())

    ticket = result.ticket
    assert [f.message for f in result.findings] == []
    assert (ticket.tenant, ticket.summary, ticket.description) == (seed.tenant.key, seed.summary, seed.description)
    assert ticket.status == EXPECTED_STATUS.get(seed.status, seed.status)
    assert (ticket.priority, ticket.kind, ticket.source) == (seed.priority, seed.kind, seed.source)
    assert (ticket.category, ticket.subcategory, ticket.queue) == (seed.category, seed.subcategory, seed.queue.name)
    assert ticket.tier == seed.queue.tier
    assert ticket.requester is not None and ticket.requester.name == seed.requester.name
    assert (ticket.assignee.name if ticket.assignee else None) == (seed.assignee.name if seed.assignee else None)
    assert [(n.kind, n.text) for n in ticket.notes] == [(n.kind, n.text) for n in seed.notes]
    assert [(e.minutes, e.note, e.billable) for e in ticket.time_entries] == [
        (e.minutes, e.note, e.billable) for e in seed.time_entries
    ]
    assert {c.casefold() for c in seed.error_codes} <= {c.casefold() for c in ticket.error_codes}  # 0x.. normalised
    assert ticket.created_at == seed.created_at


def test_tickets_built_from_list_pages_map_as_the_tickets_read_by_id(sandbox: Sandbox) -> None:
    connector = sandbox.connector
    assert check_pages_map_as_tickets_read_by_id(connector, sandbox.mapper, sandbox.context, connector.metadata()) == 40


def test_our_own_note_comes_back_with_its_origin_and_canonical_changes_go_out_as_the_connector_sends_them(
    sandbox: Sandbox,
) -> None:
    seed = next(s for s in sandbox.seeds if s.status == Status.IN_PROGRESS)
    external_id = str(350000 + seed.number)
    key = "a1b2c3d4e5f60718"
    metadata = sandbox.connector.metadata()
    raw = sandbox.connector.get_ticket(external_id)

    out = sandbox.mapper.outbound(
        {"status": "on_hold", "priority": "P1", "queue": "Security", "assignee": "Amara Nwosu"},
        sandbox.context,
        metadata,
        current=raw,
    )
    updated = sandbox.connector.update_ticket(external_id, out.patch)
    sandbox.connector.add_note(external_id, "Escalated to Security.", kind=NoteKind.INTERNAL, marker=marker_for(key))
    again = sandbox.mapper.inbound(sandbox.connector.get_ticket(external_id), sandbox.context, metadata).ticket

    assert out.problems == ()
    assert set(out.patch) == {"status", "priority", "queueID", "assignedResourceID"}
    assert updated["assignedResourceRoleID"] is not None  # added by the connector with the resource
    assert (again.status, again.priority, again.queue, again.tier) == (Status.ON_HOLD, "P1", "Security", 3)
    assert again.assignee is not None and again.assignee.name == "Amara Nwosu"
    assert (again.notes[-1].text, again.notes[-1].origin, again.notes[-1].kind) == (
        "Escalated to Security.",
        key,
        NoteKind.INTERNAL,
    )
