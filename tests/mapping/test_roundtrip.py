"""Round trips through the simulated vendors: canonical change -> outbound patch -> the vendor's API -> inbound.

Each change is turned into the vendor's patch by the shipped default mapping, written to the vendor's simulator over
HTTP by the vendor's connector (update_ticket: JSON Patch, PATCH or PUT as the vendor wants it), read back through
the connector (get_ticket) and mapped inbound again: what was written must come back. How a vendor stores a write
(references expanded, integers kept, priority derived from impact and urgency, description_text rendered from HTML)
is the simulator's business, so this test holds no model of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psabridge.connectors.base import Connector
from psabridge.default_mappings import builtin_mapping
from psabridge.mapping import Mapper, MappingContext, load_mapping
from psabridge.model import Ticket
from psabridge.settings import RateBudget
from psabridge.vendordata import VendorMetadata
from psabridge_sandbox.freshservice import PLAN_ENV
from psabridge_sandbox.registry import build_simulator
from tests.connectors.contract.vendors import HARNESSES
from tests.connectors.serving import serve
from tests.mapping.conftest import VENDORS

pytestmark = pytest.mark.slow


@dataclass
class Live:
    """One vendor's simulator served on loopback, its connector, and the ticket the round trips write to."""

    vendor: str
    connector: Connector
    mapper: Mapper
    context: MappingContext
    metadata: VendorMetadata
    external_id: str


@pytest.fixture(scope="module", params=VENDORS)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    vendor: str = request.param
    harness = next(h for h in HARNESSES if h.system == vendor)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(PLAN_ENV, "unlimited")  # hundreds of writes; Freshservice's Growth plan would throttle them
        simulator = build_simulator(vendor, tickets=12)
    with ExitStack() as stack:
        stack.callback(simulator.close)
        simulator.base_url = root = stack.enter_context(serve(simulator))
        # Hundreds of requests in seconds: far above the vendors' default budgets, which the connector would honour.
        connection = harness.settings(root + harness.base_path).model_copy(
            update={"rate_budget": RateBudget(requests=100_000, per=timedelta(minutes=1), vendor_limits=False)}
        )
        connector = harness.connector(connection, namespace=f"roundtrip-{vendor}")
        stack.callback(connector.close)
        external_id = connector.external_id_of(next(iter(connector.iter_changes(None))).records[0])
        yield Live(
            vendor,
            connector,
            load_mapping(builtin_mapping(vendor)),
            MappingContext.for_connection(connection),
            connector.metadata(),
            external_id,
        )


# --- canonical values per vendor -------------------------------------------------------------------------------------

words = st.lists(
    st.sampled_from(["printer", "VPN", "down", "for", "Dana", "<b>", "&", "café", "0x80070005"]), min_size=1
)
line = words.map(" ".join)
text = st.lists(line, min_size=1, max_size=3).map("\n".join)
custom_value = st.one_of(st.text(alphabet="abcXYZ-0123", min_size=1, max_size=8), st.none())

STATUSES = {
    # Values each vendor can hold exactly; the lossy ones are pinned in test_lossy_values_read_back_as_declared.
    "connectwise": ["new", "assigned", "in_progress", "on_hold", "resolved", "closed"],
    "autotask": ["new", "assigned", "in_progress", "on_hold", "closed"],
    "servicenow": ["assigned", "in_progress", "on_hold", "resolved", "closed", "cancelled"],
    "freshservice": ["in_progress", "on_hold", "resolved", "closed"],
}
SOURCES = ["phone", "email", "portal", "walk_in", "chat", "monitoring"]
# What the simulated instances hold (the sandbox's seed world): boards, queues and groups, technicians, custom fields.
QUEUES = {
    "connectwise": ["Service Desk", "Networking", "Security"],  # every board has the default statuses
    "autotask": ["Service Desk", "Networking"],
    "servicenow": ["MSP Support", "Service Desk"],
    "freshservice": ["MSP Escalations", "Service Desk"],
}
ASSIGNEES = {
    "connectwise": ["Dana Whitfield", "Keiko Watanabe"],
    "autotask": ["Ethan Brandt", "Priya Raman"],
    "servicenow": ["Dana Whitfield"],
    "freshservice": ["Samir Haddad", "Olivia Grant"],
}
CUSTOM_FIELDS = {
    "autotask": ["ExternalRef"],  # the instance's user-defined fields
    "freshservice": ["affected_site", "msp_reference"],  # the account's custom ticket fields
    # The simulated ServiceNow instance has no u_ fields, and ServiceNow drops unknown fields silently: none here.
}
SERVICENOW_CATEGORIES = [
    # Choice values of the instance: the connector refuses others (ServiceNow would store them as sent).
    ("hardware", "printer"),
    ("email", "outlook"),
    ("network", "internet"),
    ("account", "password reset"),
    ("security", "phishing"),
]
LEVELS = ["high", "medium", "low"]
PRIORITIES = ["P1", "P2", "P3", "P4"]


def changes_for(vendor: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "status": st.sampled_from(STATUSES[vendor]),
        "priority": st.sampled_from(PRIORITIES),
        "source": st.sampled_from(SOURCES),
        "summary": line.filter(lambda s: len(s) <= 100),
        "queue": st.sampled_from(QUEUES[vendor]),
        "assignee": st.sampled_from(ASSIGNEES[vendor]),
    }
    if vendor != "autotask":
        optional["impact"] = st.sampled_from(LEVELS)
        optional["urgency"] = st.sampled_from(LEVELS)
    if vendor != "connectwise":
        optional["description"] = text
    if vendor in ("autotask", "freshservice"):
        optional["kind"] = st.sampled_from(
            ["incident", "service_request", "problem", "change", "alert"]
            if vendor == "autotask"
            else ["incident", "service_request"]
        )
    if vendor == "freshservice":
        optional["category"] = line
        optional["subcategory"] = line
    if vendor == "servicenow":
        optional["category"] = st.sampled_from(SERVICENOW_CATEGORIES)  # (category, subcategory), set together
    if vendor in CUSTOM_FIELDS:
        optional["custom"] = st.dictionaries(st.sampled_from(CUSTOM_FIELDS[vendor]), custom_value, min_size=1)

    def consistent(changes: dict[str, Any]) -> dict[str, Any]:
        if vendor == "servicenow" and "priority" in changes:
            # ServiceNow derives priority from impact and urgency: one decision, not three.
            changes = {k: v for k, v in changes.items() if k not in ("impact", "urgency")}
        if vendor == "servicenow" and "category" in changes:
            changes = {**changes, "category": changes["category"][0], "subcategory": changes["category"][1]}
        return changes

    return st.fixed_dictionaries({}, optional=optional).filter(bool).map(consistent)


def canonical(ticket: Ticket, name: str) -> Any:
    value = getattr(ticket, name)
    if name == "assignee":
        return value.name if value is not None else None
    return getattr(value, "value", value)


def round_trip(live: Live, changes: dict[str, Any], meta: VendorMetadata | None) -> Ticket:
    """Write ``changes`` to the simulated vendor as the outbox would, and map what it then holds."""
    current = live.connector.get_ticket(live.external_id)
    result = live.mapper.outbound(changes, live.context, meta, current=current)
    assert not result.problems, [str(p) for p in result.problems]
    live.connector.update_ticket(live.external_id, result.patch)
    return live.mapper.inbound(live.connector.get_ticket(live.external_id), live.context, meta).ticket


def test_every_written_field_reads_back_unchanged(live: Live) -> None:
    @settings(max_examples=60, deadline=None)
    @given(changes=changes_for(live.vendor))
    def check(changes: dict[str, Any]) -> None:
        ticket = round_trip(live, changes, live.metadata)
        for name, value in changes.items():
            if name == "custom":
                assert {k: ticket.custom.get(k) for k in value} == value
            else:
                assert canonical(ticket, name) == value, name

    check()


def test_without_metadata_value_maps_and_default_codes_round_trip(live: Live) -> None:
    vendor = live.vendor
    fields = ["status", "priority"] + (["kind"] if vendor == "autotask" else ["impact", "urgency"])
    if vendor == "servicenow":
        fields.remove("priority")  # derived from impact and urgency
    if vendor == "connectwise":
        fields.append("source")

    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        pool = {
            "status": STATUSES[vendor] + (["cancelled"] if vendor == "connectwise" else []),
            "priority": PRIORITIES,
            "kind": ["incident", "service_request", "problem", "change", "alert"],
            "impact": LEVELS,
            "urgency": LEVELS,
            "source": [*SOURCES, "other"],
        }
        changes = {name: data.draw(st.sampled_from(pool[name])) for name in fields}
        ticket = round_trip(live, changes, None)
        for name, value in changes.items():
            assert canonical(ticket, name) == value, name

    check()


LOSSY = {
    # vendor -> (canonical value written, what reads back): values the vendor cannot hold as such
    "autotask": [("resolved", "closed")],  # Autotask has one done status: Complete
    "freshservice": [("new", "in_progress"), ("assigned", "in_progress")],  # Open; with an agent it is worked on
    "servicenow": [("new", "assigned")],  # New, but the incident has an assignee
    "connectwise": [],  # every canonical status has a ConnectWise status of its own
}


def test_lossy_values_read_back_as_declared(live: Live) -> None:
    round_trip(live, {"assignee": ASSIGNEES[live.vendor][0]}, live.metadata)
    read = []
    for value, reads_back in LOSSY[live.vendor]:
        first = round_trip(live, {"status": value}, live.metadata)
        again = round_trip(live, {"status": reads_back}, live.metadata)
        read.append((value, canonical(first, "status"), canonical(again, "status")))
    assert read == [(value, reads_back, reads_back) for value, reads_back in LOSSY[live.vendor]]
