"""The ConnectWise connector's exact wire format, against a strict respx router (every route called, nothing else)."""

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

from psabridge.connectors.base import NewTimeEntry
from psabridge.connectors.connectwise import ConnectWiseConnector, SeekPaginator
from psabridge.connectors.connectwise_callbacks import KEY_CACHE, REFRESH_AFTER, KeyOrigin
from psabridge.connectors.http import HttpRuntime
from psabridge.errors import ConfigError, PermanentError, RateLimitedError, RetryLaterError, WebhookVerificationError
from psabridge.model import NoteKind

from .conftest import FakeTime, make_settings

BASE = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"
KEY_URL = "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails?id=42"
SECRETS = {
    "company": "msp",
    "public_key": "pub",
    "private_key": "priv",
    "client_id": "5f2f8f0e-6a4b-4d2e-9d1c-2b7f0c3e4a51",
    "webhook_host": "api-na.myconnectwise.net",
}
MARKER = "[psabridge:abc123def456]"


def ticket(ticket_id: int, updated: str) -> dict[str, Any]:
    return {"id": ticket_id, "summary": f"T{ticket_id}", "_info": {"lastUpdated": updated}}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_mocked=True, assert_all_called=True) as mock:
        yield mock


def connector(namespace: str, **fields: Any) -> ConnectWiseConnector:
    settings = make_settings(name="msp-cw", system="connectwise", base_url=BASE, secrets=SECRETS, **fields)
    return ConnectWiseConnector(settings, runtime=HttpRuntime(namespace=namespace, sleep=lambda _: None))


def params(call: Any) -> dict[str, str]:
    return dict(call.request.url.params)


# --- reading --------------------------------------------------------------------------------------------------------


def test_a_backfill_seeks_on_last_updated_and_drops_the_boundary_repeat(
    router: respx.MockRouter, namespace: str
) -> None:
    link = f'<{BASE}/service/tickets?page=2>; rel="next"'
    route = router.get("/service/tickets").mock(
        side_effect=[
            httpx.Response(200, json=[ticket(7, "2026-11-20T10:00:00Z"), ticket(3, "2026-11-20T10:00:05Z")],
                           headers={"Link": link}),
            httpx.Response(200, json=[ticket(3, "2026-11-20T10:00:05Z"), ticket(9, "2026-11-20T10:00:05Z")]),
        ]
    )  # fmt: skip

    pages = list(connector(namespace).iter_changes(None))

    assert [[r["id"] for r in p.records] for p in pages] == [[7, 3], [9]]
    assert pages[-1].watermark == datetime(2026, 11, 20, 10, 0, 5, tzinfo=UTC)
    first, second = route.calls
    assert params(first) == {"orderBy": "_info/lastUpdated asc, id asc", "pageSize": "1000", "page": "1"}
    assert params(second) == {
        "orderBy": "_info/lastUpdated asc, id asc",
        "pageSize": "1000",
        "page": "1",
        "conditions": "_info/lastUpdated >= [2026-11-20T10:00:05Z]",
    }
    request = first.request
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"msp+pub:priv").decode()
    assert request.headers["clientid"] == SECRETS["client_id"]
    assert request.headers["accept"] == "application/json"


def test_an_incremental_read_starts_an_overlap_before_the_watermark(router: respx.MockRouter, namespace: str) -> None:
    route = router.get("/service/tickets").mock(return_value=httpx.Response(200, json=[]))

    pages = list(connector(namespace).iter_changes(datetime(2026, 11, 20, 12, 0, tzinfo=UTC)))

    assert pages[0].records == [] and pages[0].watermark == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert params(route.calls[0])["conditions"] == "_info/lastUpdated >= [2026-11-20T11:55:00Z]"


def test_a_page_all_in_one_second_steps_to_the_next_page_number(router: respx.MockRouter, namespace: str) -> None:
    same = "2026-11-20T10:00:00Z"
    next_link = {"Link": f'<{BASE}/service/tickets?page=2>; rel="next"'}
    route = router.get("/service/tickets").mock(
        side_effect=[
            httpx.Response(200, json=[ticket(1, "2026-11-20T09:00:00Z"), ticket(2, same)], headers=next_link),
            httpx.Response(200, json=[ticket(2, same), ticket(3, same)], headers=next_link),
            httpx.Response(200, json=[ticket(4, same)]),
        ]
    )
    since = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    found = [
        r["id"] for p in connector(namespace, page_size=2, overlap=timedelta(0)).iter_changes(since) for r in p.records
    ]

    assert found == [1, 2, 3, 4]
    seek = "(_info/lastUpdated >= [2026-11-20T09:00:00Z]) and _info/lastUpdated >= [2026-11-20T10:00:00Z]"
    assert [(params(c).get("conditions"), params(c)["page"]) for c in route.calls] == [
        ("_info/lastUpdated >= [2026-11-20T09:00:00Z]", "1"),
        (seek, "1"),
        (seek, "2"),
    ]


SITE = "https://api-eu.myconnectwise.net"


def test_a_site_root_is_resolved_to_its_codebase_once_before_anything_else(namespace: str) -> None:
    with respx.mock(base_url=SITE, assert_all_mocked=True, assert_all_called=True) as mock:
        info = mock.get("/login/companyinfo/msp").respond(
            json={"CompanyName": "MSP", "Codebase": "v2025_1/", "CompanyID": "msp", "IsCloud": True}
        )
        tickets = mock.get("/v2025_1/apis/3.0/service/tickets/5").respond(json=ticket(5, "2026-11-20T10:00:00Z"))
        settings = make_settings(name="msp-cw", system="connectwise", base_url=SITE, secrets=SECRETS)
        cw = ConnectWiseConnector(settings, runtime=HttpRuntime(namespace=namespace))
        assert info.call_count == 0  # nothing is sent while the connector is built
        for _ in range(2):
            assert cw.http.request_json("GET", "service/tickets/5").data["id"] == 5
        cw.close()
    assert (info.call_count, tickets.call_count) == (1, 2)
    assert cw.http.base_url == f"{SITE}/v2025_1/apis/3.0"


def test_a_company_the_site_does_not_know_is_a_configuration_error(namespace: str) -> None:
    with respx.mock(base_url=SITE, assert_all_called=True) as mock:
        mock.get("/login/companyinfo/msp").respond(404, json={"code": "NotFound", "message": "Company msp not found"})
        settings = make_settings(name="msp-cw", system="connectwise", base_url=SITE, secrets=SECRETS)
        with pytest.raises(ConfigError, match="knows no company 'msp'"):
            _ = ConnectWiseConnector(settings, runtime=HttpRuntime(namespace=namespace)).http


def test_a_page_is_completed_with_time_in_bulk_and_notes_and_configurations_per_changed_ticket(
    router: respx.MockRouter, namespace: str
) -> None:
    times = router.get("/time/entries").respond(
        json=[{"id": 1, "chargeToId": 5, "notes": "a"}, {"id": 2, "chargeToId": 7, "notes": "b"},
              {"id": 3, "chargeToId": 5, "notes": "c"}]
    )  # fmt: skip
    notes = {
        n: router.get(f"/service/tickets/{n}/notes").respond(
            json=[{"id": 10 * n, "text": f"body {n}", "detailDescriptionFlag": True}]
        )
        for n in (5, 7)
    }
    configurations = {
        n: router.get(f"/service/tickets/{n}/configurations").respond(json=[{"id": 900 + n}]) for n in (5, 7)
    }
    page = [ticket(5, "2026-11-20T10:00:00Z"), ticket(6, "2026-11-20T10:00:01Z"), ticket(7, "2026-11-20T10:00:02Z")]
    stored_six = {**ticket(6, "2026-11-20T10:00:01Z"), "_psa_notes": [{"id": 60}], "_psa_extra": {"configurations": []}}

    completion = connector(namespace).complete_page(page, {"6": stored_six})

    assert completion.unchanged == ("6",)
    assert [(t["id"], t["_psa_description"], [e["id"] for e in t["_psa_time_entries"]]) for t in completion.full] == [
        (5, "body 5", [1, 3]),
        (7, "body 7", [2]),
    ]
    assert [t["_psa_extra"]["configurations"] for t in completion.full] == [[{"id": 905}], [{"id": 907}]]
    assert params(times.calls[0]) == {
        "orderBy": "id asc",
        "conditions": 'chargeToType = "ServiceTicket" and chargeToId in (5, 7)',
        "page": "1",
        "pageSize": "1000",
    }
    per_ticket = sum(route.call_count for route in (*notes.values(), *configurations.values()))
    assert completion.request_count == 5 == times.call_count + per_ticket


def test_a_ticket_changed_within_the_second_of_its_stored_copy_is_read_again(
    router: respx.MockRouter, namespace: str
) -> None:
    # lastUpdated is kept to the second: a note added in the same second as the stored copy moves no marker, so the
    # stored notes cannot be trusted once any list field moved
    listed = {**ticket(6, "2026-11-20T10:00:01Z"), "isInSla": False}
    stored = {**ticket(6, "2026-11-20T10:00:01Z"), "isInSla": True, "_psa_notes": [{"id": 60}], "_psa_time_entries": []}
    notes = router.get("/service/tickets/6/notes").respond(json=[{"id": 60}, {"id": 61, "text": "same second"}])
    configurations = router.get("/service/tickets/6/configurations").respond(json=[])
    router.get("/time/entries").respond(json=[])

    completion = connector(namespace).complete_page([listed], {"6": stored})

    [full] = completion.full
    assert [n["id"] for n in full["_psa_notes"]] == [60, 61]
    assert (notes.call_count, configurations.call_count) == (1, 1)


def test_time_entries_of_many_tickets_are_asked_for_150_ids_at_a_time(router: respx.MockRouter, namespace: str) -> None:
    times = router.get("/time/entries").respond(json=[])
    ids = list(range(1000, 1310))
    for n in ids:
        router.get(f"/service/tickets/{n}/notes").respond(json=[])
        router.get(f"/service/tickets/{n}/configurations").respond(json=[])

    connector(namespace).complete_page([ticket(n, "2026-11-20T10:00:00Z") for n in ids], {})

    asked = [params(call)["conditions"] for call in times.calls]
    assert [len(c.split(",")) for c in asked] == [150, 150, 10]
    assert all(len(str(call.request.url.query)) < 2000 for call in times.calls)


def test_get_ticket_adds_notes_the_description_time_entries_and_configurations(
    router: respx.MockRouter, namespace: str
) -> None:
    router.get("/service/tickets/42").mock(return_value=httpx.Response(200, json=ticket(42, "2026-11-20T10:00:00Z")))
    notes = [
        {"id": 1, "text": "Printer offline", "detailDescriptionFlag": True},
        {"id": 2, "text": "Checked spooler", "internalAnalysisFlag": True},
    ]
    notes_route = router.get("/service/tickets/42/notes").mock(return_value=httpx.Response(200, json=notes))
    time_route = router.get("/time/entries").mock(return_value=httpx.Response(200, json=[{"id": 5, "notes": "x"}]))
    router.get("/service/tickets/42/configurations").mock(return_value=httpx.Response(200, json=[{"id": 812}]))

    record = connector(namespace).get_ticket("42")

    assert record["_psa_description"] == "Printer offline"
    assert record["_psa_notes"] == notes and record["_psa_time_entries"] == [{"id": 5, "notes": "x"}]
    assert record["_psa_extra"] == {"configurations": [{"id": 812}]}
    assert params(notes_route.calls[0]) == {"orderBy": "id asc", "page": "1", "pageSize": "1000"}
    assert params(time_route.calls[0]) == {
        "orderBy": "id asc",
        "conditions": 'chargeToType = "ServiceTicket" and chargeToId = 42',
        "page": "1",
        "pageSize": "1000",
    }


def test_metadata_is_loaded_once_per_board_and_cached(router: respx.MockRouter, namespace: str) -> None:
    router.get("/service/boards").mock(return_value=httpx.Response(200, json=[{"id": 1, "name": "Service Desk"}]))
    router.get("/service/boards/1/statuses").mock(
        return_value=httpx.Response(200, json=[{"id": 101, "name": "New", "defaultFlag": True},
                                               {"id": 106, "name": ">Closed", "closedStatus": True}])
    )  # fmt: skip
    router.get("/service/boards/1/types").mock(return_value=httpx.Response(200, json=[{"id": 1, "name": "Incident"}]))
    router.get("/service/boards/1/subtypes").mock(return_value=httpx.Response(200, json=[]))
    router.get("/service/boards/1/items").mock(return_value=httpx.Response(200, json=[{"id": 2001, "name": "Printer"}]))
    priorities = router.get("/service/priorities").mock(
        return_value=httpx.Response(200, json=[{"id": 6, "name": "Priority 1 - Emergency Response", "sortOrder": 1}])
    )
    router.get("/service/sources").mock(return_value=httpx.Response(200, json=[{"id": 2, "name": "Phone"}]))
    router.get("/system/members").mock(
        return_value=httpx.Response(200, json=[{"id": 151, "identifier": "dwhitfield", "name": "Dana Whitfield"}])
    )
    cw = connector(namespace)

    metadata = cw.metadata()
    assert cw.metadata() is metadata and priorities.call_count == 1

    assert metadata.value_of("status", ">Closed", scope="Service Desk") == "106"
    assert [c.is_closed for c in metadata.choices("status")] == [False, True]
    assert metadata.value_of("owner", "Dana Whitfield") == "151"
    assert metadata.value_of("item", "printer", scope="Service Desk") == "2001"
    assert metadata.choices("owner")[0].extra == {"identifier": "dwhitfield"}
    assert params(priorities.calls[0]) == {"orderBy": "id asc", "page": "1", "pageSize": "1000"}
    cw.metadata(refresh=True)
    assert priorities.call_count == 2


# --- writing --------------------------------------------------------------------------------------------------------


def test_update_sends_a_json_patch_array_with_skip_callback(router: respx.MockRouter, namespace: str) -> None:
    route = router.patch("/service/tickets/42").mock(return_value=httpx.Response(200, json=ticket(42, "x")))

    connector(namespace).update_ticket("42", {"status": {"id": 106}, "summary": "Fixed", "owner": None})

    request = route.calls[0].request
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == [
        {"op": "replace", "path": "status", "value": {"id": 106}},
        {"op": "replace", "path": "summary", "value": "Fixed"},
        {"op": "remove", "path": "owner"},
        {"op": "replace", "path": "skipCallback", "value": True},
    ]


def test_a_write_refused_for_a_stale_status_refreshes_metadata(router: respx.MockRouter, namespace: str) -> None:
    refusal = {
        "code": "InvalidObject",
        "message": "ticket object is invalid",
        "errors": [{"code": "NotFound", "message": "Service Status 17 not found for Service Board 21",
                    "resource": "ticket", "field": "status/id"}],
    }  # fmt: skip
    router.patch("/service/tickets/42").mock(return_value=httpx.Response(400, json=refusal))
    boards = router.get("/service/boards").mock(return_value=httpx.Response(200, json=[]))
    for path in ("/service/priorities", "/service/sources", "/system/members"):
        router.get(path).mock(return_value=httpx.Response(200, json=[]))
    cw = connector(namespace, options={"skip_callback": False})

    with pytest.raises(PermanentError) as caught:
        cw.update_ticket("42", {"status": {"id": 17}})

    assert caught.value.status == 400
    assert caught.value.vendor_message == (
        "ticket object is invalid: Service Status 17 not found for Service Board 21 (status/id)"
    )
    assert boards.call_count == 1


def test_create_puts_the_marker_in_external_xref_and_the_description(router: respx.MockRouter, namespace: str) -> None:
    route = router.post("/service/tickets").mock(return_value=httpx.Response(201, json=ticket(77, "x")))

    created = connector(namespace).create_ticket(
        {"summary": "VPN", "company": {"identifier": "AcmeDental"}, "initialDescription": "Drops hourly."},
        marker=MARKER,
    )

    assert created["id"] == 77
    assert json.loads(route.calls[0].request.content) == {
        "summary": "VPN",
        "company": {"identifier": "AcmeDental"},
        "initialDescription": f"Drops hourly.\n\n{MARKER}",
        "externalXRef": MARKER,
        "skipCallback": True,
    }


def test_find_by_marker_asks_for_one_id_by_external_xref(router: respx.MockRouter, namespace: str) -> None:
    route = router.get("/service/tickets").mock(
        side_effect=[httpx.Response(200, json=[{"id": 77}]), httpx.Response(200, json=[])]
    )
    cw = connector(namespace)

    assert cw.find_by_marker(MARKER) == "77"
    assert cw.find_by_marker(MARKER) is None
    assert params(route.calls[0]) == {
        "conditions": f'externalXRef = "{MARKER}"',
        "orderBy": "id asc",
        "pageSize": "1",
        "fields": "id",
    }


@pytest.mark.parametrize(
    ("kind", "flag"),
    [
        (NoteKind.PUBLIC, "detailDescriptionFlag"),
        (NoteKind.INTERNAL, "internalAnalysisFlag"),
        (NoteKind.RESOLUTION, "resolutionFlag"),
    ],
)
def test_a_note_carries_its_flag_and_marker_and_is_written_once(
    router: respx.MockRouter, namespace: str, kind: NoteKind, flag: str
) -> None:
    lookup = router.get("/service/tickets/42/notes").mock(return_value=httpx.Response(200, json=[]))
    post = router.post("/service/tickets/42/notes").mock(return_value=httpx.Response(201, json={"id": 9}))

    connector(namespace).add_note("42", "Replaced toner.", kind=kind, marker=MARKER)

    assert params(lookup.calls[0]) == {"conditions": f'text contains "{MARKER}"', "pageSize": "1000"}
    assert json.loads(post.calls[0].request.content) == {
        "text": f"Replaced toner.\n\n{MARKER}",
        flag: True,
        "processNotifications": False,
    }


def test_a_note_already_written_by_an_earlier_attempt_is_not_written_again(
    router: respx.MockRouter, namespace: str
) -> None:
    text = f"Replaced toner.\n\n{MARKER}"
    earlier = [
        {"id": 8, "text": f"Other note of the same link\n\n{MARKER}", "detailDescriptionFlag": True},
        {"id": 9, "text": text, "detailDescriptionFlag": True},
    ]
    router.get("/service/tickets/42/notes").mock(return_value=httpx.Response(200, json=earlier))

    note = connector(namespace).add_note("42", "Replaced toner.", kind=NoteKind.PUBLIC, marker=MARKER)

    assert note["id"] == 9


def test_a_time_entry_is_charged_to_the_ticket_with_its_marker(router: respx.MockRouter, namespace: str) -> None:
    lookup = router.get("/time/entries").mock(return_value=httpx.Response(200, json=[]))
    post = router.post("/time/entries").mock(return_value=httpx.Response(201, json={"id": 5}))
    entry = NewTimeEntry(
        minutes=45, note="Remote session", started_at=datetime(2026, 11, 20, 14, 0, tzinfo=UTC), who="dwhitfield",
        billable=True,
    )  # fmt: skip

    connector(namespace).add_time_entry("42", entry, marker=MARKER)

    assert params(lookup.calls[0]) == {
        "conditions": f'chargeToType = "ServiceTicket" and chargeToId = 42 and notes contains "{MARKER}"',
        "pageSize": "1000",
    }
    assert json.loads(post.calls[0].request.content) == {
        "chargeToId": 42,
        "chargeToType": "ServiceTicket",
        "timeStart": "2026-11-20T14:00:00Z",
        "timeEnd": "2026-11-20T14:45:00Z",
        "actualHours": 0.75,
        "notes": f"Remote session\n\n{MARKER}",
        "member": {"identifier": "dwhitfield"},
        "billableOption": "Billable",
    }


# --- errors ---------------------------------------------------------------------------------------------------------


def test_a_500_that_says_timeout_is_retried(router: respx.MockRouter, namespace: str) -> None:
    timeout = {"code": "UnexpectedError", "message": "Execution Timeout Expired.", "errors": []}
    route = router.get("/service/tickets/42").mock(
        side_effect=[httpx.Response(500, json=timeout), httpx.Response(200, json=ticket(42, "x"))]
    )
    router.get("/service/tickets/42/notes").mock(return_value=httpx.Response(200, json=[]))
    router.get("/time/entries").mock(return_value=httpx.Response(200, json=[]))
    router.get("/service/tickets/42/configurations").mock(return_value=httpx.Response(200, json=[]))

    assert connector(namespace).get_ticket("42")["id"] == 42
    assert route.call_count == 2


def test_other_connectwise_500s_fail_at_once_with_the_message(router: respx.MockRouter, namespace: str) -> None:
    body = {"code": "UnexpectedError", "message": "Object reference not set to an instance of an object.", "errors": []}
    route = router.get("/service/tickets/42").mock(return_value=httpx.Response(500, json=body))

    with pytest.raises(PermanentError) as caught:
        connector(namespace).get_ticket("42")

    assert caught.value.vendor_message == body["message"] and route.call_count == 1


def test_a_400_about_the_client_id_is_a_configuration_error(router: respx.MockRouter, namespace: str) -> None:
    body = {"code": "InvalidClientId", "message": "clientId header is required", "errors": []}
    router.get("/service/tickets/42").mock(return_value=httpx.Response(400, json=body))

    with pytest.raises(ConfigError):
        connector(namespace).get_ticket("42")


def test_cloudflares_429_page_becomes_a_rate_limit_with_its_title(router: respx.MockRouter, namespace: str) -> None:
    page = "<html><head><title>Error 1015 | Cloudflare</title></head><body>rate limited</body></html>"
    router.get("/service/tickets/42").mock(
        return_value=httpx.Response(429, text=page, headers={"Retry-After": "120", "Content-Type": "text/html"})
    )

    with pytest.raises(RateLimitedError) as caught:
        connector(namespace).get_ticket("42")

    assert caught.value.retry_after == 120 and caught.value.vendor_message == "Error 1015 | Cloudflare"


# --- callbacks ------------------------------------------------------------------------------------------------------


def callback(key_url: str = KEY_URL, **fields: Any) -> bytes:
    payload = {"MessageId": "m-1", "Action": "updated", "Type": "ticket", "ID": 42, "Entity": "{}",
               "Metadata": {"key_url": key_url}, **fields}  # fmt: skip
    return json.dumps(payload).encode()


def signed(body: bytes, key: str = "sekret") -> dict[str, str]:
    digest = hmac.new(hashlib.sha256(key.encode()).digest(), body, hashlib.sha256).digest()
    return {"x-content-signature": base64.b64encode(digest).decode()}


def test_a_callback_is_verified_with_the_key_fetched_once_without_credentials(
    router: respx.MockRouter, namespace: str
) -> None:
    key = router.get(KEY_URL).mock(return_value=httpx.Response(200, json={"signing_key": "sekret"}))
    cw = connector(namespace)
    body = callback()

    event = cw.parse_webhook(signed(body), body)
    again = cw.parse_webhook(signed(body), body)

    assert (event.external_id, event.event, event.delivery_id) == ("42", "updated", "m-1")
    assert again == event and key.call_count == 1
    assert "authorization" not in key.calls[0].request.headers
    assert "clientid" not in key.calls[0].request.headers


def timed_connector(namespace: str, time: FakeTime, **fields: Any) -> ConnectWiseConnector:
    settings = make_settings(name="msp-cw", system="connectwise", base_url=BASE, secrets=SECRETS, **fields)
    return ConnectWiseConnector(settings, runtime=HttpRuntime(namespace=namespace, sleep=time.sleep, clock=time.clock))


def test_a_wrong_signature_over_a_fresh_key_fetches_nothing_more(router: respx.MockRouter, namespace: str) -> None:
    key = router.get(KEY_URL).mock(return_value=httpx.Response(200, json={"signing_key": "sekret"}))
    cw = connector(namespace)
    body = callback()

    for _ in range(20):
        with pytest.raises(WebhookVerificationError, match="signature is wrong"):
            cw.parse_webhook(signed(body, "other"), body)
    assert key.call_count == 1


def test_a_key_that_stopped_matching_is_fetched_again_once_it_is_old_enough(
    router: respx.MockRouter, namespace: str, fake_time: FakeTime
) -> None:
    key = router.get(KEY_URL).mock(
        side_effect=[httpx.Response(200, json={"signing_key": "old"}), httpx.Response(200, json={"signing_key": "new"})]
    )
    cw = timed_connector(namespace, fake_time)
    body = callback()
    cw.parse_webhook(signed(body, "old"), body)

    with pytest.raises(WebhookVerificationError):  # rotated a minute ago: too soon to ask again
        cw.parse_webhook(signed(body, "new"), body)
    fake_time.advance(REFRESH_AFTER)
    event = cw.parse_webhook(signed(body, "new"), body)

    assert event.external_id == "42" and key.call_count == 2


def test_keys_are_cached_by_key_id_whatever_url_names_them(router: respx.MockRouter, namespace: str) -> None:
    key = router.get(KEY_URL).mock(return_value=httpx.Response(200, json={"signing_key": "sekret"}))
    cw = connector(namespace)
    doubled = callback("https://api-na.myconnectwise.net/v4_6_release//system/callbackkey/index.rails?id=42")
    plain = callback()

    cw.parse_webhook(signed(doubled), doubled)
    cw.parse_webhook(signed(plain), plain)

    assert key.call_count == 1


def test_the_key_cache_is_bounded(namespace: str) -> None:
    keys_url = "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails"
    with respx.mock(assert_all_called=False) as mock:
        mock.get(keys_url).mock(side_effect=lambda r: httpx.Response(200, json={"signing_key": r.url.params["id"]}))
        cw = connector(namespace, options={"callback_key_fetches_per_minute": 1000})
        for n in range(KEY_CACHE + 5):
            body = callback(f"{keys_url}?id=k{n}")
            cw.parse_webhook(signed(body, f"k{n}"), body)
        first = callback(f"{keys_url}?id=k0")
        cw.parse_webhook(signed(first, "k0"), first)  # evicted: fetched again
        calls = mock.calls.call_count

    assert cw._callback_keys().cached() == KEY_CACHE and calls == KEY_CACHE + 6


def test_an_unknown_key_id_is_refused_and_not_asked_for_again(router: respx.MockRouter, namespace: str) -> None:
    key = router.get(KEY_URL).mock(return_value=httpx.Response(404, json={"code": "NotFound", "message": "no key"}))
    cw = connector(namespace)
    body = callback()

    for _ in range(5):
        with pytest.raises(WebhookVerificationError):
            cw.parse_webhook(signed(body), body)  # never a PermanentError: that would record the forged body
    assert key.call_count == 1


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, json={}), httpx.Response(200, json={"signing_key": 5}), httpx.Response(200, json=[1]),
     httpx.Response(500, json={"code": "x", "message": "down"}), httpx.Response(200, text="<html>")],
)  # fmt: skip
def test_a_key_url_that_gives_no_key_makes_the_callback_unverifiable(
    router: respx.MockRouter, namespace: str, answer: httpx.Response
) -> None:
    router.get(KEY_URL).mock(return_value=answer)
    body = callback()
    with pytest.raises(WebhookVerificationError, match="not available"):
        connector(namespace).parse_webhook(signed(body), body)


def test_key_fetches_have_a_budget_of_their_own_refilled_each_minute(namespace: str, fake_time: FakeTime) -> None:
    keys_url = "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails"
    cw = timed_connector(namespace, fake_time, options={"callback_key_fetches_per_minute": 3})

    def forged(n: int) -> None:
        body = callback(f"{keys_url}?id=forged{n}")
        with pytest.raises(WebhookVerificationError):
            cw.parse_webhook(signed(body, "guess"), body)

    with respx.mock(assert_all_called=False) as mock:
        keys = mock.get(keys_url).mock(return_value=httpx.Response(404, json={"code": "NotFound", "message": "-"}))
        for n in range(10):
            forged(n)
        within_a_minute = keys.call_count
        fake_time.advance(61)
        for n in range(10, 20):
            forged(n)

    assert (within_a_minute, keys.call_count) == (3, 6)
    assert cw.http.budget.snapshot().used == 0  # the ticket API's budget is untouched


def test_an_unreachable_shared_budget_is_ours_to_fix_not_the_callers(namespace: str) -> None:
    settings = make_settings(name="msp-cw", system="connectwise", base_url=BASE, secrets=SECRETS)
    runtime = HttpRuntime(namespace=namespace, sleep=lambda _: None, broker_url="redis://127.0.0.1:1/0")
    cw = ConnectWiseConnector(settings, runtime=runtime)
    body = callback()

    with respx.mock(assert_all_called=False) as mock:
        keys = mock.get(KEY_URL).mock(return_value=httpx.Response(200, json={"signing_key": "sekret"}))
        with pytest.raises(RetryLaterError) as caught:
            cw.parse_webhook(signed(body), body)

    assert not isinstance(caught.value, WebhookVerificationError) and keys.call_count == 0


@pytest.mark.parametrize(
    "value",
    ["é" * 44, "not base64!", base64.b64encode(b"short").decode(), "x" * 5000, "\x00" * 44, ""],
)
def test_a_signature_that_is_not_base64_of_32_bytes_is_refused_before_any_fetch(namespace: str, value: str) -> None:
    body = callback()
    with respx.mock(assert_all_mocked=True) as mock:
        with pytest.raises(WebhookVerificationError):
            connector(namespace).parse_webhook({"x-content-signature": value}, body)
        assert mock.calls.call_count == 0


@pytest.mark.parametrize(
    ("base_url", "webhook_host", "origin"),
    [
        (BASE, None, KeyOrigin("https", "api-na.myconnectwise.net", 443)),
        (BASE, "na.myconnectwise.net", KeyOrigin("https", "na.myconnectwise.net", 443)),
        ("http://127.0.0.1:8701/v4_6_release/apis/3.0", "127.0.0.1", KeyOrigin("http", "127.0.0.1", 8701)),
        (
            "https://cw.msp.example:8443/v2025_1/apis/3.0",
            "cw.msp.example:9443",
            KeyOrigin("https", "cw.msp.example", 9443),
        ),
        ("https://cw.msp.example/v4_6_release/apis/3.0", "[::1]:8443", KeyOrigin("https", "::1", 8443)),
    ],
)
def test_the_key_origin_is_the_configured_scheme_host_and_port(
    base_url: str, webhook_host: str | None, origin: KeyOrigin
) -> None:
    assert KeyOrigin.of(base_url, webhook_host) == origin


@pytest.mark.parametrize("webhook_host", ["https://cw.test", "cw.test/path", "user@cw.test", "cw.test:port"])
def test_a_webhook_host_that_is_not_host_and_port_is_a_config_error(webhook_host: str) -> None:
    with pytest.raises(ConfigError, match="webhook_host"):
        KeyOrigin.of(BASE, webhook_host)


@pytest.mark.parametrize(
    "key_url",
    [
        "https://evil.example/v4_6_release/system/callbackkey/index.rails?id=1",
        "https://api-na.myconnectwise.net.evil.example/v4_6_release/system/callbackkey/index.rails?id=1",
        "https://user:pw@api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails?id=1",
        "http://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails?id=1",
        "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/tickets",
        "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails#x",
    ],
)
def test_a_key_url_off_the_webhook_host_is_never_fetched(namespace: str, key_url: str) -> None:
    body = callback(key_url)
    with respx.mock(assert_all_mocked=True) as mock:
        with pytest.raises(WebhookVerificationError):
            connector(namespace).parse_webhook(signed(body), body)
        assert mock.calls.call_count == 0


def test_a_callback_without_a_signature_or_key_url_is_refused(namespace: str) -> None:
    cw = connector(namespace)
    with pytest.raises(WebhookVerificationError):
        cw.parse_webhook({}, callback())
    with pytest.raises(WebhookVerificationError):
        cw.parse_webhook(signed(b"{}"), b"{}")


def test_a_signed_callback_about_something_else_is_not_a_ticket_event(router: respx.MockRouter, namespace: str) -> None:
    router.get(KEY_URL).mock(return_value=httpx.Response(200, json={"signing_key": "sekret"}))
    body = callback(Type="company")

    with pytest.raises(PermanentError) as caught:
        connector(namespace).parse_webhook(signed(body), body)
    assert not isinstance(caught.value, WebhookVerificationError)


def test_the_seek_paginator_without_a_link_header_trusts_a_full_page() -> None:
    paginator = SeekPaginator(None, 2)
    paginator.update_state(httpx.Response(200), [ticket(1, "2026-11-20T10:00:00Z"), ticket(2, "2026-11-20T10:00:01Z")])
    assert paginator.has_next
    paginator.update_state(httpx.Response(200), [ticket(3, "2026-11-20T10:00:02Z")])
    assert not paginator.has_next
