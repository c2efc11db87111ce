"""The Freshservice simulator read side, through a plain client that follows only Freshservice's documentation."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.credentials import FS_API_KEY
from psabridge_sandbox.freshservice import FreshserviceSimulator
from psabridge_sandbox.freshservice_http import READONLY_API_KEY
from psabridge_sandbox.freshservice_records import fs_time
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.world import World

from .conftest import ANCHOR
from .freshservice_client import EVERYTHING, Api, account, check

LIST = "/api/v2/tickets"


def test_a_backfill_with_updated_since_pages_every_ticket_exactly_once_oldest_first(
    world: World, clock: FakeClock
) -> None:
    api = Api(account(world, clock, tickets=1234))
    pages = api.pages(LIST, {"updated_since": EVERYTHING, "per_page": 100, "order_type": "asc"})
    ids = [t["id"] for page in pages for t in page]
    assert [len(p) for p in pages] == [100] * 12 + [34]
    assert ids == list(range(1, 1235))  # numbered in creation order: created_at ascending
    created = [t["created_at"] for page in pages for t in page]
    assert created == sorted(created)


def test_the_link_header_names_the_next_page_with_the_same_query_and_is_absent_on_the_last(
    world: World, clock: FakeClock
) -> None:
    api = Api(account(world, clock, tickets=250))
    query = {"updated_since": EVERYTHING, "per_page": 100, "order_type": "asc", "include": "stats"}
    first = api.get(LIST, params=query)
    assert first.headers["Link"].endswith('>; rel="next"')
    following = httpx.URL(first.links["next"]["url"])
    assert dict(following.params) == {**{k: str(v) for k, v in query.items()}, "page": "2"}
    last = api.get(LIST, params={**query, "page": 3})
    assert len(last.json()["tickets"]) == 50 and "Link" not in last.headers
    beyond = api.get(LIST, params={**query, "page": 4})
    assert beyond.json() == {"tickets": []} and "Link" not in beyond.headers


def test_without_updated_since_only_tickets_created_in_the_last_30_days_come_newest_first(
    world: World, clock: FakeClock
) -> None:
    api = Api(account(world, clock, tickets=400))
    everything = [t for page in api.pages(LIST, {"updated_since": EVERYTHING, "per_page": 100}) for t in page]
    cutoff = fs_time(ANCHOR - timedelta(days=30))
    recent = [t["id"] for t in everything if t["created_at"] >= cutoff]
    assert 0 < len(recent) < len(everything)
    first = api.get(LIST)
    assert len(first.json()["tickets"]) == min(30, len(recent))  # per_page defaults to 30
    default = [t["id"] for page in api.pages(LIST, {}) for t in page]
    assert default == sorted(recent, reverse=True)  # created_at descending by default


def test_updated_since_keeps_tickets_updated_at_or_after_it(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock, tickets=300))
    everything = [t for page in api.pages(LIST, {"updated_since": EVERYTHING, "per_page": 100}) for t in page]
    since = sorted(t["updated_at"] for t in everything)[200]
    changed = [t for page in api.pages(LIST, {"updated_since": since, "per_page": 100}) for t in page]
    assert {t["id"] for t in changed} == {t["id"] for t in everything if t["updated_at"] >= since}


def test_paging_parameters_are_checked_as_documented(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    too_many = api.get(LIST, params={"per_page": 101})
    assert too_many.status_code == 400
    assert too_many.json() == {
        "description": "Validation failed",
        "errors": [
            {
                "field": "per_page",
                "message": "It should be a/an Positive Integer less than or equal to 100",
                "code": "invalid_value",
            }
        ],
    }
    check("BadRequest", too_many.json())
    order_by = api.get(LIST, params={"order_by": "updated_at"})  # Freshdesk has it; Freshservice does not
    assert order_by.status_code == 400
    assert order_by.json()["errors"] == [
        {"field": "order_by", "message": "Unexpected/invalid field in request", "code": "invalid_field"}
    ]
    bad = api.get(LIST, params={"order_type": "newest", "page": 0, "updated_since": "yesterday", "include": "notes"})
    assert {e["field"] for e in bad.json()["errors"]} == {"order_type", "page", "updated_since", "include"}
    for error in bad.json()["errors"]:
        check("error", error)


def test_list_includes_embed_stats_and_requester(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    response = api.get(LIST, params={"updated_since": EVERYTHING, "include": "stats,requester", "per_page": 100})
    check("TicketList", response.json())
    ticket = next(t for t in response.json()["tickets"] if t["status"] == 5)
    assert set(ticket["stats"]) >= {"first_responded_at", "resolved_at", "closed_at"}
    assert ticket["stats"]["closed_at"] is not None
    assert set(ticket["requester"]) == {"email", "id", "mobile", "name", "phone"}
    assert ticket["requester"]["id"] == ticket["requester_id"]
    plain = api.get(LIST, params={"updated_since": EVERYTHING})
    assert "stats" not in plain.json()["tickets"][0] and "requester" not in plain.json()["tickets"][0]


def test_a_list_cannot_embed_conversations_or_assets_only_a_show_call_can(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    for include in ("conversations", "assets", "stats,conversations"):
        refused = api.get(LIST, params={"updated_since": EVERYTHING, "include": include})
        assert refused.status_code == 400
        assert refused.json() == {
            "description": "Validation failed",
            "errors": [
                {
                    "field": "include",
                    "message": "It should be one of these values: 'stats,requester,requested_for'",
                    "code": "invalid_value",
                }
            ],
        }


def test_limits_off_serves_the_unlimited_plan(world: World, clock: FakeClock) -> None:
    context = SandboxContext(
        service=service("freshservice"), world=world, anchor=ANCHOR, tickets=5, clock=clock, limits=False
    )
    assert FreshserviceSimulator(context).plan.name == "unlimited"
    assert FreshserviceSimulator(replace(context, limits=True)).plan.name == "growth"


def test_one_ticket_with_includes_and_the_records_it_points_at(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock))
    response = api.get(f"{LIST}/2", params={"include": "stats,requester,conversations,assets"})
    assert response.status_code == 200
    check("TicketItem", response.json())
    ticket = response.json()["ticket"]
    assert ticket["id"] == 2 and ticket["description"].startswith("<div>")
    assert api.get(f"/api/v2/requesters/{ticket['requester_id']}").json()["requester"]["id"] == ticket["requester_id"]
    group = api.get(f"/api/v2/groups/{ticket['group_id']}").json()["group"]
    assert group["id"] == ticket["group_id"]
    if ticket["responder_id"] is not None:
        assert api.get(f"/api/v2/agents/{ticket['responder_id']}").json()["agent"]["id"] == ticket["responder_id"]
    assert api.get(f"/api/v2/departments/{ticket['department_id']}").json()["department"]["name"] == (
        "Globex Logistics"
    )
    conversations = api.get(f"{LIST}/2/conversations").json()
    check("ConversationList", conversations)
    assert ticket["conversations"] == conversations["conversations"][:10]
    bad = api.get(f"{LIST}/2", params={"include": "notes"})
    assert bad.json()["errors"][0]["message"] == (
        "It should be one of these values: 'tags, conversations, requester, stats, problem, assets, change, "
        "related_tickets, requested_for, department, feedback'"
    )


def test_the_msp_escalations_group_holds_a_good_share_of_tickets(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock, tickets=300))
    groups = {g["name"]: g["id"] for g in api.get("/api/v2/groups").json()["groups"]}
    assert {"Service Desk", "MSP Escalations", "Networking", "Security"} <= set(groups)
    tickets = [t for page in api.pages(LIST, {"updated_since": EVERYTHING, "per_page": 100}) for t in page]
    escalated = [t for t in tickets if t["group_id"] == groups["MSP Escalations"]]
    assert len(escalated) > len(tickets) / 5
    assert api.get("/api/v2/agent_groups").json()["groups"] == api.get("/api/v2/groups").json()["groups"]


def test_ticket_form_fields_list_the_status_priority_and_source_choices(world: World, clock: FakeClock) -> None:
    fields = {
        f["name"]: f for f in Api(account(world, clock)).get("/api/v2/ticket_form_fields").json()["ticket_fields"]
    }
    assert [c["id"] for c in fields["status"]["choices"]] == [2, 3, 4, 5]
    assert {c["id"]: c["value"] for c in fields["priority"]["choices"]} == {
        1: "Low",
        2: "Medium",
        3: "High",
        4: "Urgent",
    }
    assert {c["id"]: c["value"] for c in fields["source"]["choices"]}[9] == "Walkup"


# --- records changing while a client pages -----------------------------------------------------------------------


def test_tickets_touched_while_paging_by_created_at_stay_in_place(world: World, clock: FakeClock) -> None:
    fs = account(world, clock, tickets=500)
    fs.simulator.faults.update({"churn_touch": 5, "churn_create": 1})
    pages = Api(fs).pages(LIST, {"updated_since": EVERYTHING, "per_page": 100, "order_type": "asc"})
    ids = [t["id"] for page in pages for t in page]
    assert len(ids) == len(set(ids))  # the sort key (created_at) never moves: no repeats ...
    assert set(range(1, 501)) <= set(ids)  # ... and nothing lost; the tickets raised meanwhile come last
    assert ids[500:] and all(i > 500 for i in ids[500:])


def test_a_ticket_raised_while_paging_newest_first_repeats_a_record(world: World, clock: FakeClock) -> None:
    fs = account(world, clock, tickets=300)
    fs.simulator.faults.update({"churn_create": 1})
    pages = Api(fs).pages(LIST, {"updated_since": EVERYTHING, "per_page": 100})
    ids = [t["id"] for page in pages for t in page]
    repeated = {i for i in ids if ids.count(i) > 1}
    assert repeated == {201, 102, 3}  # each new ticket pushes the list down by one
    assert set(range(1, 301)) <= set(ids)


def test_a_ticket_deleted_while_paging_makes_the_next_page_skip_one(world: World, clock: FakeClock) -> None:
    fs = account(world, clock, tickets=250)
    api = Api(fs)
    pages = api.pages(
        LIST,
        {"updated_since": EVERYTHING, "per_page": 100, "order_type": "asc"},
        between=lambda found: api.request("DELETE", f"{LIST}/{found[-1][0]['id']}") if len(found) == 1 else None,
    )
    ids = [t["id"] for page in pages for t in page]
    assert 101 not in ids  # it slid onto page 1, which the client had already read
    assert len(ids) == 249 and api.get(f"{LIST}/1").json()["ticket"]["deleted"] is True
    deleted = api.get(LIST, params={"filter": "deleted", "updated_since": EVERYTHING}).json()["tickets"]
    assert [t["id"] for t in deleted] == [1]


# --- auth and errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"wrong-key:X").decode()},
        {"Authorization": "Bearer sandbox-fs-api-key"},
    ],
    ids=["missing", "wrong-key", "not-basic"],
)
def test_requests_without_a_valid_api_key_are_refused(world: World, clock: FakeClock, headers: dict[str, str]) -> None:
    response = Api(account(world, clock), auth=None).get(LIST, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_credentials",
        "message": "You have to be logged in to perform this action.",
    }
    check("Forbidden", response.json())  # the {code, message} shape of FSSPEC's non-validation errors


def test_any_password_goes_with_the_api_key(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock), auth=httpx.BasicAuth(FS_API_KEY, "anything"))
    assert api.get(LIST).status_code == 200


def test_an_agent_role_that_may_only_read_gets_403_on_writes(world: World, clock: FakeClock) -> None:
    api = Api(account(world, clock), auth=httpx.BasicAuth(READONLY_API_KEY, "X"))
    assert api.get(f"{LIST}/1").status_code == 200
    refused = api.put(f"{LIST}/1", json={"priority": 4})
    assert refused.status_code == 403
    assert refused.json() == {"code": "access_denied", "message": "You are not authorized to perform this action."}
    check("Forbidden", refused.json())


def test_a_missing_ticket_is_a_404_with_an_empty_body(world: World, clock: FakeClock) -> None:
    response = Api(account(world, clock)).get(f"{LIST}/999999")
    assert response.status_code == 404 and response.content == b""


def test_server_errors_answer_in_freshservice_shape(world: World, clock: FakeClock) -> None:
    fs = account(world, clock)
    fs.simulator.faults.update({"error_rate": 1.0, "error_statuses": [500]})
    response = Api(fs).get(LIST)
    assert response.status_code == 500
    assert response.json() == {"code": "internal_error", "message": "We're sorry, but something went wrong."}
    check("InternalServerError", response.json())
