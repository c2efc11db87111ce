"""ServiceNow encoded queries in the simulator: ^ and ^OR binding, ^NQ, ordering, and invalid parts ignored."""

from __future__ import annotations

from typing import Any

import pytest

from psabridge_sandbox.servicenow_query import Condition, parse_query

FIELDS = {"state", "priority", "short_description", "sys_updated_on", "assigned_to", "number"}
ROWS = [
    {"number": "INC1", "state": "1", "priority": "3", "short_description": "VPN down", "assigned_to": ""},
    {"number": "INC2", "state": "2", "priority": "10", "short_description": "Printer jam", "assigned_to": "a1"},
    {"number": "INC3", "state": "3", "priority": "2", "short_description": "vpn slow", "assigned_to": "a2"},
    {"number": "INC4", "state": "7", "priority": "1", "short_description": "Outlook", "assigned_to": ""},
]


def run(text: str) -> list[str]:
    query = parse_query(text, FIELDS.__contains__)
    found = query.filter(ROWS, _get, lambda name: name == "priority")
    return [row["number"] for row in found]


def _get(row: dict[str, Any], name: str) -> str | None:
    return row.get(name, "") if name in FIELDS else None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state=1^ORstate=3^assigned_toISNOTEMPTY", ["INC3"]),  # ^OR binds tighter than ^
        ("assigned_toISNOTEMPTY^state=1^ORstate=3", ["INC3"]),
        ("state=1^NQstate=7", ["INC1", "INC4"]),
        ("short_descriptionLIKEVPN", ["INC1", "INC3"]),
        ("short_descriptionNOT LIKEvpn", ["INC2", "INC4"]),
        ("stateNOT IN1,2", ["INC3", "INC4"]),
        ("priority>2", ["INC1", "INC2"]),  # numeric: 10 > 2
        ("ORDERBYpriority", ["INC4", "INC3", "INC1", "INC2"]),
        ("ORDERBYDESCnumber^EQ", ["INC4", "INC3", "INC2", "INC1"]),
        ("", ["INC1", "INC2", "INC3", "INC4"]),
    ],
)
def test_queries(text: str, expected: list[str]) -> None:
    assert run(text) == expected


def test_invalid_terms_are_dropped_and_reported() -> None:
    query = parse_query("state=1^nope=2^ORDERBYnope^priorityBETWEEN1@2", FIELDS.__contains__)

    assert query.parts == (((Condition("state", "=", "1"),),),)
    assert query.order == ()
    assert query.ignored == ("nope=2", "priorityBETWEEN1@2", "ORDERBYnope")


def test_a_new_query_part_made_only_of_invalid_terms_matches_everything() -> None:
    assert run("state=1^NQnope=2") == ["INC1", "INC2", "INC3", "INC4"]


def test_one_of_finds_a_top_level_term_for_index_lookups() -> None:
    assert parse_query("state=2^priority=1", FIELDS.__contains__).one_of("priority") == ["1"]
    assert parse_query("state=2^priorityIN1,3", FIELDS.__contains__).one_of("priority") == ["1", "3"]
    assert parse_query("state=2^ORpriority=1", FIELDS.__contains__).one_of("priority") is None
    assert parse_query("priority=1^NQstate=2", FIELDS.__contains__).one_of("priority") is None
    assert parse_query("priority!=1", FIELDS.__contains__).one_of("priority") is None
