from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator, Mapping

import httpx
import pytest

from psabridge_sandbox.dispatcher import Subscription, WebhookDispatcher
from psabridge_sandbox.faults import FaultInjector, FaultProfile

from .conftest import AsgiClient
from .toyvendor import ToyVendor


class Receiver:
    """A webhook receiver behind httpx.MockTransport: records what arrives, can fail the first N deliveries."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[httpx.Request] = []
        self.fail_first = fail_first
        self._lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.received.append(request)
            if len(self.received) <= self.fail_first:
                return httpx.Response(503, text="busy")
        return httpx.Response(200, text="ok")

    @property
    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(r.content) for r in self.received]


def sha1_signer(body: bytes, subscription: Subscription) -> Mapping[str, str]:
    """Autotask's scheme: X-Hook-Signature: sha1=base64(HMAC-SHA1(secret, raw body))."""
    digest = hmac.new(subscription.secret.encode(), body, hashlib.sha1).digest()
    return {"X-Hook-Signature": "sha1=" + base64.b64encode(digest).decode()}


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


def make(receiver: Receiver, profile: FaultProfile | None = None, **options: object) -> WebhookDispatcher:
    faults = FaultInjector(profile or FaultProfile(), seed=1)
    return WebhookDispatcher(
        signer=sha1_signer,
        faults=faults,
        transport=httpx.MockTransport(receiver.handle),
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def dispatcher(receiver: Receiver) -> Iterator[WebhookDispatcher]:
    hooks = make(receiver)
    yield hooks
    hooks.close()


def test_deliveries_are_signed_by_the_vendor_hook_and_recorded(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    sub = dispatcher.subscribe("http://receiver.test/hook", secret="s3cret", headers={"X-Custom": "1"})
    dispatcher.emit("ticket.updated", {"Id": 7, "Action": "Update"})
    assert dispatcher.flush(5)
    [request] = receiver.received
    assert request.url == "http://receiver.test/hook"
    assert request.content == b'{"Id":7,"Action":"Update"}'
    expected = base64.b64encode(hmac.new(b"s3cret", request.content, hashlib.sha1).digest()).decode()
    assert request.headers["x-hook-signature"] == "sha1=" + expected
    assert request.headers["x-custom"] == "1" and request.headers["content-type"] == "application/json"
    [delivery] = dispatcher.deliveries()
    assert (delivery.outcome, delivery.status, delivery.attempts, delivery.subscription) == ("sent", 200, 1, sub.id)


def test_event_filters_match_and_per_subscription_payloads(dispatcher: WebhookDispatcher, receiver: Receiver) -> None:
    dispatcher.subscribe("http://receiver.test/a", events=["created"], data={"level": "Board"}, id="A")
    dispatcher.subscribe("http://receiver.test/b", id="B")
    dispatcher.emit("updated", lambda sub: {"for": sub.id})
    dispatcher.emit("created", lambda sub: {"for": sub.id}, match=lambda sub: sub.data.get("level") == "Board")
    assert dispatcher.flush(5)
    assert sorted((str(r.url), json.loads(r.content)["for"]) for r in receiver.received) == [
        ("http://receiver.test/a", "A"),
        ("http://receiver.test/b", "B"),
    ]
    assert dispatcher.unsubscribe("A") and not dispatcher.unsubscribe("A")
    with pytest.raises(ValueError, match="http"):
        dispatcher.subscribe("ftp://nope")


def test_dropped_webhooks_are_never_sent(receiver: Receiver) -> None:
    hooks = make(receiver, FaultProfile(webhook_drop_rate=1.0))
    try:
        hooks.subscribe("http://receiver.test/hook")
        hooks.emit("e", {"n": 1})
        assert hooks.flush(5)
        assert receiver.received == []
        assert [d.outcome for d in hooks.deliveries()] == ["dropped"]
    finally:
        hooks.close()


def test_duplicated_webhooks_arrive_twice(receiver: Receiver) -> None:
    hooks = make(receiver, FaultProfile(webhook_duplicate_rate=1.0))
    try:
        hooks.subscribe("http://receiver.test/hook")
        hooks.emit("e", {"n": 1})
        assert hooks.flush(5)
        assert receiver.bodies == [{"n": 1}, {"n": 1}]
        assert receiver.received[0].headers["x-hook-signature"] == receiver.received[1].headers["x-hook-signature"]
        assert sorted(d.copy for d in hooks.deliveries()) == [0, 1]
    finally:
        hooks.close()


def test_reordered_webhooks_arrive_after_the_next_one(receiver: Receiver) -> None:
    faults = FaultInjector(FaultProfile(webhook_reorder_rate=1.0), seed=1)
    hooks = WebhookDispatcher(faults=faults, transport=httpx.MockTransport(receiver.handle), hold_seconds=30)
    try:
        hooks.subscribe("http://receiver.test/hook")
        hooks.emit("e", {"n": 1})  # held back
        faults.set(FaultProfile())
        hooks.emit("e", {"n": 2})
        hooks.emit("e", {"n": 3})
        assert hooks.flush(5)
        assert receiver.bodies == [{"n": 2}, {"n": 1}, {"n": 3}]
        first = hooks.deliveries()[0]
        assert first.held and first.sent_order == 2
    finally:
        hooks.close()


def test_a_held_webhook_with_no_successor_is_sent_after_the_hold(receiver: Receiver) -> None:
    faults = FaultInjector(FaultProfile(webhook_reorder_rate=1.0), seed=1)
    hooks = WebhookDispatcher(faults=faults, transport=httpx.MockTransport(receiver.handle), hold_seconds=0.05)
    try:
        hooks.subscribe("http://receiver.test/hook")
        hooks.emit("e", {"n": 1})
        deadline = threading.Event()
        for _ in range(200):  # the sender thread releases it on its own; no flush
            if receiver.received:
                break
            deadline.wait(0.01)
        assert receiver.bodies == [{"n": 1}]
    finally:
        hooks.close()


def test_delayed_webhooks_are_sent_after_their_delay(receiver: Receiver) -> None:
    hooks = make(receiver, FaultProfile(webhook_delay_ms=(50, 50)))
    try:
        hooks.subscribe("http://receiver.test/hook")
        hooks.emit("e", {"n": 1})
        [delivery] = hooks.deliveries()
        assert delivery.delay == pytest.approx(0.05) and delivery.outcome == "pending"
        assert hooks.flush(5)
        assert delivery.outcome == "sent" and receiver.bodies == [{"n": 1}]
    finally:
        hooks.close()


def test_failed_deliveries_are_retried_on_the_vendor_schedule() -> None:
    flaky = Receiver(fail_first=2)
    hooks = make(flaky, retry_delays=(0.01, 0.01, 0.01))
    try:
        hooks.subscribe("http://receiver.test/hook")
        hooks.emit("e", {"n": 1})
        assert hooks.flush(5)
        [delivery] = hooks.deliveries()
        assert (delivery.outcome, delivery.attempts, delivery.status) == ("sent", 3, 200)
    finally:
        hooks.close()
    down = Receiver(fail_first=10)
    hooks = make(down, retry_delays=(0.01,))
    try:
        hooks.subscribe("http://receiver.test/hook")
        hooks.emit("e", {"n": 1})
        assert hooks.flush(5)
        [delivery] = hooks.deliveries()
        assert (delivery.outcome, delivery.attempts, delivery.status, delivery.error) == ("failed", 2, 503, "busy")
    finally:
        hooks.close()


def test_receivers_are_registered_and_inspected_through_the_control_plane(receiver: Receiver) -> None:
    toy = ToyVendor()
    toy.simulator.webhooks = make(receiver)
    client = AsgiClient(toy.simulator)
    try:
        created = client.post("/_sandbox/webhooks", json={"url": "http://receiver.test/x", "events": ["updated"]})
        assert created.status_code == 201 and created.json()["events"] == ["updated"]
        assert client.post("/_sandbox/webhooks", json={"nope": 1}).status_code == 400
        toy.items.on_change(lambda change, row: toy.simulator.webhooks.emit(change, {"id": row.id}))
        toy.items.update(1, {"title": "changed"})
        toy.items.insert({"title": "created"})  # nobody subscribed to "created"
        assert client.post("/_sandbox/webhooks/flush").json() == {"flushed": True}
        listing = client.get("/_sandbox/webhooks").json()
        assert [s["url"] for s in listing["subscriptions"]] == ["http://receiver.test/x"]
        assert [(d["event"], d["outcome"], d["body"]) for d in listing["deliveries"]] == [
            ("updated", "sent", '{"id":1}')
        ]
        assert client.delete(f"/_sandbox/webhooks/{created.json()['id']}").status_code == 204
        assert client.delete(f"/_sandbox/webhooks/{created.json()['id']}").status_code == 404
    finally:
        toy.simulator.close()
