"""Strings the database cannot store, removed from a raw vendor record before it is mapped and stored. Pure.

PostgreSQL refuses the NUL character (U+0000) in text and in ``jsonb`` ("unsupported Unicode escape sequence";
https://www.postgresql.org/docs/current/datatype-json.html), and one such character in a Freshservice subject used
to fail every reconcile of the connection. SQLite would keep it, but both stores hold the same data: the character is
removed everywhere, and the ticket gets a finding naming where it was, so nothing is silently changed.

Neither store can hold half of a UTF-16 surrogate pair either (U+D800-U+DFFF alone: a vendor that cuts an emoji in
two, which a JSON escape of one half lets through): it cannot be encoded as UTF-8 at all, so it stopped the whole
page on both databases. It is replaced with U+FFFD, the replacement character, with the same finding.
"""

from __future__ import annotations

import json
import re
from typing import Any

from psabridge.mapping import InboundResult, MappingProblem

__all__ = ["UNSTORABLE", "scrub_record", "with_scrub_findings"]

UNSTORABLE = "\x00"
"""The character no store may hold: removed."""
_SURROGATE = re.compile("[\ud800-\udfff]")
"""Halves of a UTF-16 pair, which UTF-8 cannot encode: replaced with U+FFFD."""


def scrub_record(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The record without unstorable characters (in keys and string values, at any depth), and where they were.

    Returns the record itself (not a copy) when it holds none, which is the common case and costs one ``json.dumps``.
    """
    dumped = json.dumps(raw, ensure_ascii=False, check_circular=False, default=str)
    if "\\u0000" not in dumped and _encodable(dumped):
        return raw, []
    paths: list[str] = []
    cleaned = _clean(raw, "", paths)
    assert isinstance(cleaned, dict)
    return cleaned, paths


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(text: str) -> str | None:
    """``text`` cleaned, or None when it is clean already."""
    if UNSTORABLE not in text and _encodable(text):
        return None
    return _SURROGATE.sub("\ufffd", text.replace(UNSTORABLE, ""))


def _clean(value: Any, path: str, paths: list[str]) -> Any:
    if isinstance(value, str):
        cleaned = _storable(value)
        if cleaned is not None:
            paths.append(path or "(record)")
            return cleaned
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            cleaned_name = _storable(name)
            if cleaned_name is not None:
                paths.append(f"{path}.{name!r}" if path else repr(name))
                name = cleaned_name
            out[name] = _clean(item, f"{path}.{name}" if path else name, paths)
        return out
    if isinstance(value, list):
        return [_clean(item, f"{path}[{index}]", paths) for index, item in enumerate(value)]
    return value


def with_scrub_findings(mapped: InboundResult, paths: list[str]) -> InboundResult:
    """The mapping result with one finding per place its raw record held a character the database cannot store."""
    if not paths:
        return mapped
    problems = tuple(
        MappingProblem(
            field=f"raw.{path}",
            raw=None,
            code="unstorable_character",
            message=f"the vendor's value at {path} held a character the database cannot store (NUL, removed; or "
            "half of a UTF-16 pair, replaced with U+FFFD)",
        )
        for path in paths
    )
    return InboundResult(mapped.ticket, mapped.findings + problems, mapped.trace)
