"""The ConnectWise simulator, driven by a plain HTTP client that follows only ConnectWise's documentation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import Counter
from importlib import resources
from typing import Any

import httpx
import jsonschema
import pytest

from psabridge_sandbox import connectwise as cw_module
from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.connectwise import ConnectWiseSimulator
from psabridge_sandbox.credentials import CW_CLIENT_ID, CW_COMPANY, CW_PRIVATE_KEY, CW_PUBLIC_KEY
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.world import World

from .conftest import ANCHOR, AsgiClient

API = "/v4_6_release/apis/3.0"
TOKEN = base64.b64encode(f"{CW_COMPANY}+{CW_PUBLIC_KEY}:{CW_PRIVATE_KEY}".encode()).decode()
HEADERS = {"Authorization": f"Basic {TOKEN}", "clientId": CW_CLIENT_ID}
SPEC = json.loads(resources.files("psabridge_sandbox").joinpath("specs/connectwise.json").read_text())


def valid(body: Any, definition: str) -> Any:
    """``body`` after checking it against a definition of the published spec (extracted copy)."""
    jsonschema.validate(
        body,
        {"$ref": f"#/definitions/{definition}", "definitions": SPEC["definitions"]},
        cls=jsonschema.Draft7Validator,
    )
    return body


class Receiver:
    """Callback deliveries, received through an httpx.MockTransport."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        return httpx.Response(200)


def make(world: World, clock: FakeClock, *, tickets: int = 60, faults: str = "none", receiver: Receiver | None = None,
         seed: int = 0) -> ConnectWiseSimulator:  # fmt: skip
    context = SandboxContext(
        service=service("connectwise"), world=world, anchor=ANCHOR, seed=seed, tickets=tickets, faults=faults,
        clock=clock,
    )  # fmt: skip
    transport = httpx.MockTransport(receiver.handle) if receiver else None
    return ConnectWiseSimulator(context, webhook_transport=transport)


@pytest.fixture
def cw(world: World, clock: FakeClock) -> ConnectWiseSimulator:
    return make(world, clock)


@pytest.fixture
def client(cw: ConnectWiseSimulator) -> AsgiClient:
    return AsgiClient(cw.simulator)


def get(client: AsgiClient, path: str, **params: Any) -> httpx.Response:
    return client.get(API + path, headers=HEADERS, params=params)


# --- listing and paging -----------------------------------------------------------------------------------------------


def test_list_answers_a_plain_array_of_spec_valid_tickets_25_by_default_with_link_relations(
    client: AsgiClient,
) -> None:
    response = get(client, "/service/tickets", orderBy="id asc")

    assert response.status_code == 200
    tickets = valid(response.json(), "TicketList")
    assert len(tickets) == 25
    assert set(response.links) == {"next", "last"}
    assert "page=2" in response.links["next"]["url"] and "orderBy=id+asc" in response.links["next"]["url"]
    assert "page=3" in response.links["last"]["url"]
    middle = client.get(response.links["next"]["url"], headers=HEADERS)
    assert set(middle.links) == {"first", "prev", "next", "last"}
    ticket = tickets[0]
    assert {"id", "summary", "board", "status", "company", "priority", "_info"} <= set(ticket)
    assert set(ticket["board"]) == {"id", "name", "_info"}
    assert ticket["board"]["_info"]["board_href"].startswith(
        "http://sandbox.test/v4_6_release/apis/3.0/service/boards/"
    )
    assert ticket["_info"]["lastUpdated"].endswith("Z") and len(ticket["_info"]["lastUpdated"]) == 20
    assert "initialDescription" not in ticket and "description" not in ticket


def test_page_size_is_cut_to_1000_and_one_page_has_no_link_header(world: World, clock: FakeClock) -> None:
    client = AsgiClient(make(world, clock, tickets=1200).simulator)

    first = get(client, "/service/tickets", pageSize=5000, orderBy="id")
    assert len(first.json()) == 1000
    assert "pageSize=1000" in first.links["next"]["url"]
    single = get(client, "/service/tickets", pageSize=5, conditions="id <= 1003")
    assert len(single.json()) == 3 and "link" not in single.headers
    assert get(client, "/service/tickets", pageSize="many").status_code == 400


def test_following_next_links_returns_every_ticket_exactly_once(world: World, clock: FakeClock) -> None:
    client = AsgiClient(make(world, clock, tickets=450).simulator)
    seen: list[int] = []
    url: str | None = f"{API}/service/tickets?pageSize=100&orderBy=_info/lastUpdated asc, id asc"
    while url:
        response = client.get(url, headers=HEADERS)
        seen.extend(t["id"] for t in response.json())
        url = response.links.get("next", {}).get("url")

    assert len(seen) == 450 == len(set(seen))
    assert get(client, "/service/tickets/count").json() == valid({"count": 450}, "Count")


def test_paging_by_page_number_skips_or_repeats_tickets_that_change_underneath(world: World, clock: FakeClock) -> None:
    # The real anomaly: offset paging ordered by lastUpdated, while tickets are touched between pages.
    cw = make(world, clock, tickets=300, faults="churn", seed=3)
    client = AsgiClient(cw.simulator)
    before = set(cw.tickets.ids())
    seen: list[int] = []
    for page in range(1, 7):
        clock.advance(5)
        seen.extend(t["id"] for t in get(client, "/service/tickets", pageSize=50, page=page,
                                         orderBy="_info/lastUpdated asc, id asc").json())  # fmt: skip

    repeated = [i for i, n in Counter(seen).items() if n > 1]
    missed = before - set(seen)
    assert repeated or missed
    assert len(cw.tickets) > len(before)  # churn also created tickets while we paged


def test_conditions_follow_the_documented_syntax(client: AsgiClient, cw: ConnectWiseSimulator) -> None:
    rows = cw.tickets.rows()
    on_board_2 = [r.id for r in rows if r.data["board"]["id"] == 2]
    open_ones = [r.id for r in rows if not r.data["closedFlag"]]
    cut = sorted(r.updated for r in rows)[len(rows) // 2]
    later = [r.id for r in rows if r.updated > cut]

    def ids(conditions: str) -> list[int]:
        response = get(client, "/service/tickets", conditions=conditions, pageSize=1000, orderBy="id")
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()]

    assert ids("board/id = 2") == sorted(on_board_2)
    assert ids("Board/ID=2") == sorted(on_board_2)  # field names in any case
    assert ids("closedFlag = false") == sorted(open_ones)
    stamp = cut.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(f"_info/lastUpdated > [{stamp}]") == sorted(later)
    assert ids(f"lastUpdated > [{stamp}]") == sorted(later)  # the older alias
    assert ids(f"board/id = 2 and (closedFlag = false or _info/lastUpdated > [{stamp}])") == sorted(
        set(on_board_2) & (set(open_ones) | set(later))
    )
    assert ids('status/name = "new"') == sorted(r.id for r in rows if r.data["status"]["name"] == "New")
    assert ids('company/identifier in ("AcmeDental", "Initech")') == sorted(
        r.id for r in rows if r.data["company"]["identifier"] in ("AcmeDental", "Initech")
    )
    assert ids('summary like "%printer%"') == sorted(r.id for r in rows if "printer" in r.data["summary"].lower())
    assert ids("owner/id = null") == sorted(r.id for r in rows if "owner" not in r.data)


@pytest.mark.parametrize(
    ("conditions", "complaint"),
    [
        ('lastUpdated > "2026-01-01T00:00:00Z"', "brackets"),
        ("summary = printer", "double quotes"),
        ("nosuchfield = 1", "unknown field"),
        ("board/id = 2 and", "end"),
    ],
)
def test_bad_conditions_are_refused_with_a_connectwise_error_body(
    client: AsgiClient, conditions: str, complaint: str
) -> None:
    response = get(client, "/service/tickets", conditions=conditions)

    assert response.status_code == 400
    body = valid(response.json(), "Error")
    assert body["code"] == "InvalidObject" and complaint in body["message"]


# --- reading one ticket, notes, metadata ----------------------------------------------------------------------------


def test_the_description_is_readable_only_as_the_first_discussion_note(
    client: AsgiClient, cw: ConnectWiseSimulator
) -> None:
    ticket_id = cw.tickets.ids()[0]
    ticket = valid(get(client, f"/service/tickets/{ticket_id}").json(), "Ticket")
    notes = valid(get(client, f"/service/tickets/{ticket_id}/notes").json(), "ServiceNoteList")

    assert "initialDescription" not in ticket
    first = notes[0]
    assert first["detailDescriptionFlag"] is True and first["ticketId"] == ticket_id
    assert first["text"] == cw._seeds[int(ticket_id)].description
    assert all(
        sum(n[f] for f in ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")) == 1 for n in notes
    )
    assert get(client, "/service/tickets/999999").status_code == 404
    assert valid(get(client, "/service/tickets/999999").json(), "Error")["code"] == "NotFound"


def test_boards_have_their_own_statuses_and_the_lists_match_the_spec(client: AsgiClient) -> None:
    boards = valid(get(client, "/service/boards", pageSize=1000).json(), "BoardList")
    names = {b["name"] for b in boards}
    assert {"Service Desk", "Acme Service", "Globex Service"} <= names and "MSP Support" not in names
    first = valid(get(client, f"/service/boards/{boards[0]['id']}/statuses").json(), "StatusList")
    second = valid(get(client, f"/service/boards/{boards[1]['id']}/statuses").json(), "StatusList")
    assert [s["name"] for s in first] == [s["name"] for s in second]
    assert not {s["id"] for s in first} & {s["id"] for s in second}
    assert [s["name"] for s in first if s["defaultFlag"]] == ["New"]
    assert [s["name"] for s in first if s["closedStatus"]] == [">Closed", "Cancelled"]
    priorities = valid(get(client, "/service/priorities").json(), "PriorityList")
    assert "Priority 1 - Emergency Response" in {p["name"] for p in priorities}
    valid(get(client, "/service/sources").json(), "SourceList")
    assert get(client, "/service/boards/999/statuses").status_code == 404


# --- writing --------------------------------------------------------------------------------------------------------


def test_patch_takes_a_json_patch_array_with_id_references(client: AsgiClient, cw: ConnectWiseSimulator) -> None:
    ticket_id = cw.tickets.ids()[3]
    board = cw.tickets[ticket_id].data["board"]["id"]
    closed = next(s["id"] for s in cw.catalog.statuses[board] if s["name"] == ">Closed")
    before = cw.tickets[ticket_id].updated
    clock: FakeClock = cw.simulator.clock  # type: ignore[assignment]
    clock.advance(30)

    response = client.request(
        "PATCH",
        f"{API}/service/tickets/{ticket_id}",
        headers=HEADERS,
        json=[
            {"op": "replace", "path": "status", "value": {"id": closed}},
            {"op": "replace", "path": "/summary", "value": "Printer fixed"},
            {"op": "replace", "path": "priority/id", "value": 6},
        ],
    )

    assert response.status_code == 200, response.text
    ticket = valid(response.json(), "Ticket")
    assert ticket["status"]["name"] == ">Closed" and ticket["closedFlag"] is True and "closedDate" in ticket
    assert ticket["summary"] == "Printer fixed" and ticket["priority"]["name"] == "Priority 1 - Emergency Response"
    assert cw.tickets[ticket_id].updated > before
    single = client.request("PATCH", f"{API}/service/tickets/{ticket_id}", headers=HEADERS,
                            json={"op": "replace", "path": "summary", "value": "x"})  # fmt: skip
    assert single.status_code == 400  # the 2015 spec's single object is refused today


def test_write_errors_have_connectwise_bodies(client: AsgiClient, cw: ConnectWiseSimulator) -> None:
    ticket_id = cw.tickets.ids()[0]
    board = cw.tickets[ticket_id].data["board"]["id"]
    other_board_status = cw.catalog.statuses[board % len(cw.catalog.boards) + 1][0]["id"]

    def patch(ops: list[dict[str, Any]]) -> httpx.Response:
        return client.request("PATCH", f"{API}/service/tickets/{ticket_id}", headers=HEADERS, json=ops)

    stale = patch([{"op": "replace", "path": "status", "value": {"id": other_board_status}}])
    assert stale.status_code == 400
    assert valid(stale.json(), "Error") == {
        "code": "InvalidObject",
        "message": "ticket object is invalid",
        "errors": [
            {
                "code": "NotFound",
                "message": f"Service Status {other_board_status} not found for Service Board {board}",
                "resource": "ticket",
                "field": "status/id",
            }
        ],
    }
    long = patch([{"op": "replace", "path": "summary", "value": "x" * 101}])
    assert long.json()["errors"][0]["code"] == "MaxLengthField"
    assert patch([{"op": "replace", "path": "severity", "value": "Extreme"}]).status_code == 400
    assert patch([{"op": "replace", "path": "noSuchField", "value": 1}]).status_code == 400


def test_put_replaces_the_ticket_and_requires_summary_and_company(client: AsgiClient, cw: ConnectWiseSimulator) -> None:
    ticket_id = cw.tickets.ids()[1]
    current = get(client, f"/service/tickets/{ticket_id}").json()
    current["summary"] = "Replaced"
    del current["owner"]

    replaced = client.put(f"{API}/service/tickets/{ticket_id}", headers=HEADERS, json=current)

    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["summary"] == "Replaced" and "owner" not in replaced.json()
    missing = client.put(f"{API}/service/tickets/{ticket_id}", headers=HEADERS, json={"summary": "x"})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "company"


def test_post_creates_a_ticket_whose_initial_description_becomes_a_note(client: AsgiClient) -> None:
    body = {
        "summary": "VPN drops hourly",
        "company": {"identifier": "AcmeDental"},
        "board": {"name": "Acme Service"},
        "priority": {"id": 8},
        "initialDescription": "Since Monday the VPN drops every hour.",
        "initialInternalAnalysis": "Probably the DPD timer.",
        "externalXRef": "[psabridge:abc123]",
    }
    created = client.post(f"{API}/service/tickets", headers=HEADERS, json=body)

    assert created.status_code == 201, created.text
    ticket = valid(created.json(), "Ticket")
    assert "initialDescription" not in ticket and ticket["status"]["name"] == "New"
    assert ticket["board"]["name"] == "Acme Service" and ticket["company"]["id"] == 250
    notes = get(client, f"/service/tickets/{ticket['id']}/notes").json()
    assert [(n["text"], n["detailDescriptionFlag"], n["internalAnalysisFlag"]) for n in notes] == [
        ("Since Monday the VPN drops every hour.", True, False),
        ("Probably the DPD timer.", False, True),
    ]
    found = get(client, "/service/tickets", conditions='externalXRef = "[psabridge:abc123]"').json()
    assert [t["id"] for t in found] == [ticket["id"]]
    refused = client.post(f"{API}/service/tickets", headers=HEADERS, json={"summary": "no company"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "company"


def test_notes_take_exactly_the_documented_flags_and_move_the_ticket(
    client: AsgiClient, cw: ConnectWiseSimulator
) -> None:
    ticket_id = cw.tickets.ids()[2]
    before = cw.tickets[ticket_id].updated
    clock: FakeClock = cw.simulator.clock  # type: ignore[assignment]
    clock.advance(60)

    note = client.post(f"{API}/service/tickets/{ticket_id}/notes", headers=HEADERS,
                       json={"text": "Rebuilt the profile.", "resolutionFlag": True})  # fmt: skip

    assert note.status_code == 201
    created = valid(note.json(), "ServiceNote")
    assert (
        created["resolutionFlag"] is True and created["createdBy"] == "psabridge" and created["ticketId"] == ticket_id
    )
    assert get(client, f"/service/tickets/{ticket_id}/notes").json()[-1]["id"] == created["id"]
    assert cw.tickets[ticket_id].updated > before
    flagless = client.post(f"{API}/service/tickets/{ticket_id}/notes", headers=HEADERS, json={"text": "x"})
    assert flagless.status_code == 400


def test_time_entries_are_charged_to_tickets_and_listed_by_conditions(
    client: AsgiClient, cw: ConnectWiseSimulator
) -> None:
    ticket_id = cw.tickets.ids()[4]
    body = {
        "chargeToId": ticket_id,
        "chargeToType": "ServiceTicket",
        "member": {"identifier": "dwhitfield"},
        "timeStart": "2026-11-20T14:00:00Z",
        "timeEnd": "2026-11-20T14:45:00Z",
        "notes": "Remote session",
        "billableOption": "Billable",
    }
    created = client.post(f"{API}/time/entries", headers=HEADERS, json=body)

    assert created.status_code == 201, created.text
    entry = valid(created.json(), "TimeEntry")
    assert entry["actualHours"] == 0.75 and entry["member"]["identifier"] == "dwhitfield"
    listed = get(client, "/time/entries", conditions=f'chargeToType = "ServiceTicket" and chargeToId = {ticket_id}')
    assert entry["id"] in [e["id"] for e in valid(listed.json(), "TimeEntryList")]
    missing = client.post(f"{API}/time/entries", headers=HEADERS, json={**body, "chargeToId": 999999})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "chargeToId"
    assert client.post(f"{API}/time/entries", headers=HEADERS, json={**body, "timeStart": None}).status_code == 400


def test_time_entries_of_many_tickets_come_from_one_list_by_charge_to_id_in(
    client: AsgiClient, cw: ConnectWiseSimulator
) -> None:
    ids = cw.tickets.ids()[:30]
    expected = sorted(entry["id"] for ticket_id in ids for entry in cw.time_of(int(ticket_id)))
    assert expected, "the seed must give some of these tickets time entries"
    listed = get(
        client,
        "/time/entries",
        conditions=f'chargeToType = "ServiceTicket" and chargeToId in ({", ".join(str(i) for i in ids)})',
        orderBy="id asc",
        pageSize=1000,
    )
    assert sorted(e["id"] for e in valid(listed.json(), "TimeEntryList")) == expected
    assert {e["chargeToId"] for e in listed.json()} <= set(ids)


def test_a_list_record_is_the_whole_ticket_as_by_id(client: AsgiClient, cw: ConnectWiseSimulator) -> None:
    listed = {t["id"]: t for t in get(client, "/service/tickets", pageSize=1000, orderBy="id asc").json()}
    ticket_id = cw.tickets.ids()[7]
    assert get(client, f"/service/tickets/{ticket_id}").json() == listed[ticket_id]


def test_the_codebase_is_discovered_at_the_site_root_without_credentials(client: AsgiClient) -> None:
    info = client.get(f"/login/companyinfo/{CW_COMPANY.upper()}")
    assert info.status_code == 200
    assert info.json()["Codebase"] == "v4_6_release/"
    assert "/" + info.json()["Codebase"] + "apis/3.0" == API
    unknown = client.get("/login/companyinfo/nobody")
    assert unknown.status_code == 404 and unknown.json()["code"] == "NotFound"


# --- auth, errors, limits -------------------------------------------------------------------------------------------


def test_auth_needs_the_client_id_header_and_the_right_keys(client: AsgiClient) -> None:
    no_client_id = client.get(f"{API}/service/tickets", headers={"Authorization": HEADERS["Authorization"]})
    assert no_client_id.status_code == 400 and "clientId" in no_client_id.json()["message"]
    wrong = base64.b64encode(f"{CW_COMPANY}+{CW_PUBLIC_KEY}:nope".encode()).decode()
    refused = client.get(f"{API}/service/tickets", headers={**HEADERS, "Authorization": f"Basic {wrong}"})
    assert refused.status_code == 401
    assert valid(refused.json(), "Error")["code"] == "UserNotAuthenticated"
    assert client.get(f"{API}/service/tickets", headers={"clientId": CW_CLIENT_ID}).status_code == 401


def test_the_cloudflare_limit_answers_429_with_retry_after(
    world: World, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cw_module, "CLOUDFLARE_LIMIT", 3)
    client = AsgiClient(make(world, clock, tickets=5).simulator)

    statuses = [get(client, "/service/priorities").status_code for _ in range(4)]
    refused = get(client, "/service/priorities")

    assert statuses == [200, 200, 200, 429]
    assert refused.headers["content-type"].startswith("text/html") and "Error 1015" in refused.text
    assert int(refused.headers["Retry-After"]) > 0
    clock.advance(61)
    assert get(client, "/service/priorities").status_code == 200


def test_limits_off_lifts_the_cloudflare_limit(world: World, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cw_module, "CLOUDFLARE_LIMIT", 3)
    context = SandboxContext(
        service=service("connectwise"), world=world, anchor=ANCHOR, tickets=5, clock=clock, limits=False
    )
    client = AsgiClient(ConnectWiseSimulator(context).simulator)
    assert {get(client, "/service/priorities").status_code for _ in range(6)} == {200}


def test_injected_500s_say_timeout_as_connectwise_does(world: World, clock: FakeClock) -> None:
    cw = make(world, clock, tickets=5)
    cw.simulator.faults.update({"error_rate": 1.0, "error_statuses": [500]})

    response = get(AsgiClient(cw.simulator), "/service/tickets")

    assert response.status_code == 500 and "timeout" in valid(response.json(), "Error")["message"].lower()


# --- callbacks ------------------------------------------------------------------------------------------------------


def register(client: AsgiClient, **fields: Any) -> dict[str, Any]:
    body = {"url": "https://receiver.example/cw", "type": "Ticket", "level": "Owner", "description": "test", **fields}
    response = client.post(f"{API}/system/callbacks", headers=HEADERS, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_callbacks_are_signed_with_the_key_served_at_key_url(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    cw = make(world, clock, tickets=20, receiver=receiver)
    client = AsgiClient(cw.simulator)
    callback = register(client)
    ticket_id = cw.tickets.ids()[0]

    client.request("PATCH", f"{API}/service/tickets/{ticket_id}", headers=HEADERS,
                   json=[{"op": "replace", "path": "summary", "value": "Changed"}])  # fmt: skip
    assert cw.simulator.webhooks.flush(10)

    (delivery,) = receiver.requests
    payload = json.loads(delivery.content)
    assert payload["Action"] == "updated" and payload["Type"] == "ticket" and payload["ID"] == ticket_id
    assert payload["CallbackObjectRecId"] == callback["id"]
    assert json.loads(payload["Entity"])["summary"] == "Changed"  # Entity is a JSON string
    key_url = httpx.URL(payload["Metadata"]["key_url"])
    key = client.get(key_url.raw_path.decode()).json()["signing_key"]  # no credentials needed
    expected = base64.b64encode(
        hmac.new(hashlib.sha256(key.encode()).digest(), delivery.content, hashlib.sha256).digest()
    ).decode()
    assert delivery.headers["x-content-signature"] == expected


def test_skip_callback_levels_and_deletion_decide_which_changes_call_back(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    cw = make(world, clock, tickets=40, receiver=receiver)
    client = AsgiClient(cw.simulator)
    rows = cw.tickets.rows()
    on_board = next(r for r in rows if r.data["board"]["id"] == 2)
    elsewhere = next(r for r in rows if r.data["board"]["id"] != 2)
    board_level = register(client, level="Board", objectId=2)

    def touch(ticket_id: Any, *extra: dict[str, Any]) -> None:
        ops = [{"op": "replace", "path": "customerUpdatedFlag", "value": True}, *extra]
        client.request("PATCH", f"{API}/service/tickets/{ticket_id}", headers=HEADERS, json=ops).raise_for_status()

    touch(on_board.id, {"op": "replace", "path": "skipCallback", "value": True})
    touch(elsewhere.id)
    touch(on_board.id)
    assert cw.simulator.webhooks.flush(10)
    assert [json.loads(r.content)["ID"] for r in receiver.requests] == [on_board.id]

    assert client.delete(f"{API}/system/callbacks/{board_level['id']}", headers=HEADERS).status_code == 204
    touch(on_board.id)
    assert cw.simulator.webhooks.flush(10)
    assert len(receiver.requests) == 1
    assert get(client, "/system/callbacks").json() == []
