"""Paginators: small strategy objects that move a list request from page to page and alone decide when to stop.

The protocol follows dlt's REST client (dlt-hub/dlt ``dlt/sources/helpers/rest_client/paginators.py``)::

    paginator.init_request(request)                 # first page: set page/offset parameters
    response = send(request)
    paginator.update_state(response, records, body) # read where the next page is, or that there is none
    if paginator.has_next:
        paginator.update_request(request)           # point the request at the next page

``HttpClient.paginate`` drives it. A vendor passes its own parameter, header and body names; nothing here knows a
vendor. Stopping rules, in order: an empty page stops (unless told otherwise); a Link header relation, a total, or
a next URL is authoritative when configured; otherwise a page shorter than the page size is the last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx

__all__ = [
    "BasePaginator",
    "LinkHeaderPaginator",
    "NextUrlInBodyPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "PageRequest",
    "Paginator",
    "SinglePagePaginator",
    "dig",
]

TotalFunc = Callable[[httpx.Response, Any], int | None]
"""(response, parsed body) -> the total number of records (or pages, for page numbers), or None if not given."""


@dataclass
class PageRequest:
    """A list request a paginator may change between pages.

    Attributes:
        method: the HTTP verb (Autotask lists with POST).
        url: a path relative to the connection's base URL, or an absolute URL (a next-page link).
        params: query parameters; a paginator sets its page or offset parameters here.
        json: a JSON body (an Autotask query), re-sent with every page unless the paginator drops it.
        headers: extra request headers.
    """

    method: str = "GET"
    url: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Paginator(Protocol):
    """Moves a request from page to page. Only the paginator decides whether there is a next page."""

    @property
    def has_next(self) -> bool:
        """Whether another page should be requested (read after ``update_state``)."""
        ...

    def init_request(self, request: PageRequest) -> None:
        """Prepare the first page's request."""
        ...

    def update_state(self, response: httpx.Response, records: Sequence[Any], body: Any = None) -> None:
        """Learn from a page: its response, the records taken from it and its parsed body."""
        ...

    def update_request(self, request: PageRequest) -> None:
        """Point the request at the next page."""
        ...


def dig(body: Any, path: str | Sequence[str]) -> Any:
    """The value at a dotted path (``"pageDetails.nextPageUrl"``) in a parsed JSON body, or None."""
    parts = path.split(".") if isinstance(path, str) else list(path)
    node = body
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _header_int(response: httpx.Response, name: str | None) -> int | None:
    if name is None:
        return None
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class BasePaginator:
    """Shared state of the built-in paginators: ``has_next`` starts true and ``update_state`` may clear it."""

    def __init__(self) -> None:
        self._has_next = True

    @property
    def has_next(self) -> bool:
        """Whether another page should be requested."""
        return self._has_next

    def init_request(self, request: PageRequest) -> None:
        """Nothing to prepare by default."""

    def update_state(self, response: httpx.Response, records: Sequence[Any], body: Any = None) -> None:
        """Stop after the first page by default."""
        self._has_next = False

    def update_request(self, request: PageRequest) -> None:
        """Nothing to change by default."""


class SinglePagePaginator(BasePaginator):
    """One request, one page: for endpoints that do not paginate."""


class _CountingPaginator(BasePaginator):
    """Page-number and offset paging: the request counts its way forward; the stopping rules are shared."""

    def __init__(
        self,
        *,
        size: int | None,
        link_rel: str | None,
        total: TotalFunc | None,
        total_header: str | None,
        stop_on_short_page: bool,
        stop_after_empty_page: bool,
    ) -> None:
        super().__init__()
        if size is not None and size <= 0:
            raise ValueError("the page size must be positive")
        self.size = size
        self.link_rel = link_rel
        self.total = total
        self.total_header = total_header
        self.stop_on_short_page = stop_on_short_page
        self.stop_after_empty_page = stop_after_empty_page

    def _known_total(self, response: httpx.Response, body: Any) -> int | None:
        found = self.total(response, body) if self.total is not None else None
        return found if found is not None else _header_int(response, self.total_header)

    def _decide(self, response: httpx.Response, records: Sequence[Any], body: Any, *, reached: int) -> bool:
        """Whether there is a next page; ``reached`` is how far the pages read so far go, in the total's unit."""
        if not records and self.stop_after_empty_page:
            return False
        if self.link_rel is not None:
            return self.link_rel in response.links
        total = self._known_total(response, body)
        if total is not None:
            return reached < total
        if self.stop_on_short_page and self.size is not None:
            return len(records) >= self.size
        return bool(records)


class PageNumberPaginator(_CountingPaginator):
    """``?page=1&per_page=100``, then page 2, 3 ...

    Args:
        param: the page-number parameter.
        start: the first page's number (1 for most vendors).
        size: records per page to ask for (also what makes a page "short").
        size_param: the page-size parameter, if the vendor takes one.
        link_rel: if set, a Link header relation (``"next"``) decides alone whether there is a next page.
        total_pages: (response, body) -> the number of pages, if the vendor says.
        total_pages_header: a header holding the number of pages.
        stop_on_short_page: without Link or total, a page with fewer than ``size`` records is the last.
        stop_after_empty_page: an empty page is the last, whatever else the vendor says.
    """

    def __init__(
        self,
        *,
        param: str = "page",
        start: int = 1,
        size: int | None = None,
        size_param: str | None = None,
        link_rel: str | None = None,
        total_pages: TotalFunc | None = None,
        total_pages_header: str | None = None,
        stop_on_short_page: bool = True,
        stop_after_empty_page: bool = True,
    ) -> None:
        super().__init__(
            size=size,
            link_rel=link_rel,
            total=total_pages,
            total_header=total_pages_header,
            stop_on_short_page=stop_on_short_page,
            stop_after_empty_page=stop_after_empty_page,
        )
        if size_param is not None and size is None:
            raise ValueError("size_param needs a size")
        self.param = param
        self.start = start
        self.size_param = size_param
        self.page = start

    def init_request(self, request: PageRequest) -> None:
        """Ask for the first page (and the page size)."""
        self.page = self.start
        request.params[self.param] = self.page
        if self.size_param is not None:
            request.params[self.size_param] = self.size

    def update_state(self, response: httpx.Response, records: Sequence[Any], body: Any = None) -> None:
        """Decide whether the page just read was the last."""
        self._has_next = self._decide(response, records, body, reached=self.page - self.start + 1)

    def update_request(self, request: PageRequest) -> None:
        """Ask for the next page number."""
        self.page += 1
        request.params[self.param] = self.page


class OffsetPaginator(_CountingPaginator):
    """``?offset=0&limit=100``, then offset 100, 200 ... The offset always advances by the limit asked for.

    Advancing by the number of records received instead would repeat records forever when a vendor filters rows
    after applying the limit (ServiceNow ACLs do), and advancing by one is a known bug (n8n-io/n8n#35775).

    Args:
        offset_param, limit_param: the parameter names.
        limit: records per page.
        start: the first offset.
        link_rel: if set, a Link header relation decides alone whether there is a next page.
        total: (response, body) -> the total number of records, if the vendor says.
        total_header: a header holding the total number of records.
        stop_on_short_page: without Link or total, a page with fewer than ``limit`` records is the last.
        stop_after_empty_page: an empty page is the last, whatever else the vendor says.
    """

    def __init__(
        self,
        *,
        offset_param: str = "offset",
        limit_param: str = "limit",
        limit: int,
        start: int = 0,
        link_rel: str | None = None,
        total: TotalFunc | None = None,
        total_header: str | None = None,
        stop_on_short_page: bool = True,
        stop_after_empty_page: bool = True,
    ) -> None:
        super().__init__(
            size=limit,
            link_rel=link_rel,
            total=total,
            total_header=total_header,
            stop_on_short_page=stop_on_short_page,
            stop_after_empty_page=stop_after_empty_page,
        )
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.limit = limit
        self.start = start
        self.offset = start

    def init_request(self, request: PageRequest) -> None:
        """Ask for the first ``limit`` records."""
        self.offset = self.start
        request.params[self.offset_param] = self.offset
        request.params[self.limit_param] = self.limit

    def update_state(self, response: httpx.Response, records: Sequence[Any], body: Any = None) -> None:
        """Decide whether the page just read was the last."""
        self._has_next = self._decide(response, records, body, reached=self.offset + self.limit)

    def update_request(self, request: PageRequest) -> None:
        """Ask for the next ``limit`` records."""
        self.offset += self.limit
        request.params[self.offset_param] = self.offset


class LinkHeaderPaginator(BasePaginator):
    """Follow the URL of a Link header relation (RFC 8288) until a page has none.

    The next URL carries the whole query, so the request's own parameters are dropped after the first page.

    Args:
        rel: the relation to follow.
        stop_after_empty_page: an empty page is the last even if it links to another.
    """

    def __init__(self, *, rel: str = "next", stop_after_empty_page: bool = True) -> None:
        super().__init__()
        self.rel = rel
        self.stop_after_empty_page = stop_after_empty_page
        self.next_url: str | None = None

    def update_state(self, response: httpx.Response, records: Sequence[Any], body: Any = None) -> None:
        """Read the next URL from the Link header."""
        self.next_url = response.links.get(self.rel, {}).get("url") or None
        self._has_next = self.next_url is not None and not (self.stop_after_empty_page and not records)

    def update_request(self, request: PageRequest) -> None:
        """Request the linked URL."""
        assert self.next_url is not None
        request.url = self.next_url
        request.params = {}


class NextUrlInBodyPaginator(BasePaginator):
    """Follow a next-page URL found in the response body until it is null or missing.

    Args:
        path: where the URL is in the body, dotted (``"next"``, ``"pageDetails.nextPageUrl"``) or as parts.
        resend_body: send the first request's JSON body again to the next URL (a query POSTed page after page).
        method: the verb for next pages, if it differs from the first request's.
        stop_after_empty_page: an empty page is the last even if it names another.
    """

    def __init__(
        self,
        *,
        path: str | Sequence[str],
        resend_body: bool = True,
        method: str | None = None,
        stop_after_empty_page: bool = True,
    ) -> None:
        super().__init__()
        self.path = path
        self.resend_body = resend_body
        self.method = method
        self.stop_after_empty_page = stop_after_empty_page
        self.next_url: str | None = None

    def update_state(self, response: httpx.Response, records: Sequence[Any], body: Any = None) -> None:
        """Read the next URL from the body."""
        found = dig(body, self.path)
        self.next_url = found if isinstance(found, str) and found else None
        self._has_next = self.next_url is not None and not (self.stop_after_empty_page and not records)

    def update_request(self, request: PageRequest) -> None:
        """Request the named URL (with the same body, unless told otherwise)."""
        assert self.next_url is not None
        request.url = self.next_url
        request.params = {}
        if not self.resend_body:
            request.json = None
        if self.method is not None:
            request.method = self.method
