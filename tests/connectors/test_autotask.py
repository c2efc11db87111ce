"""The Autotask connector's exact wire format, against strict respx routers (every route called, nothing else)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from psabridge.connectors.autotask import AutotaskConnector
from psabridge.connectors.base import NewTimeEntry
from psabridge.connectors.http import HttpRuntime
from psabridge.errors import AuthError, NotFoundError, PermanentError, RetryLaterError, WebhookVerificationError
from psabridge.model import NoteKind

from .conftest import FakeTime, make_settings

LOOKUP = "https://webservices2.autotask.net/atservicesrest"
ZONE = "https://webservices5.autotask.net/ATServicesRest"
API = f"{ZONE}/V1.0"
SECRETS = {
    "username": "api@msp.example",
    "secret": "s3cret",
    "integration_code": "TRACKINGCODE",
    "webhook_secret": "hook-key",
}
AUTH = {"ApiIntegrationCode": "TRACKINGCODE", "UserName": "api@msp.example", "Secret": "s3cret"}
MARKER = "[psabridge:abc123def456]"
ALL = {"MaxRecords": 500, "Filter": [{"op": "gte", "field": "id", "value": 0}]}


def page(items: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    details = {"count": len(items), "requestCount": 500, "prevPageUrl": None, "nextPageUrl": next_url}
    return {"items": items, "pageDetails": details}


def ticket(ticket_id: int, activity: str, **fields: Any) -> dict[str, Any]:
    return {"id": ticket_id, "title": f"T{ticket_id}", "lastActivityDate": activity, "resolution": None, **fields}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=True) as mock:
        mock.get(f"{LOOKUP}/v1.0/zoneInformation", params={"user": "api@msp.example"}).respond(
            json={"zoneName": "Zone 5", "url": f"{ZONE}/", "webUrl": "https://ww5.autotask.net/", "ci": 5}
        )
        yield mock


def make(namespace: str, fake_time: FakeTime | None = None, **fields: Any) -> AutotaskConnector:
    fields.setdefault("options", {"threshold_check": False})
    fields.setdefault("tenants", {"0": "initech", "1001": "initech", "1002": "umbrella"})
    settings = make_settings(name="partner-at", system="autotask", base_url=LOOKUP, secrets=SECRETS, **fields)
    if fake_time is None:
        runtime = HttpRuntime(namespace=namespace, sleep=lambda _: None)
    else:
        runtime = HttpRuntime(namespace=namespace, sleep=fake_time.sleep, clock=fake_time.clock, now=fake_time.now)
    return AutotaskConnector(settings, runtime=runtime)


def body(call: Any) -> Any:
    return json.loads(call.request.content)


def has_auth(call: Any) -> bool:
    return all(call.request.headers.get(k) == v for k, v in AUTH.items())


# --- zone and reading -----------------------------------------------------------------------------------------------


def test_the_zone_lookup_carries_no_credentials_and_requests_then_go_to_the_zone(
    router: respx.MockRouter, namespace: str
) -> None:
    route = router.get(f"{API}/Tickets/42").respond(json={"item": ticket(42, "2026-11-20T10:00:00.000Z")})
    router.get(f"{API}/Tickets/42/Notes").respond(json=page([]))
    router.post(f"{API}/TimeEntries/query").respond(json=page([]))

    make(namespace).get_ticket("42")

    lookup = router.calls[0].request
    assert not any(name in lookup.headers for name in ("Secret", "ApiIntegrationCode", "UserName"))
    assert has_auth(route.calls[0])
    assert route.calls[0].request.headers["Accept"] == "application/json"


def test_a_backfill_posts_an_id_filter_and_re_posts_it_to_each_next_page_url(
    router: respx.MockRouter, namespace: str
) -> None:
    next_url = f"{API}/Tickets/query/next?paging=%7B%22pageSize%22%3A500%2C%22nextIds%22%3A%5B9%5D%7D"
    first = router.post(f"{API}/Tickets/query").respond(
        json=page([ticket(3, "2026-11-20T10:00:00.000Z"), ticket(7, "2026-11-20T09:00:00.000Z")], next_url)
    )
    second = router.post(next_url).respond(json=page([ticket(9, "2026-11-20T11:30:00.000Z")]))

    pages = list(make(namespace).iter_changes(None))

    assert [[r["id"] for r in p.records] for p in pages] == [[3, 7], [9]]
    assert pages[0].watermark is None
    assert pages[-1].watermark == datetime(2026, 11, 20, 11, 30, tzinfo=UTC)
    assert body(first.calls[0]) == ALL
    assert body(second.calls[0]) == ALL
    assert has_auth(second.calls[0]) and first.calls[0].request.headers["Content-Type"] == "application/json"


def test_an_incremental_run_filters_on_last_activity_minus_the_overlap_and_drops_repeats(
    router: respx.MockRouter, namespace: str
) -> None:
    next_url = f"{API}/Tickets/query/next?paging=x"
    same = ticket(5, "2026-11-20T15:01:00.000Z")
    route = router.post(f"{API}/Tickets/query").respond(json=page([same], next_url))
    router.post(next_url).respond(json=page([same, ticket(6, "2026-11-20T15:02:00.000Z")]))
    since = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)

    pages = list(make(namespace, page_size=200, overlap=timedelta(minutes=10)).iter_changes(since))

    assert body(route.calls[0]) == {
        "MaxRecords": 200,
        "Filter": [{"op": "gte", "field": "lastActivityDate", "value": "2026-11-20T14:50:00.000Z"}],
    }
    assert [[r["id"] for r in p.records] for p in pages] == [[5], [6]]
    assert [p.watermark for p in pages] == [since, datetime(2026, 11, 20, 15, 2, tzinfo=UTC)]


def test_a_run_longer_than_the_overlap_holds_its_watermark_back(
    router: respx.MockRouter, namespace: str, fake_time: FakeTime
) -> None:
    # Pages are id-ordered: a ticket on page one that changes while page two is read must not fall behind the mark.
    next_url = f"{API}/Tickets/query/next?paging=x"

    def slow(request: httpx.Request) -> httpx.Response:
        fake_time.advance(900)  # 15 minutes to read a page
        return httpx.Response(200, json=page([ticket(8, "2026-11-20T16:00:00.000Z")]))

    router.post(f"{API}/Tickets/query").respond(json=page([ticket(2, "2026-11-20T15:00:00.000Z")], next_url))
    router.post(next_url).mock(side_effect=slow)

    pages = list(make(namespace, fake_time, overlap=timedelta(minutes=5)).iter_changes(None))

    assert pages[-1].watermark == datetime(2026, 11, 20, 16, 0, tzinfo=UTC) - timedelta(minutes=10)


def test_the_threshold_is_read_before_a_poll_and_a_busy_database_holds_the_budget_back(
    router: respx.MockRouter, namespace: str
) -> None:
    threshold = router.get(f"{API}/ThresholdInformation").respond(
        json={"externalRequestThreshold": 10000, "requestThresholdTimeframe": 60, "currentTimeframeRequestCount": 8000}
    )
    router.post(f"{API}/Tickets/query").respond(json=page([]))
    connector = make(namespace, options={})

    list(connector.iter_changes(None))
    list(connector.iter_changes(None))  # within five minutes: not read again

    assert threshold.call_count == 1 and has_auth(threshold.calls[0])
    database = next(u for u in connector.api().budget.snapshot().windows if u.window.name == "database")
    # The others' 7,999 (the call itself is ours) are held; half of the 2,000 left is ours, less the two queries since.
    assert (database.window.limit, database.remaining) == (9000, 1000 - 2)


def test_get_ticket_adds_notes_the_resolution_and_time_entries(router: respx.MockRouter, namespace: str) -> None:
    item = ticket(
        42, "2026-11-20T10:00:00.000Z", resolution="Remapped the printer", resolvedDateTime="2026-11-20T09:59:00.000Z"
    )
    router.get(f"{API}/Tickets/42").respond(json={"item": item})
    notes = [
        {"id": 12, "ticketID": 42, "description": "later", "createDateTime": "2026-11-20T09:30:00.000Z"},
        {"id": 11, "ticketID": 42, "description": "first", "createDateTime": "2026-11-20T09:00:00.000Z"},
    ]
    router.get(f"{API}/Tickets/42/Notes").respond(json=page(notes))
    entries = router.post(f"{API}/TimeEntries/query").respond(
        json=page([{"id": 5, "ticketID": 42, "hoursWorked": 0.5}])
    )

    record = make(namespace).get_ticket("42")

    assert [n["id"] for n in record["_psa_notes"]] == [11, 12, "42-resolution"]
    assert record["_psa_notes"][-1] == {
        "id": "42-resolution",
        "ticketID": 42,
        "description": "Remapped the printer",
        "createDateTime": "2026-11-20T09:59:00.000Z",
        "creatorResourceID": None,
        "_psa_resolution": True,
    }
    assert record["_psa_time_entries"] == [{"id": 5, "ticketID": 42, "hoursWorked": 0.5}]
    assert body(entries.calls[0]) == {"MaxRecords": 500, "Filter": [{"op": "eq", "field": "ticketID", "value": 42}]}


def test_a_page_is_completed_with_one_notes_query_and_one_time_query_for_its_changed_tickets(
    router: respx.MockRouter, namespace: str
) -> None:
    notes = router.post(f"{API}/TicketNotes/query").respond(
        json=page([
            {"id": 12, "ticketID": 42, "description": "later", "createDateTime": "2026-11-20T09:30:00.000Z"},
            {"id": 11, "ticketID": 42, "description": "first", "createDateTime": "2026-11-20T09:00:00.000Z"},
            {"id": 13, "ticketID": 43, "description": "other", "createDateTime": "2026-11-20T09:10:00.000Z"},
        ])
    )  # fmt: skip
    entries = router.post(f"{API}/TimeEntries/query").respond(json=page([{"id": 5, "ticketID": 43, "hoursWorked": 1}]))
    listed = [
        ticket(42, "2026-11-20T10:00:00.000Z", resolution="Remapped", resolvedDateTime="2026-11-20T09:59:00.000Z"),
        ticket(43, "2026-11-20T10:01:00.000Z"),
        ticket(44, "2026-11-20T10:02:00.000Z"),
    ]
    stored = {"44": {**ticket(44, "2026-11-20T10:02:00.000Z"), "_psa_notes": [], "_psa_time_entries": []}}

    completion = make(namespace).complete_page(listed, stored)

    assert completion.unchanged == ("44",)
    by_id = {t["id"]: t for t in completion.full}
    assert [n["id"] for n in by_id[42]["_psa_notes"]] == [11, 12, "42-resolution"]
    assert (by_id[42]["_psa_time_entries"], by_id[43]["_psa_time_entries"]) == ([], [{"id": 5, "ticketID": 43,
                                                                                        "hoursWorked": 1}])  # fmt: skip
    wanted = {"MaxRecords": 500, "Filter": [{"op": "in", "field": "ticketID", "value": [42, 43]}]}
    assert body(notes.calls[0]) == body(entries.calls[0]) == wanted
    assert (notes.call_count, entries.call_count, completion.request_count) == (1, 1, 2 + 1)  # and the zone lookup


def test_a_missing_ticket_answered_item_null_is_not_found(router: respx.MockRouter, namespace: str) -> None:
    router.get(f"{API}/Tickets/7").respond(json={"item": None})

    with pytest.raises(NotFoundError) as caught:
        make(namespace).get_ticket("7")
    assert caught.value.connection == "partner-at"


# --- metadata -------------------------------------------------------------------------------------------------------


def field(name: str, values: list[dict[str, Any]], parent: str = "") -> dict[str, Any]:
    return {"name": name, "isPickList": True, "picklistValues": values, "picklistParentValueField": parent}


def metadata_routes(router: respx.MockRouter) -> dict[str, respx.Route]:
    statuses = [{"value": "1", "label": "New", "isDefaultValue": True, "isActive": True, "isSystem": True},
                {"value": "5", "label": "Complete", "isActive": True, "isSystem": True},
                {"value": "9", "label": "Old", "isActive": False}]  # fmt: skip
    subs = [{"value": "231", "label": "Printing", "parentValue": "14", "isActive": True}]
    return {
        "tickets": router.get(f"{API}/Tickets/entityInformation/fields").respond(
            json={
                "fields": [
                    field("status", statuses),
                    field("subIssueType", subs, "issueType"),
                    {"name": "title", "isPickList": False},
                ]
            }
        ),
        "notes": router.get(f"{API}/TicketNotes/entityInformation/fields").respond(
            json={"fields": [field("publish", [{"value": "2", "label": "Internal Only", "isActive": True}])]}
        ),
        "resources": router.post(f"{API}/Resources/query").respond(
            json=page(
                [
                    {
                        "id": 29682901,
                        "firstName": "Ethan",
                        "lastName": "Brandt",
                        "email": "e@msp.example",
                        "userName": "ebrandt",
                        "defaultServiceDeskRoleID": 29683395,
                    }
                ]
            )
        ),
        "contacts": router.post(f"{API}/Contacts/query").respond(
            json=page(
                [
                    {
                        "id": 30682903,
                        "firstName": "Peter",
                        "lastName": "Gibbons",
                        "emailAddress": "p@initech.example",
                        "companyID": 1001,
                    }
                ]
            )
        ),
    }


def test_metadata_reads_picklists_resources_and_the_configured_companies_contacts_once(
    router: respx.MockRouter, namespace: str
) -> None:
    routes = metadata_routes(router)
    connector = make(namespace)

    metadata = connector.metadata()
    again = connector.metadata()

    assert again is metadata and routes["tickets"].call_count == 1
    status = {c.value: c for c in metadata.choices("status")}
    assert (status["1"].is_default, status["5"].is_closed, status["9"].active) == (True, True, False)
    assert metadata.label_of("subIssueType", "231", scope="14") == "Printing"
    assert metadata.label_of("publish", "2") == "Internal Only"
    assert metadata.label_of("assignedResourceID", "29682901") == "Ethan Brandt"
    assert metadata.choices("contactID")[0].extra == {"companyID": 1001, "email": "p@initech.example"}
    assert body(routes["resources"].calls[0]) == {
        "MaxRecords": 500, "Filter": [{"op": "eq", "field": "isActive", "value": True}]
    }  # fmt: skip
    assert body(routes["contacts"].calls[0]) == {
        "MaxRecords": 500,
        "Filter": [{"op": "in", "field": "companyID", "value": [0, 1001, 1002]},
                   {"op": "eq", "field": "isActive", "value": 1}],
    }  # fmt: skip


# --- writing --------------------------------------------------------------------------------------------------------


def test_update_patches_with_the_id_in_the_body_then_reads_the_ticket(router: respx.MockRouter, namespace: str) -> None:
    patch = router.patch(f"{API}/Tickets").respond(json={"itemId": 42})
    router.get(f"{API}/Tickets/42").respond(json={"item": ticket(42, "2026-11-20T10:00:00.000Z", priority=4)})

    record = make(namespace).update_ticket("42", {"priority": 4, "status": 8})

    assert body(patch.calls[0]) == {"priority": 4, "status": 8, "id": 42}
    assert has_auth(patch.calls[0])
    assert record["priority"] == 4


def test_assigning_a_resource_adds_its_default_role(router: respx.MockRouter, namespace: str) -> None:
    metadata_routes(router)
    patch = router.patch(f"{API}/Tickets").respond(json={"itemId": 42})
    router.get(f"{API}/Tickets/42").respond(json={"item": ticket(42, "2026-11-20T10:00:00.000Z")})

    make(namespace).update_ticket("42", {"assignedResourceID": 29682901})

    assert body(patch.calls[0]) == {"assignedResourceID": 29682901, "assignedResourceRoleID": 29683395, "id": 42}


def test_a_write_refused_for_an_unknown_picklist_value_refreshes_the_metadata(
    router: respx.MockRouter, namespace: str
) -> None:
    routes = metadata_routes(router)
    router.patch(f"{API}/Tickets").respond(
        500, json={"errors": ["Value 17 does not exist in the picklist for field status."]}
    )
    connector = make(namespace)
    connector.metadata()

    with pytest.raises(PermanentError) as caught:
        connector.update_ticket("42", {"status": 17})

    assert caught.value.vendor_message == "Value 17 does not exist in the picklist for field status."
    assert caught.value.status == 500
    assert routes["tickets"].call_count == 2


def test_create_puts_the_marker_in_external_id_and_find_by_marker_queries_it(
    router: respx.MockRouter, namespace: str
) -> None:
    create = router.post(f"{API}/Tickets").respond(json={"itemId": 351181})
    router.get(f"{API}/Tickets/351181").respond(json={"item": ticket(351181, "2026-11-20T10:00:00.000Z")})
    query = router.post(f"{API}/Tickets/query").respond(json=page([{"id": 351181}]))
    fields = {"companyID": 1001, "title": "Printer", "status": 1, "priority": 2, "queueID": 29683482}
    connector = make(namespace)

    created = connector.create_ticket(fields, marker=MARKER)
    found = connector.find_by_marker(MARKER)

    assert body(create.calls[0]) == {**fields, "externalID": MARKER}
    assert created["id"] == 351181 and found == "351181"
    assert body(query.calls[0]) == {
        "MaxRecords": 500,
        "Filter": [{"op": "eq", "field": "externalID", "value": MARKER}],
        "IncludeFields": ["id"],
    }


def test_a_note_is_posted_under_its_ticket_with_the_marker(router: respx.MockRouter, namespace: str) -> None:
    post = router.post(f"{API}/Tickets/42/Notes").respond(json={"itemId": 900})
    router.get(f"{API}/TicketNotes/900").respond(json={"item": {"id": 900, "ticketID": 42}})

    note = make(namespace).add_note("42", "Called the user.\nAll good.", kind=NoteKind.PUBLIC, marker=MARKER)

    assert body(post.calls[0]) == {
        "ticketID": 42,
        "title": "Called the user.",
        "description": f"Called the user.\nAll good.\n\n{MARKER}",
        "noteType": 1,
        "publish": 1,
    }
    assert note == {"id": 900, "ticketID": 42}


def test_a_resolution_is_appended_to_the_ticket_resolution_field(router: respx.MockRouter, namespace: str) -> None:
    router.get(f"{API}/Tickets/42").respond(
        json={"item": ticket(42, "2026-11-20T10:00:00.000Z", resolution="Rebooted.")}
    )
    patch = router.patch(f"{API}/Tickets").respond(json={"itemId": 42})

    note = make(namespace).add_note("42", "Replaced the toner.", kind=NoteKind.RESOLUTION, marker=MARKER)

    assert body(patch.calls[0]) == {"id": 42, "resolution": f"Rebooted.\n\nReplaced the toner.\n\n{MARKER}"}
    assert note["_psa_resolution"] is True and MARKER in note["description"]


def test_a_time_entry_is_posted_flat_as_the_integration_resource(router: respx.MockRouter, namespace: str) -> None:
    metadata_routes(router)
    post = router.post(f"{API}/TimeEntries").respond(json={"itemId": 55})
    router.get(f"{API}/TimeEntries/55").respond(json={"item": {"id": 55}})
    entry = NewTimeEntry(minutes=45, note="Remote session", started_at=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
                         billable=False, who="29682901")  # fmt: skip

    make(namespace).add_time_entry("42", entry, marker=MARKER)

    assert body(post.calls[0]) == {
        "ticketID": 42,
        "resourceID": 29682901,
        "roleID": 29683395,
        "dateWorked": "2026-11-20T00:00:00.000Z",
        "startDateTime": "2026-11-20T09:15:00.000Z",
        "endDateTime": "2026-11-20T10:00:00.000Z",
        "hoursWorked": 0.75,
        "summaryNotes": f"Remote session\n\n{MARKER}",
        "isNonBillable": True,
    }


def test_the_integration_user_is_the_resource_with_the_api_user_name(router: respx.MockRouter, namespace: str) -> None:
    route = router.post(f"{API}/Resources/query").respond(json=page([{"id": 29682999}]))
    connector = make(namespace)

    assert connector.integration_user() == connector.integration_user() == "29682999"
    assert route.call_count == 1
    assert body(route.calls[0])["Filter"] == [{"op": "eq", "field": "userName", "value": "api@msp.example"}]


# --- errors ---------------------------------------------------------------------------------------------------------


def test_a_thread_limit_refusal_is_retried_even_for_a_post(router: respx.MockRouter, namespace: str) -> None:
    refusal = {
        "errors": ["Itgenatr005: Thread Threshold Exceeded - the thread threshold of 3 threads has been exceeded."]
    }
    post = router.post(f"{API}/Tickets/42/Notes").mock(
        side_effect=[httpx.Response(500, json=refusal), httpx.Response(200, json={"itemId": 1})]
    )
    router.get(f"{API}/TicketNotes/1").respond(json={"item": {"id": 1}})

    make(namespace).add_note("42", "x", kind=NoteKind.INTERNAL, marker=MARKER)

    assert post.call_count == 2


def test_a_business_rule_500_is_permanent_and_keeps_the_vendor_message(
    router: respx.MockRouter, namespace: str
) -> None:
    text = 'The startDateTime, endDateTime and isComplete cannot be edited if status is of type "Canceled".'
    route = router.patch(f"{API}/Tickets").respond(500, json={"errors": [text]})

    with pytest.raises(PermanentError) as caught:
        make(namespace).update_ticket("42", {"status": 8})

    assert route.call_count == 1
    assert caught.value.vendor_message == text
    assert not isinstance(caught.value, RetryLaterError)


def test_a_server_fault_500_is_retried(router: respx.MockRouter, namespace: str) -> None:
    route = router.get(f"{API}/Tickets/42").mock(
        side_effect=[httpx.Response(500, json={"errors": ["An error has occurred."]}),
                     httpx.Response(200, json={"item": ticket(42, "2026-11-20T10:00:00.000Z")})]
    )  # fmt: skip
    router.get(f"{API}/Tickets/42/Notes").respond(json=page([]))
    router.post(f"{API}/TimeEntries/query").respond(json=page([]))

    make(namespace).get_ticket("42")

    assert route.call_count == 2


def test_a_401_looks_the_zone_up_again_and_fails_when_it_did_not_move(namespace: str) -> None:
    with respx.mock(assert_all_mocked=True, assert_all_called=True) as router:
        lookup = router.get(f"{LOOKUP}/v1.0/zoneInformation").respond(json={"url": f"{ZONE}/"})
        route = router.get(f"{API}/Tickets/42").respond(401, json={"errors": ["Authorization has been denied."]})

        with pytest.raises(AuthError):
            make(namespace).get_ticket("42")

    assert (lookup.call_count, route.call_count) == (2, 1)


def test_a_401_after_the_tenant_moved_zones_is_repeated_at_the_new_zone(namespace: str) -> None:
    moved = "https://webservices14.autotask.net/ATServicesRest"
    with respx.mock(assert_all_mocked=True, assert_all_called=True) as router:
        router.get(f"{LOOKUP}/v1.0/zoneInformation").mock(
            side_effect=[httpx.Response(200, json={"url": f"{ZONE}/"}), httpx.Response(200, json={"url": f"{moved}/"})]
        )
        router.get(f"{API}/ThresholdInformation").respond(401, json={"errors": ["Authorization has been denied."]})
        fresh = router.get(f"{moved}/V1.0/ThresholdInformation").respond(
            json={"externalRequestThreshold": 10000, "requestThresholdTimeframe": 60, "currentTimeframeRequestCount": 1}
        )
        router.post(f"{moved}/V1.0/Tickets/query").respond(json=page([]))

        list(make(namespace, options={}).iter_changes(None))

    assert fresh.call_count == 1


# --- webhooks -------------------------------------------------------------------------------------------------------


def delivery(payload: dict[str, Any], *, key: bytes = b"hook-key") -> tuple[dict[str, str], bytes]:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    signature = "sha1=" + base64.b64encode(hmac.new(key, raw, hashlib.sha1).digest()).decode()
    return {"X-Hook-Signature": signature, "Content-Type": "application/json"}, raw


def payload(entity: str = "Ticket", action: str = "Update", **fields: Any) -> dict[str, Any]:
    return {
        "Action": action,
        "Guid": "a1da62a4-2c49-40a8-8183-69994ce5b3eb",
        "EntityType": entity,
        "Id": 351181,
        "Fields": fields,
        "EventTime": "2026-11-20T14:57:50Z",
        "SequenceNumber": 4,
        "PersonID": 30691780,
    }


def test_a_signed_ticket_webhook_names_the_ticket_and_a_stable_delivery_id(namespace: str, fake_time: FakeTime) -> None:
    headers, raw = delivery(payload(action="Create", Status=1))

    event = make(namespace, fake_time).parse_webhook({k.lower(): v for k, v in headers.items()}, raw)

    assert (event.external_id, event.event) == ("351181", "created")
    assert event.delivery_id == "a1da62a4-2c49-40a8-8183-69994ce5b3eb:4"
    assert event.occurred_at == datetime(2026, 11, 20, 14, 57, 50, tzinfo=UTC)


def test_a_note_webhook_points_at_its_ticket(namespace: str, fake_time: FakeTime) -> None:
    headers, raw = delivery(payload("TicketNote", "Create", TicketID=42))
    headers_without, raw_without = delivery(payload("TicketNote", "Create"))
    connector = make(namespace, fake_time)

    event = connector.parse_webhook(headers, raw)

    assert (event.external_id, event.event) == ("42", "note")
    with pytest.raises(PermanentError, match="TicketID"):
        connector.parse_webhook(headers_without, raw_without)


@pytest.mark.parametrize("problem", ["wrong secret", "tampered body", "no header", "stale"])
def test_a_webhook_that_fails_verification_is_rejected(namespace: str, fake_time: FakeTime, problem: str) -> None:
    headers, raw = delivery(payload(), key=b"other" if problem == "wrong secret" else b"hook-key")
    if problem == "tampered body":
        raw = raw.replace(b"351181", b"351182")
    if problem == "no header":
        headers = {"Content-Type": "application/json"}
    if problem == "stale":
        fake_time.advance(3600)

    with pytest.raises(WebhookVerificationError):
        make(namespace, fake_time).parse_webhook(headers, raw)


def test_a_threshold_the_api_user_may_not_read_does_not_stop_the_poll(router: respx.MockRouter, namespace: str) -> None:
    router.get(f"{API}/ThresholdInformation").respond(403, json={"errors": ["Access denied."]})
    router.post(f"{API}/Tickets/query").respond(json=page([ticket(1, "2026-11-20T10:00:00.000Z")]))

    pages = list(make(namespace, options={}).iter_changes(None))

    assert [r["id"] for r in pages[0].records] == [1]


def test_registering_webhooks_subscribes_fields_and_excludes_the_integration_user(
    router: respx.MockRouter, namespace: str
) -> None:
    created = {
        entity: router.post(f"{API}/{entity}Webhooks").respond(json={"itemId": number})
        for entity, number in (("Ticket", 3), ("TicketNote", 4))
    }
    for entity, number in (("Ticket", 3), ("TicketNote", 4)):  # none of that name yet; none of its rows yet
        router.post(f"{API}/{entity}Webhooks/query").respond(json={"items": [], "pageDetails": {}})
        router.get(f"{API}/{entity}Webhooks/{number}/Fields").respond(json={"items": []})
        router.get(f"{API}/{entity}Webhooks/{number}/ExcludedResources").respond(json={"items": []})
    for entity, names in (("Ticket", ["ticketNumber", "status", "priority", "queueID", "assignedResourceID", "title",
                                      "description", "issueType", "subIssueType", "ticketType", "source", "companyID",
                                      "contactID", "dueDateTime", "completedDate", "resolution"]),
                          ("TicketNote", ["ticketID", "description"])):  # fmt: skip
        values = [{"value": str(i), "label": name} for i, name in enumerate(names, start=1)]
        router.get(f"{API}/{entity}WebhookFields/entityInformation/fields").respond(
            json={"fields": [{"name": "fieldID", "isPickList": True, "picklistValues": values}]}
        )
    fields = {
        n: router.post(f"{API}/{e}Webhooks/{n}/Fields").respond(json={"itemId": 1})
        for e, n in (("Ticket", 3), ("TicketNote", 4))
    }
    excluded = router.post(f"{API}/TicketWebhooks/3/ExcludedResources").respond(json={"itemId": 9})
    router.post(f"{API}/TicketNoteWebhooks/4/ExcludedResources").respond(json={"itemId": 10})
    router.get(f"{API}/TicketWebhooks/3").respond(json={"item": {"id": 3, "webhookGUID": "g-3", "isReady": True}})
    router.get(f"{API}/TicketNoteWebhooks/4").respond(json={"item": {"id": 4, "webhookGUID": "g-4", "isReady": True}})

    made = make(namespace, options={"integration_user": "29682999"}).register_webhooks("https://bridge.example/at")

    assert {k: {f: v[f] for f in ("id", "guid", "ready", "change")} for k, v in made.items()} == {
        "Ticket": {"id": 3, "guid": "g-3", "ready": True, "change": "created"},
        "TicketNote": {"id": 4, "guid": "g-4", "ready": True, "change": "created"},
    }
    assert body(created["Ticket"].calls[0]) == {
        "IsActive": True,
        "Name": "psabridge tickets",
        "WebhookUrl": "https://bridge.example/at",
        "DeactivationUrl": "https://bridge.example/at",
        "SecretKey": "hook-key",
        "IsSubscribedToCreateEvents": True,
        "IsSubscribedToUpdateEvents": True,
        "IsSubscribedToDeleteEvents": True,
        "SendThresholdExceededNotification": True,
    }
    sent = [body(call) for call in fields[3].calls]
    assert {"FieldID": 3, "IsSubscribedField": True, "IsDisplayAlwaysField": False, "WebhookID": 3} in sent
    assert {"FieldID": 1, "IsSubscribedField": False, "IsDisplayAlwaysField": True, "WebhookID": 3} in sent
    assert len(sent) == 16
    assert [body(c) for c in fields[4].calls] == [
        {"FieldID": 2, "IsSubscribedField": True, "IsDisplayAlwaysField": False, "WebhookID": 4},
        {"FieldID": 1, "IsSubscribedField": False, "IsDisplayAlwaysField": True, "WebhookID": 4},
    ]
    assert body(excluded.calls[0]) == {"ResourceID": 29682999, "WebhookID": 3}
