"""Fixtures for the shared connector layer: connection settings with secrets, fake time, strict respx routers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
import structlog
from pydantic import SecretStr

from psabridge.connectors.budget import BudgetLimits
from psabridge.connectors.http import (
    HttpClient,
    HttpRuntime,
    Resolution,
    ResolutionKey,
    ResponseHooks,
    RetryPolicy,
    build_http_client,
)
from psabridge.settings import ConnectionSettings, Credentials

BASE_URL = "https://vendor.example/api/v1"


def make_settings(
    *,
    name: str = "test-conn",
    system: str = "freshservice",
    base_url: str = BASE_URL,
    secrets: Mapping[str, str] | None = None,
    **fields: Any,
) -> ConnectionSettings:
    """ConnectionSettings with resolved secrets, as load_settings would leave them."""
    settings = ConnectionSettings(name=name, system=system, base_url=base_url, **fields)
    settings._credentials = Credentials({k: SecretStr(v) for k, v in (secrets or {}).items()})
    return settings


class FakeTime:
    """A monotonic clock, a wall clock and a sleep that only advances them (and records what it was asked)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
        self.elapsed = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return 1000.0 + self.elapsed

    def wall(self) -> float:
        return self.now().timestamp()

    def now(self) -> datetime:
        with self._lock:
            return self.start + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.elapsed += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.elapsed += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A strict respx router: unrouted requests fail, and every route must have been called by the end."""
    with respx.mock(base_url=BASE_URL, assert_all_mocked=True, assert_all_called=True) as mock:
        yield mock


ClientFactory = Callable[..., HttpClient]


@pytest.fixture
def make_client(fake_time: FakeTime, namespace: str) -> Iterator[ClientFactory]:
    """Build HttpClients on fake time with a unique budget namespace; closes them afterwards."""
    made: list[HttpClient] = []

    def factory(
        *,
        hooks: ResponseHooks | None = None,
        retry: RetryPolicy | None = None,
        budget: BudgetLimits | None = None,
        secret_params: tuple[str, ...] = (),
        settings: ConnectionSettings | None = None,
        broker_url: str = "embedded",
        table: Mapping[ResolutionKey, Resolution] | None = None,
        auth: httpx.Auth | None = None,
    ) -> HttpClient:
        runtime = HttpRuntime(
            broker_url=broker_url,
            namespace=namespace,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            now=fake_time.now,
        )
        client = build_http_client(
            settings or make_settings(),
            auth=auth,
            hooks=hooks,
            retry=retry,
            budget_defaults=budget,
            secret_params=secret_params,
            runtime=runtime,
            resolutions=table,
        )
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event emitted during the test (the dicts handed to the renderer), debug ones included
    (per-request lines are at debug, and an earlier test may have configured a higher level)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)
