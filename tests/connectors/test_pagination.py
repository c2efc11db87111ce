"""Each paginator against a fake API that really paginates generated records, including every stopping rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from psabridge.connectors.http import FetchedPage, HttpClient
from psabridge.connectors.pagination import (
    LinkHeaderPaginator,
    NextUrlInBodyPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    PageRequest,
    Paginator,
    SinglePagePaginator,
    dig,
)
from psabridge.errors import BugError, PermanentError

from .conftest import BASE_URL, ClientFactory

RECORDS = [{"id": n} for n in range(1, 238)]  # 237: not a multiple of any page size used here


def ids(pages: Iterator[FetchedPage]) -> list[int]:
    return [record["id"] for page in pages for record in page.records]


def items(body: Any) -> list[Any]:
    return list(body["items"])


def fetch(client: HttpClient, request: PageRequest, paginator: Paginator) -> tuple[list[int], list[FetchedPage]]:
    pages = list(client.paginate(request, paginator, items))
    return ids(iter(pages)), pages


def page_number_api(records: list[dict[str, Any]], *, cap: int | None = None, link: bool = False) -> Any:
    """?page=N&per_page=K (the server caps K at ``cap``); optionally a Link rel=next while more pages exist."""

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        size = int(request.url.params["per_page"])
        size = min(size, cap) if cap else size
        chunk = records[(page - 1) * size : page * size]
        headers = {"X-Total-Pages": str(-(-len(records) // size))}
        if link and page * size < len(records):
            nxt = request.url.copy_set_param("page", page + 1)
            headers["Link"] = f'<{nxt}>; rel="next", <{request.url.copy_set_param("page", 1)}>; rel="first"'
        return httpx.Response(200, json={"items": chunk}, headers=headers)

    return handler


def test_page_number_stops_on_the_short_last_page(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/items").mock(side_effect=page_number_api(RECORDS))
    found, pages = fetch(make_client(), PageRequest(url="items"), PageNumberPaginator(size=50, size_param="per_page"))
    assert found == [r["id"] for r in RECORDS]
    assert route.call_count == 5
    assert [p.number for p in pages] == [1, 2, 3, 4, 5]
    assert [p.last for p in pages] == [False, False, False, False, True]


def test_page_number_stops_on_an_empty_page_when_the_count_divides_evenly(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    route = router.get("/items").mock(side_effect=page_number_api(RECORDS[:200]))
    found, _ = fetch(make_client(), PageRequest(url="items"), PageNumberPaginator(size=50, size_param="per_page"))
    assert len(found) == 200
    assert route.call_count == 5  # four full pages, then the empty fifth


def test_page_number_with_link_header_follows_the_vendor_not_the_page_size(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    # The vendor quietly caps pages at 30 while we ask for 100: only its Link header says whether more follow.
    route = router.get("/items").mock(side_effect=page_number_api(RECORDS, cap=30, link=True))
    paginator = PageNumberPaginator(size=100, size_param="per_page", link_rel="next")
    found, _ = fetch(make_client(), PageRequest(url="items", params={"order": "asc"}), paginator)
    assert found == [r["id"] for r in RECORDS]
    assert route.call_count == 8
    assert all(call.request.url.params["order"] == "asc" for call in route.calls)


def test_page_number_by_short_page_alone_would_stop_early_on_a_capping_vendor(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    router.get("/items").mock(side_effect=page_number_api(RECORDS, cap=30, link=True))
    found, _ = fetch(make_client(), PageRequest(url="items"), PageNumberPaginator(size=100, size_param="per_page"))
    assert len(found) == 30


def test_page_number_with_a_total_pages_header(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/items").mock(side_effect=page_number_api(RECORDS, cap=40))
    paginator = PageNumberPaginator(size=100, size_param="per_page", total_pages_header="X-Total-Pages")
    found, _ = fetch(make_client(), PageRequest(url="items"), paginator)
    assert len(found) == 237
    assert route.call_count == 6


def offset_api(records: list[dict[str, Any]], *, hidden: frozenset[int] = frozenset()) -> Any:
    """?offset=&limit= with X-Total-Count and Link; rows in ``hidden`` are filtered after the limit (like ACLs)."""

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["sysparm_offset"])
        limit = int(request.url.params["sysparm_limit"])
        chunk = [r for r in records[offset : offset + limit] if r["id"] not in hidden]
        headers = {"X-Total-Count": str(len(records))}
        if offset + limit < len(records):
            headers["Link"] = f'<{request.url.copy_set_param("sysparm_offset", offset + limit)}>;rel="next"'
        return httpx.Response(200, json={"items": chunk}, headers=headers)

    return handler


def offset_paginator(**options: Any) -> OffsetPaginator:
    return OffsetPaginator(offset_param="sysparm_offset", limit_param="sysparm_limit", limit=100, **options)


def test_offset_advances_by_the_limit_until_the_total(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/table").mock(side_effect=offset_api(RECORDS))
    found, _ = fetch(make_client(), PageRequest(url="table"), offset_paginator(total_header="X-Total-Count"))
    assert found == [r["id"] for r in RECORDS]
    assert [call.request.url.params["sysparm_offset"] for call in route.calls] == ["0", "100", "200"]


def test_offset_with_rows_filtered_after_the_limit_neither_stops_early_nor_repeats(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    hidden = frozenset(range(50, 100))  # the first page comes back half empty
    route = router.get("/table").mock(side_effect=offset_api(RECORDS, hidden=hidden))
    found, _ = fetch(make_client(), PageRequest(url="table"), offset_paginator(link_rel="next"))
    assert found == [r["id"] for r in RECORDS if r["id"] not in hidden]
    assert route.call_count == 3


def test_offset_stops_on_a_short_page_without_total_or_link(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    route = router.get("/table").mock(side_effect=offset_api(RECORDS))
    found, _ = fetch(make_client(), PageRequest(url="table"), offset_paginator())
    assert len(found) == 237
    assert route.call_count == 3


def test_offset_stops_on_an_empty_page_even_if_the_total_says_more(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    route = router.get("/table").mock(
        return_value=httpx.Response(200, json={"items": []}, headers={"X-Total-Count": "900"})
    )
    found, _ = fetch(make_client(), PageRequest(url="table"), offset_paginator(total_header="X-Total-Count"))
    assert found == []
    assert route.call_count == 1


def cursor_api(records: list[dict[str, Any]]) -> Any:
    """The first page at /items; each page links the next by an opaque cursor until the last."""

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("cursor", "0"))
        chunk = records[start : start + 60]
        headers = {}
        if start + 60 < len(records):
            headers["Link"] = f'<{BASE_URL}/items?cursor={start + 60}>; rel="next"'
        return httpx.Response(200, json={"items": chunk}, headers=headers)

    return handler


def test_link_header_follows_next_until_there_is_none(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/items").mock(side_effect=cursor_api(RECORDS))
    request = PageRequest(url="items", params={"filter": "open"})
    found, pages = fetch(make_client(), request, LinkHeaderPaginator())
    assert found == [r["id"] for r in RECORDS]
    assert route.call_count == 4
    # The first request carries our parameters; the linked URLs carry the whole query themselves.
    assert [dict(call.request.url.params) for call in route.calls] == [
        {"filter": "open"},
        {"cursor": "60"},
        {"cursor": "120"},
        {"cursor": "180"},
    ]
    assert pages[-1].last


def query_api(records: list[dict[str, Any]]) -> Any:
    """POST a query; the body names the next page's URL (pageDetails.nextPageUrl), to be POSTed the same query."""

    def handler(request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)
        assert query == {"filter": [{"op": "gt", "field": "id", "value": 0}]}, "the query must be sent again"
        after = int(request.url.params.get("after", "0"))
        chunk = [r for r in records if r["id"] > after][:100]
        more = chunk and chunk[-1]["id"] < records[-1]["id"]
        next_url = f"{BASE_URL}/query/next?after={chunk[-1]['id']}" if more else None
        return httpx.Response(200, json={"items": chunk, "pageDetails": {"count": len(chunk), "nextPageUrl": next_url}})

    return handler


def test_next_url_in_body_reposts_the_query_until_the_url_is_null(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    first = router.post("/query").mock(side_effect=query_api(RECORDS))
    following = router.post("/query/next").mock(side_effect=query_api(RECORDS))
    request = PageRequest(method="POST", url="query", json={"filter": [{"op": "gt", "field": "id", "value": 0}]})
    found, _ = fetch(make_client(), request, NextUrlInBodyPaginator(path="pageDetails.nextPageUrl"))
    assert found == [r["id"] for r in RECORDS]
    assert (first.call_count, following.call_count) == (1, 2)


def test_next_url_in_body_can_switch_to_get_without_the_body(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    router.post("/search").mock(
        return_value=httpx.Response(200, json={"items": [{"id": 1}], "next": f"{BASE_URL}/search/2"})
    )
    nxt = router.get("/search/2").mock(return_value=httpx.Response(200, json={"items": [{"id": 2}], "next": None}))
    request = PageRequest(method="POST", url="search", json={"q": "x"})
    found, _ = fetch(make_client(), request, NextUrlInBodyPaginator(path="next", resend_body=False, method="GET"))
    assert found == [1, 2]
    assert nxt.calls.last.request.content == b""


def test_a_single_page_endpoint_is_read_once(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/statuses").mock(return_value=httpx.Response(200, json={"items": [{"id": 1}, {"id": 2}]}))
    found, _ = fetch(make_client(), PageRequest(url="statuses"), SinglePagePaginator())
    assert found == [1, 2]
    assert route.call_count == 1


def test_a_vendor_that_links_the_same_page_again_is_a_pagination_loop(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    route = router.get("/items").mock(
        return_value=httpx.Response(
            200, json={"items": [{"id": 1}]}, headers={"Link": f'<{BASE_URL}/items?page=1>; rel="next"'}
        )
    )
    with pytest.raises(BugError, match="pagination loop"):
        list(make_client().paginate(PageRequest(url="items", params={"page": 1}), LinkHeaderPaginator(), items))
    assert route.call_count == 1


def test_a_next_page_on_another_host_is_refused(router: respx.MockRouter, make_client: ClientFactory) -> None:
    router.get("/items").mock(
        return_value=httpx.Response(
            200, json={"items": [{"id": 1}]}, headers={"Link": '<https://attacker.example/items?p=2>; rel="next"'}
        )
    )
    pages = make_client().paginate(PageRequest(url="items"), LinkHeaderPaginator(), items)
    assert next(pages).records == [{"id": 1}]
    with pytest.raises(PermanentError, match=r"attacker\.example"):
        next(pages)


def test_a_page_of_an_unexpected_shape_is_a_bug(router: respx.MockRouter, make_client: ClientFactory) -> None:
    router.get("/items").mock(return_value=httpx.Response(200, json={"results": []}))
    with pytest.raises(BugError, match="unexpected shape"):
        list(make_client().paginate(PageRequest(url="items"), SinglePagePaginator(), items))


def test_pages_are_fetched_lazily_one_at_a_time(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/items").mock(side_effect=page_number_api(RECORDS))
    pages = make_client().paginate(PageRequest(url="items"), PageNumberPaginator(size=50, size_param="per_page"), items)
    next(pages)
    next(pages)
    assert route.call_count == 2
    assert len(list(pages)) == 3


def test_dig() -> None:
    body = {"pageDetails": {"nextPageUrl": "u", "list": ["a", "b"]}}
    assert dig(body, "pageDetails.nextPageUrl") == "u"
    assert dig(body, ["pageDetails", "list", "1"]) == "b"
    assert dig(body, "pageDetails.missing.deeper") is None
    assert dig(None, "x") is None


def test_page_size_param_requires_a_size() -> None:
    with pytest.raises(ValueError, match="size"):
        PageNumberPaginator(size_param="per_page")
