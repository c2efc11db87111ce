"""The Autotask simulator's read side, through a plain client that follows the docs: auth, queries, limits."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from psabridge_sandbox.autotask import THREAD_LIMIT_MESSAGE
from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.registry import build_simulator
from psabridge_sandbox.world import World
from tests.sandbox.autotask_client import ALL, API, HEADERS, make, query_all, valid
from tests.sandbox.conftest import ANCHOR


def test_the_zone_lookup_needs_no_credentials_and_points_back_at_the_simulator(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock)

    found = client.get("/atservicesrest/v1.0/zoneInformation", params={"user": "API@psabridge.sandbox"})
    unknown = client.get("/ATServicesRest/V1.0/ZoneInformation", params={"user": "someone@else.example"})

    assert found.status_code == 200
    valid("ZoneInformationResultModel", found.json())
    assert found.json()["url"] == "http://sandbox.test/ATServicesRest/"
    assert unknown.status_code == 500
    assert list(unknown.json()) == ["errors"] and "someone@else.example" in unknown.json()["errors"][0]


def test_paths_and_header_names_match_in_any_case(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock)
    lowered = {name.lower(): value for name, value in HEADERS.items()}

    response = client.get("/atservicesrest/v1.0/tickets/350001", headers=lowered)

    assert response.status_code == 200
    assert response.json()["item"]["id"] == 350001


@pytest.mark.parametrize("missing", ["ApiIntegrationCode", "UserName", "Secret"])
def test_a_missing_or_wrong_credential_is_a_401_with_an_errors_list(
    world: World, clock: FakeClock, missing: str
) -> None:
    _, client = make(world, clock)
    without = {k: v for k, v in HEADERS.items() if k != missing}
    wrong = {**HEADERS, missing: "wrong"}

    for headers in (without, wrong):
        response = client.post(f"{API}/Tickets/query", headers=headers, json=ALL)
        assert response.status_code == 401
        assert isinstance(response.json()["errors"], list) and response.json()["errors"]


def test_a_post_query_pages_every_ticket_exactly_once_in_id_order(world: World, clock: FakeClock) -> None:
    at, client = make(world, clock, tickets=1200)
    first = client.post(f"{API}/Tickets/query", headers=HEADERS, json={**ALL, "MaxRecords": 500}).json()
    valid("TicketQueryResult", first)

    items = query_all(client, "Tickets", {**ALL, "MaxRecords": 500})

    ids = [item["id"] for item in items]
    assert ids == sorted(ids)
    assert Counter(ids) == Counter(int(i) for i in at.tickets.ids())
    details = first["pageDetails"]
    assert (details["count"], details["requestCount"], details["prevPageUrl"]) == (500, 500, None)
    assert details["nextPageUrl"].startswith("http://sandbox.test/ATServicesRest/V1.0/Tickets/query/next?paging=")


def test_next_pages_link_back_and_a_get_query_carries_its_search_in_the_link(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=30)
    query = {**ALL, "MaxRecords": 10}

    by_get = query_all(client, "Tickets", query, method="GET")
    first = client.post(f"{API}/Tickets/query", headers=HEADERS, json=query).json()
    second = client.post(first["pageDetails"]["nextPageUrl"], headers=HEADERS, json=query).json()
    back = client.post(second["pageDetails"]["prevPageUrl"], headers=HEADERS, json=query).json()
    get_on_a_post_link = client.get(first["pageDetails"]["nextPageUrl"], headers=HEADERS)

    assert [i["id"] for i in by_get] == [i["id"] for i in query_all(client, "Tickets", query)]
    assert [i["id"] for i in back["items"]] == [i["id"] for i in first["items"]]
    assert get_on_a_post_link.status_code == 405


def _matching(at: Any, predicate: Any) -> set[int]:
    return {int(row.id) for row in at.tickets.rows() if predicate(at.render_ticket(row))}


FILTERS: list[tuple[str, dict[str, Any], Any]] = [
    ("eq", {"op": "eq", "field": "status", "value": 5}, lambda t: t["status"] == 5),
    ("noteq", {"op": "noteq", "field": "status", "value": "5"}, lambda t: t["status"] != 5),
    ("lt", {"op": "lt", "field": "priority", "value": 3}, lambda t: t["priority"] < 3),
    (
        "gte date",
        {"op": "gte", "field": "createDate", "value": "2026-11-01T00:00:00Z"},
        lambda t: t["createDate"] >= "2026-11-01",
    ),
    (
        "contains any case",
        {"op": "contains", "field": "title", "value": "OUTLOOK"},
        lambda t: "outlook" in t["title"].lower(),
    ),
    (
        "beginsWith",
        {"op": "beginsWith", "field": "ticketNumber", "value": "t2026"},
        lambda t: t["ticketNumber"].startswith("T2026"),
    ),
    ("endsWith", {"op": "endsWith", "field": "ticketNumber", "value": "1"}, lambda t: t["ticketNumber"].endswith("1")),
    ("exist", {"op": "exist", "field": "assignedResourceID"}, lambda t: t["assignedResourceID"] is not None),
    ("notExist", {"op": "notExist", "field": "completedDate"}, lambda t: t["completedDate"] is None),
    (
        "in",
        {"op": "in", "field": "queueID", "value": [29683490, 29683493]},
        lambda t: t["queueID"] in (29683490, 29683493),
    ),
    ("notIn", {"op": "notIn", "field": "companyID", "value": [1001]}, lambda t: t["companyID"] != 1001),
    (
        "or group",
        {
            "op": "or",
            "items": [{"op": "eq", "field": "priority", "value": 4}, {"op": "eq", "field": "status", "value": 1}],
        },
        lambda t: t["priority"] == 4 or t["status"] == 1,
    ),
    ("udf", {"op": "notExist", "field": "ExternalRef", "udf": True}, lambda t: True),
]


@pytest.mark.parametrize(("name", "condition", "predicate"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filter_operators_select_what_the_docs_say(
    world: World, clock: FakeClock, name: str, condition: dict[str, Any], predicate: Any
) -> None:
    at, client = make(world, clock, tickets=300)
    query = {"filter": [condition], "MaxRecords": 100}

    found = {item["id"] for item in query_all(client, "Tickets", query)}
    count = client.post(f"{API}/Tickets/query/count", headers=HEADERS, json=query).json()

    expected = _matching(at, predicate)
    assert expected, "the seed data should exercise the filter"
    assert found == expected
    assert count == {"queryCount": len(expected)}


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"filter": []}, "at least one filter"),
        ({**ALL, "MaxRecords": 501}, "MaxRecords"),
        ({"filter": [{"op": "eq", "field": "nosuchfield", "value": 1}]}, "nosuchfield"),
        ({"filter": [{"op": "like", "field": "title", "value": "x"}]}, "operator"),
        ({"filter": [{"op": "gt", "field": "lastActivityDate", "value": "yesterday"}]}, "not valid"),
    ],
)
def test_invalid_queries_are_refused_with_http_500_and_the_reason(
    world: World, clock: FakeClock, query: dict[str, Any], fragment: str
) -> None:
    _, client = make(world, clock)

    response = client.post(f"{API}/Tickets/query", headers=HEADERS, json=query)

    assert response.status_code == 500
    assert fragment in response.json()["errors"][0]


def test_include_fields_trims_records_and_without_the_id_paging_stops(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=30)

    with_id = client.post(
        f"{API}/Tickets/query", headers=HEADERS, json={**ALL, "MaxRecords": 10, "IncludeFields": ["ID", "title"]}
    ).json()
    without = client.post(
        f"{API}/Tickets/query", headers=HEADERS, json={**ALL, "MaxRecords": 10, "IncludeFields": ["title"]}
    ).json()

    assert set(with_id["items"][0]) == {"id", "title"}
    assert with_id["pageDetails"]["nextPageUrl"] is not None
    assert set(without["items"][0]) == {"title"}
    assert without["pageDetails"]["nextPageUrl"] is None


def test_a_record_that_stops_matching_before_its_page_is_served_is_never_returned(
    world: World, clock: FakeClock
) -> None:
    # Given tickets last active before T0, paged 20 at a time while technicians touch 5 random tickets per page
    at, client = make(world, clock, tickets=200)
    clock.advance(3600)
    start = {int(r.id): r.updated for r in at.tickets.rows()}
    at.simulator.faults.update({"churn_touch": 5})
    query = {"filter": [{"op": "lte", "field": "lastActivityDate", "value": ANCHOR.isoformat()}], "MaxRecords": 20}

    # When a client pages through them
    ids = [item["id"] for item in query_all(client, "Tickets", query)]

    # Then none came twice, and those missing were all touched while paging (the id cursor re-applies the filter)
    assert len(ids) == len(set(ids))
    missing = set(start) - set(ids)
    assert missing, "churn should have moved records out of the filter"
    assert all(at.tickets[i].updated > start[i] for i in missing)


def test_records_touched_or_created_while_paging_by_activity_date_come_exactly_once(
    world: World, clock: FakeClock
) -> None:
    at, client = make(world, clock, tickets=200)
    at.simulator.faults.update({"churn_touch": 3, "churn_create": 1})
    query = {"filter": [{"op": "gte", "field": "lastActivityDate", "value": "2020-01-01T00:00:00Z"}], "MaxRecords": 25}

    ids = [item["id"] for item in query_all(client, "Tickets", query)]

    assert len(ids) == len(set(ids))
    assert len(at.tickets) > 200
    now = {int(i) for i in at.tickets.ids()}
    assert set(ids) == now - {max(now)}  # new tickets get higher ids: all but the one made after the last page


def test_get_by_id_answers_item_null_for_a_missing_ticket(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock)

    found = client.get(f"{API}/Tickets/350002", headers=HEADERS)
    missing = client.get(f"{API}/Tickets/999999", headers=HEADERS)

    assert found.status_code == 200
    valid("TicketItemResult", found.json())
    assert missing.status_code == 200 and missing.json() == {"item": None}


def test_seed_tickets_belong_to_the_configured_companies_and_queues(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=120)

    companies = {c["id"] for c in query_all(client, "Companies", ALL)}
    tickets = query_all(client, "Tickets", ALL)
    fields = client.get(f"{API}/Tickets/entityInformation/fields", headers=HEADERS).json()["fields"]
    queues = {v["label"] for f in fields if f["name"] == "queueID" for v in f["picklistValues"]}

    assert {0, 1001, 1002} <= companies
    assert {t["companyID"] for t in tickets} == {1001, 1002}
    assert {"Service Desk", "Networking", "Messaging/M365", "Infrastructure", "Security"} <= queues
    assert all(t["lastActivityDate"].endswith("Z") and t["createDate"] <= t["lastActivityDate"] for t in tickets)


def test_entity_information_lists_integer_picklists_with_string_values_and_child_picklists(
    world: World, clock: FakeClock
) -> None:
    _, client = make(world, clock)

    body = client.get(f"{API}/Tickets/entityInformation/fields", headers=HEADERS).json()
    notes = client.get(f"{API}/TicketNotes/entityInformation/fields", headers=HEADERS).json()

    valid("FieldInformationResultModel", body)
    fields = {f["name"]: f for f in body["fields"]}
    status = {v["value"]: v["label"] for v in fields["status"]["picklistValues"]}
    assert (status["1"], status["5"]) == ("New", "Complete")
    assert fields["subIssueType"]["picklistParentValueField"] == "issueType"
    parents = {v["value"] for v in fields["issueType"]["picklistValues"]}
    assert all(v["parentValue"] in parents for v in fields["subIssueType"]["picklistValues"])
    assert (
        fields["assignedResourceID"]["isReference"]
        and fields["assignedResourceID"]["referenceEntityType"] == "Resource"
    )
    assert {f["name"] for f in notes["fields"] if f["isPickList"]} == {"noteType", "publish"}


# --- limits ---------------------------------------------------------------------------------------------------------


def test_threshold_information_counts_calls_and_the_hourly_threshold_blocks(world: World, clock: FakeClock) -> None:
    at, client = make(world, clock, requests_per_hour=5, latency_scale=0.0)
    for _ in range(3):
        client.get(f"{API}/Tickets/350001", headers=HEADERS)

    usage = client.get(f"{API}/ThresholdInformation", headers=HEADERS).json()
    client.get(f"{API}/Tickets/350001", headers=HEADERS)
    blocked = client.get(f"{API}/Tickets/350001", headers=HEADERS)
    clock.advance(3601)
    after_an_hour = client.get(f"{API}/Tickets/350001", headers=HEADERS)

    valid("ThresholdStatusResultModel", usage)
    assert usage == {"externalRequestThreshold": 5, "requestThresholdTimeframe": 60, "currentTimeframeRequestCount": 4}
    assert blocked.status_code == 429
    assert "threshold" in blocked.json()["errors"][0]
    assert int(blocked.headers["Retry-After"]) > 3000
    assert after_an_hour.status_code == 200
    assert at.usage() == 1


def test_latency_is_added_from_half_and_three_quarters_of_the_threshold(world: World, clock: FakeClock) -> None:
    at, _ = make(world, clock, requests_per_hour=8, latency_scale=0.0)
    at.latency_scale = 1.0
    seen = []
    for _ in range(7):
        seen.append(at.added_latency())
        at.threshold.window.hit("database")

    assert seen == [0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 1.0]


def test_a_fourth_concurrent_call_on_one_endpoint_is_refused_as_a_thread_limit(world: World, clock: FakeClock) -> None:
    # Usage past half the threshold makes each call linger inside the API (holding its thread) for a moment.
    at, client = make(world, clock, requests_per_hour=40, latency_scale=0.1)
    at.threshold.window.hit("database", 20)

    async def burst(http: httpx.AsyncClient) -> list[httpx.Response]:
        calls = [http.get(f"{API}/Tickets/{350001 + i}", headers=HEADERS) for i in range(4)]
        calls.append(http.get(f"{API}/Companies/1001", headers=HEADERS))
        return list(await asyncio.gather(*calls))

    responses = client.run(burst)

    statuses = Counter(r.status_code for r in responses[:4])
    assert statuses == Counter({200: 3, 500: 1})
    refused = next(r for r in responses if r.status_code == 500)
    assert refused.json() == {"errors": [THREAD_LIMIT_MESSAGE]}
    assert responses[4].status_code == 200  # another endpoint has its own three threads


def test_limits_off_lifts_the_threshold_and_the_thread_limit(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, requests_per_hour=3, limits=False, latency_scale=0.1)

    async def burst(http: httpx.AsyncClient) -> list[httpx.Response]:
        return list(await asyncio.gather(*(http.get(f"{API}/Tickets/{350001 + i}", headers=HEADERS) for i in range(8))))

    assert {r.status_code for r in client.run(burst)} == {200}
    usage = client.get(f"{API}/ThresholdInformation", headers=HEADERS).json()
    assert usage["externalRequestThreshold"] == 1_000_000_000 and usage["currentTimeframeRequestCount"] == 9


def test_notes_and_time_entries_of_a_page_of_tickets_come_from_one_query_with_in(
    world: World, clock: FakeClock
) -> None:
    at, client = make(world, clock, tickets=40)
    ids = [int(i) for i in at.tickets.ids()[:25]]
    for entity, index in (("TicketNotes", at.notes_of), ("TimeEntries", at.entries_of)):
        found = query_all(client, entity, {"filter": [{"op": "in", "field": "ticketID", "value": ids}]})
        expected = sorted(row_id for ticket_id in ids for row_id in index.get(ticket_id, ()))
        assert expected and [r["id"] for r in found] == expected  # in id order, as every query
        assert {r["ticketID"] for r in found} <= set(ids)


def test_the_registered_simulator_serves_state_and_the_control_plane(clock: FakeClock) -> None:
    sim = build_simulator("autotask", tickets=12, clock=clock, anchor=ANCHOR)
    try:
        from tests.sandbox.conftest import AsgiClient

        client = AsgiClient(sim)
        client.post(f"{API}/Tickets/query", headers=HEADERS, json=ALL)
        state = client.get("/_sandbox/state").json()
        recorded = client.get("/_sandbox/requests", params={"path": "/ATServicesRest"}).json()
    finally:
        sim.close()

    assert state["service"] == "autotask"
    assert len(state["tickets"]) == 12 and state["notes"] and state["time_entries"]
    assert state["pages_served"] == 1
    assert recorded["requests"][0]["principal"] == "api@psabridge.sandbox"
    assert json.dumps(state)  # plain JSON
    assert timedelta(0) <= clock.now() - ANCHOR
