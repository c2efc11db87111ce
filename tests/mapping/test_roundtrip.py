"""Round trips: canonical change -> vendor patch -> stored as the vendor stores it -> inbound gives the value back."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psabridge.mapping import Mapper
from psabridge.mapping.transforms import find_choice, html_to_text
from psabridge.model import Ticket
from psabridge.vendordata import VendorMetadata
from tests.mapping.conftest import CONTEXTS, fixture, metadata

# --- "as the vendor stores it" ---------------------------------------------------------------------------------------


def store_connectwise(record: dict[str, Any], patch: dict[str, Any], meta: VendorMetadata | None) -> dict[str, Any]:
    """ConnectWise answers a reference written as {id} or {name} with the full {id, name} (statuses per board)."""
    out = copy.deepcopy(record)
    board = (patch.get("board") or out.get("board") or {}).get("name")
    field_of = {"status": "status", "priority": "priority", "source": "source", "board": "board", "owner": "owner"}
    for key, value in patch.items():
        if isinstance(value, dict) and key in field_of and meta is not None:
            scope = board if key == "status" else None
            choice = None
            if "id" in value:
                choice = find_choice(meta, field_of[key], value=str(value["id"]), scope=scope)
            else:
                wanted = value.get("name") or value.get("identifier")
                choice = find_choice(meta, field_of[key], label=str(wanted), scope=scope)
            assert choice is not None, f"ConnectWise would refuse {key}={value}"
            value = {"id": int(choice.value), "name": choice.label, **choice.extra}
        elif isinstance(value, dict) and "name" in value:
            value = {"id": 0, **value}
        elif isinstance(value, dict) and "identifier" in value:
            value = {"id": 0, "name": value["identifier"], **value}
        out[key] = value
        if key == "board":
            out["board"] = value
    return out


def store_autotask(record: dict[str, Any], patch: dict[str, Any], meta: VendorMetadata | None) -> dict[str, Any]:
    """Autotask keeps integers; user-defined fields are merged by name."""
    out = copy.deepcopy(record)
    for key, value in patch.items():
        if key == "userDefinedFields":
            current = {u["name"]: u for u in out.get("userDefinedFields", [])}
            for item in value:
                current[item["name"]] = item
            out[key] = list(current.values())
        else:
            assert isinstance(value, int | str) or value is None, f"Autotask stores scalars, got {key}={value!r}"
            out[key] = value
    return out


_DERIVED = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("1", "3"): "3", ("2", "2"): "3", ("3", "1"): "3"}
_DERIVED.update({("2", "3"): "4", ("3", "2"): "4", ("3", "3"): "5"})


def store_servicenow(record: dict[str, Any], patch: dict[str, Any], meta: VendorMetadata | None) -> dict[str, Any]:
    """ServiceNow stores strings, turns sys_ids into {link, value} and derives priority from impact and urgency."""
    out = copy.deepcopy(record)
    assert "priority" not in patch, "priority is read-only on ServiceNow: write impact and urgency"
    for key, value in patch.items():
        assert isinstance(value, str), f"ServiceNow values are strings, got {key}={value!r}"
        if key in ("assigned_to", "assignment_group", "caller_id") and value:
            value = {"link": f"https://acme.service-now.com/api/now/table/x/{value}", "value": value}
        out[key] = value
    out["priority"] = _DERIVED[(out["impact"], out["urgency"])]
    return out


def store_freshservice(record: dict[str, Any], patch: dict[str, Any], meta: VendorMetadata | None) -> dict[str, Any]:
    """Freshservice keeps integer codes, renders description_text from the HTML, merges custom fields."""
    out = copy.deepcopy(record)
    for key, value in patch.items():
        if key == "custom_fields":
            out[key] = {**out.get(key, {}), **value}
        else:
            out[key] = value
        if key == "description":
            out["description_text"] = html_to_text(value)
    return out


STORE = {
    "connectwise": store_connectwise,
    "autotask": store_autotask,
    "servicenow": store_servicenow,
    "freshservice": store_freshservice,
}
BASE = {
    "connectwise": fixture("connectwise", "ticket_full.json"),
    "autotask": fixture("autotask", "ticket_full.json"),
    "servicenow": fixture("servicenow", "incident_full.json"),
    "freshservice": fixture("freshservice", "ticket_full.json"),
}

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
SOURCES = {
    "connectwise": ["phone", "email", "portal"],  # the sources the instance's metadata has
    "autotask": ["phone", "email", "portal"],
    "servicenow": ["phone", "email", "portal", "walk_in", "chat", "monitoring"],
    "freshservice": ["phone", "email", "portal", "walk_in", "chat", "monitoring"],
}
QUEUES = {
    "connectwise": ["Service Desk"],  # the base ticket's board; the status scope follows it
    "autotask": ["Service Desk", "Networking"],
    "servicenow": ["MSP Support", "Service Desk"],
    "freshservice": ["MSP Escalations", "Service Desk"],
}
ASSIGNEES = {
    "connectwise": ["Dana Whitfield", "Keiko Watanabe"],
    "autotask": ["Ethan Brandt"],
    "servicenow": ["Beth Anglin"],
    "freshservice": ["Samir Haddad"],
}
LEVELS = ["high", "medium", "low"]
PRIORITIES = ["P1", "P2", "P3", "P4"]


def changes_for(vendor: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "status": st.sampled_from(STATUSES[vendor]),
        "priority": st.sampled_from(PRIORITIES),
        "source": st.sampled_from(SOURCES[vendor]),
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
    if vendor in ("servicenow", "freshservice"):
        optional["category"] = line
        optional["subcategory"] = line
    if vendor == "autotask":
        optional["custom"] = st.dictionaries(st.sampled_from(["ExternalRef", "Site Code"]), custom_value, min_size=1)
    if vendor == "freshservice":
        optional["custom"] = st.dictionaries(st.sampled_from(["site_code", "msp_reference"]), custom_value, min_size=1)
    if vendor == "servicenow":
        optional["custom"] = st.dictionaries(
            st.sampled_from(["u_msp_reference", "u_site"]), st.text(alphabet="abc-12", min_size=1), min_size=1
        )

    def consistent(changes: dict[str, Any]) -> dict[str, Any]:
        if vendor == "servicenow" and "priority" in changes:
            # ServiceNow derives priority from impact and urgency: one decision, not three.
            changes = {k: v for k, v in changes.items() if k not in ("impact", "urgency")}
        return changes

    return st.fixed_dictionaries({}, optional=optional).filter(bool).map(consistent)


def canonical(ticket: Ticket, name: str) -> Any:
    value = getattr(ticket, name)
    if name == "assignee":
        return value.name if value is not None else None
    return getattr(value, "value", value)


def round_trip(mapper: Mapper, vendor: str, changes: dict[str, Any], meta: VendorMetadata | None) -> Ticket:
    context = CONTEXTS[vendor]
    base = BASE[vendor]
    result = mapper.outbound(changes, context, meta, current=base)
    assert not result.problems, [str(p) for p in result.problems]
    stored = STORE[vendor](base, result.patch, meta)
    return mapper.inbound(stored, context, meta).ticket


@pytest.mark.parametrize("vendor", list(STORE))
def test_every_written_field_reads_back_unchanged(mappers: dict[str, Mapper], vendor: str) -> None:
    meta = metadata(vendor)

    @settings(max_examples=80, deadline=None)
    @given(changes=changes_for(vendor))
    def check(changes: dict[str, Any]) -> None:
        ticket = round_trip(mappers[vendor], vendor, changes, meta)
        for name, value in changes.items():
            if name == "custom":
                assert {k: ticket.custom.get(k) for k in value} == value
            else:
                assert canonical(ticket, name) == value, name

    check()


@pytest.mark.parametrize("vendor", ["connectwise", "autotask", "freshservice"])
def test_without_metadata_value_maps_and_default_codes_round_trip(mappers: dict[str, Mapper], vendor: str) -> None:
    fields = ["status", "priority"] + (["kind"] if vendor == "autotask" else ["impact", "urgency"])
    if vendor == "connectwise":
        fields.append("source")

    @settings(max_examples=60, deadline=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        pool = {
            "status": STATUSES[vendor] + (["cancelled"] if vendor == "connectwise" else []),
            "priority": PRIORITIES,
            "kind": ["incident", "service_request", "problem", "change", "alert"],
            "impact": LEVELS,
            "urgency": LEVELS,
            "source": ["phone", "email", "portal", "chat", "walk_in", "monitoring", "other"],
        }
        changes = {name: data.draw(st.sampled_from(pool[name])) for name in fields}
        ticket = round_trip(mappers[vendor], vendor, changes, None)
        for name, value in changes.items():
            assert canonical(ticket, name) == value, name

    check()


@pytest.mark.parametrize(
    ("vendor", "name", "value", "reads_back"),
    [
        ("autotask", "status", "resolved", "closed"),  # Autotask has one done status: Complete
        ("freshservice", "status", "new", "in_progress"),  # Open; the ticket has an agent, so it is worked on
        ("freshservice", "status", "assigned", "in_progress"),
        ("servicenow", "status", "new", "assigned"),  # New, but the incident has an assignee
    ],
)
def test_lossy_values_read_back_as_declared(
    mappers: dict[str, Mapper], vendor: str, name: str, value: str, reads_back: str
) -> None:
    meta = metadata(vendor)
    first = round_trip(mappers[vendor], vendor, {name: value}, meta)
    assert canonical(first, name) == reads_back
    again = round_trip(mappers[vendor], vendor, {name: reads_back}, meta)
    assert canonical(again, name) == reads_back
