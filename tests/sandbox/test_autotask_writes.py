"""The Autotask simulator write side and webhooks, through a plain client following the vendor's docs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from typing import Any

import httpx
import pytest

from psabridge_sandbox.autotask_data import API_RESOURCE_ID
from psabridge_sandbox.autotask_webhooks import dotnet_json
from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.world import World
from tests.sandbox.autotask_client import API, HEADERS, make, query_all, valid

NEW = {"companyID": 1001, "title": "Printer jammed", "status": 1, "priority": 2, "queueID": 29683482}


def test_create_answers_an_item_id_and_the_ticket_is_numbered_and_stamped(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock)

    created = client.post(f"{API}/Tickets", headers=HEADERS, json={**NEW, "ExternalID": "ref-1", "unknown": 1})
    ticket = client.get(f"{API}/Tickets/{created.json()['itemId']}", headers=HEADERS).json()["item"]

    valid("OperationResultModel", created.json())
    assert ticket["ticketNumber"].startswith(f"T{clock.now():%Y%m%d}.")
    assert (ticket["title"], ticket["externalID"], ticket["creatorResourceID"]) == (
        "Printer jammed",
        "ref-1",
        API_RESOURCE_ID,
    )
    assert (
        ticket["createDate"]
        == ticket["lastActivityDate"]
        == clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({k: v for k, v in NEW.items() if k != "title"}, "title"),
        ({**NEW, "queueID": None}, "queueID or a dueDateTime"),
        ({**NEW, "status": 99}, "picklist for field status"),
        ({**NEW, "assignedResourceID": 29682901}, "assignedResourceRoleID"),
        ({**NEW, "contactID": 30682900 + 999}, "does not belong"),
        ({**NEW, "priority": "high"}, "not valid"),
    ],
)
def test_business_rule_failures_are_http_500_with_the_reason(
    world: World, clock: FakeClock, body: dict[str, Any], fragment: str
) -> None:
    _, client = make(world, clock)

    response = client.post(f"{API}/Tickets", headers=HEADERS, json=body)

    assert response.status_code == 500
    assert fragment in response.json()["errors"][0]


def test_patch_takes_the_id_in_the_body_and_changes_only_the_fields_sent(world: World, clock: FakeClock) -> None:
    at, client = make(world, clock)
    open_id = next(int(r.id) for r in at.tickets.rows() if r.data["status"] not in (5, 21) and r.data["priority"] != 4)
    before = client.get(f"{API}/Tickets/{open_id}", headers=HEADERS).json()["item"]
    clock.advance(60)

    patched = client.request(
        "PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": open_id, "Status": 5, "priority": 4}
    )
    after = client.get(f"{API}/Tickets/{open_id}", headers=HEADERS).json()["item"]
    missing = client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": 1, "status": 5})
    no_id = client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"status": 5})

    assert patched.json() == {"itemId": open_id}
    changed = {k for k in after if after[k] != before[k]}
    assert {"status", "priority", "lastActivityDate", "lastTrackedModificationDateTime"} <= changed
    assert changed <= {"status", "priority", "lastActivityDate", "lastTrackedModificationDateTime", "completedDate",
                       "completedByResourceID", "lastActivityResourceID"}  # fmt: skip
    assert after["completedDate"] is not None and after["lastActivityDate"] > before["lastActivityDate"]
    assert (missing.status_code, no_id.status_code) == (404, 500)
    assert at.tickets[open_id].data["title"] == before["title"]


def test_reopening_a_completed_ticket_clears_its_completed_date(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock)
    client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": 350004, "status": 5})

    client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": 350004, "status": 8})

    assert client.get(f"{API}/Tickets/350004", headers=HEADERS).json()["item"]["completedDate"] is None


def test_notes_are_created_only_under_their_ticket_and_move_its_activity_date(world: World, clock: FakeClock) -> None:
    at, client = make(world, clock)
    before = at.tickets[350005].updated
    clock.advance(30)
    note = {"title": "Call", "description": "Spoke with the user", "noteType": 1, "publish": 2}

    created = client.post(f"{API}/Tickets/350005/Notes", headers=HEADERS, json=note)
    listed = client.get(f"{API}/Tickets/350005/Notes", headers=HEADERS).json()
    queried = query_all(client, "TicketNotes", {"filter": [{"op": "eq", "field": "ticketID", "value": 350005}]})
    flat = client.post(f"{API}/TicketNotes", headers=HEADERS, json={**note, "ticketID": 350005})
    incomplete = client.post(f"{API}/Tickets/350005/Notes", headers=HEADERS, json={"description": "x"})
    one = client.get(f"{API}/Tickets/350005/Notes/{created.json()['itemId']}", headers=HEADERS).json()
    elsewhere = client.get(f"{API}/Tickets/350006/Notes/{created.json()['itemId']}", headers=HEADERS).json()

    valid("TicketNoteQueryResult", listed)
    assert one["item"]["id"] == created.json()["itemId"] and elsewhere == {"item": None}
    assert created.json()["itemId"] in {n["id"] for n in listed["items"]} == {n["id"] for n in queried}
    mine = next(n for n in listed["items"] if n["id"] == created.json()["itemId"])
    assert (mine["ticketID"], mine["publish"], mine["creatorResourceID"]) == (350005, 2, API_RESOURCE_ID)
    assert at.tickets[350005].updated > before
    assert flat.status_code == 404
    assert incomplete.status_code == 500


def test_time_entries_are_posted_flat_and_queried_by_ticket(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock)
    entry = {
        "ticketID": 350006,
        "resourceID": 29682901,
        "roleID": 29683394,
        "dateWorked": "2026-11-20T00:00:00Z",
        "startDateTime": "2026-11-20T10:00:00Z",
        "endDateTime": "2026-11-20T10:45:00Z",
        "summaryNotes": "Remote session",
    }

    created = client.post(f"{API}/TimeEntries", headers=HEADERS, json=entry)
    page = client.post(
        f"{API}/TimeEntries/query",
        headers=HEADERS,
        json={"filter": [{"op": "eq", "field": "ticketID", "value": 350006}]},
    ).json()
    no_resource = client.post(f"{API}/TimeEntries", headers=HEADERS, json={**entry, "resourceID": None})

    valid("TimeEntryQueryResult", page)
    mine = next(e for e in page["items"] if e["id"] == created.json()["itemId"])
    assert (mine["hoursWorked"], mine["summaryNotes"], mine["isNonBillable"]) == (0.75, "Remote session", False)
    assert all(e["ticketID"] == 350006 for e in page["items"])
    assert no_resource.status_code == 500


# --- webhooks -------------------------------------------------------------------------------------------------------


class Receiver:
    """Collects webhook deliveries (raw body and headers)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.deliveries.append((dict(request.headers), request.content))
        return httpx.Response(200)


def _webhook(client: Any, *, fields: dict[int, tuple[bool, bool]]) -> int:
    body = {
        "IsActive": True,
        "WebhookUrl": "http://receiver.test/autotask",
        "DeactivationUrl": "http://receiver.test/deactivated",
        "Name": "psabridge",
        "SecretKey": "s3cret-key",
        "IsSubscribedToCreateEvents": True,
        "IsSubscribedToUpdateEvents": True,
    }
    webhook_id = int(client.post(f"{API}/TicketWebhooks", headers=HEADERS, json=body).json()["itemId"])
    for field_id, (subscribed, always) in fields.items():
        client.post(
            f"{API}/TicketWebhooks/{webhook_id}/Fields",
            headers=HEADERS,
            json={
                "FieldID": field_id,
                "IsSubscribedField": subscribed,
                "IsDisplayAlwaysField": always,
                "WebhookID": webhook_id,
            },
        )
    return webhook_id


def test_webhooks_are_signed_over_the_raw_dotnet_encoded_body(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    at, client = make(world, clock, transport=httpx.MockTransport(receiver))
    webhook_id = _webhook(client, fields={2: (True, False), 1: (False, True)})  # title subscribed, number always

    client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": 350007, "title": "Café & <printer> +1"})
    at.simulator.webhooks.flush(10)

    ((headers, body),) = receiver.deliveries
    expected = "sha1=" + base64.b64encode(hmac.new(b"s3cret-key", body, hashlib.sha1).digest()).decode()
    assert hmac.compare_digest(headers["x-hook-signature"], expected)
    assert b"Caf\\u00E9 \\u0026 \\u003Cprinter\\u003E \\u002B1" in body
    payload = json.loads(body)
    assert payload["Fields"] == {
        "Title": "Café & <printer> +1",
        "TicketNumber": at.tickets[350007].data["ticketNumber"],
    }
    assert (payload["Action"], payload["EntityType"], payload["Id"], payload["PersonID"]) == (
        "Update",
        "Ticket",
        350007,
        API_RESOURCE_ID,
    )
    guid = client.get(f"{API}/TicketWebhooks/{webhook_id}", headers=HEADERS).json()["item"]["webhookGUID"]
    assert payload["Guid"] == guid and payload["SequenceNumber"] == 1


def test_no_callout_until_a_field_is_subscribed_nor_for_unsubscribed_changes(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    at, client = make(world, clock, transport=httpx.MockTransport(receiver))
    webhook_id = _webhook(client, fields={})
    client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": 350008, "status": 8})
    not_ready = client.get(f"{API}/TicketWebhooks/{webhook_id}", headers=HEADERS).json()["item"]["isReady"]

    client.post(
        f"{API}/TicketWebhooks/{webhook_id}/Fields",
        headers=HEADERS,
        json={"FieldID": 3, "IsSubscribedField": True, "IsDisplayAlwaysField": False, "WebhookID": webhook_id},
    )
    client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": 350008, "title": "not watched"})
    client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": 350008, "status": 7})
    at.simulator.webhooks.flush(10)

    assert not_ready is False
    assert [json.loads(b)["Fields"] for _, b in receiver.deliveries] == [{"Status": 7}]


def test_changes_by_an_excluded_resource_send_no_webhook(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    at, client = make(world, clock, transport=httpx.MockTransport(receiver))
    webhook_id = _webhook(client, fields={3: (True, False)})
    excluded = client.post(
        f"{API}/TicketWebhooks/{webhook_id}/ExcludedResources",
        headers=HEADERS,
        json={"ResourceID": API_RESOURCE_ID, "WebhookID": webhook_id},
    )

    client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": 350009, "status": 8})
    technician = {**HEADERS, "ImpersonationResourceId": "29682903"}
    client.request("PATCH", f"{API}/Tickets", headers=technician, json={"id": 350009, "status": 7})
    at.simulator.webhooks.flush(10)

    assert excluded.status_code == 200
    assert [json.loads(b)["PersonID"] for _, b in receiver.deliveries] == [29682903]


def test_ticket_note_webhooks_call_out_on_new_notes(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    at, client = make(world, clock, transport=httpx.MockTransport(receiver))
    body = {"IsActive": True, "WebhookUrl": "http://r.test/n", "DeactivationUrl": "http://r.test/d", "Name": "notes",
            "SecretKey": "k", "IsSubscribedToCreateEvents": True}  # fmt: skip
    webhook_id = client.post(f"{API}/TicketNoteWebhooks", headers=HEADERS, json=body).json()["itemId"]
    client.post(
        f"{API}/TicketNoteWebhooks/{webhook_id}/Fields",
        headers=HEADERS,
        json={"FieldID": 1, "IsSubscribedField": True, "IsDisplayAlwaysField": True, "WebhookID": webhook_id},
    )

    note = client.post(
        f"{API}/Tickets/350010/Notes",
        headers=HEADERS,
        json={"title": "t", "description": "d", "noteType": 1, "publish": 1},
    ).json()
    at.simulator.webhooks.flush(10)

    ((_, raw),) = receiver.deliveries
    payload = json.loads(raw)
    assert (payload["EntityType"], payload["Id"], payload["Fields"]) == (
        "TicketNote",
        note["itemId"],
        {"TicketID": 350010},
    )


def test_a_control_plane_receiver_gets_signed_ticket_callouts(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    at, client = make(world, clock, transport=httpx.MockTransport(receiver))
    client.post("/_sandbox/webhooks", json={"url": "http://receiver.test/any", "secret": "abc"})

    ticket_id = next(int(r.id) for r in at.tickets.rows() if r.data["priority"] != 4)
    client.request("PATCH", f"{API}/Tickets", headers=HEADERS, json={"id": ticket_id, "priority": 4})
    at.simulator.webhooks.flush(10)

    ((headers, raw),) = receiver.deliveries
    assert (
        headers["x-hook-signature"] == "sha1=" + base64.b64encode(hmac.new(b"abc", raw, hashlib.sha1).digest()).decode()
    )
    assert json.loads(raw)["Fields"]["Priority"] == 4


def test_dotnet_json_round_trips_and_escapes_as_dotnet_does() -> None:
    value = {"a": "x\"y\\z\n<&>'`+ é 😀", "n": None, "b": [True, 1.5, 2]}

    text = dotnet_json(value)

    assert json.loads(text) == value
    assert text.isascii()
    assert "\\u0022" in text and "\\uD83D\\uDE00" in text and "\\u00E9" in text
