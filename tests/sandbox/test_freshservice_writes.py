"""The Freshservice simulator write side, rate limits and webhooks, through a plain documented client."""

from __future__ import annotations

import json
from typing import Any

import httpx

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.credentials import FS_WEBHOOK_SECRET
from psabridge_sandbox.freshservice_http import WEBHOOK_SECRET_HEADER
from psabridge_sandbox.freshservice_records import INTEGRATION_AGENT_ID, fs_time
from psabridge_sandbox.world import World

from .conftest import ANCHOR
from .freshservice_client import EVERYTHING, Api, account, check

LIST = "/api/v2/tickets"


def test_put_changes_only_the_fields_sent(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    before = api.get(f"{LIST}/3").json()["ticket"]
    clock.advance(90)
    response = api.put(f"{LIST}/3", json={"priority": 4, "status": 3})
    assert response.status_code == 200
    check("TicketItem", response.json())
    after = response.json()["ticket"]
    assert (after["priority"], after["status"]) == (4, 3)
    assert after["updated_at"] == fs_time(ANCHOR.replace(minute=1, second=30))
    unchanged = {k for k in before if before[k] == after[k]}
    assert {"subject", "description", "group_id", "requester_id", "created_at"} <= unchanged
    assert (
        api.get(f"{LIST}/3", params={"include": "stats"}).json()["ticket"]["stats"]["pending_since"]
        == (after["updated_at"])
    )
    clock.advance(60)
    same = api.put(f"{LIST}/3", json={"priority": 4}).json()["ticket"]
    assert same["updated_at"] == after["updated_at"]  # nothing changed, nothing moved


def test_put_rejects_bad_values_with_field_errors(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    response = api.put(
        f"{LIST}/3", json={"status": 9, "priority": "High", "group_id": 1, "updated_at": "2026-01-01T00:00:00Z"}
    )
    assert response.status_code == 400
    check("BadRequest", response.json())
    assert sorted(response.json()["errors"], key=lambda e: e["field"]) == [
        {"field": "group_id", "message": "There is no group matching the given group_id", "code": "invalid_value"},
        {
            "field": "priority",
            "message": "Value set is of type String.It should be a/an Integer",
            "code": "datatype_mismatch",
        },
        {"field": "status", "message": "It should be one of these values: '2,3,4,5'", "code": "invalid_value"},
        {"field": "updated_at", "message": "Unexpected/invalid field in request", "code": "invalid_field"},
    ]
    assert (
        api.put(f"{LIST}/3", content=b"{not json", headers={"Content-Type": "application/json"}).json()["errors"][0][
            "code"
        ]
        == "invalid_json"
    )
    wrong_type = api.put(
        f"{LIST}/3", content=b"status=4", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert wrong_type.status_code == 415 and wrong_type.json()["code"] == "invalid_content_type"


def test_post_creates_a_ticket_with_201_and_its_location(world: World, clock: FakeClock) -> None:
    fs = account(world, clock, tickets=20)
    api = Api(fs)
    body = {
        "subject": "VPN drops every 10 minutes",
        "description": "<div>Since the FortiClient update.</div>",
        "email": "new.starter@globex.example",
        "status": 2,
        "priority": 3,
        "group_id": api.get("/api/v2/groups").json()["groups"][0]["id"],
    }
    response = api.post(LIST, json=body)
    assert response.status_code == 201
    check("TicketItem", response.json())
    ticket = response.json()["ticket"]
    assert ticket["id"] == 21 and response.headers["Location"].endswith(f"/api/v2/tickets/{ticket['id']}")
    assert ticket["description_text"] == "Since the FortiClient update." and ticket["source"] == 2
    requester = api.get(f"/api/v2/requesters/{ticket['requester_id']}").json()["requester"]
    assert requester["primary_email"] == "new.starter@globex.example"  # an unknown e-mail becomes a requester
    missing = api.post(LIST, json={"subject": "x"})
    assert {(e["field"], e["code"]) for e in missing.json()["errors"]} == {
        ("description", "missing_field"),
        ("status", "missing_field"),
        ("priority", "missing_field"),
        ("requester_id", "missing_field"),
    }


def test_notes_are_private_unless_said_otherwise_and_show_in_conversations(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    before = api.get(f"{LIST}/4").json()["ticket"]["updated_at"]
    clock.advance(5)
    private = api.post(f"{LIST}/4/notes", json={"body": "<div>Checked the <b>DC01</b> event log</div>"})
    assert private.status_code == 201
    check("NoteCreated", private.json())
    note = private.json()["conversation"]
    assert note["private"] is True and note["body_text"] == "Checked the DC01 event log"
    assert note["user_id"] == INTEGRATION_AGENT_ID and note["created_at"] == fs_time(clock.now())
    public = api.post(f"{LIST}/4/notes", json={"body": "<div>Fixed, please retry.</div>", "private": False})
    assert public.json()["conversation"]["private"] is False
    listed = api.get(f"{LIST}/4/conversations").json()["conversations"]
    assert [c["id"] for c in listed[-2:]] == [note["id"], public.json()["conversation"]["id"]]
    assert api.get(f"{LIST}/4").json()["ticket"]["updated_at"] > before
    assert api.post(f"{LIST}/4/notes", json={"private": True}).json()["errors"] == [
        {"field": "body", "message": "It should not be blank as this is a mandatory field", "code": "missing_field"}
    ]


def test_conversations_page_with_the_link_header(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    for number in range(5):
        api.post(f"{LIST}/5/notes", json={"body": f"<div>note {number}</div>"})
    total = len(api.get(f"{LIST}/5/conversations", params={"per_page": 100}).json()["conversations"])
    pages = api.pages(f"{LIST}/5/conversations", {"per_page": 2})
    assert sum(len(p) for p in pages) == total and len(pages) == -(-total // 2)


def test_time_entries_take_hh_mm_and_are_listed(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    body = {"time_spent": "01:45", "note": "Remote session", "billable": False, "executed_at": "2026-11-20T09:00:00Z"}
    created = api.post(f"{LIST}/6/time_entries", json=body)
    assert created.status_code == 201
    check("TimeEntryItem", created.json())
    entry = created.json()["time_entry"]
    assert (entry["time_spent"], entry["billable"], entry["agent_id"]) == ("01:45", False, INTEGRATION_AGENT_ID)
    assert entry["executed_at"] == "2026-11-20T09:00:00Z"
    listed = api.get(f"{LIST}/6/time_entries").json()
    check("TimeEntryList", listed)
    assert listed["time_entries"][-1]["id"] == entry["id"]
    bad = api.post(
        f"{LIST}/6/time_entries", json={"time_spent": "105", "executed_at": "2026-11-21T09:00:00Z", "agent_id": 7}
    )
    assert {e["field"] for e in bad.json()["errors"]} == {"time_spent", "executed_at", "agent_id"}


# --- rate limits -----------------------------------------------------------------------------------------------------


def _many(api: Api, calls: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.request(m, p, auth=api.auth, **kw) for m, p, kw in calls]

    responses: list[httpx.Response] = api.client.run(work)
    return responses


def test_every_answer_reports_the_account_budget_and_includes_cost_credits(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock, plan="growth"))
    plain = api.get(LIST)
    assert (plain.headers["X-RateLimit-Total"], plain.headers["X-RateLimit-Remaining"]) == ("200", "199")
    assert plain.headers["X-RateLimit-Used-CurrentRequest"] == "1"
    listed = api.get(LIST, params={"include": "stats,requester"})
    assert listed.headers["X-RateLimit-Used-CurrentRequest"] == "5"  # 1 + 2 per include on a list
    shown = api.get(f"{LIST}/1", params={"include": "stats"})
    assert shown.headers["X-RateLimit-Used-CurrentRequest"] == "2"  # 1 + 1 per include on a show
    missing = api.get(f"{LIST}/999999")
    assert missing.status_code == 404 and missing.headers["X-RateLimit-Remaining"] == str(200 - 1 - 5 - 2 - 1)


def test_list_tickets_has_its_own_per_minute_sub_limit(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock, plan="growth"))
    answers = _many(api, [("GET", LIST, {})] * 71)
    assert [r.status_code for r in answers[:70]] == [200] * 70
    refused = answers[70]
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert refused.json() == {"message": "The API rate limit allotted for your Freshservice domain has been exhausted"}
    check("RateLimitError", refused.json())
    assert api.get("/api/v2/groups").status_code == 200  # the account as a whole still has room
    clock.advance(60)
    assert api.get(LIST).status_code == 200


def test_the_account_wide_limit_covers_every_endpoint(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock, plan="starter"))
    answers = _many(api, [("GET", "/api/v2/groups", {})] * 101)
    assert [r.status_code for r in answers].count(200) == 100
    assert answers[100].status_code == 429 and answers[99].headers["X-RateLimit-Remaining"] == "0"
    clock.advance(30)
    assert api.get("/api/v2/groups").status_code == 429
    clock.advance(31)
    assert api.get("/api/v2/groups").status_code == 200


# --- webhooks --------------------------------------------------------------------------------------------------------


def test_changes_post_the_admins_webhook_with_the_shared_secret_header(world: World, clock: FakeClock) -> None:
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    fs = account(world, clock, transport=httpx.MockTransport(receiver))
    api = Api(fs)
    subscribe = {"url": "http://receiver.test/fs", "secret": FS_WEBHOOK_SECRET}
    assert api.client.post("/_sandbox/webhooks", json=subscribe).status_code == 201
    api.put(f"{LIST}/7", json={"status": 4})
    api.post(f"{LIST}/7/notes", json={"body": "<div>done</div>"})
    created = api.post(
        LIST, json={"subject": "s", "description": "<div>d</div>", "status": 2, "priority": 1, "email": "a@b.example"}
    )
    api.get(f"{LIST}/7")  # reads change nothing
    assert fs.simulator.webhooks.flush(5)
    bodies = [json.loads(r.content) for r in received]
    assert [(b["ticket_id"], b["event"]) for b in bodies] == [
        (7, "ticket_updated"),
        (7, "note_added"),
        (created.json()["ticket"]["id"], "ticket_created"),
    ]
    assert all(r.headers[WEBHOOK_SECRET_HEADER] == FS_WEBHOOK_SECRET for r in received)
    assert bodies[0]["updated_at"] == api.get(f"{LIST}/7").json()["ticket"]["updated_at"]
    fs.simulator.close()


def test_a_webhook_without_a_secret_carries_no_secret_header(world: World, clock: FakeClock) -> None:
    received: list[httpx.Request] = []
    fs = account(world, clock, transport=httpx.MockTransport(lambda r: received.append(r) or httpx.Response(204)))
    api = Api(fs)
    api.client.post("/_sandbox/webhooks", json={"url": "http://receiver.test/fs"})
    api.put(f"{LIST}/8", json={"priority": 1 if api.get(f"{LIST}/8").json()["ticket"]["priority"] != 1 else 2})
    assert fs.simulator.webhooks.flush(5)
    assert len(received) == 1 and WEBHOOK_SECRET_HEADER not in received[0].headers
    fs.simulator.close()


def test_large_accounts_load_and_page(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock, tickets=5000))
    pages = api.pages(LIST, {"updated_since": EVERYTHING, "per_page": 100, "order_type": "asc"})
    assert len(pages) == 50 and sum(len(p) for p in pages) == 5000
