"""Strings the database cannot store, removed from a raw vendor record before it is mapped and stored. Pure.

PostgreSQL refuses the NUL character (U+0000) in text and in ``jsonb`` ("unsupported Unicode escape sequence";
https://www.postgresql.org/docs/current/datatype-json.html), and one such character in a Freshservice subject used
to fail every reconcile of the connection. SQLite would keep it, but both stores hold the same data: the character is
removed everywhere, and the ticket gets a finding naming where it was, so nothing is silently changed.
"""

from __future__ import annotations

import json
from typing import Any

from psabridge.mapping import InboundResult, MappingProblem

__all__ = ["UNSTORABLE", "scrub_record", "with_scrub_findings"]

UNSTORABLE = "\x00"
"""The character no store may hold."""


def scrub_record(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The record without NUL characters (in keys and string values, at any depth), and the paths they were at.

    Returns the record itself (not a copy) when it holds none, which is the common case and costs one ``json.dumps``.
    """
    if "\\u0000" not in json.dumps(raw, ensure_ascii=False, check_circular=False, default=str):
        return raw, []
    paths: list[str] = []
    cleaned = _clean(raw, "", paths)
    assert isinstance(cleaned, dict)
    return cleaned, paths


def _clean(value: Any, path: str, paths: list[str]) -> Any:
    if isinstance(value, str):
        if UNSTORABLE in value:
            paths.append(path or "(record)")
            return value.replace(UNSTORABLE, "")
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if UNSTORABLE in name:
                paths.append(f"{path}.{name!r}" if path else repr(name))
                name = name.replace(UNSTORABLE, "")
            out[name] = _clean(item, f"{path}.{name}" if path else name, paths)
        return out
    if isinstance(value, list):
        return [_clean(item, f"{path}[{index}]", paths) for index, item in enumerate(value)]
    return value


def with_scrub_findings(mapped: InboundResult, paths: list[str]) -> InboundResult:
    """The mapping result with one finding per place a NUL character was removed from its raw record."""
    if not paths:
        return mapped
    problems = tuple(
        MappingProblem(
            field=f"raw.{path}",
            raw=None,
            code="unstorable_character",
            message=f"the vendor's value at {path} held a NUL character, which the database cannot store: "
            "it was removed",
        )
        for path in paths
    )
    return InboundResult(mapped.ticket, mapped.findings + problems, mapped.trace)
