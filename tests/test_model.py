from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from psabridge.model import (
    ActionAdapter,
    AddNote,
    Note,
    NoteKind,
    PageOnCall,
    Priority,
    SetFields,
    Status,
    System,
    Ticket,
    split_ticket_key,
    ticket_key,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def make_ticket(**overrides: object) -> Ticket:
    data: dict[str, object] = {
        "connection": "acme-snow",
        "system": System.SERVICENOW,
        "external_id": "abc123",
        "summary": "Outlook keeps asking for a password",
        "status": Status.NEW,
        "priority": Priority.P2,
        "updated_at": datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
    }
    data.update(overrides)
    return Ticket.model_validate(data)


def test_naive_datetime_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValidationError) as info:
        make_ticket(updated_at=datetime(2026, 5, 1, 12, 0))
    text = str(info.value)
    assert "updated_at" in text
    assert "naive datetime 2026-05-01T12:00:00 has no timezone" in text


def test_naive_datetime_string_is_refused_too() -> None:
    with pytest.raises(ValidationError, match="naive datetime"):
        make_ticket(created_at="2026-05-01 12:00:00")


def test_aware_datetimes_are_converted_to_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    ticket = make_ticket(updated_at=datetime(2026, 5, 1, 7, 0, tzinfo=eastern))
    assert ticket.updated_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert ticket.updated_at is not None and ticket.updated_at.utcoffset() == timedelta(0)


def test_key_is_derived_and_checked() -> None:
    assert make_ticket().key == ticket_key("acme-snow", "abc123") == "acme-snow:abc123"
    with pytest.raises(ValidationError, match="does not match"):
        make_ticket(key="other:1")


def test_a_key_splits_at_its_first_colon_as_connection_names_hold_none() -> None:
    assert split_ticket_key("acme-snow:abc123") == ("acme-snow", "abc123")
    assert split_ticket_key(ticket_key("msp-cw", "urn:ticket:42")) == ("msp-cw", "urn:ticket:42")
    for bad in ("acme-snow", ":42", "acme-snow:"):
        with pytest.raises(ValueError, match="is not a ticket key"):
            split_ticket_key(bad)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        make_ticket(statuss="new")


def test_content_hash_ignores_update_time_and_version_but_not_content() -> None:
    base = make_ticket(version="3")
    bumped = make_ticket(updated_at=datetime(2026, 5, 2, tzinfo=UTC), version="4")
    changed = make_ticket(status=Status.IN_PROGRESS)
    assert base.content_hash() == bumped.content_hash()
    assert base.content_hash() != changed.content_hash()
    assert len(base.content_hash()) == 64


def test_content_hash_is_independent_of_note_order() -> None:
    first = Note(external_id="1", text="called user", created_at=datetime(2026, 5, 1, tzinfo=UTC))
    second = Note(external_id="2", text="rebuilt profile", kind=NoteKind.RESOLUTION)
    assert make_ticket(notes=(first, second)).content_hash() == make_ticket(notes=(second, first)).content_hash()
    assert make_ticket(notes=(first,)).content_hash() != make_ticket(notes=(first, second)).content_hash()


def test_newer_by_version_counter_then_by_update_time() -> None:
    old = make_ticket(version="9", updated_at=datetime(2026, 5, 2, tzinfo=UTC))
    new = make_ticket(version="10", updated_at=datetime(2026, 5, 1, tzinfo=UTC))
    assert new.is_newer_than(old) is True  # numeric, not string, comparison of the counter
    assert make_ticket(updated_at=datetime(2026, 6, 1, tzinfo=UTC)).is_newer_than(make_ticket()) is True
    assert make_ticket(updated_at=None).is_newer_than(make_ticket()) is None


def test_status_helpers() -> None:
    assert Status.ON_HOLD.is_open
    assert not Status.CANCELLED.is_open
    assert Priority.P1.rank == 1


def test_actions_round_trip_through_the_adapter() -> None:
    note = AddNote(
        ticket_key="acme-snow:abc123", target="acme-snow", origin="rules.escalation", text="hand-off missing"
    )
    page = PageOnCall(
        ticket_key="msp-cw:42", target="pagerduty", origin="rules.p1", summary="P1: mail down", dedup_key="msp-cw:42"
    )
    for action in (note, page):
        parsed = ActionAdapter.validate_json(action.model_dump_json())
        assert parsed == action
        assert type(parsed) is type(action)


def test_idempotency_key_is_stable_and_payload_sensitive() -> None:
    one = AddNote(ticket_key="t:1", target="c", origin="r", text="x", reason="first time")
    again = AddNote(ticket_key="t:1", target="c", origin="r", text="x", reason="emitted again later")
    other = AddNote(ticket_key="t:1", target="c", origin="r", text="y")
    assert one.idempotency_key() == again.idempotency_key()
    assert one.idempotency_key() != other.idempotency_key()


def test_set_fields_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="cannot set sumary"):
        SetFields(ticket_key="t:1", target="c", origin="r", fields={"sumary": "x"})
    ok = SetFields(ticket_key="t:1", target="c", origin="r", fields={"priority": "P1"})
    assert ok.fields == {"priority": "P1"}


def test_keys_and_hashes_of_existing_data_do_not_change() -> None:
    # Values computed with model.py before tags and occurrence_key existed: stored hashes and outbox keys stay valid.
    note = AddNote(ticket_key="t:1", target="c", origin="mirror:l", text="x")
    change = SetFields(ticket_key="t:1", target="c", origin="mirror:l", fields={"priority": "P1"})
    assert note.idempotency_key() == "e58bd5dc95b445515611dd2cc08ac6b2"
    assert change.idempotency_key() == "7cd0ea0e31eec76a553e94fe7253d418"
    ticket = Ticket(connection="c", system=System.SERVICENOW, external_id="1", summary="s", created_at=T0)
    assert ticket.content_hash() == "53f04288e0e253295e5d210906c228b7a1e3f91a366dd28e34406ad3bb7757f1"


def test_tags_count_in_the_hash_once_present_in_any_order() -> None:
    base = Ticket(connection="c", system=System.SERVICENOW, external_id="1", created_at=T0)
    tagged = base.model_copy(update={"tags": ("vip", "hands-off")})
    assert tagged.content_hash() != base.content_hash()
    assert tagged.content_hash() == base.model_copy(update={"tags": ("hands-off", "vip")}).content_hash()


def test_occurrence_key_decides_the_idempotency_key() -> None:
    first = AddNote(ticket_key="t:1", target="c", origin="r", text="worded once", occurrence_key="note:abc")
    reworded = AddNote(ticket_key="t:1", target="c", origin="r", text="worded again", occurrence_key="note:abc")
    second = AddNote(ticket_key="t:1", target="c", origin="r", text="worded once", occurrence_key="note:def")
    assert first.idempotency_key() == reworded.idempotency_key()
    assert first.idempotency_key() != second.idempotency_key()
    unkeyed = AddNote(ticket_key="t:1", target="c", origin="r", text="worded once")
    assert unkeyed.idempotency_key() != first.idempotency_key()
    other_type = SetFields(
        ticket_key="t:1", target="c", origin="r", fields={"priority": "P1"}, occurrence_key="note:abc"
    )
    assert other_type.idempotency_key() != first.idempotency_key()
