from __future__ import annotations

import pytest
from pydantic import BaseModel

from psabridge.model import Note, NoteKind
from psabridge.rules.text import (
    TicketText,
    Tokens,
    Words,
    count_affected_users,
    enrich,
    error_signature,
    extract_error_codes,
    extract_kb_ids,
    flatten,
    is_own_note,
)

from .helpers import note, ticket


def test_flatten_lowers_drops_punctuation_and_pads() -> None:
    assert flatten("Wi-Fi  DOWN!\nCan’t (print)") == " wi fi down can t print "


@pytest.mark.parametrize(
    ("words", "text", "found"),
    [
        (["unlock"], "please unlock my account", "unlock"),
        (["unlock"], "the account is unlocked now", None),  # whole words only
        (["reproduc*"], "It is Reproducible every time", "reproduc*"),
        (["wi-fi"], "the WiFi drops", None),
        (["wi-fi"], "the Wi-Fi drops", "wi-fi"),
        (["wi-fi"], "the wi fi drops", "wi-fi"),
        (["can't log in"], "I CAN’T log in since Monday", "can't log in"),
        (["password reset", "reset"], "need a password reset", "password reset"),  # list order decides
        (["reset", "password reset"], "need a password reset", "reset"),
        (["s: drive"], "the S: drive is gone", "s: drive"),
        (["http://"], "see HTTP://rmm/1", "http://"),
    ],
)
def test_words_match_whole_words_in_list_order(words: list[str], text: str, found: str | None) -> None:
    assert Words(words).search(text) == found
    assert Words(words).search(Tokens(text)) == found


def test_find_all_lists_every_phrase_in_list_order() -> None:
    words = Words(["vpn", "firewall", "switch*"])
    assert words.find_all("Switches and the firewall, then the VPN") == ("vpn", "firewall", "switch*")
    assert words.find_all("nothing here") == ()
    assert Words([]).search("anything") is None


def test_words_validate_from_yaml_lists_and_serialise_back() -> None:
    class Model(BaseModel):
        words: Words = Words(["a"])

    model = Model.model_validate({"words": ["Password Reset", " MFA ", "password reset"]})
    assert model.words.words == ("password reset", "mfa")
    assert model.model_dump() == {"words": ["password reset", "mfa"]}
    assert Model.model_json_schema()["properties"]["words"]["type"] == "array"
    with pytest.raises(ValueError, match="string"):
        Model.model_validate({"words": [3]})


def test_error_codes_cover_every_kind_the_checklist_names() -> None:
    subject = ticket(
        summary="Backup job failed: HTTP 503 from the repository",
        description=(
            'Outlook just says "Cannot open your default e-mail folders" and Event ID 4625 shows up, then '
            "0x8004010f. The stop code: DRIVER_POWER_STATE_FAILURE. DNS_PROBE_FINISHED_NO_INTERNET in Chrome.\n"
            "Traceback: System.IO.FileLoadException: could not load; AADSTS50076; error 809; 404 Not Found"
        ),
        notes=(note("psabridge checklist: 0x80070005 is only in our own note"),),
    )
    assert extract_error_codes(subject) == (  # the mapping's kinds first, then ours, each in order of appearance
        "Event ID 4625",
        "0x8004010F",
        "AADSTS50076",
        "Error 809",
        "HTTP 503",
        "HTTP 404",
        "Stop code DRIVER_POWER_STATE_FAILURE",
        "DNS_PROBE_FINISHED_NO_INTERNET",
        "System.IO.FileLoadException",
        '"Cannot open your default e-mail folders"',
    )


def test_enrich_adds_codes_once_and_keeps_a_ticket_that_has_them() -> None:
    subject = ticket(description="It says 'Disconnected' with 0x800CCC0E", error_codes=("0x800CCC0E",))
    enriched = enrich(subject)
    assert enriched.error_codes == ("0x800CCC0E", '"Disconnected"')
    assert enrich(enriched) is enriched


def test_error_signature_is_order_free_and_falls_back_to_quoted_text() -> None:
    assert error_signature(["Event ID 4740", "Event ID 4625", '"Locked"']) == "Event ID 4625 + Event ID 4740"
    assert error_signature(["Event ID 4625", "Event ID 4740"]) == error_signature(["Event ID 4740", "Event ID 4625"])
    assert error_signature(['"Loading   Profile"']) == 'text:"loading profile"'
    assert error_signature([]) is None
    assert error_signature(ticket(description="no error at all", error_codes=())) is None


def test_kb_ids_and_affected_counts() -> None:
    assert extract_kb_ids("per KB 4567, kb#1042 and KB-1077; kb 4567 again") == ("KB 4567", "KB 1042", "KB 1077")
    assert count_affected_users("Triage: 1 user(s) affected") == 1
    assert count_affected_users("about 40 of us, 12 users and 3 others") == 40
    assert count_affected_users("version 7.2 of the client") is None


def test_ticket_text_leaves_out_psabridge_notes_and_picks_the_latest_resolution() -> None:
    own = Note(kind=NoteKind.INTERNAL, text="  psabridge checklist: 2 items to look at\nidentity verified")
    assert is_own_note(own)
    assert not is_own_note(note("a psabridge checklist quoted later in a note"))
    subject = ticket(
        notes=(
            own,
            note("First fix: Rebooted", NoteKind.RESOLUTION, minutes=90),
            note("Second fix: rebuilt the profile; KB 1077", NoteKind.RESOLUTION, minutes=20),
        )
    )
    text = TicketText(subject)
    assert [n.text for n in text.human_notes] == ["First fix: Rebooted", "Second fix: rebuilt the profile; KB 1077"]
    assert text.resolution == "Second fix: rebuilt the profile; KB 1077"
    assert text.kb_ids == ("KB 1077",)
    assert "identity" not in text.words.words
    assert Words(["rebooted"]).search(text.notes) == "rebooted"
