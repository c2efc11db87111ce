"""Outbound: canonical changes become the vendor's native patch; what cannot be expressed is a problem, not a guess."""

from __future__ import annotations

from psabridge.mapping import Mapper, MappingContext
from psabridge.model import System
from tests.mapping.conftest import CONTEXTS, fixture, metadata


def codes(result: object) -> list[tuple[str, str]]:
    return [(p.field, p.code) for p in result.problems]  # type: ignore[attr-defined]


def test_connectwise_writes_id_references_from_metadata(mappers: dict[str, Mapper]) -> None:
    current = fixture("connectwise", "ticket_full.json")
    result = mappers["connectwise"].outbound(
        {"status": "closed", "priority": "P4", "assignee": "kwatanabe", "source": "email", "impact": "high"},
        CONTEXTS["connectwise"],
        metadata("connectwise"),
        current=current,
    )
    assert result.ok
    assert result.patch == {
        "status": {"id": 5},  # ">Closed" on the ticket's board, Service Desk
        "priority": {"id": 3},  # this instance spells it "Scheduled Maintenance"; the lookup finds it
        "source": {"id": 4},  # Email -> not on this instance; the next candidate, "Email Connector", is
        "owner": {"id": 160},  # by identifier (metadata extra)
        "impact": "High",
    }


def test_connectwise_statuses_follow_the_board_being_moved_to(mappers: dict[str, Mapper]) -> None:
    current = fixture("connectwise", "ticket_full.json")
    result = mappers["connectwise"].outbound(
        {"queue": "Acme Service", "status": "new"}, CONTEXTS["connectwise"], metadata("connectwise"), current=current
    )
    assert result.patch == {"board": {"id": 9}, "status": {"id": 91}}


def test_connectwise_without_metadata_writes_name_references(mappers: dict[str, Mapper]) -> None:
    result = mappers["connectwise"].outbound(
        {"status": "on_hold", "queue": "Service Desk", "assignee": {"external_id": "151", "name": "Dana"}},
        CONTEXTS["connectwise"],
    )
    assert result.patch == {
        "status": {"name": "Waiting Customer"},
        "board": {"name": "Service Desk"},
        "owner": {"id": 151},
    }


def test_a_value_the_board_does_not_have_is_a_problem(mappers: dict[str, Mapper]) -> None:
    current = fixture("connectwise", "ticket_full.json")
    result = mappers["connectwise"].outbound(
        {"status": "cancelled", "summary": "Outlook fixed"}, CONTEXTS["connectwise"], metadata("connectwise"), current
    )
    assert result.patch == {"summary": "Outlook fixed"}
    [problem] = result.problems
    assert (problem.code, problem.severity) == ("no_vendor_value", "error")
    assert problem.message == (
        "status 'cancelled' maps to 'Cancelled', which is not among the vendor's status values on board 'Service Desk'"
    )


def test_fields_without_write_back_and_create_only_fields(mappers: dict[str, Mapper]) -> None:
    cw = mappers["connectwise"]
    result = cw.outbound({"kind": "incident", "description": "body", "custom": {"x": 1}}, CONTEXTS["connectwise"])
    assert result.patch == {}
    assert codes(result) == [("description", "not_writable"), ("kind", "not_writable"), ("custom", "not_writable")]
    created = cw.outbound({"description": "Printer jam", "summary": "x" * 120}, CONTEXTS["connectwise"], create=True)
    assert created.patch == {"initialDescription": "Printer jam", "summary": "x" * 99 + "…"}


def test_invalid_canonical_values_are_refused(mappers: dict[str, Mapper]) -> None:
    result = mappers["freshservice"].outbound({"priority": "urgent", "tier": 7}, CONTEXTS["freshservice"])
    assert result.patch == {}
    assert result.problems[0].message.startswith("priority 'urgent' is not valid (one of P1, P2, P3, P4)")
    assert result.problems[1].code == "not_writable"


def test_autotask_writes_picklist_integers(mappers: dict[str, Mapper]) -> None:
    at = mappers["autotask"]
    offline = at.outbound({"status": "on_hold", "priority": "P1", "kind": "problem"}, CONTEXTS["autotask"])
    assert offline.patch == {"status": 7, "priority": 4, "ticketType": 3}  # the default codes
    live = at.outbound(
        {"status": "assigned", "queue": "Networking", "assignee": "ethan.brandt@msp.example", "source": "portal"},
        CONTEXTS["autotask"],
        metadata("autotask"),
    )
    assert live.ok
    assert live.patch == {"status": 10, "source": -1, "assignedResourceID": 29682901, "queueID": 29683490}
    no_ids = at.outbound({"queue": "Networking"}, CONTEXTS["autotask"])
    assert codes(no_ids) == [("queue", "lookup_unavailable")]
    custom = at.outbound({"custom": {"ExternalRef": "CW-1"}}, CONTEXTS["autotask"])
    assert custom.patch == {"userDefinedFields": [{"name": "ExternalRef", "value": "CW-1"}]}


def test_servicenow_priority_is_written_as_impact_and_urgency(mappers: dict[str, Mapper]) -> None:
    sn = mappers["servicenow"]
    assert sn.outbound({"priority": "P2"}, CONTEXTS["servicenow"]).patch == {"impact": "2", "urgency": "1"}
    both = sn.outbound({"priority": "P1", "impact": "low"}, CONTEXTS["servicenow"])
    assert both.patch == {"impact": "1", "urgency": "1"}  # the priority decision wins
    assert [(p.code, p.severity) for p in both.problems] == [("conflict", "warning")]
    assert sn.outbound({"assignee": None, "queue": None}, CONTEXTS["servicenow"]).patch == {
        "assigned_to": "",
        "assignment_group": "",
    }
    assert sn.outbound({"custom": {"u_msp_reference": "CW-9"}}, CONTEXTS["servicenow"]).patch == {
        "u_msp_reference": "CW-9"
    }
    assert sn.outbound({"status": "resolved"}, CONTEXTS["servicenow"]).patch == {"state": "6"}


def test_freshservice_writes_integer_codes_and_html(mappers: dict[str, Mapper]) -> None:
    fs = mappers["freshservice"]
    result = fs.outbound(
        {"status": "new", "priority": "P1", "source": "other", "description": "Line 1\nA <b> & B"},
        CONTEXTS["freshservice"],
    )
    assert result.patch == {"description": "<div>Line 1<br>A &lt;b&gt; &amp; B</div>", "status": 2, "priority": 4}
    assert [p.message for p in result.problems] == ["source 'other' has no vendor value: add it to the map or inverse"]


def test_tenant_is_written_as_the_company_of_that_tenant(mappers: dict[str, Mapper]) -> None:
    assert mappers["connectwise"].outbound({"tenant": "globex"}, CONTEXTS["connectwise"]).patch == {
        "company": {"identifier": "GlobexLogistics"}
    }
    two = MappingContext("partner-at", System.AUTOTASK, tenants={"0": "initech", "1001": "initech"})
    result = mappers["autotask"].outbound({"tenant": "initech"}, two)
    assert result.problems[0].message == "tenant 'initech' has several companies (0, 1001) in connections.tenants"
    assert mappers["autotask"].outbound({"tenant": "umbrella"}, CONTEXTS["autotask"]).patch == {"companyID": 1002}
    assert codes(mappers["servicenow"].outbound({"tenant": "acme"}, CONTEXTS["servicenow"])) == [
        ("tenant", "not_writable")
    ]


def test_explain_traces_each_write(mappers: dict[str, Mapper]) -> None:
    current = fixture("connectwise", "ticket_full.json")
    result = mappers["connectwise"].outbound(
        {"status": "closed"}, CONTEXTS["connectwise"], metadata("connectwise"), current, explain=True
    )
    [trace] = result.trace
    assert (trace.field, trace.raw, trace.value, trace.via) == ("status", "closed", {"id": 5}, "metadata")


def test_autotask_takes_psabridges_due_times_and_connectwise_does_not(mappers: dict[str, Mapper]) -> None:
    due = {"response_due": "2026-05-18T15:00:00+00:00", "resolution_due": "2026-05-19T13:00:00.250000+00:00"}
    written = mappers["autotask"].outbound({"sla": due}, CONTEXTS["autotask"], metadata("autotask"))
    assert written.ok
    assert written.patch == {
        "firstResponseDueDateTime": "2026-05-18T15:00:00Z",
        "resolvedDueDateTime": "2026-05-19T13:00:00Z",
    }
    refused = mappers["autotask"].outbound({"sla": {"responded_at": due["response_due"]}}, CONTEXTS["autotask"])
    assert codes(refused) == [("sla.responded_at", "not_writable")] and refused.patch == {}
    assert codes(mappers["connectwise"].outbound({"sla": due}, CONTEXTS["connectwise"])) == [("sla", "not_writable")]
    assert codes(mappers["autotask"].outbound({"sla": "soon"}, CONTEXTS["autotask"])) == [("sla", "invalid")]
