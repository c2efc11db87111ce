"""Autotask queries: the QueryModel (Filter, MaxRecords, IncludeFields), filter evaluation and id-cursor paging.

Sources: ATSW/ATDOCS REST_Basic_Query_Calls (ops ``eq noteq gt gte lt lte beginsWith endsWith contains exist
notExist in notIn``, grouping with ``and``/``or`` and ``items``, ``udf: true`` for user-defined fields, MaxRecords
1-500); KelvinTegelaar ``Get-AutotaskAPIResource.ps1`` and clients that re-POST the query to ``nextPageUrl`` (the
URL carries ``paging={"pageSize":..,"previousIds":[..],"nextIds":[..]}``); ATDOCS REST_Advanced_Query_Features
(with IncludeFields, leave ``id`` out and paging breaks). The API runs on SQL Server with its default
case-insensitive collation, so text comparisons ignore case, and a comparison with a null field is never true.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from psabridge_sandbox.autotask_data import data_type
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.table import Row

__all__ = ["MAX_RECORDS", "Cursor", "Entity", "Query", "compile_filter", "parse_query", "parse_time", "select_page"]

MAX_RECORDS = 500
_RETAINED_PAGES = 50  # previousIds kept in the cursor (clients report the API keeps the 50 most recent pages)

Getter = Callable[[Row, str], Any]
Predicate = Callable[[Row], bool]


@dataclass(frozen=True)
class Entity:
    """A queryable entity: its name in errors, its fields (canonical spelling), how to read a field of a row."""

    name: str
    fields: Sequence[str]
    get: Getter
    udfs: Callable[[Row], Sequence[Mapping[str, Any]]] | None = None

    def field(self, name: Any) -> str:
        """The canonical spelling of a field named in any case."""
        if isinstance(name, str):
            wanted = name.casefold()
            for known in self.fields:
                if known.casefold() == wanted:
                    return known
        raise VendorError(500, f"Unable to find {name} in the {self.name} entity.")


@dataclass(frozen=True)
class Query:
    """A parsed QueryModel."""

    filters: tuple[Mapping[str, Any], ...]
    max_records: int
    include_fields: tuple[str, ...] | None
    body: Mapping[str, Any]  # as received: re-sent as ``search`` in next-page URLs of GET queries


def _keyed(body: Mapping[str, Any]) -> dict[str, Any]:
    # ASP.NET model binding ignores the case of property names: Filter, filter and FILTER are one key.
    return {str(k).casefold(): v for k, v in body.items()}


def parse_query(body: Any) -> Query:
    """Parse a QueryModel body (or ``search`` parameter) with the API's validation."""
    if not isinstance(body, dict):
        raise VendorError(500, "The query is not a valid QueryModel object.")
    keyed = _keyed(body)
    filters = keyed.get("filter")
    if not isinstance(filters, list) or not filters:
        # Autotask refuses an unfiltered query; clients ask for everything with {"op":"gte","field":"id","value":0}.
        raise VendorError(500, "A query must contain at least one filter.")
    if not all(isinstance(f, dict) for f in filters):
        raise VendorError(500, "Each filter must be an object with op, field and value.")
    max_records = keyed.get("maxrecords")
    if max_records is None:
        max_records = MAX_RECORDS
    if isinstance(max_records, bool) or not isinstance(max_records, int) or not 1 <= max_records <= MAX_RECORDS:
        raise VendorError(500, f"MaxRecords must be between 1 and {MAX_RECORDS}.")
    include = keyed.get("includefields")
    fields: tuple[str, ...] | None = None
    if include:
        if not isinstance(include, list) or not all(isinstance(f, str) for f in include):
            raise VendorError(500, "IncludeFields must be a list of field names.")
        fields = tuple(include)
    return Query(tuple(filters), max_records, fields, body)


def parse_time(value: Any) -> datetime:
    """A datetime from a filter or body value: ISO 8601, ``Z`` or an offset; no zone means UTC (ATDOCS)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a date")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _coerce(field: str, value: Any) -> Any:
    """A filter value in the field's type (the API converts "5" to 5 for an integer field, and so on)."""
    if value is None:
        return None
    kind = data_type(field)
    try:
        if kind == "datetime":
            return parse_time(value)
        if kind in ("integer", "long"):
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            return int(value)
        if kind == "double":
            return float(value)
        if kind == "boolean":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("not a boolean")
                return value.lower() in ("true", "1")
            return bool(value)
        return str(value).casefold()
    except (TypeError, ValueError):
        raise VendorError(500, f"The value {value!r} is not valid for field {field}.") from None


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "noteq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "beginswith": lambda a, b: str(a).startswith(str(b)),
    "endswith": lambda a, b: str(a).endswith(str(b)),
    "contains": lambda a, b: str(b) in str(a),
}


def compile_filter(filters: Sequence[Mapping[str, Any]], entity: Entity) -> Predicate:
    """One predicate for a top-level filter list (its conditions are ANDed)."""
    parts = [_compile(f, entity) for f in filters]
    return lambda row: all(part(row) for part in parts)


def _compile(spec: Mapping[str, Any], entity: Entity) -> Predicate:
    keyed = _keyed(spec)
    op = keyed.get("op")
    if not isinstance(op, str):
        raise VendorError(500, "Each filter needs an op.")
    op = op.casefold()
    if op in ("and", "or"):
        items = keyed.get("items")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise VendorError(500, f"The {op} filter needs a non-empty items list.")
        parts = [_compile(item, entity) for item in items]
        if op == "and":
            return lambda row: all(part(row) for part in parts)
        return lambda row: any(part(row) for part in parts)
    read, field = _reader(keyed, entity)
    if op == "exist":
        return lambda row: read(row) not in (None, "")
    if op == "notexist":
        return lambda row: read(row) in (None, "")
    value = keyed.get("value")
    if op in ("in", "notin"):
        if not isinstance(value, list):
            raise VendorError(500, f"The {op} filter needs a list of values.")
        wanted = {_coerce(field, v) for v in value}
        if op == "in":
            return lambda row: _fold(read(row)) in wanted
        return lambda row: (found := _fold(read(row))) is not None and found not in wanted
    compare = _COMPARE.get(op)
    if compare is None:
        raise VendorError(500, f"The filter operator {keyed.get('op')!r} is not supported.")
    target = _coerce(field, value)
    if target is None:
        return lambda row: False

    def check(row: Row) -> bool:
        found = _fold(read(row))
        return found is not None and compare(found, target)

    return check


def _reader(keyed: Mapping[str, Any], entity: Entity) -> tuple[Callable[[Row], Any], str]:
    if keyed.get("udf") is True:
        name = keyed.get("field")
        udfs = entity.udfs
        if udfs is None or not isinstance(name, str):
            raise VendorError(500, f"{entity.name} has no user-defined field {name!r}.")
        wanted = name.casefold()

        def read_udf(row: Row) -> Any:
            for udf in udfs(row):
                if str(udf.get("name", "")).casefold() == wanted:
                    return udf.get("value")
            return None

        return read_udf, "udf"
    field = entity.field(keyed.get("field"))
    get = entity.get
    return (lambda row: get(row, field)), field


# --- paging ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: ``paging={"pageSize":..,"previousIds":[..],"nextIds":[..]}`` in next-page URLs."""

    page_size: int
    previous_ids: tuple[int, ...]
    next_id: int

    def encode(self) -> str:
        """The ``paging`` parameter value."""
        blob = {"pageSize": self.page_size, "previousIds": list(self.previous_ids), "nextIds": [self.next_id]}
        return quote(json.dumps(blob, separators=(",", ":")), safe="")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a ``paging`` parameter (already URL-decoded)."""
        try:
            blob = json.loads(text)
            return cls(int(blob["pageSize"]), tuple(int(i) for i in blob["previousIds"]), int(blob["nextIds"][0]))
        except (ValueError, KeyError, IndexError, TypeError):
            raise VendorError(500, "The paging parameter is not valid.") from None


def select_page(
    ids: Sequence[int], rows: Callable[[int], Row | None], start: int | None, size: int, matches: Predicate
) -> tuple[list[Row], int | None]:
    """The next ``size`` matching rows in id order from id ``start``, and the id the page after starts at (or None).

    ``ids`` is every id in ascending order. The filter is evaluated now, page by page, so a record that stops
    matching before its page is served is never returned, and one created while a client pages shows up on a later
    page: the anomalies of Autotask's id cursor when records change underneath.
    """
    position = 0 if start is None else bisect_left(ids, start)
    found: list[Row] = []
    for index in range(position, len(ids)):
        row = rows(ids[index])
        if row is None or not matches(row):
            continue
        if len(found) == size:
            return found, int(row.id)
        found.append(row)
    return found, None


def retained(previous: Sequence[int], first_id: int | None) -> tuple[int, ...]:
    """The previousIds of the next page: the first id of every page so far, the most recent 50."""
    ids = [*previous, first_id] if first_id is not None else list(previous)
    return tuple(ids[-_RETAINED_PAGES:])
