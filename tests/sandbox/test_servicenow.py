"""The ServiceNow simulator read side, through a plain client following the docs: lists, paging, shapes, errors."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.credentials import SN_PASSWORD, SN_USERNAME
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.servicenow import ServiceNowSimulator
from psabridge_sandbox.world import World
from tests.sandbox.conftest import ANCHOR
from tests.sandbox.servicenow_client import TABLE, Client, list_all, make, valid

INCIDENTS = f"{TABLE}/incident"


def test_a_list_is_a_result_envelope_of_string_values_and_reference_links(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=30)

    response = client.get(INCIDENTS, params={"sysparm_limit": 5})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    valid("IncidentList", body)
    record = body["result"][0]
    assert all(isinstance(v, str) or set(v) == {"link", "value"} for v in record.values())
    caller = record["caller_id"]
    assert caller["link"] == f"http://sandbox.test/api/now/table/sys_user/{caller['value']}"
    assert record["work_notes"] == record["comments"] == ""
    assert response.headers["X-Total-Count"] == "30"


def test_the_link_header_names_first_next_and_last_pages_built_from_the_offset(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=25)

    first = client.get(INCIDENTS, params={"sysparm_limit": 10, "sysparm_query": "ORDERBYnumber"})
    middle = client.get(first.links["next"]["url"])
    last = client.get(first.links["last"]["url"])

    def offset(response_links: dict[str, dict[str, str]], rel: str) -> int:
        return int(parse_qs(urlsplit(response_links[rel]["url"]).query)["sysparm_offset"][0])

    assert set(first.links) == {"first", "next", "last"}
    assert (offset(first.links, "next"), offset(first.links, "last")) == (10, 20)
    assert set(middle.links) == {"first", "prev", "next", "last"}
    assert (offset(middle.links, "prev"), offset(middle.links, "next")) == (0, 20)
    assert set(last.links) == {"first", "prev", "last"}
    assert [len(r.json()["result"]) for r in (first, middle, last)] == [10, 10, 5]
    query = parse_qs(urlsplit(first.links["next"]["url"]).query)
    assert query["sysparm_query"] == ["ORDERBYnumber"] and query["sysparm_limit"] == ["10"]


def test_paging_returns_every_record_exactly_once_when_nothing_changes(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=1000)

    records, requests = list_all(
        client, "incident", {"sysparm_limit": 97, "sysparm_query": "ORDERBYsys_updated_on^ORDERBYsys_id"}
    )

    ids = [r["sys_id"] for r in records]
    assert len(ids) == len(set(ids)) == 1000
    assert requests == 11
    stamps = [(r["sys_updated_on"], r["sys_id"]) for r in records]
    assert stamps == sorted(stamps)


def test_offset_paging_by_update_time_repeats_and_skips_records_that_change_underneath(
    world: World, clock: FakeClock
) -> None:
    # pysnow#104: offset paging filtered and ordered on sys_updated_on returned 19,160 of 22,159 rows
    sn, client = make(world, clock, tickets=300, faults="churn")
    before = {row.id for row in sn.instance.tables["incident"]}

    records, _ = list_all(client, "incident", {"sysparm_limit": 20, "sysparm_query": "ORDERBYsys_updated_on"})

    seen = Counter(r["sys_id"] for r in records)
    repeated = {i for i, count in seen.items() if count > 1}
    skipped = before - set(seen)
    touched = {r["sys_id"] for r in client.get("/_sandbox/state").json()["incidents"]}  # changed since seeding
    # A record touched after it was read moves to the end and comes again; the records behind it shift down a page,
    # and as many are never read. The churn fault is seeded, so the counts are those of this seed.
    assert (len(repeated), len(skipped)) == (18, 18)
    assert repeated <= touched
    assert max(seen.values()) == 2


def test_the_default_limit_is_ten_thousand(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=5)

    response = client.get(INCIDENTS)

    assert "sysparm_limit=10000" in response.links["first"]["url"]
    assert len(response.json()["result"]) == 5


def test_fields_display_values_and_bare_references(world: World, clock: FakeClock) -> None:
    sn, client = make(world, clock, tickets=20)
    some = sn.instance.tables["incident"].rows()[3]
    url = f"{INCIDENTS}/{some.id}"

    raw = client.get(url, params={"sysparm_fields": "number,state,caller_id,nosuchfield"}).json()["result"]
    bare = client.get(url, params={"sysparm_fields": "caller_id", "sysparm_exclude_reference_link": "true"})
    labels = client.get(url, params={"sysparm_fields": "state,caller_id,priority", "sysparm_display_value": "true"})
    both = client.get(url, params={"sysparm_fields": "state,caller_id", "sysparm_display_value": "all"})

    assert list(raw) == ["number", "state", "caller_id"]
    caller = raw["caller_id"]["value"]
    assert bare.json()["result"] == {"caller_id": caller}
    user = client.get(f"{TABLE}/sys_user/{caller}").json()["result"]
    shown = labels.json()["result"]
    assert shown["caller_id"]["display_value"] == user["name"]
    assert shown["state"] in {"New", "In Progress", "On Hold", "Resolved", "Closed", "Canceled"}
    assert shown["priority"].split(" - ")[0] == some.data["priority"]
    assert both.json()["result"]["state"] == {"display_value": shown["state"], "value": raw["state"]}
    assert set(both.json()["result"]["caller_id"]) == {"display_value", "value", "link"}


@pytest.mark.parametrize(
    ("query", "check"),
    [
        ("state=2", lambda r: r["state"] == "2"),
        ("state!=7^active=true", lambda r: r["state"] != "7" and r["active"] == "true"),
        ("stateIN1,2^ORstate=3", lambda r: r["state"] in ("1", "2", "3")),
        ("impact=1^urgency=1", lambda r: r["priority"] == "1"),
        ("short_descriptionLIKEvpn", lambda r: "vpn" in r["short_description"].lower()),
        ("numberSTARTSWITHINC00100", lambda r: r["number"].startswith("INC00100")),
        ("assigned_toISEMPTY", lambda r: r["assigned_to"] == ""),
        ("assigned_toISNOTEMPTY", lambda r: r["assigned_to"] != ""),
        ("sys_updated_on>=2026-11-01 00:00:00", lambda r: r["sys_updated_on"] >= "2026-11-01 00:00:00"),
        ("priority<=2", lambda r: int(r["priority"]) <= 2),
        ("state=1^NQstate=3", lambda r: r["state"] in ("1", "3")),
    ],
)
def test_encoded_queries_filter_as_documented(world: World, clock: FakeClock, query: str, check: object) -> None:
    _, client = make(world, clock, tickets=200)

    matched = client.get(INCIDENTS, params={"sysparm_query": query}).json()["result"]
    everything = client.get(INCIDENTS).json()["result"]

    assert 0 < len(matched) < len(everything), query  # the query selects some of the records, not all
    assert all(check(r) for r in matched)  # type: ignore[operator]
    assert len(matched) == sum(1 for r in everything if check(r))  # type: ignore[operator]


def test_dot_walked_fields_and_relative_dates_in_queries(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=200)

    msp = client.get(INCIDENTS, params={"sysparm_query": "assignment_group.name=MSP Support"})
    dated = client.get(
        INCIDENTS,
        params={"sysparm_query": "sys_created_on>javascript:gs.dateGenerate('2026-11-01','00:00:00')"},
    )

    groups = {r["assignment_group"]["value"] for r in msp.json()["result"]}
    assert len(groups) == 1
    group = client.get(f"{TABLE}/sys_user_group/{groups.pop()}").json()["result"]
    assert group["name"] == "MSP Support"
    assert 0 < len(dated.json()["result"]) < 200
    assert all(r["sys_created_on"] > "2026-11-01 00:00:00" for r in dated.json()["result"])


def test_an_invalid_field_in_a_query_is_ignored_and_widens_the_result(world: World, clock: FakeClock) -> None:
    # docs: "If part of the query is invalid, such as by specifying an invalid field name, the instance ignores the
    # invalid part" (glide.invalid_query.returns_no_rows is false by default)
    _, client = make(world, clock, tickets=40)

    typo = client.get(INCIDENTS, params={"sysparm_query": "sys_updated_onn>=2099-01-01 00:00:00"})
    mixed = client.get(INCIDENTS, params={"sysparm_query": "state=7^no_such_field=1"})

    assert typo.headers["X-Total-Count"] == "40"
    assert all(r["state"] == "7" for r in mixed.json()["result"])
    assert 0 < len(mixed.json()["result"]) < 40


def test_ordering_ascending_and_descending(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=50)

    down = client.get(INCIDENTS, params={"sysparm_query": "ORDERBYDESCnumber", "sysparm_fields": "number"})
    mixed = client.get(INCIDENTS, params={"sysparm_query": "ORDERBYpriority^ORDERBYDESCsys_created_on"})

    numbers = [r["number"] for r in down.json()["result"]]
    assert numbers == sorted(numbers, reverse=True)
    rows = [(int(r["priority"]), r["sys_created_on"]) for r in mixed.json()["result"]]
    assert rows == sorted(rows, key=lambda pair: (pair[0], _descending(pair[1])))


def _descending(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def test_the_seeded_instance_has_the_msp_support_group_and_reference_records(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=300)

    groups = {g["name"]: g["sys_id"] for g in client.get(f"{TABLE}/sys_user_group").json()["result"]}
    msp = client.get(INCIDENTS, params={"sysparm_query": f"assignment_group={groups['MSP Support']}"})
    choices = client.get(
        f"{TABLE}/sys_choice", params={"sysparm_query": "name=incident^element=state^ORDERBYsequence"}
    ).json()
    companies = client.get(f"{TABLE}/core_company", params={"sysparm_query": "customer=true"}).json()["result"]
    cis = client.get(f"{TABLE}/cmdb_ci", params={"sysparm_limit": 1}).json()["result"]

    assert {"Service Desk", "MSP Support"} <= set(groups)
    assert int(msp.headers["X-Total-Count"]) > 50  # a good share of the seeded incidents, for the demo's link
    valid("ChoiceList", choices)
    assert [(c["value"], c["label"]) for c in choices["result"]][:3] == [
        ("1", "New"),
        ("2", "In Progress"),
        ("3", "On Hold"),
    ]
    assert [c["name"] for c in companies] == ["Acme Dental"]
    assert [ci["name"] for ci in cis] == ["ACME-DC01"]


def test_journal_entries_are_rows_of_sys_journal_field(world: World, clock: FakeClock) -> None:
    sn, client = make(world, clock, tickets=30)
    incident = next(r for r in sn.instance.tables["incident"] if sn.instance.journal_of.get(r.id))

    body = client.get(
        f"{TABLE}/sys_journal_field",
        params={"sysparm_query": f"element_id={incident.id}^ORDERBYsys_created_on"},
    ).json()

    valid("JournalList", body)
    assert len(body["result"]) == len(sn.instance.journal_of[incident.id])
    assert {r["element"] for r in body["result"]} <= {"comments", "work_notes"}
    assert all(r["element_id"] == incident.id and r["name"] == "incident" for r in body["result"])
    stamps = [r["sys_created_on"] for r in body["result"]]
    assert stamps == sorted(stamps)
    shown = client.get(
        f"{INCIDENTS}/{incident.id}", params={"sysparm_fields": "comments,work_notes", "sysparm_display_value": "true"}
    ).json()["result"]
    newest = body["result"][-1]
    assert shown[newest["element"]].startswith(f"{newest['sys_created_on']} - ")
    assert newest["value"] in shown[newest["element"]]


def test_journal_and_time_rows_of_many_incidents_come_from_one_query_with_in(world: World, clock: FakeClock) -> None:
    sn, client = make(world, clock, tickets=40)
    incidents = [str(r.id) for r in sn.instance.tables["incident"]][:30]
    for table, field, index in (
        ("sys_journal_field", "element_id", sn.instance.journal_of),
        ("task_time_worked", "task", sn.instance.time_of),
    ):
        query = f"{field}IN{','.join(incidents)}^ORDERBYsys_created_on^ORDERBYsys_id"
        rows, _ = list_all(client, table, {"sysparm_query": query, "sysparm_exclude_reference_link": "true"})
        expected = {str(row_id) for incident in incidents for row_id in index.get(incident, ())}
        assert expected and {r["sys_id"] for r in rows} == expected
        stamps = [(r["sys_created_on"], r["sys_id"]) for r in rows]
        assert stamps == sorted(stamps)


def test_a_request_line_over_tomcats_8_kb_is_refused(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=5)
    many = ",".join(f"{i:032x}" for i in range(260))  # 260 sys_ids: about 8.6 KB
    refused = client.get(f"{TABLE}/sys_journal_field", params={"sysparm_query": f"element_idIN{many}"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "Request header is too large"
    fewer = ",".join(f"{i:032x}" for i in range(150))
    assert client.get(f"{TABLE}/sys_journal_field", params={"sysparm_query": f"element_idIN{fewer}"}).status_code == 200


def test_limits_off_lifts_the_rate_limit_rule(world: World, clock: FakeClock) -> None:
    context = SandboxContext(
        service=service("servicenow"), world=world, anchor=ANCHOR, tickets=5, clock=clock, limits=False
    )
    client = Client(ServiceNowSimulator(context, rate_limit=2).simulator)
    answers = [client.get(f"{TABLE}/sys_user_group") for _ in range(4)]
    assert {a.status_code for a in answers} == {200}
    assert answers[-1].headers["X-RateLimit-Limit"] == "1000000000"


def test_a_missing_record_is_a_404_in_the_error_shape(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=5)

    response = client.get(f"{INCIDENTS}/0123456789abcdef0123456789abcdef")

    assert response.status_code == 404
    valid("Error", response.json())
    assert response.json() == {
        "error": {"message": "No Record found", "detail": "Record doesn't exist or ACL restricts the record retrieval"},
        "status": "failure",
    }


@pytest.mark.parametrize(
    "auth",
    [
        None,
        (SN_USERNAME, "wrong"),
        ("nobody", SN_PASSWORD),
    ],
)
def test_bad_or_missing_credentials_are_a_401(world: World, clock: FakeClock, auth: tuple[str, str] | None) -> None:
    sn, client = make(world, clock, tickets=5)

    response = client.get(INCIDENTS, auth=auth) if auth else client.get(INCIDENTS, auth=_NoAuth())

    assert response.status_code == 401
    assert response.json() == {
        "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
        "status": "failure",
    }
    assert response.headers["WWW-Authenticate"].lower().startswith("basic")
    assert [(r.method, r.path, r.status) for r in sn.simulator.recorder.find(status=401)] == [
        ("GET", "/api/now/table/incident", 401)
    ]


def test_a_malformed_basic_header_is_a_401(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=5)

    response = client.get(INCIDENTS, auth=_NoAuth(), headers={"Authorization": "Basic !!!"})
    other = client.get(
        INCIDENTS, auth=_NoAuth(), headers={"Authorization": "Bearer " + base64.b64encode(b"x").decode()}
    )

    assert response.status_code == other.status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (f"{TABLE}/no_such_table", {}, "Invalid table no_such_table"),
        (INCIDENTS, {"sysparm_offset": "-1"}, "Negative offset is not supported"),
        ("/api/now/tables/incident", {}, "Requested URI does not represent any resource"),
        ("/api/now/v9/table/incident", {}, "Requested URI does not represent any resource"),
    ],
)
def test_bad_requests_are_a_400_in_the_error_shape(
    world: World, clock: FakeClock, path: str, params: dict[str, str], message: str
) -> None:
    _, client = make(world, clock, tickets=5)

    response = client.get(path, params=params)

    assert response.status_code == 400
    valid("Error", response.json())
    assert response.json()["error"]["message"] == message


def test_the_versioned_path_serves_the_same_records(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=5)

    latest = client.get(INCIDENTS).json()
    v2 = client.get("/api/now/v2/table/incident").json()

    assert latest == v2


def test_the_control_plane_reports_counts_and_pages(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=12)
    client.get(INCIDENTS, params={"sysparm_limit": 5, "sysparm_query": "ORDERBYnumber^bogus=1"})

    state = client.get("/_sandbox/state").json()

    assert state["service"] == "servicenow"
    assert state["counts"]["incident"] == 12
    assert state["incidents"] == []  # nothing changed since seeding
    page = state["pages"][-1]
    assert (page["table"], page["offset"], page["limit"], page["returned"], page["total"]) == ("incident", 0, 5, 5, 12)
    assert page["ignored"] == ["bogus=1"]
    assert page["principal"] == SN_USERNAME


class _NoAuth(httpx.Auth):
    """No credentials at all: the request goes out unchanged."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        yield request
