"""The named transforms and field paths mapping files use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from psabridge.mapping import TRANSFORMS, TransformFailure
from psabridge.mapping.paths import PathError, compile_path, set_path
from psabridge.mapping.transforms import (
    TransformContext,
    extract_error_codes,
    find_choice,
    html_to_text,
    parse_vendor_datetime,
)
from psabridge.model import System
from psabridge.vendordata import Choice, VendorMetadata


def run(name: str, value: Any, metadata: VendorMetadata | None = None, **args: Any) -> Any:
    transform = TRANSFORMS[name]
    return transform.fn(value, transform.args.model_validate(args), TransformContext(metadata))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-12-14 02:46:44", datetime(2016, 12, 14, 2, 46, 44, tzinfo=UTC)),  # ServiceNow: UTC, no zone
        ("2022-07-02T04:20:41Z", datetime(2022, 7, 2, 4, 20, 41, tzinfo=UTC)),  # ConnectWise, Freshservice
        ("2025-09-15T14:57:50.123Z", datetime(2025, 9, 15, 14, 57, 50, 123000, tzinfo=UTC)),  # Autotask
        ("2025-09-15T10:57:50-04:00", datetime(2025, 9, 15, 14, 57, 50, tzinfo=UTC)),
        (1_700_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ],
)
def test_vendor_datetimes_become_utc(text: Any, expected: datetime) -> None:
    parsed = parse_vendor_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_naive_datetimes_can_be_read_in_another_zone() -> None:
    assert run("datetime", "2026-01-15 09:00:00", naive="America/New_York") == datetime(2026, 1, 15, 14, tzinfo=UTC)
    with pytest.raises(ValueError, match="is not a time zone name"):
        TRANSFORMS["datetime"].args.model_validate({"naive": "Mars/Olympus"})
    with pytest.raises(TransformFailure, match="is not a date and time"):
        run("datetime", "next Tuesday")


def test_html_to_text() -> None:
    html = (
        "<div>Hello&nbsp;<b>Ana</b>,</div><p>Printer <i>offline</i> &amp; jammed.</p><ul><li>one</li><li>two</li></ul>"
    )
    assert html_to_text(html) == "Hello Ana,\n\nPrinter offline & jammed.\n\n- one\n- two"
    assert html_to_text("no tags, 2 < 3\n  kept") == "no tags, 2 < 3\n  kept"
    assert html_to_text("<style>p {}</style><script>x()</script>text") == "text"


def test_trimming_case_and_simple_conversions() -> None:
    assert run("trim", "  a\r\nb  ") == "a\nb"
    assert run("trim", "   ") is None
    assert run("lower", "Ana@Acme.Example") == "ana@acme.example"
    assert run("str", 42) == "42"
    assert run("str", 2.0) == "2"
    assert run("int", "7") == 7
    assert run("bool", "false") is False
    assert run("negate", True) is False
    with pytest.raises(TransformFailure):
        run("int", "7.5")
    with pytest.raises(TransformFailure):
        run("bool", "maybe")


def test_names() -> None:
    assert run("split_name", "Reyes, Maria", part="display") == "Maria Reyes"
    assert run("split_name", "Maria  de la Cruz", part="first") == "Maria"
    assert run("split_name", "Maria de la Cruz", part="last") == "de la Cruz"
    assert run("split_name", "Reyes, Maria", part="last") == "Reyes"
    assert run("split_name", "Cher", part="last") is None


def test_error_codes() -> None:
    texts = [
        "Outlook error 0x800ccc0e again; HRESULT 0X80070005",
        "Security log: Event ID 4625, then EventID: 4740 and event 41. Error 1603 from msiexec.",
        "AADSTS50076 at sign-in. Not codes: 10x2000, ticket 4711, 0x12",
    ]
    assert extract_error_codes(texts) == (
        "0x800CCC0E",
        "0x80070005",
        "Event ID 4625",
        "Event ID 4740",
        "Event ID 41",
        "Error 1603",
        "AADSTS50076",
    )
    assert run("error_codes", ["<p>code 0x80070005</p>", None, "0x80070005"]) == ("0x80070005",)


def test_durations() -> None:
    assert run("minutes", 0.75, unit="hours") == 45
    assert run("minutes", "01:30", unit="hh:mm") == 90
    assert run("minutes", "1970-01-01 02:05:00", unit="glide") == 125
    assert run("minutes", 90, unit="seconds") == 2
    with pytest.raises(TransformFailure):
        run("minutes", "soon", unit="hours")


def test_structures() -> None:
    pairs = [{"caption": "Client Ref", "value": "X"}, {"caption": "", "value": 1}, "junk"]
    assert run("pairs_to_dict", pairs, key="caption") == {"Client Ref": "X"}
    assert run("pick_prefix", {"u_site": "A", "state": "1"}, prefix="u_") == {"u_site": "A"}
    assert run("split", "dwhitfield, kwatanabe,,") == ["dwhitfield", "kwatanabe"]
    assert run("join", ["Ana", None, " Reyes "]) == "Ana Reyes"
    assert run("first", []) is None
    assert run("truncate", "abcdef", length=4) == "abc…"
    assert run("text_to_html", "a<b\nc") == "<div>a&lt;b<br>c</div>"
    assert run("marker", "done [psabridge:abcdef123]") == "abcdef123"
    assert run("strip_marker", "done\n\n[psabridge:abcdef123]") == "done"


def test_lookups_name_ids_from_metadata() -> None:
    meta = VendorMetadata(
        system=System.AUTOTASK,
        fields={
            "queueID": (Choice(value="5", label="Client Portal"), Choice(value="6", label="Old", active=False)),
        },
    )
    assert run("lookup", 5, meta, field="queueID") == "Client Portal"
    assert run("lookup", "6", meta, field="queueID") == "Old"
    with pytest.raises(TransformFailure) as missing:
        run("lookup", 7, meta, field="queueID")
    assert missing.value.code == "lookup_failed"
    with pytest.raises(TransformFailure) as unavailable:
        run("lookup", 5, None, field="queueID")
    assert unavailable.value.code == "lookup_unavailable"
    assert run("lookup", 7, meta, field="queueID", quiet=True) is None
    assert run("lookup", 7, meta, field="queueID", keep_id=True) == "7"


def test_paths() -> None:
    record = {
        "a": {"b": [{"c": 1}, {"c": 2}, None]},
        "pairs": [{"name": "Site Code", "value": "CHI"}, {"name": "x", "value": None}],
        "flag": True,
        "_info": {"lastUpdated": "t"},
    }
    assert compile_path("a.b[0].c").get(record) == 1
    assert compile_path("a.b[-2].c").get(record) == 2
    assert compile_path("a.b[*].c").get(record) == [1, 2]
    assert compile_path("pairs[name=Site Code].value").get(record) == "CHI"
    assert compile_path("pairs[name='x'].value").get(record) is None
    assert compile_path("_info.lastUpdated").get(record) == "t"
    assert compile_path("a.missing.deeper").get(record) is None
    assert compile_path("flag.x").get(record) is None
    assert compile_path("$").get(record) is record
    for bad in ("", "a..b", "a.", "[0]", "a[x", "a[b c]", "a]b"):
        with pytest.raises(PathError):
            compile_path(bad)
    patch: dict[str, Any] = {}
    set_path(patch, compile_path("status"), {"id": 1})
    set_path(patch, compile_path("custom_fields.site"), "CHI")
    assert patch == {"status": {"id": 1}, "custom_fields": {"site": "CHI"}}
    assert compile_path("a.b").is_plain and not compile_path("a[0]").is_plain


def test_a_choice_is_found_by_value_active_first_within_its_scope_and_never_from_a_stale_index() -> None:
    choices = (
        Choice(value="5", label="Old New", active=False, scope="Help Desk"),
        Choice(value="5", label="New", scope="Help Desk"),
        Choice(value="7", label="Closed", scope="Projects"),
        Choice(value="9", label="Any board"),
    )
    metadata = VendorMetadata(system=System.CONNECTWISE, fields={"status": choices})
    assert find_choice(metadata, "status", value="5", scope="Help Desk") == choices[1]  # active wins
    assert find_choice(metadata, "status", value="7", scope="Help Desk") is None  # another board's
    assert find_choice(metadata, "status", value="9", scope="Help Desk") == choices[3]  # unscoped counts
    assert find_choice(metadata, "status", value="7") == choices[2]
    assert metadata.label_of("status", "9") == "Any board" and metadata.label_of("queue", "1") is None
    # a copy with other choices shares pydantic's private attributes: its lookups must not use the first index
    changed = metadata.model_copy(update={"fields": {"status": (Choice(value="5", label="Renamed"),)}})
    assert find_choice(changed, "status", value="5", scope="Help Desk") is not None
    assert changed.label_of("status", "5", "Help Desk") == "Renamed" and changed.label_of("status", "9") is None
    assert metadata.label_of("status", "5", "Help Desk") == "New"
