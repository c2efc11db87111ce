"""Fixtures for the sandbox tests: a fixed anchor and clock, the seed world, and a synchronous in-process client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.world import World, build_world

ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


class AsgiClient:
    """Calls an ASGI app in process through httpx.ASGITransport, one event loop per call (or per ``gather``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sandbox.test")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with self._client() as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def run(self, work: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
        """Run ``work(client)`` in one event loop, for concurrent requests."""

        async def go() -> Any:
            async with self._client() as client:
                return await work(client)

        return asyncio.run(go())


@pytest.fixture(scope="session")
def world() -> World:
    return build_world(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(ANCHOR)
