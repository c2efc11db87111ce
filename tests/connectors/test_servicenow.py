"""The ServiceNow connector's exact wire format, against strict respx routers (every route called, nothing else)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx

from psabridge.connectors.base import NewTimeEntry
from psabridge.connectors.http import FailureType, HttpRuntime
from psabridge.connectors.servicenow import ServiceNowConnector
from psabridge.errors import (
    AuthError,
    ConfigError,
    MappingError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    WebhookVerificationError,
)
from psabridge.model import NoteKind

from .conftest import FakeTime, make_settings

BASE = "https://acme.service-now.com"
TABLE = f"{BASE}/api/now/table"
SECRETS = {"username": "psabridge.integration", "password": "pw-1", "webhook_secret": "hook-secret"}
BASIC = "Basic " + base64.b64encode(b"psabridge.integration:pw-1").decode()
MARKER = "[psabridge:abc123def456]"
ORDER = "ORDERBYsys_updated_on^ORDERBYsys_id"
ID = "9d385017c611228701d22104cc95c371"


def sid(n: int) -> str:
    return f"{n:032x}"


def incident(n: int, updated: str, **fields: Any) -> dict[str, Any]:
    return {"sys_id": sid(n), "number": f"INC{n:07d}", "sys_updated_on": updated, "sys_mod_count": "1", **fields}


def listing(records: list[dict[str, Any]], total: int | None = None) -> httpx.Response:
    headers = {"X-Total-Count": str(len(records) if total is None else total)}
    return httpx.Response(200, json={"result": records}, headers=headers)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=True) as mock:
        yield mock


def make(namespace: str, fake_time: FakeTime | None = None, **fields: Any) -> ServiceNowConnector:
    settings = make_settings(name="acme-snow", system="servicenow", base_url=BASE, secrets=SECRETS, **fields)
    fake = fake_time or FakeTime()
    runtime = HttpRuntime(namespace=namespace, sleep=fake.sleep, clock=fake.clock, now=fake.now)
    return ServiceNowConnector(settings, runtime=runtime)


def params(call: Any) -> dict[str, str]:
    return dict(call.request.url.params)


def body(call: Any) -> Any:
    return json.loads(call.request.content)


# --- reading ----------------------------------------------------------------------------------------------------------


def test_a_backfill_seeks_past_the_last_key_instead_of_paging_by_offset(
    router: respx.MockRouter, namespace: str
) -> None:
    route = router.get(f"{TABLE}/incident").mock(
        side_effect=[
            listing([incident(1, "2026-11-20 10:00:00"), incident(7, "2026-11-20 10:00:00")], total=3),
            listing([incident(3, "2026-11-20 11:30:00")]),
        ]
    )

    pages = list(make(namespace, page_size=2).iter_changes(None))

    assert [[r["sys_id"] for r in p.records] for p in pages] == [[sid(1), sid(7)], [sid(3)]]
    assert [p.watermark for p in pages] == [
        datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 11, 30, tzinfo=UTC),
    ]
    first, second = route.calls
    assert params(first) == {"sysparm_exclude_reference_link": "true", "sysparm_query": ORDER, "sysparm_limit": "2"}
    assert params(second)["sysparm_query"] == (
        f"sys_updated_on>=2026-11-20 10:00:00^sys_updated_on>2026-11-20 10:00:00^ORsys_id>{sid(7)}^{ORDER}"
    )
    assert "sysparm_offset" not in params(second)
    assert first.request.headers["Authorization"] == BASIC
    assert first.request.headers["Accept"] == "application/json"


def test_an_incremental_run_starts_at_the_watermark_less_the_overlap_in_utc(
    router: respx.MockRouter, namespace: str
) -> None:
    route = router.get(f"{TABLE}/incident").mock(return_value=listing([incident(4, "2026-11-20 15:02:00")]))
    since = datetime(2026, 11, 20, 10, 0, tzinfo=timezone(timedelta(hours=-5)))  # 15:00 UTC

    pages = list(make(namespace, overlap=timedelta(minutes=10)).iter_changes(since))

    assert params(route.calls[0])["sysparm_query"] == f"sys_updated_on>=2026-11-20 14:50:00^{ORDER}"
    assert params(route.calls[0])["sysparm_limit"] == "1000"  # the default page
    assert pages[-1].watermark == datetime(2026, 11, 20, 15, 2, tzinfo=UTC)


def test_a_short_page_is_the_last_unless_the_count_says_more_match(router: respx.MockRouter, namespace: str) -> None:
    # ACLs are applied after sysparm_limit: a page may come back short although more rows match
    route = router.get(f"{TABLE}/incident").mock(
        side_effect=[listing([incident(1, "2026-11-20 10:00:00")], total=4), listing([], total=0)]
    )

    pages = list(make(namespace, page_size=3).iter_changes(None))

    assert route.call_count == 2
    assert [len(p.records) for p in pages] == [1, 0]


def test_a_full_page_that_holds_the_whole_count_is_the_last(router: respx.MockRouter, namespace: str) -> None:
    full = [incident(1, "2026-11-20 10:00:00"), incident(2, "2026-11-20 10:00:01")]
    route = router.get(f"{TABLE}/incident").mock(return_value=listing(full, total=2))

    list(make(namespace, page_size=2).iter_changes(None))

    assert route.call_count == 1


def test_without_a_count_a_full_page_asks_for_the_next(router: respx.MockRouter, namespace: str) -> None:
    full = [incident(1, "2026-11-20 10:00:00"), incident(2, "2026-11-20 10:00:01")]
    route = router.get(f"{TABLE}/incident").mock(
        side_effect=[httpx.Response(200, json={"result": full}), httpx.Response(200, json={"result": []})]
    )

    list(make(namespace, page_size=2).iter_changes(None))

    assert route.call_count == 2


def test_the_page_size_is_capped_at_ten_thousand(router: respx.MockRouter, namespace: str) -> None:
    route = router.get(f"{TABLE}/incident").mock(return_value=listing([]))

    list(make(namespace, page_size=50_000).iter_changes(None))

    assert params(route.calls[0])["sysparm_limit"] == "10000"


def test_get_ticket_reads_the_incident_its_journal_and_time_worked(router: respx.MockRouter, namespace: str) -> None:
    record = incident(
        5, "2026-11-20 12:00:00", close_notes="Replaced the toner.", resolved_at="2026-11-20 11:59:00",
        resolved_by=sid(77),
    )  # fmt: skip
    record["sys_id"] = ID
    one = router.get(f"{TABLE}/incident/{ID}").respond(json={"result": record})
    journal_rows = [{"sys_id": sid(11), "element": "work_notes", "element_id": ID, "value": "first"}]
    journal = router.get(f"{TABLE}/sys_journal_field").mock(return_value=listing(journal_rows))
    worked = router.get(f"{TABLE}/task_time_worked").mock(return_value=listing([{"sys_id": sid(21), "task": ID}]))

    got = make(namespace).get_ticket(ID)

    assert params(one.calls[0]) == {"sysparm_exclude_reference_link": "true"}
    assert params(journal.calls[0]) == {
        "sysparm_exclude_reference_link": "true",
        "sysparm_query": f"element_id={ID}^elementINwork_notes,comments^ORDERBYsys_created_on^ORDERBYsys_id",
        "sysparm_offset": "0",
        "sysparm_limit": "1000",
    }
    assert params(worked.calls[0])["sysparm_query"] == f"task={ID}^ORDERBYsys_created_on^ORDERBYsys_id"
    assert [n["sys_id"] for n in got["_psa_notes"]] == [sid(11), f"{ID}:close_notes"]
    assert got["_psa_notes"][-1] == {
        "sys_id": f"{ID}:close_notes",
        "name": "incident",
        "element": "close_notes",
        "element_id": ID,
        "value": "Replaced the toner.",
        "sys_created_on": "2026-11-20 11:59:00",
        "sys_created_by": "",
        "resolved_by": sid(77),
    }
    assert got["_psa_time_entries"] == [{"sys_id": sid(21), "task": ID}]


def test_a_page_is_completed_with_its_journal_and_time_read_in_bulk(router: respx.MockRouter, namespace: str) -> None:
    listed = [incident(n, "2026-11-20 12:00:00", close_notes="Done." if n == 3 else "") for n in range(1, 4)]
    journal = router.get(f"{TABLE}/sys_journal_field").mock(
        return_value=listing([{"sys_id": sid(11), "element_id": sid(2), "element": "comments", "value": "hi"}])
    )
    worked = router.get(f"{TABLE}/task_time_worked").mock(return_value=listing([{"sys_id": sid(21), "task": sid(3)}]))
    stored = {sid(1): {**incident(1, "2026-11-20 12:00:00", close_notes=""), "_psa_notes": [], "_psa_time_entries": []}}

    completion = make(namespace).complete_page(listed, stored)

    assert completion.unchanged == (sid(1),)
    assert [[n["sys_id"] for n in t["_psa_notes"]] for t in completion.full] == [[sid(11)], [f"{sid(3)}:close_notes"]]
    assert [t["_psa_time_entries"] for t in completion.full] == [[], [{"sys_id": sid(21), "task": sid(3)}]]
    assert params(journal.calls[0])["sysparm_query"] == (
        f"element_idIN{sid(2)},{sid(3)}^elementINwork_notes,comments^ORDERBYsys_created_on^ORDERBYsys_id"
    )
    assert params(worked.calls[0])["sysparm_query"] == f"taskIN{sid(2)},{sid(3)}^ORDERBYsys_created_on^ORDERBYsys_id"
    assert completion.request_count == 2


def test_many_incidents_are_asked_for_150_sys_ids_at_a_time(router: respx.MockRouter, namespace: str) -> None:
    journal = router.get(f"{TABLE}/sys_journal_field").mock(return_value=listing([]))
    worked = router.get(f"{TABLE}/task_time_worked").mock(return_value=listing([]))

    completion = make(namespace).complete_page([incident(n, "2026-11-20 12:00:00") for n in range(1, 321)], {})

    asked = [params(call)["sysparm_query"].split("^")[0] for call in journal.calls]
    assert sorted(len(q.removeprefix("element_idIN").split(",")) for q in asked) == [20, 150, 150]
    assert all(len(str(call.request.url)) < 8192 for call in (*journal.calls, *worked.calls))
    assert (len(completion.full), completion.request_count) == (320, 6)


def test_list_notes_reads_the_journal_and_only_the_resolution_fields(router: respx.MockRouter, namespace: str) -> None:
    one = router.get(f"{TABLE}/incident/{ID}").respond(json={"result": {"sys_id": ID, "close_notes": ""}})
    router.get(f"{TABLE}/sys_journal_field").mock(return_value=listing([{"sys_id": sid(11), "value": "x"}]))

    notes = make(namespace).list_notes(ID)

    assert notes == [{"sys_id": sid(11), "value": "x"}]
    assert params(one.calls[0])["sysparm_fields"] == "sys_id,close_notes,resolved_at,resolved_by,sys_updated_on"


def test_an_id_that_is_not_a_sys_id_is_not_found_without_asking(router: respx.MockRouter, namespace: str) -> None:
    with pytest.raises(NotFoundError):
        make(namespace).get_ticket("987654321")
    with pytest.raises(NotFoundError):
        make(namespace).update_ticket(f"{ID}^ORactive=true", {"state": "2"})


# --- metadata ---------------------------------------------------------------------------------------------------------

CHOICE_ROWS = [
    {"name": "task", "element": "impact", "value": "1", "label": "1 - High", "dependent_value": ""},
    {"name": "incident", "element": "state", "value": "1", "label": "New", "dependent_value": ""},
    {"name": "incident", "element": "state", "value": "7", "label": "Closed", "dependent_value": ""},
    {"name": "task", "element": "state", "value": "3", "label": "Closed Complete", "dependent_value": ""},
    {"name": "incident", "element": "subcategory", "value": "vpn", "label": "VPN", "dependent_value": "network"},
]


def route_metadata(router: respx.MockRouter, choices: list[dict[str, Any]] | None = None) -> dict[str, respx.Route]:
    return {
        "choices": router.get(f"{TABLE}/sys_choice").mock(return_value=listing(choices or CHOICE_ROWS)),
        "groups": router.get(f"{TABLE}/sys_user_group").mock(
            return_value=listing([{"sys_id": sid(31), "name": "MSP Support"}])
        ),
        "users": router.get(f"{TABLE}/sys_user").mock(
            return_value=listing(
                [
                    {
                        "sys_id": sid(41),
                        "name": "Beth Anglin",
                        "user_name": "beth.anglin",
                        "email": "beth@acme.example",
                        "sys_updated_on": "2026-01-01 00:00:00",
                    }
                ]
            )
        ),
        "cis": router.get(f"{TABLE}/cmdb_ci").mock(
            return_value=listing([{"sys_id": sid(51), "name": "ACME-FW01", "sys_updated_on": "2026-01-01 00:00:00"}])
        ),
    }


def test_metadata_loads_choices_groups_users_and_cis_once(router: respx.MockRouter, namespace: str) -> None:
    routes = route_metadata(router)
    connector = make(namespace)

    metadata = connector.metadata()
    again = connector.metadata()

    assert again is metadata
    assert {name: r.call_count for name, r in routes.items()} == {"choices": 1, "groups": 1, "users": 1, "cis": 1}
    assert params(routes["choices"].calls[0])["sysparm_query"] == (
        "nameINincident,task^elementINstate,impact,urgency,priority,contact_type,category,subcategory,close_code,"
        "hold_reason^language=en^inactive=false^ORDERBYelement^ORDERBYsequence"
    )
    assert params(routes["groups"].calls[0])["sysparm_query"] == "active=true^ORDERBYname^ORDERBYsys_id"
    assert params(routes["users"].calls[0])["sysparm_query"] == f"active=true^{ORDER}"
    assert [(c.value, c.label, c.is_closed) for c in metadata.choices("state")] == [
        ("1", "New", False),
        ("7", "Closed", True),
    ]
    assert [c.label for c in metadata.choices("impact")] == ["1 - High"]  # inherited from task
    assert metadata.choices("subcategory")[0].scope == "network"
    assert metadata.label_of("assignment_group", sid(31)) == "MSP Support"
    assert metadata.label_of("caller_id", sid(41)) == metadata.label_of("assigned_to", sid(41)) == "Beth Anglin"
    assert metadata.label_of("cmdb_ci", sid(51)) == "ACME-FW01"

    connector.metadata(refresh=True)
    assert routes["choices"].call_count == 2


# --- writing ----------------------------------------------------------------------------------------------------------


def test_update_patches_the_fields_but_never_priority(router: respx.MockRouter, namespace: str) -> None:
    route_metadata(router)
    patch = router.patch(f"{TABLE}/incident/{ID}").respond(json={"result": {"sys_id": ID, "state": "7"}})

    answer = make(namespace).update_ticket(ID, {"state": "7", "impact": "1", "urgency": "1", "priority": "1"})

    assert answer == {"sys_id": ID, "state": "7"}
    assert body(patch.calls[0]) == {"state": "7", "impact": "1", "urgency": "1"}
    assert params(patch.calls[0]) == {"sysparm_exclude_reference_link": "true"}
    assert patch.calls[0].request.headers["Content-Type"] == "application/json"


def test_a_choice_the_instance_does_not_know_refreshes_the_metadata_then_fails_without_writing(
    router: respx.MockRouter, namespace: str
) -> None:
    routes = route_metadata(router)
    connector = make(namespace)

    with pytest.raises(MappingError) as caught:
        connector.update_ticket(ID, {"state": "99", "short_description": "x"})

    assert routes["choices"].call_count == 2  # loaded, then refreshed once
    assert "state='99'" in str(caught.value)
    assert caught.value.connection == "acme-snow"


def test_a_choice_added_on_the_instance_is_found_after_the_refresh(router: respx.MockRouter, namespace: str) -> None:
    routes = route_metadata(router)
    newer = [
        *CHOICE_ROWS,
        {"name": "incident", "element": "state", "value": "9", "label": "Waiting", "dependent_value": ""},
    ]
    routes["choices"].side_effect = [listing(CHOICE_ROWS), listing(newer)]
    patch = router.patch(f"{TABLE}/incident/{ID}").respond(json={"result": {"sys_id": ID}})

    make(namespace).update_ticket(ID, {"state": "9"})

    assert body(patch.calls[0]) == {"state": "9"}


def test_create_looks_for_its_marker_then_posts_it_in_correlation_id(router: respx.MockRouter, namespace: str) -> None:
    route_metadata(router)
    find = router.get(f"{TABLE}/incident").mock(return_value=listing([]))
    post = router.post(f"{TABLE}/incident").respond(201, json={"result": {"sys_id": ID, "number": "INC0010301"}})

    created = make(namespace).create_ticket(
        {"short_description": "Mirror", "state": "1", "priority": "2"}, marker=MARKER
    )

    assert created["sys_id"] == ID
    assert params(find.calls[0]) == {
        "sysparm_exclude_reference_link": "true",
        "sysparm_query": f"correlation_id={MARKER}^ORDERBYsys_created_on",
        "sysparm_fields": "sys_id",
        "sysparm_limit": "1",
    }
    assert body(post.calls[0]) == {
        "short_description": "Mirror",
        "state": "1",
        "correlation_id": MARKER,
        "correlation_display": "psabridge",
    }


def test_a_create_whose_answer_was_lost_is_found_not_repeated(router: respx.MockRouter, namespace: str) -> None:
    router.get(f"{TABLE}/incident").mock(return_value=listing([{"sys_id": ID}]))
    router.get(f"{TABLE}/incident/{ID}").respond(json={"result": {"sys_id": ID, "correlation_id": MARKER}})

    created = make(namespace).create_ticket({"short_description": "Mirror"}, marker=MARKER)

    assert created == {"sys_id": ID, "correlation_id": MARKER}


@pytest.mark.parametrize(("kind", "element"), [(NoteKind.INTERNAL, "work_notes"), (NoteKind.PUBLIC, "comments")])
def test_a_note_is_a_journal_field_write_found_by_its_marker(
    router: respx.MockRouter, namespace: str, kind: NoteKind, element: str
) -> None:
    row = {"sys_id": sid(61), "element": element, "element_id": ID, "value": f"Rebooted.\n\n{MARKER}"}
    journal = router.get(f"{TABLE}/sys_journal_field").mock(side_effect=[listing([]), listing([row])])
    patch = router.patch(f"{TABLE}/incident/{ID}").respond(json={"result": {"sys_id": ID}})

    note = make(namespace).add_note(ID, "Rebooted.", kind=kind, marker=MARKER)

    assert note == row
    assert body(patch.calls[0]) == {element: f"Rebooted.\n\n{MARKER}"}
    assert params(journal.calls[0]) == {
        "sysparm_exclude_reference_link": "true",
        "sysparm_query": f"element_id={ID}^element={element}^valueLIKE{MARKER}^ORDERBYsys_created_on",
        "sysparm_limit": "1",
    }


def test_a_note_already_written_is_not_written_again(router: respx.MockRouter, namespace: str) -> None:
    row = {"sys_id": sid(61), "element": "work_notes", "value": f"Rebooted.\n\n{MARKER}"}
    router.get(f"{TABLE}/sys_journal_field").mock(return_value=listing([row]))

    assert make(namespace).add_note(ID, "Rebooted.", kind=NoteKind.INTERNAL, marker=MARKER) == row


def test_a_resolution_note_sets_close_notes_and_a_close_code_when_none_is_set(
    router: respx.MockRouter, namespace: str
) -> None:
    current = {"sys_id": ID, "close_notes": "", "close_code": "", "sys_updated_on": "2026-11-20 12:00:00"}
    read = router.get(f"{TABLE}/incident/{ID}").respond(json={"result": current})
    resolved = {**current, "close_notes": f"Driver updated.\n\n{MARKER}", "close_code": "Workaround provided"}
    patch = router.patch(f"{TABLE}/incident/{ID}").respond(json={"result": resolved})

    note = make(namespace, options={"resolution_close_code": "Workaround provided"}).add_note(
        ID, "Driver updated.", kind=NoteKind.RESOLUTION, marker=MARKER
    )

    assert (
        params(read.calls[0])["sysparm_fields"]
        == "sys_id,close_notes,close_code,resolved_at,resolved_by,sys_updated_on"
    )
    assert body(patch.calls[0]) == {"close_notes": f"Driver updated.\n\n{MARKER}", "close_code": "Workaround provided"}
    assert (note["element"], note["value"]) == ("close_notes", f"Driver updated.\n\n{MARKER}")


def test_a_time_entry_is_a_task_time_worked_row_with_the_marker_in_its_comments(
    router: respx.MockRouter, namespace: str
) -> None:
    check = router.get(f"{TABLE}/task_time_worked").mock(return_value=listing([]))
    post = router.post(f"{TABLE}/task_time_worked").respond(201, json={"result": {"sys_id": sid(71)}})
    entry = NewTimeEntry(
        minutes=90, note="Remote session", started_at=datetime(2026, 11, 20, 9, 5, tzinfo=UTC), who=sid(41)
    )

    created = make(namespace).add_time_entry(ID, entry, marker=MARKER)

    assert created == {"sys_id": sid(71)}
    assert params(check.calls[0])["sysparm_query"] == f"task={ID}^commentsLIKE{MARKER}^ORDERBYsys_created_on"
    assert body(post.calls[0]) == {
        "task": ID,
        "time_worked": "1970-01-01 01:30:00",
        "time_in": "2026-11-20 09:05:00",
        "comments": f"Remote session\n\n{MARKER}",
        "user": sid(41),
    }


def test_a_marker_that_would_break_the_query_is_refused(router: respx.MockRouter, namespace: str) -> None:
    with pytest.raises(ValueError, match="cannot be used"):
        make(namespace).find_by_marker("[psabridge:x]^ORactive=true")


# --- errors -----------------------------------------------------------------------------------------------------------


def error(status: int, message: str, detail: str | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"message": message, "detail": detail}, "status": "failure"}, headers=headers
    )


def test_a_401_is_an_auth_error_with_the_vendor_words(router: respx.MockRouter, namespace: str) -> None:
    route = router.get(f"{TABLE}/incident/{ID}").mock(
        return_value=error(401, "User Not Authenticated", "Required to provide Auth information")
    )

    with pytest.raises(AuthError) as caught:
        make(namespace).get_ticket(ID)

    assert route.call_count == 1
    assert caught.value.vendor_message == "User Not Authenticated: Required to provide Auth information"


def test_a_404_is_not_found(router: respx.MockRouter, namespace: str) -> None:
    router.get(f"{TABLE}/incident/{ID}").mock(
        return_value=error(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
    )

    with pytest.raises(NotFoundError) as caught:
        make(namespace).get_ticket(ID)

    assert caught.value.vendor_message is not None and caught.value.vendor_message.startswith("No Record found")


def test_an_acl_403_is_configuration_and_a_data_policy_403_is_this_request(
    router: respx.MockRouter, namespace: str
) -> None:
    router.patch(f"{TABLE}/incident/{ID}").mock(
        side_effect=[
            error(403, "User Not Authorized", "Failed API level ACL Validation"),
            error(
                403, "Operation Failed", "Data Policy Exception: The following fields are mandatory: Resolution notes"
            ),
        ]
    )
    connector = make(namespace)

    with pytest.raises(PermanentError) as acl:
        connector.update_ticket(ID, {"short_description": "a"})
    with pytest.raises(PermanentError) as policy:
        connector.update_ticket(ID, {"short_description": "b"})

    assert acl.value.details["failure"] == FailureType.CONFIG.value
    assert policy.value.details["failure"] == FailureType.REQUEST.value
    assert policy.value.vendor_message is not None and "Resolution notes" in policy.value.vendor_message


def test_a_429_waits_as_retry_after_says(router: respx.MockRouter, namespace: str, fake_time: FakeTime) -> None:
    route = router.get(f"{TABLE}/incident/{ID}").mock(
        side_effect=[
            error(429, "Rate limit exceeded", None, **{"Retry-After": "7", "X-RateLimit-Limit": "500"}),
            httpx.Response(200, json={"result": {"sys_id": ID}}),
        ]
    )
    router.get(f"{TABLE}/sys_journal_field").mock(return_value=listing([]))
    router.get(f"{TABLE}/task_time_worked").mock(return_value=listing([]))

    make(namespace, fake_time).get_ticket(ID)

    assert route.call_count == 2
    assert any(7.0 <= s < 7.2 for s in fake_time.sleeps)


def test_a_429_longer_than_the_inline_wait_is_raised_for_the_worker(router: respx.MockRouter, namespace: str) -> None:
    router.get(f"{TABLE}/incident/{ID}").mock(
        return_value=error(429, "Rate limit exceeded", None, **{"Retry-After": "1800"})
    )

    with pytest.raises(RateLimitedError) as caught:
        make(namespace).get_ticket(ID)

    assert caught.value.retry_after == 1800


# --- webhooks ---------------------------------------------------------------------------------------------------------


def notification(**fields: Any) -> bytes:
    payload = {
        "table": "incident",
        "sys_id": ID,
        "number": "INC0010050",
        "operation": "update",
        "sys_updated_on": "2026-11-20 14:58:00",
        "sys_updated_by": "beth.anglin",
        "sys_mod_count": "7",
        **fields,
    }
    return json.dumps(payload).encode()


def test_a_notification_with_the_shared_secret_is_accepted(namespace: str) -> None:
    connector = make(namespace)

    event = connector.parse_webhook({"x-webhook-secret": "hook-secret"}, notification())
    again = connector.parse_webhook({"X-Webhook-Secret": "hook-secret"}, notification())
    created = connector.parse_webhook({"X-Webhook-Secret": "hook-secret"}, notification(operation="insert"))

    assert (event.external_id, event.event) == (ID, "updated")
    assert event.occurred_at == datetime(2026, 11, 20, 14, 58, tzinfo=UTC)
    assert event.delivery_id == again.delivery_id == f"servicenow:{ID}:7:update"
    assert created.event == "created" and created.delivery_id != event.delivery_id


@pytest.mark.parametrize(
    ("headers", "payload", "reason"),
    [
        ({}, notification(), "missing"),
        ({"X-Webhook-Secret": "hook-secreT"}, notification(), "does not match"),
        ({"X-Webhook-Secret": "hook-secret"}, notification(sys_updated_on="2026-11-20 14:30:00"), "stale"),
        ({"X-Webhook-Secret": "hook-secret"}, notification(sys_updated_on=""), "no sys_updated_on"),
    ],
)
def test_a_notification_without_the_right_secret_or_too_old_is_refused(
    namespace: str, headers: dict[str, str], payload: bytes, reason: str
) -> None:
    with pytest.raises(WebhookVerificationError, match=reason):
        make(namespace).parse_webhook(headers, payload)


def test_the_secret_header_and_the_age_limit_are_options(namespace: str) -> None:
    connector = make(namespace, options={"webhook_secret_header": "X-Acme-Token", "webhook_max_age_seconds": 0})

    event = connector.parse_webhook({"x-acme-token": "hook-secret"}, notification(sys_updated_on="2020-01-01 00:00:00"))

    assert event.external_id == ID
    with pytest.raises(WebhookVerificationError):
        connector.parse_webhook({"X-Webhook-Secret": "hook-secret"}, notification())


@pytest.mark.parametrize(
    "payload",
    [b"not json", notification(table="problem"), notification(sys_id="42"), notification(operation="merge"), b"[]"],
)
def test_a_notification_that_names_no_incident_is_refused(namespace: str, payload: bytes) -> None:
    with pytest.raises(PermanentError):
        make(namespace).parse_webhook({"X-Webhook-Secret": "hook-secret"}, payload)


def test_without_a_configured_secret_notifications_cannot_be_checked(namespace: str) -> None:
    settings = make_settings(
        name="acme-snow", system="servicenow", base_url=BASE, secrets={"username": "u", "password": "p"}
    )
    connector = ServiceNowConnector(settings, runtime=HttpRuntime(namespace=namespace))

    with pytest.raises(ConfigError):
        connector.parse_webhook({"X-Webhook-Secret": "x"}, notification())


def test_our_writes_show_as_the_integration_user(namespace: str) -> None:
    assert make(namespace).integration_user() == "psabridge.integration"
    assert make(namespace, options={"integration_user": "svc.bridge"}).integration_user() == "svc.bridge"
