"""The receiver under each vendor's real signature scheme: accepted, refused alike, bounded, and never a 5xx.

Unverified input leaves no inbox row and queues no job; authentic but unreadable bodies leave one failed row per
distinct body (bounded); secrets never reach the inbox, an answer or a log line.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from psabridge.store.models import InboxDelivery
from psabridge.webhooks.app import REFUSED
from psabridge.webhooks.intake import MAX_HEADER_BYTES

from .conftest import (
    CONNECTION,
    CW_KEY_ID,
    FS_SECRET,
    PAYLOADS,
    SECRETS,
    SN_HEADER,
    SN_SYS_ID,
    TICKETS,
    VENDORS,
    Receiver,
    at_payload,
    chunks_of,
    cw_payload,
    cw_signature,
    encode,
    forged,
    signed,
    sn_payload,
    stream,
)


def assert_nothing_kept(receiver: Receiver) -> None:
    assert receiver.inbox() == [] and receiver.jobs() == []


# --- good, bad, missing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_delivery_signed_as_the_vendor_signs_is_recorded_queued_and_answered_202(
    receiver: Receiver, vendor: str
) -> None:
    body = encode(PAYLOADS[vendor]())

    response = receiver.post(vendor, body, signed(vendor, body))

    assert response.status_code == 202
    assert response.json() == {"accepted": True, "duplicate": False, "ticket": TICKETS[vendor]}
    assert receiver.jobs() == [(CONNECTION[vendor], TICKETS[vendor])]
    [row] = receiver.inbox()
    assert (row.connection, row.external_id, row.status) == (CONNECTION[vendor], TICKETS[vendor], "received")
    assert row.body == body.decode()


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_wrong_or_missing_signature_gets_the_one_refusal_and_nothing_is_kept(receiver: Receiver, vendor: str) -> None:
    body = encode(PAYLOADS[vendor]())

    wrong = receiver.post(vendor, body, forged(vendor, body))
    missing = receiver.post(vendor, body, {"Content-Type": "application/json"})

    assert (wrong.status_code, wrong.json()) == (401, REFUSED)
    assert (missing.status_code, missing.json()) == (401, REFUSED)
    assert_nothing_kept(receiver)


@pytest.mark.parametrize("vendor", ["connectwise", "autotask"])  # ServiceNow and Freshservice sign nothing
def test_a_tampered_body_under_a_real_signature_is_refused(receiver: Receiver, vendor: str) -> None:
    body = encode(PAYLOADS[vendor]())
    headers = signed(vendor, body)
    tampered = body.replace(TICKETS[vendor].encode(), b"4242")

    response = receiver.post(vendor, tampered, headers)

    assert (response.status_code, response.json()) == (401, REFUSED)
    assert_nothing_kept(receiver)


def test_an_unknown_or_disabled_connection_looks_exactly_like_a_bad_signature(receiver: Receiver) -> None:
    body = encode(PAYLOADS["freshservice"]())

    unknown = receiver.post("no-such-client", body, signed("freshservice", body))
    disabled = receiver.post("old-fs", body, signed("freshservice", body))
    bad = receiver.post("freshservice", body, forged("freshservice", body))

    assert unknown.status_code == disabled.status_code == bad.status_code == 401
    assert unknown.content == disabled.content == bad.content == json.dumps(REFUSED, separators=(",", ":")).encode()
    assert_nothing_kept(receiver)


# --- replays ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_replayed_delivery_is_a_duplicate_and_queues_nothing_more(receiver: Receiver, vendor: str) -> None:
    body = encode(PAYLOADS[vendor]())

    first = receiver.post(vendor, body, signed(vendor, body))
    again = receiver.post(vendor, body, signed(vendor, body))

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["duplicate"] is True
    assert len(receiver.inbox()) == 1 and len(receiver.jobs()) == 1


@pytest.mark.parametrize(
    ("vendor", "payload"),
    [
        ("autotask", at_payload(EventTime="2026-11-20T13:00:00Z")),  # an hour old: Autotask retries for 2 minutes
        ("servicenow", sn_payload(sys_updated_on="2026-11-20 14:00:00")),  # older than webhook_max_age_seconds
    ],
)
def test_a_replay_of_an_old_signed_delivery_is_refused_where_the_vendor_signs_a_time(
    receiver: Receiver, vendor: str, payload: dict[str, Any]
) -> None:
    body = encode(payload)

    response = receiver.post(vendor, body, signed(vendor, body))

    assert (response.status_code, response.json()) == (401, REFUSED)
    assert_nothing_kept(receiver)


# --- malformed bodies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["autotask", "servicenow", "freshservice"])
def test_authentic_malformed_json_is_400_with_a_reason_and_one_failed_row_per_distinct_body(
    receiver: Receiver, vendor: str
) -> None:
    body = b'{"not json'

    first = receiver.post(vendor, body, signed(vendor, body))
    again = receiver.post(vendor, body, signed(vendor, body))

    assert (first.status_code, again.status_code) == (400, 400)
    answer = first.json()
    assert answer["error"] == "webhook body not understood" and answer["recorded"] is True and answer["reason"]
    [row] = receiver.inbox()
    assert (row.status, row.body, row.external_id) == ("failed", '{"not json', None)
    assert receiver.jobs() == []


def test_connectwise_json_that_cannot_be_verified_is_refused_not_recorded(receiver: Receiver) -> None:
    # The signing key is named inside the body: a body we cannot read cannot be verified.
    body = b'{"not json'

    response = receiver.post("connectwise", body, {"Content-Type": "application/json",
                                                   "x-content-signature": cw_signature(body)})  # fmt: skip

    assert (response.status_code, response.json()) == (401, REFUSED)
    assert_nothing_kept(receiver)
    assert receiver.keys.fetches == []


@pytest.mark.parametrize(
    ("vendor", "payload", "reason"),
    [
        ("autotask", at_payload(EventTime="yesterday"), "EventTime"),
        ("autotask", at_payload(EventTime=17), "EventTime"),
        ("autotask", at_payload(Id=[351181]), "ticket id"),
        ("autotask", at_payload(EntityType=["Ticket"]), "not text"),
        ("servicenow", sn_payload(operation=[]), "operation"),
        ("servicenow", sn_payload(operation={"op": "update"}), "operation"),
        ("servicenow", sn_payload(operation="merge"), "operation"),
        ("servicenow", sn_payload(sys_id=SN_SYS_ID + "\n"), "sys_id"),
        ("freshservice", {"ticket_id": "1" * 40}, "ticket_id"),
        ("freshservice", {"ticket_id": {"id": 4}}, "ticket_id"),
        ("connectwise", cw_payload(ID="٣"), "ticket"),
        ("connectwise", cw_payload(ID=[493]), "ticket"),
        ("connectwise", cw_payload(Type=None), "ticket"),
    ],
)
def test_signed_fields_of_the_wrong_type_are_400_recorded_never_5xx(
    receiver: Receiver, vendor: str, payload: dict[str, Any], reason: str
) -> None:
    body = encode(payload)

    response = receiver.post(vendor, body, signed(vendor, body))

    assert response.status_code == 400 and reason in response.json()["reason"]
    [row] = receiver.inbox()
    assert row.status == "failed" and receiver.jobs() == []


@pytest.mark.parametrize(
    "metadata",
    [None, [], "key", {"key_url": None}, {"key_url": 5}, {"key_url": ["x"]}, {}, {"key": "https://cw.test/"}],
)
def test_connectwise_metadata_missing_or_of_odd_types_is_refused_without_a_fetch(
    receiver: Receiver, metadata: Any
) -> None:
    payload = cw_payload(Metadata=metadata)
    if metadata is None:
        del payload["Metadata"]
    body = encode(payload)

    response = receiver.post("connectwise", body, signed("connectwise", body))

    assert (response.status_code, response.json()) == (401, REFUSED)
    assert receiver.keys.fetches == []
    assert_nothing_kept(receiver)


def test_unreadable_rows_are_bounded_per_connection(receiver: Receiver) -> None:
    receiver.unreadable_per_hour = 2
    answers = []
    for n in range(4):
        body = f'{{"broken {n}'.encode()
        answers.append(receiver.post("freshservice", body, signed("freshservice", body)))

    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert [a.json()["recorded"] for a in answers] == [True, True, False, False]
    assert len(receiver.inbox()) == 2


# --- bounded input ------------------------------------------------------------------------------------------------


def test_a_body_announced_over_the_limit_is_413_before_a_byte_is_read(receiver: Receiver) -> None:
    receiver.max_body = 1000
    result = stream(
        receiver.app(), "/webhooks/acme-fs", [(b"content-length", b"400000000")], chunks_of(65_536, 400_000_000)
    )
    assert (result.status, result.answer["error"], result.consumed) == (413, "body too large", 0)
    assert_nothing_kept(receiver)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([], 413),  # chunked, no Content-Length
        ([(b"transfer-encoding", b"chunked")], 413),
        ([(b"content-length", b"500")], 400),  # a Content-Length that lies: the body goes on past it
    ],
)
def test_a_streamed_over_limit_body_is_refused_after_at_most_the_limit_and_one_chunk(
    receiver: Receiver, headers: list[tuple[bytes, bytes]], status: int
) -> None:
    limit, chunk = 100_000, 16_384
    receiver.max_body = limit
    result = stream(receiver.app(), "/webhooks/acme-fs", headers, chunks_of(chunk, 400_000_000))

    assert result.status == status
    assert result.consumed <= limit + chunk
    assert_nothing_kept(receiver)


def test_a_body_shorter_than_its_content_length_is_400(receiver: Receiver) -> None:
    result = stream(receiver.app(), "/webhooks/acme-fs", [(b"content-length", b"900")], chunks_of(100, 300))
    assert (result.status, result.answer) == (400, {"error": "body shorter than its Content-Length"})


@pytest.mark.parametrize("length", [b"-1", b"ten", b"1e3", b"\xd9\xa3", b"9" * 40])
def test_a_content_length_that_is_not_a_number_is_400(receiver: Receiver, length: bytes) -> None:
    result = stream(receiver.app(), "/webhooks/acme-fs", [(b"content-length", length)], chunks_of(10, 10))
    assert result.status == 400 and result.consumed == 0


def test_a_body_at_the_limit_is_read(receiver: Receiver) -> None:
    body = encode({"ticket_id": 42, "event": "ticket_updated", "pad": ""})
    receiver.max_body = len(body)
    response = receiver.post("freshservice", body, signed("freshservice", body))
    assert response.status_code == 202


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x",
     "application/jsonx", "json"],
)  # fmt: skip
def test_a_body_that_is_not_json_by_its_type_is_415(receiver: Receiver, content_type: str) -> None:
    body = encode(PAYLOADS["freshservice"]())
    headers = {**signed("freshservice", body), "Content-Type": content_type}

    response = receiver.post("freshservice", body, headers)

    assert response.status_code == 415 and response.json()["expected"] == "application/json"
    assert_nothing_kept(receiver)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.x+json"]
)
def test_json_content_types_with_parameters_are_accepted(receiver: Receiver, content_type: str) -> None:
    body = encode(PAYLOADS["freshservice"]())
    response = receiver.post("freshservice", body, {**signed("freshservice", body), "Content-Type": content_type})
    assert response.status_code == 202


def test_a_compressed_body_is_415(receiver: Receiver) -> None:
    body = encode(PAYLOADS["freshservice"]())
    response = receiver.post("freshservice", body, {**signed("freshservice", body), "Content-Encoding": "gzip"})
    assert response.status_code == 415 and response.json()["error"] == "unsupported content encoding"


# --- untrusted headers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("value", ["é" * 44, "\x00" * 10, "x" * 5000, "ünïcödé-sécret"])
def test_a_non_ascii_nul_or_huge_signature_header_is_refused_not_500(
    receiver: Receiver, vendor: str, value: str
) -> None:
    body = encode(PAYLOADS[vendor]())
    name = {"connectwise": b"x-content-signature", "autotask": b"x-hook-signature",
            "servicenow": SN_HEADER.lower().encode(), "freshservice": b"x-psabridge-secret"}[vendor]  # fmt: skip
    headers = [(b"content-type", b"application/json"), (name, value.encode("utf-8"))]

    result = stream(receiver.app(), f"/webhooks/{CONNECTION[vendor]}", headers, chunks_of(len(body), len(body)))
    # chunks_of sends blanks: the body does not matter, the header is refused first
    assert (result.status, result.answer) == (401, REFUSED)
    assert_nothing_kept(receiver)
    assert receiver.keys.fetches == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_repeated_signature_header_is_not_a_signature(receiver: Receiver, vendor: str) -> None:
    body = encode(PAYLOADS[vendor]())
    [(name, value)] = [(k, v) for k, v in signed(vendor, body).items() if k != "Content-Type"]
    headers = [(b"content-type", b"application/json"), (name.lower().encode(), value.encode()),
               (name.lower().encode(), value.encode())]  # fmt: skip

    result = stream(receiver.app(), f"/webhooks/{CONNECTION[vendor]}", headers, _once(body))

    assert (result.status, result.answer) == (401, REFUSED)
    assert_nothing_kept(receiver)


def test_headers_over_the_size_bound_are_431(receiver: Receiver) -> None:
    headers = [(b"content-type", b"application/json"), (b"x-padding", b"a" * (MAX_HEADER_BYTES + 1))]
    result = stream(receiver.app(), "/webhooks/acme-fs", headers, _once(b"{}"))
    assert result.status == 431 and result.consumed == 0


def test_too_many_headers_are_431(receiver: Receiver) -> None:
    headers = [(f"x-h{n}".encode(), b"1") for n in range(150)]
    assert stream(receiver.app(), "/webhooks/acme-fs", headers, _once(b"{}")).status == 431


async def _once(body: bytes) -> Any:
    yield body


# --- secrets ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_inbox_never_holds_a_secret_header(receiver: Receiver, vendor: str) -> None:
    body = encode(PAYLOADS[vendor]())
    headers = {
        **signed(vendor, body),
        "Authorization": "Basic YWRtaW46aHVudGVyMg==",
        "Cookie": "session=abc123",
        "X-Vendor-Trace": "trace-1",
        "User-Agent": "Vendor/1.0",
    }

    assert receiver.post(vendor, body, headers).status_code == 202
    [row] = receiver.inbox()

    stored = json.dumps(row.headers)
    for name, value in headers.items():
        if name.lower() in ("content-type", "user-agent"):
            assert row.headers[name.lower()] == value
        else:
            assert row.headers[name.lower()] == "***" and value not in stored


def test_no_secret_reaches_an_answer_or_a_log_line(receiver: Receiver, capsys: pytest.CaptureFixture[str]) -> None:
    answers: list[str] = []
    sent: set[str] = set(SECRETS)

    def post(vendor: str, body: bytes, headers: dict[str, str]) -> None:
        sent.update(v for k, v in headers.items() if k != "Content-Type")
        answers.append(receiver.post(vendor, body, headers).text)

    for vendor in VENDORS:
        good = encode(PAYLOADS[vendor]())
        post(vendor, good, signed(vendor, good))
        post(vendor, good, forged(vendor, good))
        broken = b"{broken " + vendor.encode()
        post(vendor, broken, signed(vendor, broken))
    body = encode(PAYLOADS["freshservice"]())
    post("servicenow", body, {SN_HEADER: FS_SECRET})  # a secret sent to the wrong connection is not echoed either
    output = capsys.readouterr()
    stored = json.dumps([r.headers for r in receiver.inbox()])

    assert len(answers) == 13 and len(sent) > len(SECRETS)
    for secret in sent:
        assert secret not in output.out and secret not in output.err and secret not in stored
        assert all(secret not in answer for answer in answers)


# --- the store --------------------------------------------------------------------------------------------------------


def test_when_the_store_cannot_record_a_verified_delivery_the_answer_is_503_retry(receiver: Receiver) -> None:
    with receiver.ctx.db.session() as s:
        s.execute(sa.text(f"DROP TABLE {InboxDelivery.__tablename__}"))
        s.commit()
    body = encode(PAYLOADS["freshservice"]())

    response = receiver.post("freshservice", body, signed("freshservice", body))

    assert response.status_code == 503 and response.json()["retry"] is True
    assert "inbox" not in response.text and "sqlite" not in response.text.lower()
    assert receiver.jobs() == []


def test_a_nul_in_an_authentic_unreadable_body_is_stored_without_it(receiver: Receiver) -> None:
    body = b'{"ticket_id": "\x00"}'
    response = receiver.post("freshservice", body, signed("freshservice", body))
    [row] = receiver.inbox()
    assert response.json()["recorded"] is True and row.body == '{"ticket_id": "\ufffd"}'


def test_a_recorded_connectwise_callback_keeps_no_signing_key(receiver: Receiver) -> None:
    # the key id sits in the stored body (it is part of what ConnectWise signed); the key itself never does
    body = encode(cw_payload())
    assert receiver.post("connectwise", body, signed("connectwise", body)).status_code == 202
    [row] = receiver.inbox()
    assert CW_KEY_ID in (row.body or "") and "cw-signing-key" not in json.dumps(row.headers) + (row.body or "")
