"""Fuzzing the receiver with near-valid deliveries of each vendor, signed and not: never a 5xx, and unverified input
leaves no inbox row and queues no job.

The strategies build each vendor's body shape field by field, each field kept valid, swapped for a value of another
JSON type, or left out; the encoded body is sometimes cut short or has bytes changed; the request is signed the
vendor's way, signed wrong, signed with garbage or not signed at all, under a JSON or another content type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from .conftest import (
    CONNECTION,
    CW_HOST,
    CW_KEY_ID,
    KEY_FETCHES_PER_MINUTE,
    PAYLOADS,
    Receiver,
    forged,
    signed,
)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
)
"""A JSON value of any type."""

KEY_URLS = st.one_of(
    st.just(f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}"),
    st.sampled_from(["forged-1", "forged-2", CW_KEY_ID.upper()]).map(
        lambda key_id: f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={key_id}"
    ),
    st.sampled_from([f"https://{CW_HOST}:8443", "https://evil.test", f"http://{CW_HOST}", f"https://{CW_HOST}"]).map(
        lambda origin: f"{origin}/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}"
    ),
    st.text(max_size=60),
    JUNK,
)

FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "connectwise": {
        "Type": st.sampled_from(["ticket", "Ticket", "company", ""]),
        "ID": st.one_of(st.integers(min_value=0, max_value=10**25), st.text(alphabet="0123456789٣", max_size=25)),
        "Action": st.sampled_from(["added", "updated", "deleted", "UPDATED", "renamed"]),
        "MessageId": st.one_of(st.uuids().map(str), st.text(max_size=300)),
        "Metadata": st.one_of(st.fixed_dictionaries({"key_url": KEY_URLS}), JUNK),
        "Entity": st.text(max_size=40),
    },
    "autotask": {
        "Action": st.sampled_from(["Create", "Update", "Delete", "Merge"]),
        "EntityType": st.sampled_from(["Ticket", "TicketNote", "Company"]),
        "Id": st.integers(min_value=-5, max_value=10**22),
        "Fields": st.one_of(st.fixed_dictionaries({"TicketID": st.integers(min_value=0, max_value=10**22)}), JUNK),
        "EventTime": st.one_of(
            st.sampled_from(["2026-11-20T14:59:30Z", "2026-11-20T14:59:30", "yesterday", "2026-13-45T00:00:00Z", ""]),
            st.datetimes().map(lambda d: d.isoformat()),
        ),
        "Guid": st.one_of(st.uuids().map(str), st.text(max_size=300)),
        "SequenceNumber": st.integers(min_value=-1, max_value=10**25),
    },
    "servicenow": {
        "table": st.sampled_from(["incident", "problem", ""]),
        "sys_id": st.one_of(
            st.just("1c741bd70b2322007518478d83673af3"), st.text(alphabet="0123456789abcdef\n", max_size=34)
        ),
        "operation": st.sampled_from(["insert", "update", "delete", "merge", ""]),
        "sys_updated_on": st.sampled_from(["2026-11-20 14:59:00", "2026-11-20T14:59:00Z", "2020-01-01 00:00:00", ""]),
        "sys_mod_count": st.one_of(st.integers(min_value=-1, max_value=10**25), st.text(max_size=25)),
    },
    "freshservice": {
        "ticket_id": st.one_of(
            st.integers(min_value=-1, max_value=10**25), st.text(alphabet="#INCSR-0123456789 ", max_size=30)
        ),
        "event": st.sampled_from(["ticket_created", "ticket_updated", "note_added", "ticket_deleted", ""]),
        "updated_at": st.sampled_from(["2026-11-20T14:59:00Z", "not a time", ""]),
    },
}


@st.composite
def deliveries(draw: st.DrawFn, vendor: str) -> tuple[bytes, dict[str, str], bool]:
    """(body, headers, whether the headers authenticate the body as the vendor does)."""
    payload: dict[str, Any] = dict(PAYLOADS[vendor]())
    fields = FIELDS[vendor]
    # Near-valid: one to three fields changed (another valid-looking value, a value of any type, or none at all).
    for name in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True)):
        choice = draw(st.sampled_from(["valid", "junk", "drop"]))
        if choice == "valid":
            payload[name] = draw(fields[name])
        elif choice == "junk":
            payload[name] = draw(JUNK)
        else:
            payload.pop(name, None)
    body = json.dumps(payload, ensure_ascii=draw(st.booleans())).encode()
    damage = draw(st.sampled_from(["none"] * 6 + ["cut", "bytes", "not an object"]))
    if damage == "cut":
        body = body[: draw(st.integers(min_value=0, max_value=len(body)))]
    elif damage == "bytes":
        at = draw(st.integers(min_value=0, max_value=max(0, len(body) - 1)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=4)) + body[at + 1 :]
    elif damage == "not an object":
        body = json.dumps(draw(JUNK)).encode()
    mode = draw(st.sampled_from(["signed"] * 5 + ["forged", "unsigned", "garbage"]))
    if mode == "signed":
        headers = signed(vendor, body)
    elif mode == "forged":
        headers = forged(vendor, body)
    elif mode == "garbage":
        headers = {name: draw(st.text(alphabet=st.characters(max_codepoint=255, blacklist_categories=("Cc",)),
                                      max_size=60))
                   for name in forged(vendor, body) if name != "Content-Type"}  # fmt: skip
        headers["Content-Type"] = "application/json"
    else:
        headers = {"Content-Type": "application/json"}
    headers["Content-Type"] = draw(
        st.sampled_from(["application/json"] * 4 + ["application/json; charset=utf-8", "text/plain"])
    )
    return body, headers, mode == "signed"


def fuzz(receiver: Receiver, vendor: str) -> Callable[..., None]:
    @FUZZ
    @given(delivery=deliveries(vendor))
    def check(delivery: tuple[bytes, dict[str, str], bool]) -> None:
        body, headers, authentic = delivery
        rows, jobs = len(receiver.inbox()), len(receiver.jobs())

        with capture_logs() as logs:
            response = receiver.post(vendor, body, headers)

        assert response.status_code < 500, response.text
        assert [e for e in logs if e["log_level"] in ("error", "critical")] == []  # a bug is refused, and logged
        if not authentic or headers["Content-Type"] == "text/plain":
            assert response.status_code in (401, 415), response.text
            assert (len(receiver.inbox()), len(receiver.jobs())) == (rows, jobs)
        else:
            assert response.status_code in (202, 400, 401), response.text
        if response.status_code == 401:
            assert response.json() == {"error": "webhook verification failed"}
            assert (len(receiver.inbox()), len(receiver.jobs())) == (rows, jobs)

    return check


def test_fuzzed_connectwise_callbacks(receiver: Receiver) -> None:
    fuzz(receiver, "connectwise")()
    # forged key ids come from a small set: the bound holds, and the ticket API is never called
    assert len(receiver.keys.fetches) <= KEY_FETCHES_PER_MINUTE and receiver.keys.other == []


def test_fuzzed_autotask_callouts(receiver: Receiver) -> None:
    fuzz(receiver, "autotask")()


def test_fuzzed_servicenow_notifications(receiver: Receiver) -> None:
    fuzz(receiver, "servicenow")()


def test_fuzzed_freshservice_webhooks(receiver: Receiver) -> None:
    fuzz(receiver, "freshservice")()
    assert {row.connection for row in receiver.inbox()} <= {CONNECTION["freshservice"]}
