"""The webhook receiver over a fake connector: verify over the raw body, de-duplicate in the inbox, queue an ingest,
answer 202; refuse bad signatures with the one 401 answer; record what it cannot read instead of dropping it.

tests/webhooks/test_receiver.py drives it with the four vendors' real signature schemes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from psabridge.store import Database
from psabridge.store.models import InboxDelivery
from psabridge.webhooks.app import REFUSED, create_app
from tests.sandbox.conftest import AsgiClient
from tests.sync.conftest import RecordingQueue, World, make_world
from tests.sync.fakes import SECRET


@pytest.fixture
def world(tmp_path: Path, sqlite_db: Database) -> Iterator[World]:
    made = make_world(tmp_path, sqlite_db, RecordingQueue(), None)
    yield made
    made.ctx.close()


@pytest.fixture
def client(world: World) -> AsgiClient:
    return AsgiClient(create_app(world.ctx))


def post(
    client: AsgiClient, body: bytes | dict[str, str], secret: str | None = SECRET
) -> tuple[int, dict[str, object]]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"x-fake-secret": secret} if secret else {}
    response = client.post("/webhooks/acme-snow", content=content, headers=headers)
    return response.status_code, response.json()


def inbox(world: World) -> list[InboxDelivery]:
    with world.db.session() as s:
        return list(s.scalars(sa.select(InboxDelivery).order_by(InboxDelivery.id)))


def queued(world: World) -> list[tuple[object, ...]]:
    assert isinstance(world.ctx.queue, RecordingQueue)
    return world.ctx.queue.of("ingest")


def test_a_delivery_is_recorded_queued_and_answered_202_and_its_repeat_is_not_queued(
    client: AsgiClient, world: World
) -> None:
    delivery = {"id": "42", "event": "updated", "delivery": "d-1"}
    assert post(client, delivery) == (202, {"accepted": True, "duplicate": False, "ticket": "42"})
    assert post(client, delivery) == (202, {"accepted": True, "duplicate": True, "ticket": "42"})
    assert queued(world) == [("acme-snow", "42")]
    [row] = inbox(world)
    assert (row.delivery_id, row.external_id, row.status) == ("d-1", "42", "received")
    assert row.headers["x-fake-secret"] == "***"  # kept for debugging, secrets masked


def test_a_bad_or_missing_signature_is_refused_with_401_and_nothing_queued(client: AsgiClient, world: World) -> None:
    delivery = {"id": "42", "event": "updated", "delivery": "d-1"}
    for secret in ("wrong", None):
        status, answer = post(client, delivery, secret)
        assert (status, answer) == (401, REFUSED)  # the reason is logged, never told to the caller
    assert queued(world) == [] and inbox(world) == []


def test_an_unreadable_body_is_recorded_not_dropped(client: AsgiClient, world: World) -> None:
    status, answer = post(client, b"{not json")
    assert status == 400 and answer["recorded"] is True and "not a fake delivery" in str(answer["reason"])
    post(client, b"{not json")  # the same body again: one row
    [row] = inbox(world)
    assert row.status == "failed" and row.body == "{not json" and "not a fake delivery" in (row.error or "")
    assert queued(world) == []


def test_an_unknown_connection_gets_the_same_401_as_a_bad_signature(client: AsgiClient) -> None:
    response = client.post("/webhooks/nope", content=b"{}")
    assert (response.status_code, response.json()) == (401, REFUSED)
