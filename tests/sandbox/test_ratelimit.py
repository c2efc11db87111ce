from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.ratelimit import RateLimit, SlidingWindow, Verdict, by_header

from .conftest import AsgiClient


def test_sliding_window_refuses_past_the_limit_and_says_when_to_retry(clock: FakeClock) -> None:
    window = SlidingWindow(3, 10, clock)
    for _ in range(3):
        assert window.hit("a").allowed
        clock.advance(1)
    refused = window.hit("a")
    assert not refused.allowed and refused.used == 3 and refused.remaining == 0
    assert refused.retry_after == pytest.approx(7)  # the first request leaves the window at t=10
    assert refused.retry_after_header == "7"
    assert window.hit("b").allowed  # buckets are independent
    clock.advance(7)
    assert window.hit("a").allowed  # rolling: one slot freed, not the whole window
    assert not window.hit("a").allowed
    assert window.peek("a").used == 3 and window.peek("a").used == 3  # peeking counts nothing


def test_sliding_window_costs_and_refused_counting(clock: FakeClock) -> None:
    window = SlidingWindow(5, 60, clock)
    assert window.hit("k", cost=3).remaining == 2
    assert not window.hit("k", cost=3).allowed
    assert window.hit("k", cost=2).allowed
    strict = SlidingWindow(2, 60, clock)
    strict.hit("k")
    strict.hit("k")
    assert strict.hit("k", count_refused=True).used == 3
    clock.advance(60)
    assert strict.peek("k").used == 0
    strict.hit("k")
    strict.reset("k")
    assert strict.peek("k").used == 0


def _freshservice_like(clock: FakeClock) -> tuple[Simulator, RateLimit]:
    """A vendor that answers rate limits as Freshservice does: headers on every response, 429 with Retry-After."""

    def errors(error: VendorError) -> Response:
        return JSONResponse({"description": error.message, "errors": []}, status_code=error.status)

    def headers(verdict: Verdict) -> dict[str, str]:
        return {
            "X-RateLimit-Total": str(verdict.limit),
            "X-RateLimit-Remaining": str(verdict.remaining),
            "X-RateLimit-Used-CurrentRequest": str(verdict.cost),
        }

    sim = Simulator("fs-like", errors=errors, clock=clock, auth=lambda request: "account")
    rule = sim.rate_limit(
        3,
        60,
        key=lambda request, principal: None if request.url.path == "/free" else principal,
        cost=lambda request: 2 if "include" in request.query_params else 1,
        message="You have exceeded the limit of requests per minute",
        headers=headers,
    )

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    sim.add_route("/tickets", ok, methods=["GET"])
    sim.add_route("/free", ok, methods=["GET"])
    return sim, rule


def test_simulator_rate_limit_answers_as_the_vendor_configures(clock: FakeClock) -> None:
    sim, rule = _freshservice_like(clock)
    client = AsgiClient(sim)
    first = client.get("/tickets")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-total"] == "3" and first.headers["x-ratelimit-remaining"] == "2"
    second = client.get("/tickets?include=stats")
    assert second.headers["x-ratelimit-used-currentrequest"] == "2" and second.headers["x-ratelimit-remaining"] == "0"
    refused = client.get("/tickets")
    assert refused.status_code == 429
    assert refused.json() == {"description": "You have exceeded the limit of requests per minute", "errors": []}
    assert refused.headers["retry-after"] == "60" and refused.headers["x-ratelimit-remaining"] == "0"
    assert client.get("/free").status_code == 200  # the rule does not apply there
    assert "x-ratelimit-total" not in client.get("/free").headers
    assert rule.usage("account").used == 3  # what e.g. Autotask's ThresholdInformation reports
    clock.advance(60)
    assert client.get("/tickets").status_code == 200
    assert [r["status"] for r in client.get("/_sandbox/requests?path=/tickets").json()["requests"]] == [
        200,
        200,
        429,
        200,
    ]


def test_concurrency_limit_per_integration_and_endpoint() -> None:
    """Autotask: at most 3 requests in flight per integration code and endpoint; the 4th is refused."""
    sim = Simulator("at-like")
    sim.concurrency_limit(
        3,
        key=lambda request, principal: f"{request.headers.get('ApiIntegrationCode')}:{request.url.path.split('/')[1]}",
        status=429,
        message="thread threshold exceeded",
    )
    gate: dict[str, Any] = {}

    async def hold(request: Request) -> Response:
        gate["inside"] += 1
        if gate["inside"] == 3:
            gate["entered"].set()
        await gate["release"].wait()
        return JSONResponse({"held": True})

    async def quick(request: Request) -> Response:
        return JSONResponse({"quick": True})

    sim.add_route("/Tickets/hold", hold, methods=["GET"])
    sim.add_route("/Companies", quick, methods=["GET"])

    async def work(client: httpx.AsyncClient) -> dict[str, Any]:
        gate.update(inside=0, entered=asyncio.Event(), release=asyncio.Event())
        headers = {"ApiIntegrationCode": "CODE1"}
        held = [asyncio.create_task(client.get("/Tickets/hold", headers=headers)) for _ in range(3)]
        await asyncio.wait_for(gate["entered"].wait(), 5)
        fourth = await client.get("/Tickets/hold", headers=headers)
        other_endpoint = await client.get("/Companies", headers=headers)
        gate["release"].set()
        done = await asyncio.gather(*held)
        return {"fourth": fourth, "other": other_endpoint, "held": done}

    result = AsgiClient(sim).run(work)
    assert result["fourth"].status_code == 429 and result["fourth"].json() == {"error": "thread threshold exceeded"}
    assert result["other"].status_code == 200
    assert [r.status_code for r in result["held"]] == [200, 200, 200]
    assert sim.concurrency_limits[0].in_flight("CODE1:Tickets") == 0  # slots are given back


def test_by_header_buckets_by_header_value() -> None:
    key = by_header("ApiIntegrationCode")
    scope = {
        "type": "http",
        "headers": [(b"apiintegrationcode", b"X")],
        "method": "GET",
        "path": "/",
        "query_string": b"",
    }
    assert key(Request(scope), None) == "X"
    assert key(Request({**scope, "headers": []}), "someone") is None
