"""The Freshservice connector's exact wire format, against a strict respx router (every route called, nothing else)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from psabridge.connectors.base import EXTRA_EXTRA, EXTRA_NOTES, EXTRA_TIME_ENTRIES, NewTimeEntry
from psabridge.connectors.budget import Charge
from psabridge.connectors.freshservice import FreshserviceConnector
from psabridge.connectors.http import HttpRuntime
from psabridge.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    WebhookVerificationError,
)
from psabridge.model import NoteKind

from .conftest import FakeTime, make_settings

BASE = "https://globex.freshservice.com"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SECRETS = {"api_key": "fs-key", "webhook_secret": "hook-secret"}
KEY = "abc123def456"
MARKER = f"[psabridge:{KEY}]"
JSON = "application/json"


def ticket(ticket_id: int, updated: str, **fields: Any) -> dict[str, Any]:
    return {"id": ticket_id, "subject": f"T{ticket_id}", "updated_at": updated, "created_at": updated, **fields}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_mocked=True, assert_all_called=True) as mock:
        yield mock


@pytest.fixture
def time() -> FakeTime:
    return FakeTime(NOW)


def connector(namespace: str, time: FakeTime | None = None, **fields: Any) -> FreshserviceConnector:
    settings = make_settings(name="globex-fs", system="freshservice", base_url=BASE, secrets=SECRETS, **fields)
    clock = time or FakeTime(NOW)
    runtime = HttpRuntime(namespace=namespace, sleep=clock.sleep, clock=clock.clock, now=clock.now)
    return FreshserviceConnector(settings, runtime=runtime)


def params(call: Any) -> dict[str, str]:
    return dict(call.request.url.params)


def sent(call: Any) -> Any:
    assert call.request.headers["Content-Type"] == JSON
    return json.loads(call.request.content)


# --- reading --------------------------------------------------------------------------------------------------------


def test_a_backfill_asks_for_everything_oldest_created_first_and_follows_link(
    router: respx.MockRouter, namespace: str
) -> None:
    link = (
        f'<{BASE}/api/v2/tickets?updated_since=2000-01-01T00%3A00%3A00Z&per_page=100&order_type=asc&page=2>; rel="next"'
    )
    route = router.get("/api/v2/tickets").mock(
        side_effect=[
            httpx.Response(
                200,
                json={"tickets": [ticket(1, "2026-11-20T10:00:00Z"), ticket(2, "2026-11-20T14:59:00Z")]},
                headers={"Link": link, "Date": "Fri, 20 Nov 2026 14:30:00 GMT"},
            ),
            httpx.Response(200, json={"tickets": [ticket(3, "2026-11-19T08:00:00Z")]}),
        ]
    )

    pages = list(connector(namespace).iter_changes(None))

    assert [[r["id"] for r in p.records] for p in pages] == [[1, 2], [3]]
    # Pages come by creation time, so the watermark moves only at the end, and no further than the vendor's clock
    # when the first page was served (ticket 2 changed after that may have passed us on an earlier page).
    assert [p.watermark for p in pages] == [None, datetime(2026, 11, 20, 14, 30, tzinfo=UTC)]
    first, second = route.calls
    # stats and requester embedded in the list (the two a list may embed: FSSPEC), so the record carries the ticket
    assert params(first) == {
        "updated_since": "2000-01-01T00:00:00Z",
        "per_page": "100",
        "order_type": "asc",
        "include": "stats,requester",
    }
    assert str(second.request.url) == link[1 : link.index(">")]
    assert [p.request_count for p in pages] == [1, 1]
    auth = first.request.headers["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"fs-key:X").decode()
    assert first.request.headers["Accept"] == JSON


def test_an_incremental_run_starts_an_overlap_before_the_watermark_and_drops_repeats(
    router: respx.MockRouter, namespace: str
) -> None:
    link = f'<{BASE}/api/v2/tickets?page=2>; rel="next"'
    route = router.get("/api/v2/tickets").mock(
        side_effect=[
            httpx.Response(200, json={"tickets": [ticket(5, "2026-11-20T10:00:00Z")]}, headers={"Link": link}),
            httpx.Response(
                200, json={"tickets": [ticket(5, "2026-11-20T10:00:00Z"), ticket(6, "2026-11-20T10:01:00Z")]}
            ),
        ]
    )
    since = datetime(2026, 11, 20, 10, 0, 30, 500000, tzinfo=UTC)

    pages = list(connector(namespace, overlap=timedelta(minutes=2), page_size=500).iter_changes(since))

    assert [[r["id"] for r in p.records] for p in pages] == [[5], [6]]
    assert [p.watermark for p in pages] == [since, datetime(2026, 11, 20, 10, 1, tzinfo=UTC)]
    assert params(route.calls[0]) == {
        "updated_since": "2026-11-20T09:58:30Z",
        "per_page": "100",
        "order_type": "asc",
        "include": "stats,requester",
    }


def test_get_ticket_embeds_stats_requester_and_assets_and_reads_every_conversation_and_time_entry(
    router: respx.MockRouter, namespace: str
) -> None:
    stats = {"first_responded_at": "2026-11-20T11:50:00Z", "resolved_at": None, "closed_at": None}
    one = router.get("/api/v2/tickets/5").respond(
        json={
            "ticket": {
                **ticket(5, "2026-11-20T12:00:00Z"),
                "stats": stats,
                "requester": {"id": 9},
                "assets": [{"display_id": 3}],
            }
        }
    )
    more = f'<{BASE}/api/v2/tickets/5/conversations?per_page=100&page=2>; rel="next"'
    notes = router.get("/api/v2/tickets/5/conversations").mock(
        side_effect=[
            httpx.Response(
                200, json={"conversations": [{"id": 2, "created_at": "2026-11-20T11:00:00Z"}]}, headers={"Link": more}
            ),
            httpx.Response(200, json={"conversations": [{"id": 1, "created_at": "2026-11-20T10:00:00Z"}]}),
        ]
    )
    time = router.get("/api/v2/tickets/5/time_entries").respond(
        json={"time_entries": [{"id": 7, "time_spent": "00:30"}]}
    )

    record = connector(namespace).get_ticket("5")

    assert params(one.calls.last) == {"include": "stats,requester,assets"}
    assert params(notes.calls[0]) == {"per_page": "100"} and params(notes.calls[1]) == {"per_page": "100", "page": "2"}
    assert params(time.calls.last) == {"per_page": "100"}
    assert record[EXTRA_EXTRA] == {"stats": stats, "assets": [{"display_id": 3}]}
    assert "stats" not in record and record["requester"] == {"id": 9}
    assert [n["id"] for n in record[EXTRA_NOTES]] == [1, 2]  # oldest first
    assert record[EXTRA_TIME_ENTRIES] == [{"id": 7, "time_spent": "00:30"}]


def test_a_changed_ticket_costs_one_show_call_embedding_conversations_and_assets_and_its_time_entries(
    router: respx.MockRouter, namespace: str
) -> None:
    stats = {"first_responded_at": "2026-11-20T11:50:00Z", "resolved_at": None, "closed_at": None}
    listed = [{**ticket(n, "2026-11-20T12:00:00Z"), "stats": stats, "requester": {"id": 9}} for n in (5, 6)]
    embedded = [{"id": 2, "created_at": "2026-11-20T11:00:00Z"}, {"id": 1, "created_at": "2026-11-20T10:00:00Z"}]
    view = router.get("/api/v2/tickets/5").respond(
        json={"ticket": {**ticket(5, "2026-11-20T12:00:00Z"), "conversations": embedded, "assets": [{"id": 3}]}}
    )
    time = router.get("/api/v2/tickets/5/time_entries").respond(json={"time_entries": [{"id": 7}]})
    stored = {"6": {**ticket(6, "2026-11-20T12:00:00Z"), "requester": {"id": 9}, EXTRA_EXTRA: {"stats": stats}}}

    completion = connector(namespace).complete_page(listed, stored)

    assert completion.unchanged == ("6",)  # its embedded stats equal the stored ones
    [full] = completion.full
    assert params(view.calls.last) == {"include": "conversations,assets"}
    assert params(time.calls.last) == {"per_page": "100"}
    assert full == {
        **ticket(5, "2026-11-20T12:00:00Z"),
        "requester": {"id": 9},
        EXTRA_EXTRA: {"stats": stats, "assets": [{"id": 3}]},
        EXTRA_NOTES: [embedded[1], embedded[0]],  # oldest first, as get_ticket lists them
        EXTRA_TIME_ENTRIES: [{"id": 7}],
    }
    assert completion.request_count == 2


def test_a_ticket_with_ten_conversations_has_them_all_listed(router: respx.MockRouter, namespace: str) -> None:
    embedded = [{"id": n, "created_at": f"2026-11-20T10:{n:02d}:00Z"} for n in range(10)]
    router.get("/api/v2/tickets/5").respond(json={"ticket": {**ticket(5, "x"), "conversations": embedded}})
    every = router.get("/api/v2/tickets/5/conversations").respond(json={"conversations": [*embedded, {"id": 10}]})
    router.get("/api/v2/tickets/5/time_entries").respond(json={"time_entries": []})

    completion = connector(namespace).complete_page([ticket(5, "2026-11-20T12:00:00Z")], {})

    assert len(completion.full[0][EXTRA_NOTES]) == 11
    assert every.call_count == 1 and completion.request_count == 3


# --- writing --------------------------------------------------------------------------------------------------------


def test_an_update_puts_only_the_fields_to_change(router: respx.MockRouter, namespace: str) -> None:
    route = router.put("/api/v2/tickets/5").respond(json={"ticket": ticket(5, "2026-11-20T15:00:00Z", status=4)})

    answer = connector(namespace).update_ticket(
        "5", {"status": 4, "group_id": 21000188041, "updated_at": "x", "_psa_notes": []}
    )

    assert sent(route.calls.last) == {"status": 4, "group_id": 21000188041}
    assert answer["status"] == 4


def test_an_empty_patch_sends_nothing_and_reads_the_ticket(router: respx.MockRouter, namespace: str) -> None:
    router.get("/api/v2/tickets/5").respond(json={"ticket": ticket(5, "2026-11-20T15:00:00Z")})
    assert connector(namespace).update_ticket("5", {"id": 5})["id"] == 5


def metadata_routes(router: respx.MockRouter) -> dict[str, respx.Route]:
    fields = [
        {"name": "status", "choices": [{"id": 2, "value": "Open"}, {"id": 6, "value": "Awaiting vendor"}]},
        {"name": "priority", "choices": [{"id": 1, "value": "Low"}, {"id": 4, "value": "Urgent"}]},
        {"name": "source", "choices": {"Email": 1, "Phone": 3}},
    ]
    return {
        "form": router.get("/api/v2/ticket_form_fields").respond(json={"ticket_fields": fields}),
        "groups": router.get("/api/v2/groups").respond(
            json={"groups": [{"id": 21000188041, "name": "MSP Escalations"}]}
        ),
        "agents": router.get("/api/v2/agents").respond(
            json={
                "agents": [
                    {
                        "id": 21000322177,
                        "first_name": "Samir",
                        "last_name": "Haddad",
                        "email": "samir.haddad@msp.example",
                        "active": True,
                    }
                ]
            }
        ),
        "departments": router.get("/api/v2/departments").respond(
            json={"departments": [{"id": 21000094001, "name": "Globex Logistics"}]}
        ),
    }


def test_a_value_refused_as_unknown_refreshes_the_metadata_cache(router: respx.MockRouter, namespace: str) -> None:
    routes = metadata_routes(router)
    router.put("/api/v2/tickets/5").respond(
        400,
        json={
            "description": "Validation failed",
            "errors": [
                {
                    "field": "group_id",
                    "message": "There is no group matching the given group_id",
                    "code": "invalid_value",
                }
            ],
        },
    )
    fs = connector(namespace)
    fs.metadata()

    with pytest.raises(PermanentError) as caught:
        fs.update_ticket("5", {"group_id": 1})

    assert caught.value.vendor_message == (
        "Validation failed: group_id: There is no group matching the given group_id [invalid_value]"
    )
    assert [len(r.calls) for r in routes.values()] == [2, 2, 2, 2]


def test_metadata_comes_from_the_ticket_form_groups_agents_and_departments_and_is_cached(
    router: respx.MockRouter, namespace: str
) -> None:
    routes = metadata_routes(router)
    fs = connector(namespace)

    meta = fs.metadata()
    assert fs.metadata() is meta and len(routes["form"].calls) == 1

    assert [(c.value, c.label, c.is_closed) for c in meta.choices("status")] == [
        ("2", "Open", False),
        ("6", "Awaiting vendor", False),
    ]
    assert meta.value_of("source", "Phone") == "3"
    assert meta.label_of("impact", "3") == "High"  # not on this form: the documented codes
    assert meta.label_of("group_id", "21000188041") == "MSP Escalations"
    assert meta.choices("responder_id")[0].extra == {"email": "samir.haddad@msp.example"}
    assert meta.label_of("department_id", "21000094001") == "Globex Logistics"
    assert params(routes["groups"].calls.last) == {"per_page": "100"}
    fs.metadata(refresh=True)
    assert len(routes["form"].calls) == 2


def test_a_created_ticket_carries_the_marker_in_its_description(router: respx.MockRouter, namespace: str) -> None:
    route = router.post("/api/v2/tickets").respond(201, json={"ticket": ticket(77, "2026-11-20T15:00:00Z")})

    created = connector(namespace).create_ticket(
        {"subject": "VPN", "description": "<div>Drops hourly</div>", "email": "a@globex.example"}, marker=MARKER
    )

    assert created["id"] == 77
    assert sent(route.calls.last) == {
        "subject": "VPN",
        "description": f"<div>Drops hourly</div><div>{MARKER}</div>",
        "email": "a@globex.example",
        "status": 2,
        "priority": 1,
    }


def test_find_by_marker_scans_recent_tickets_newest_first(router: respx.MockRouter, namespace: str) -> None:
    route = router.get("/api/v2/tickets").respond(
        json={"tickets": [ticket(80, "2026-11-20T14:00:00Z", description="<div>x</div>"),
                          ticket(77, "2026-11-20T13:00:00Z", description=f"<div>VPN</div><div>{MARKER}</div>")]}
    )  # fmt: skip

    assert connector(namespace).find_by_marker(KEY) == "77"
    assert params(route.calls.last) == {
        "updated_since": "2026-11-18T15:00:00Z",
        "per_page": "100",
        "order_type": "desc",
    }


def test_notes_are_html_private_unless_public_and_carry_the_marker_once(
    router: respx.MockRouter, namespace: str
) -> None:
    listed = router.get("/api/v2/tickets/5/conversations").respond(json={"conversations": []})
    posted = router.post("/api/v2/tickets/5/notes").mock(
        side_effect=lambda request: httpx.Response(
            201, json={"conversation": {"id": 1, "user_id": 21000322900, **json.loads(request.content)}}
        )
    )
    fs = connector(namespace)

    fs.add_note("5", "Checked <the> DC01 log\nno 4625 since", kind=NoteKind.INTERNAL, marker=MARKER)
    fs.add_note("5", "Fixed, please retry.", kind=NoteKind.PUBLIC, marker="[psabridge:public0001]")
    fs.add_note("5", "Replaced the toner.", kind=NoteKind.RESOLUTION, marker="resolution01")

    bodies = [sent(call) for call in posted.calls]
    assert bodies == [
        {"body": f"<div>Checked &lt;the&gt; DC01 log<br>no 4625 since<br><br>{MARKER}</div>", "private": True},
        {"body": "<div>Fixed, please retry.<br><br>[psabridge:public0001]</div>", "private": False},
        {"body": "<div>Replaced the toner.<br><br>[psabridge:resolution01]</div>", "private": True},
    ]
    assert len(listed.calls) == 3
    assert fs.integration_user() == "21000322900"  # learned from the answers


def test_a_note_already_written_is_not_written_again(router: respx.MockRouter, namespace: str) -> None:
    existing = {"id": 4, "body": f"<div>Checked<br><br>{MARKER}</div>", "private": True}
    router.get("/api/v2/tickets/5/conversations").respond(json={"conversations": [existing]})
    assert connector(namespace).add_note("5", "Checked", kind=NoteKind.INTERNAL, marker=MARKER) == existing


def test_time_is_logged_as_hh_mm_for_the_agent_named(router: respx.MockRouter, namespace: str) -> None:
    metadata_routes(router)
    router.get("/api/v2/tickets/5/time_entries").respond(
        json={"time_entries": [{"id": 1, "note": "other [psabridge:zzzzzz999]"}]}
    )
    posted = router.post("/api/v2/tickets/5/time_entries").respond(201, json={"time_entry": {"id": 2}})
    entry = NewTimeEntry(
        minutes=95, note="Remote session", started_at=datetime(2026, 11, 20, 9, 30, 12, tzinfo=UTC),
        who="Samir.Haddad@msp.example", billable=False,
    )  # fmt: skip

    assert connector(namespace).add_time_entry("5", entry, marker=MARKER) == {"id": 2}

    assert sent(posted.calls.last) == {
        "time_spent": "01:35",
        "executed_at": "2026-11-20T09:30:12Z",
        "note": f"Remote session\n\n{MARKER}",
        "billable": False,
        "agent_id": 21000322177,
    }


# --- errors and budget ------------------------------------------------------------------------------------------------


def test_error_bodies_become_typed_errors_with_the_vendor_message(router: respx.MockRouter, namespace: str) -> None:
    router.get("/api/v2/tickets/1").respond(
        401, json={"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}
    )
    router.get("/api/v2/tickets/2").respond(
        403, json={"code": "access_denied", "message": "You are not authorized to perform this action."}
    )
    router.get("/api/v2/tickets/3").respond(404)
    fs = connector(namespace)

    with pytest.raises(AuthError) as unauthorized:
        fs.get_ticket("1")
    assert unauthorized.value.vendor_message == "You have to be logged in to perform this action. [invalid_credentials]"
    with pytest.raises(ConfigError) as forbidden:
        fs.get_ticket("2")
    assert "access_denied" in str(forbidden.value.vendor_message)
    with pytest.raises(NotFoundError):
        fs.get_ticket("3")
    with pytest.raises(PermanentError, match="not a Freshservice ticket id"):
        fs.get_ticket("INC-3")


def test_a_429_waits_inside_the_request_as_retry_after_says(
    router: respx.MockRouter, namespace: str, time: FakeTime
) -> None:
    refused = httpx.Response(
        429, json={"message": "The API rate limit ... has been exhausted"}, headers={"Retry-After": "55"}
    )
    router.get("/api/v2/tickets/9").mock(side_effect=[refused, httpx.Response(200, json={"ticket": ticket(9, "x")})])
    router.get("/api/v2/tickets/9/conversations").respond(json={"conversations": []})
    router.get("/api/v2/tickets/9/time_entries").respond(json={"time_entries": []})

    assert connector(namespace, time).get_ticket("9")["id"] == 9
    assert 55.0 <= max(time.sleeps) < 55.2  # a minute's limit is waited out, not handed back to the worker


def test_retry_after_may_also_be_a_date(router: respx.MockRouter, namespace: str, time: FakeTime) -> None:
    # FSSPEC describes Retry-After as a date-time; live clients read seconds (goFS): both are honoured.
    refused = httpx.Response(
        429, json={"message": "exhausted"}, headers={"Retry-After": "Fri, 20 Nov 2026 15:00:20 GMT"}
    )
    router.get("/api/v2/tickets/9").mock(side_effect=[refused, httpx.Response(200, json={"ticket": ticket(9, "x")})])
    router.get("/api/v2/tickets/9/conversations").respond(json={"conversations": []})
    router.get("/api/v2/tickets/9/time_entries").respond(json={"time_entries": []})

    connector(namespace, time).get_ticket("9")

    assert 20.0 <= max(time.sleeps) < 20.2


def test_a_longer_retry_after_goes_back_to_the_worker(router: respx.MockRouter, namespace: str) -> None:
    router.get("/api/v2/tickets/9").respond(429, json={"message": "exhausted"}, headers={"Retry-After": "300"})
    with pytest.raises(RateLimitedError) as caught:
        connector(namespace).get_ticket("9")
    assert caught.value.retry_after == 300


def test_the_budget_waits_when_the_account_has_no_credit_left(
    router: respx.MockRouter, namespace: str, time: FakeTime
) -> None:
    route = router.get("/api/v2/tickets/9").respond(
        json={"ticket": ticket(9, "2026-11-20T15:00:00Z")},
        headers={"X-RateLimit-Total": "200", "X-RateLimit-Remaining": "0"},
    )
    fs = connector(namespace, time)
    fs.update_ticket("9", {})
    assert time.sleeps == []

    fs.update_ticket("9", {})  # sent only once the account's minute has passed

    assert sum(time.sleeps) >= 60 and len(route.calls) == 2


@pytest.mark.parametrize(
    ("plan", "overall", "list_tickets", "ticket"),
    [(None, 200, 70, 80), ("starter", 100, 40, 50), ("Pro", 400, 120, 140), ("enterprise", 500, 140, 160)],
)
def test_the_budget_is_the_plans_overall_limit_and_its_sub_limits(
    namespace: str, plan: str | None, overall: int, list_tickets: int, ticket: int
) -> None:
    fs = connector(namespace, options={"plan": plan} if plan else {})
    limits = fs.http.budget.limits
    assert limits.requests is None  # no share of our own unless rate_budget says so
    assert {(w.name, w.limit, w.per, w.every) for w in limits.windows} == {
        ("account", overall, 61, True),
        ("list_tickets", list_tickets, 61, False),
        ("view_ticket", ticket, 61, False),
        ("create_ticket", ticket, 61, False),
        ("update_ticket", ticket, 61, False),
        ("list_agents", list_tickets, 61, False),
        ("list_requesters", list_tickets, 61, False),
    }
    assert FreshserviceConnector.budget_limits(fs.settings) == limits  # what `psabridge status` shows


@pytest.mark.parametrize(
    ("method", "path", "credits", "window"),
    [
        ("GET", "/api/v2/tickets?include=stats,requester&per_page=100", 5, "list_tickets"),
        ("GET", "/api/v2/tickets?per_page=100", 1, "list_tickets"),
        ("GET", "/api/v2/tickets/9?include=conversations,assets", 3, "view_ticket"),
        ("GET", "/api/v2/tickets/9", 1, "view_ticket"),
        ("PUT", "/api/v2/tickets/9", 1, "update_ticket"),
        ("POST", "/api/v2/tickets", 1, "create_ticket"),
        ("GET", "/api/v2/tickets/9/conversations?per_page=100", 1, None),
        ("GET", "/api/v2/tickets/9/time_entries?per_page=100", 1, None),
        ("GET", "/api/v2/agents?per_page=100", 1, "list_agents"),
        ("GET", "/api/v2/groups", 1, None),
    ],
)
def test_requests_cost_credits_as_freshservice_counts_them(
    namespace: str, method: str, path: str, credits: int, window: str | None
) -> None:
    fs = connector(namespace)
    request = httpx.Request(method, BASE + path)
    assert fs.charge_of(request, path.partition("?")[0]) == Charge(credits, (window,) if window else ())


def test_an_unknown_plan_is_a_configuration_error(namespace: str) -> None:
    with pytest.raises(ConfigError, match=r"options\.plan: Input should be 'starter', 'growth', 'pro' or 'enterprise'"):
        connector(namespace, options={"plan": "sprout"})
    with pytest.raises(ConfigError, match=r"options\.webhook_headr: Extra inputs are not permitted"):
        connector(namespace, options={"webhook_headr": "X-Token"})


# --- webhooks -------------------------------------------------------------------------------------------------------


def test_a_webhook_with_the_shared_secret_names_the_ticket_and_event(namespace: str) -> None:
    fs = connector(namespace)
    body = b'{"ticket_id": 42, "event": "ticket_updated", "updated_at": "2026-11-20T14:00:00Z", "subject": "ignored"}'

    event = fs.parse_webhook({"x-psabridge-secret": "hook-secret"}, body)

    assert (event.external_id, event.event) == ("42", "updated")
    assert event.occurred_at == datetime(2026, 11, 20, 14, tzinfo=UTC)
    assert event.delivery_id == fs.parse_webhook({"X-Psabridge-Secret": "hook-secret"}, body).delivery_id
    assert event.delivery_id != fs.parse_webhook({"X-Psabridge-Secret": "hook-secret"}, body + b" ").delivery_id


@pytest.mark.parametrize(
    ("payload", "external_id", "kind"),
    [
        ({"ticket_id": "INC-42", "event": "Ticket is raised"}, "42", "created"),
        ({"ticket_id": "#SR-7", "event": "note_added"}, "7", "note"),
        ({"freshdesk_webhook": {"ticket_id": "13", "triggered_event": "reply sent"}}, "13", "note"),
        ({"id": 5, "event": "ticket_deleted"}, "5", "deleted"),
        ({"ticket_id": 6}, "6", "updated"),
    ],
)
def test_webhook_bodies_as_admins_design_them(
    namespace: str, payload: dict[str, Any], external_id: str, kind: str
) -> None:
    event = connector(namespace).parse_webhook({"X-Psabridge-Secret": "hook-secret"}, json.dumps(payload).encode())
    assert (event.external_id, event.event) == (external_id, kind)


@pytest.mark.parametrize(
    "headers", [{}, {"X-Psabridge-Secret": "hook-secreT"}, {"X-Psabridge-Secret": ""}, {"Authorization": "hook-secret"}]
)
def test_a_webhook_without_the_right_secret_is_refused(namespace: str, headers: dict[str, str]) -> None:
    with pytest.raises(WebhookVerificationError):
        connector(namespace).parse_webhook(headers, b'{"ticket_id": 42}')


def test_the_secret_header_can_be_renamed_and_bad_bodies_are_refused(namespace: str) -> None:
    fs = connector(namespace, options={"webhook_header": "X-Globex-Token"})
    assert fs.parse_webhook({"x-globex-token": "hook-secret"}, b'{"ticket_id": 1}').external_id == "1"
    with pytest.raises(WebhookVerificationError):
        fs.parse_webhook({"X-Psabridge-Secret": "hook-secret"}, b'{"ticket_id": 1}')
    for body in (b"not json", b"[1]", b'{"ticket_id": "abc"}', b'{"event": "ticket_updated"}'):
        with pytest.raises(PermanentError):
            fs.parse_webhook({"X-Globex-Token": "hook-secret"}, body)
