"""ConnectWise PSA list mechanics for the simulator: field access, projection, ordering, paging and ``Link``.

Paging is ``page`` (1-based) and ``pageSize`` (default 25, at most 1000: larger values are cut to 1000), and the
answer carries a ``Link`` header with ``first``/``prev``/``next``/``last`` relations when there is more than one page
(VENDOR-APIS.md 1.3: CWREST typedef, pyconnectwise ``responses/paginated_response.py``). There is no total header
(``/count`` gives it). Paging is by offset over the order asked for, so a record whose sort key changes while a client
pages moves under it: the anomaly a client ordering by ``_info/lastUpdated`` must survive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from psabridge_sandbox.connectwise_conditions import ConditionError, parse_datetime, parse_order_by

__all__ = [
    "DATE_FIELDS",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Paging",
    "dict_getter",
    "link_header",
    "order",
    "paging",
    "project",
]

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
DATE_FIELDS = frozenset(
    {
        "lastupdated",
        "dateentered",
        "datecreated",
        "timestart",
        "timeend",
        "closeddate",
        "dateresolved",
        "dateresponded",
        "dateresplan",
        "requireddate",
    }
)


def _child(node: Any, part: str) -> Any:
    """``node[part]`` with ConnectWise's case-insensitive field names."""
    if not isinstance(node, dict):
        return None
    if part in node:
        return node[part]
    for key, value in node.items():
        if key.lower() == part:
            return value
    return None


def dict_getter(known: frozenset[str]) -> Callable[[Any, tuple[str, ...]], Any]:
    """A condition getter over plain records whose top-level fields (lower-case) are ``known``; dates parsed."""

    def get(record: Any, path: tuple[str, ...]) -> Any:
        if path[0] not in known:
            raise ConditionError(f"unknown field {'/'.join(path)!r}")
        node = record
        for part in path:
            node = _child(node, part)
            if node is None:
                return None
        if path[-1] in DATE_FIELDS and isinstance(node, str):
            try:
                return parse_datetime(node)
            except ValueError:
                return node
        return node

    return get


def order(
    items: list[Any], text: str | None, get: Callable[[Any, tuple[str, ...]], Any], default: tuple[str, ...] = ("id",)
) -> list[Any]:
    """``items`` sorted as ``orderBy`` says (nulls first, as SQL Server sorts them); ``default`` without one."""
    keys = parse_order_by(text) or [(default, False)]
    result = list(items)
    for path, descending in reversed(keys):
        if result:
            get(result[0], path)  # an unknown field fails even when every value would be null
        result.sort(key=_sorter(get, path), reverse=descending)
    return result


def _sorter(get: Callable[[Any, tuple[str, ...]], Any], path: tuple[str, ...]) -> Callable[[Any], tuple[int, Any]]:
    return lambda item: _sort_key(get(item, path))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (1, value.casefold())
    if isinstance(value, datetime):
        return (1, value.timestamp())
    if isinstance(value, dict):
        return (1, str(value.get("name") or value.get("identifier") or value.get("id")).casefold())
    return (1, value)


class Paging:
    """The page asked for: ``page`` and ``pageSize`` as ConnectWise reads them."""

    def __init__(self, page: int, size: int) -> None:
        self.page = page
        self.size = size

    @property
    def offset(self) -> int:
        """Records skipped before this page."""
        return (self.page - 1) * self.size

    def slice(self, items: Sequence[Any]) -> Sequence[Any]:
        """The part of ``items`` on this page."""
        return items[self.offset : self.offset + self.size]


def paging(request: Request) -> Paging:
    """``page`` and ``pageSize`` from the query (ConditionError for values that are not positive integers)."""
    try:
        page = int(request.query_params.get("page", "1"))
        size = int(request.query_params.get("pageSize", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        raise ConditionError("page and pageSize must be integers") from None
    if page < 1 or size < 1:
        raise ConditionError("page and pageSize must be positive")
    return Paging(page, min(size, MAX_PAGE_SIZE))


def link_header(request: Request, paging: Paging, total: int) -> str | None:
    """The ``Link`` header for this page of ``total`` records (None when everything fits on one page)."""
    last = max(1, -(-total // paging.size))
    if last == 1 and paging.page == 1:
        return None
    base = str(request.url.replace(query=""))
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "pageSize")]

    def url(page: int) -> str:
        return f"{base}?{urlencode([*params, ('pageSize', paging.size), ('page', page)])}"

    links = []
    if paging.page > 1:
        links.append(f'<{url(1)}>; rel="first"')
        links.append(f'<{url(min(paging.page - 1, last))}>; rel="prev"')
    if paging.page < last:
        links.append(f'<{url(paging.page + 1)}>; rel="next"')
        links.append(f'<{url(last)}>; rel="last"')
    return ", ".join(links) or None


def project(record: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """``record`` cut to the comma-separated ``fields`` paths (``id,status/name,_info/lastUpdated``), if given."""
    if not fields:
        return record
    out: dict[str, Any] = {}
    for raw in fields.split(","):
        parts = [p for p in raw.strip().split("/") if p]
        if not parts:
            continue
        source: Any = record
        target = out
        for index, part in enumerate(parts):
            key = next((k for k in source if k.lower() == part.lower()), None) if isinstance(source, dict) else None
            if key is None:
                break
            if index == len(parts) - 1:
                target[key] = source[key]
            else:
                target = target.setdefault(key, {})
                source = source[key]
    return out
