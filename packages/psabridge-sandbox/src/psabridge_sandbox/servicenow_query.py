"""ServiceNow encoded queries (``sysparm_query``) for the simulator: parse, filter and order records.

Syntax, as the Table API documents it (docs.servicenow.com "Table API - GET /now/table/{tableName}", Geneva and
later; pysnow ``query_builder.py``): conditions joined with ``^`` (AND) and ``^OR`` (OR, binding tighter than AND),
whole queries joined with ``^NQ`` (a new query, OR'ed with the others), ``ORDERBY<field>`` / ``ORDERBYDESC<field>``
anywhere in the string, and operators ``= != < <= > >= LIKE NOT LIKE STARTSWITH ENDSWITH IN NOT IN ISEMPTY
ISNOTEMPTY``. Datetimes are literal ``YYYY-MM-DD HH:MM:SS`` strings (UTC for an integration user in GMT) or
``javascript:gs.dateGenerate('2024-05-01','00:00:00')``.

Quirk kept on purpose: "If part of the query is invalid, such as by specifying an invalid field name, the instance
ignores the invalid part. It then returns rows using only the valid portion of the query" (same docs page; the
property ``glide.invalid_query.returns_no_rows`` is false by default). A misspelt field therefore widens a query
instead of failing it, which is why the connector's wire format is pinned by tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Condition", "EncodedQuery", "parse_query"]

Getter = Callable[[Any, str], str | None]
"""(record, field) -> the field's stored value as a string, or None when the table has no such field."""

_CONDITION = re.compile(
    r"^(?P<field>[a-z_][a-z0-9_.]*?)"
    r"(?P<op>ISNOTEMPTY|ISEMPTY|STARTSWITH|ENDSWITH|NOT LIKE|LIKE|NOT IN|IN|!=|>=|<=|>|<|=)"
    r"(?P<value>.*)$",
    re.DOTALL,
)
_DATE_GENERATE = re.compile(r"^javascript:gs\.dateGenerate\('(\d{4}-\d{2}-\d{2})',\s*'(\d{2}:\d{2}:\d{2})'\)$")
_INT = re.compile(r"^-?\d+$")


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``<field><operator><value>`` term."""

    field: str
    op: str
    value: str

    def matches(self, stored: str, numeric: bool) -> bool:
        """Whether a record whose field holds ``stored`` satisfies the term."""
        op, value = self.op, self.value
        if op == "=":
            return stored == value
        if op == "!=":
            return stored != value
        if op == "ISEMPTY":
            return stored == ""
        if op == "ISNOTEMPTY":
            return stored != ""
        if op in ("IN", "NOT IN"):
            found = stored in value.split(",")
            return found if op == "IN" else not found
        if op in (">", ">=", "<", "<="):
            if stored == "":
                return False  # an empty value is NULL in the database: no ordering comparison holds
            left: Any = stored
            right: Any = value
            if numeric and _INT.match(stored) and _INT.match(value):
                left, right = int(stored), int(value)
            if op == ">":
                return bool(left > right)
            if op == ">=":
                return bool(left >= right)
            if op == "<":
                return bool(left < right)
            return bool(left <= right)
        low, needle = stored.casefold(), value.casefold()
        if op == "LIKE":
            return needle in low
        if op == "NOT LIKE":
            return needle not in low
        if op == "STARTSWITH":
            return low.startswith(needle)
        return low.endswith(needle)  # ENDSWITH


Group = tuple[Condition, ...]
"""Conditions joined with ^OR."""


@dataclass(frozen=True)
class EncodedQuery:
    """A parsed ``sysparm_query``: (AND of OR-groups) per ^NQ part, plus the ordering."""

    parts: tuple[tuple[Group, ...], ...] = ()
    order: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    ignored: tuple[str, ...] = field(default=())  # terms dropped as invalid (reported in the sandbox state)

    def one_of(self, name: str) -> list[str] | None:
        """The values of a top-level ``name=value`` or ``nameINa,b,c`` term, when the query is one part requiring it."""
        if len(self.parts) != 1:
            return None
        for group in self.parts[0]:
            if len(group) == 1 and group[0].field == name and group[0].op in ("=", "IN"):
                return [group[0].value] if group[0].op == "=" else group[0].value.split(",")
        return None

    def filter(self, records: Sequence[Any], get: Getter, numeric: Callable[[str], bool]) -> list[Any]:
        """The records that match, in the query's order (stable: ties keep the given order)."""
        if self.parts:
            found = [r for r in records if any(_all(part, r, get, numeric) for part in self.parts)]
        else:
            found = list(records)
        for name, descending in reversed(self.order):
            found.sort(key=_sort_key(get, name, numeric(name)), reverse=descending)
        return found


def _all(part: tuple[Group, ...], record: Any, get: Getter, numeric: Callable[[str], bool]) -> bool:
    return all(any(c.matches(get(record, c.field) or "", numeric(c.field)) for c in group) for group in part)


def _sort_key(get: Getter, name: str, numeric: bool) -> Callable[[Any], Any]:
    if numeric:
        return lambda record: _number(get(record, name))
    return lambda record: get(record, name) or ""


def _number(value: str | None) -> float:
    if value and _INT.match(value):
        return float(value)
    return float("-inf")  # empty (NULL) sorts first ascending, as in the database


def parse_query(text: str, known: Callable[[str], bool]) -> EncodedQuery:
    """Parse a ``sysparm_query``; terms naming unknown fields or unsupported operators are dropped (the quirk above).

    Args:
        text: the encoded query, already URL-decoded.
        known: whether a (possibly dot-walked) field exists, so invalid terms can be ignored as the instance does.
    """
    parts: list[tuple[Group, ...]] = []
    order: list[tuple[str, bool]] = []
    ignored: list[str] = []
    match_all = False
    for chunk in text.split("^NQ"):
        groups: list[list[Condition]] = []
        filtering = False  # the part had a filter term at all (valid or not)
        for token in chunk.split("^"):
            token = token.strip()
            if not token or token == "EQ":  # noqa: S105 - EQ ends an encoded query, not a password
                continue
            if token.startswith("ORDERBYDESC"):
                order.append((token[len("ORDERBYDESC") :], True))
                continue
            if token.startswith("ORDERBY"):
                order.append((token[len("ORDERBY") :], False))
                continue
            filtering = True
            alternative = token.startswith("OR") and bool(groups)
            condition = _condition(token[2:] if alternative else token, known)
            if condition is None:
                ignored.append(token)
            elif alternative:
                groups[-1].append(condition)
            else:
                groups.append([condition])
        if groups:
            parts.append(tuple(tuple(g) for g in groups))
        elif filtering:
            match_all = True  # every term of this part was invalid and ignored: it matches every record
    valid_order = tuple((name, desc) for name, desc in order if known(name))
    ignored.extend(f"ORDERBY{name}" for name, _ in order if not known(name))
    return EncodedQuery(() if match_all else tuple(parts), valid_order, tuple(ignored))


def _condition(token: str, known: Callable[[str], bool]) -> Condition | None:
    match = _CONDITION.match(token)
    if match is None:
        return None
    name, op, value = match.group("field"), match.group("op"), match.group("value")
    if not known(name):
        return None
    if value.startswith("javascript:"):
        generated = _DATE_GENERATE.match(value)
        if generated is None:
            return None  # other server-side scripts are not simulated
        value = f"{generated.group(1)} {generated.group(2)}"
    if op in ("ISEMPTY", "ISNOTEMPTY"):
        value = ""
    return Condition(name, op, value)
