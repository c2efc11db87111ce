"""Inbound: unmapped values keep the raw value and give a finding; bad vendor data never crashes a sync."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psabridge.errors import MappingError
from psabridge.mapping import Mapper, MappingContext
from psabridge.model import Status, System
from tests.mapping.conftest import CONTEXTS, fixture, metadata


def test_an_unmapped_status_keeps_the_raw_value_and_says_where(mappers: dict[str, Mapper]) -> None:
    raw = fixture("connectwise", "tickets_list.json")[0]
    result = mappers["connectwise"].inbound(raw, CONTEXTS["connectwise"])
    assert result.ticket.status is None
    assert result.ticket.unmapped["status"] == "Waiting on Vendor"
    [finding] = result.findings
    assert finding.message == "status 'Waiting on Vendor' on board 'Acme Service' has no mapping"
    assert finding.as_row() == (
        "mapping.unmapped.status",
        "warning",
        finding.message,
        {"field": "status", "raw": "Waiting on Vendor", "code": "unmapped"},
    )
    assert result.ticket.priority is not None  # the rest of the ticket is mapped as usual


def test_picklist_values_are_named_through_metadata_or_the_default_codes(mappers: dict[str, Mapper]) -> None:
    raw = fixture("autotask", "ticket_full.json")
    with_metadata = mappers["autotask"].inbound(raw, CONTEXTS["autotask"], metadata("autotask")).ticket
    without = mappers["autotask"].inbound(raw, CONTEXTS["autotask"]).ticket
    assert with_metadata.status == without.status == Status.IN_PROGRESS  # 8 = In Progress (default codes)
    assert str(with_metadata.priority) == str(without.priority) == "P1"  # 4 = Critical
    # source has no default codes: without the picklist it is kept raw, with a finding saying why
    assert without.source is None
    assert without.unmapped["source"] == "2"
    assert with_metadata.queue == "Service Desk"
    assert without.queue is None


def test_without_metadata_lookups_are_findings_not_crashes(mappers: dict[str, Mapper]) -> None:
    raw = fixture("autotask", "ticket_full.json")
    result = mappers["autotask"].inbound(raw, CONTEXTS["autotask"])
    messages = {f.field: f.message for f in result.findings}
    assert messages["queue"] == "queue: queueID '29683482' needs the vendor's metadata to be named; none was loaded"
    assert messages["source"] == "source 2 has no mapping (its label is unknown without the vendor's source picklist)"
    assert result.ticket.unmapped["queue"] == "29683482"


def test_a_value_the_live_picklist_does_not_know(mappers: dict[str, Mapper]) -> None:
    raw = {**fixture("autotask", "ticket_full.json"), "status": 99}
    result = mappers["autotask"].inbound(raw, CONTEXTS["autotask"], metadata("autotask"))
    [finding] = [f for f in result.findings if f.field == "status"]
    assert (finding.code, finding.message) == (
        "unknown_value",
        "status 99 is not a value of the vendor's status picklist",
    )


def test_unknown_companies_leave_the_tenant_empty_with_a_finding(mappers: dict[str, Mapper]) -> None:
    raw = fixture("connectwise", "tickets_list.json")[1]
    result = mappers["connectwise"].inbound(raw, CONTEXTS["connectwise"])
    assert result.ticket.tenant is None
    assert result.ticket.unmapped["tenant"] == "Hooli"
    assert [f.code for f in result.findings] == ["unknown_tenant"]
    # a connection that belongs to one client never looks at the company
    whole = MappingContext("msp-cw", System.CONNECTWISE, tenant="acme")
    assert mappers["connectwise"].inbound(raw, whole).ticket.tenant == "acme"


def test_bad_values_are_kept_raw(mappers: dict[str, Mapper]) -> None:
    raw = {**fixture("servicenow", "incident_full.json"), "sys_updated_on": "yesterday", "impact": "9"}
    raw["_psa_time_entries"] = [{"sys_id": "t1", "time_worked": "-5 hours"}]
    result = mappers["servicenow"].inbound(raw, CONTEXTS["servicenow"], metadata("servicenow"))
    assert result.ticket.updated_at is None
    assert result.ticket.unmapped["updated_at"] == "yesterday"
    assert result.ticket.unmapped["impact"] == "9"
    assert result.ticket.unmapped["time_entries[t1].minutes"] == "-5 hours"
    assert result.ticket.time_entries == ()  # minutes are required: the entry is dropped, with its finding
    codes = sorted((f.field, f.code) for f in result.findings)
    assert codes == [("impact", "unmapped"), ("time_entries[t1].minutes", "invalid"), ("updated_at", "invalid")]


def test_list_records_without_extras_map(mappers: dict[str, Mapper]) -> None:
    for vendor, name in [("connectwise", "tickets_list.json"), ("freshservice", "tickets_list.json")]:
        for raw in mappers[vendor].records(fixture(vendor, name)):
            ticket = mappers[vendor].inbound(raw, CONTEXTS[vendor], metadata(vendor)).ticket
            assert ticket.notes == ()
            assert ticket.time_entries == ()


def test_a_record_without_an_id_is_not_a_ticket(mappers: dict[str, Mapper]) -> None:
    with pytest.raises(MappingError, match="no id at id"):
        mappers["connectwise"].inbound({"summary": "x"}, CONTEXTS["connectwise"])


def test_envelopes_and_single_records(mappers: dict[str, Mapper]) -> None:
    at = mappers["autotask"]
    assert len(at.records(fixture("autotask", "tickets_query.json"))) == 2
    assert at.records({"item": {"id": 1}}) == [{"id": 1}]
    assert at.records({"item": None}) == []
    assert mappers["servicenow"].records({"result": {"sys_id": "x"}}) == [{"sys_id": "x"}]
    assert mappers["freshservice"].records({"ticket": {"id": 5}}) == [{"id": 5}]
    assert mappers["connectwise"].records([{"id": 1}, "junk"]) == [{"id": 1}]
    assert mappers["connectwise"].records({"id": 7}) == [{"id": 7}]


def test_explain_traces_each_field_to_its_rule(mappers: dict[str, Mapper]) -> None:
    raw = fixture("connectwise", "ticket_full.json")
    result = mappers["connectwise"].inbound(raw, CONTEXTS["connectwise"], explain=True)
    trace = {t.field: t for t in result.trace}
    assert trace["status"].source == "status.name"
    assert trace["status"].raw == "In Progress"
    assert trace["status"].via == "map"
    assert trace["status"].rule.startswith(str(mappers["connectwise"].files[0]) + ":")
    assert trace["notes[90002].kind"].via == "case 2"
    assert mappers["connectwise"].inbound(raw, CONTEXTS["connectwise"]).trace == ()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("vendor", list(CONTEXTS))
def test_garbage_in_any_field_never_crashes(mappers: dict[str, Mapper], vendor: str) -> None:
    name = {"servicenow": "incident_full.json"}.get(vendor, "ticket_full.json")
    base = fixture(vendor, name)
    id_field = "sys_id" if vendor == "servicenow" else "id"
    keys = sorted(k for k in base if k != id_field)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.dictionaries(st.sampled_from(keys), json_values, min_size=1, max_size=6), st.booleans())
    def check(changes: dict[str, Any], with_metadata: bool) -> None:
        raw = copy.deepcopy(base)
        raw.update(changes)
        result = mappers[vendor].inbound(raw, CONTEXTS[vendor], metadata(vendor) if with_metadata else None)
        assert result.ticket.external_id
        for finding in result.findings:
            assert finding.message

    check()


@pytest.mark.parametrize("vendor", ["connectwise", "freshservice"])
def test_the_marker_ending_a_mirror_we_created_is_not_part_of_its_description(
    mappers: dict[str, Mapper], vendor: str
) -> None:
    # Both connectors end a created ticket's description with the marker so that a lost create can be found again.
    raw = copy.deepcopy(fixture(vendor, "ticket_full.json"))
    field = "_psa_description" if vendor == "connectwise" else "description"
    raw[field] = (
        "Laptop will not boot\n\n[psabridge:link-42]"
        if vendor == "connectwise"
        else ("<div>Laptop will not boot</div><div>[psabridge:link-42]</div>")
    )
    ticket = mappers[vendor].inbound(raw, CONTEXTS[vendor]).ticket
    assert ticket.description == "Laptop will not boot"
