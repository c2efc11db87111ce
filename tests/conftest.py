"""Shared fixtures: real services (PostgreSQL, Redis, RabbitMQ) that skip locally and fail in CI when missing."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from psabridge.store import Database, upgrade

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("PSABRIDGE_REQUIRE_SERVICES") == "1"

POSTGRES_URL = os.environ.get("PSABRIDGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PSABRIDGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("PSABRIDGE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def service_unavailable(name: str, url: str, reason: str) -> None:
    """Skip with a message naming the missing service, or fail when CI demands every service."""
    safe = urlsplit(url)._replace(netloc=urlsplit(url).hostname or "").geturl() if "@" in url else url
    message = f"{name} not available at {safe}: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (PSABRIDGE_REQUIRE_SERVICES=1: integration tests may not be skipped)")
    pytest.skip(message)


def _reachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return None
    except OSError as exc:
        return str(exc)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the PostgreSQL server's `test` database."""
    problem = _reachable(POSTGRES_URL, 5432)
    if problem:
        service_unavailable("PostgreSQL", POSTGRES_URL, problem)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards (parallel test runs cannot collide)."""
    import sqlalchemy as sa

    name = f"psabridge_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_unavailable("PostgreSQL", postgres_server_url, str(exc).splitlines()[0])
    url = postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'psabridge.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database (SQLite and PostgreSQL)."""
    upgrade(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """A migrated SQLite database, for tests that need no PostgreSQL."""
    upgrade(sqlite_url)
    database = Database(sqlite_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis server (tests namespace their keys)."""
    problem = _reachable(REDIS_URL, 6379)
    if problem is None:
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
        except redis.RedisError as exc:
            problem = str(exc)
    if problem:
        service_unavailable("Redis", REDIS_URL, problem)
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """URL of a reachable RabbitMQ server."""
    problem = _reachable(AMQP_URL, 5672)
    if problem is None:
        import pika

        try:
            pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
        except Exception as exc:  # noqa: BLE001 - pika raises many unrelated types for "cannot connect"
            problem = f"{type(exc).__name__}: {exc}"
    if problem:
        service_unavailable("RabbitMQ", AMQP_URL, problem)
    return AMQP_URL


@pytest.fixture
def namespace() -> str:
    """A unique prefix for keys, queues and names, so parallel test runs on shared services do not collide."""
    return f"psabt{uuid.uuid4().hex[:10]}"
