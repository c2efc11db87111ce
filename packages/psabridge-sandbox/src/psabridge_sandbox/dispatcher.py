"""Outbound webhooks: a background thread POSTs change notifications to registered receivers, as the vendor would.

The vendor simulator supplies the payload and the signing function (ConnectWise x-content-signature, Autotask
X-Hook-Signature, a shared-secret header ...); the dispatcher applies the fault profile's webhook faults
(duplicate, reorder, delay, drop), retries failed deliveries on the vendor's schedule, and records every delivery.
Delays are real time (a webhook is something a receiver waits for), not the simulator's clock.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from psabridge_sandbox.clock import Clock, SystemClock
from psabridge_sandbox.faults import FaultInjector, WebhookPlan

__all__ = ["Delivery", "Payload", "Signer", "Subscription", "WebhookDispatcher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subscription:
    """A receiver: where to POST, the secret to sign with, extra headers, which events (empty: all).

    ``data`` holds vendor details (ConnectWise callback level, Autotask excluded resources ...).
    """

    id: str
    url: str
    secret: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    events: frozenset[str] = frozenset()
    data: Mapping[str, Any] = field(default_factory=dict)

    def wants(self, event: str) -> bool:
        """Whether this receiver subscribed to ``event``."""
        return not self.events or event in self.events

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the secret is not shown)."""
        return {
            "id": self.id,
            "url": self.url,
            "events": sorted(self.events),
            "headers": sorted(self.headers),
            "data": dict(self.data),
        }


Signer = Callable[[bytes, Subscription], Mapping[str, str]]
"""(raw body, subscription) -> headers that authenticate the delivery (signature or shared secret)."""

JsonLike = Mapping[str, Any] | list[Any]
Payload = bytes | str | JsonLike | Callable[[Subscription], bytes | str | JsonLike]
"""A body, or a function building the body per subscription (e.g. a ConnectWise callback carries its own id)."""

Outcome = Literal["pending", "sent", "failed", "dropped"]


@dataclass
class Delivery:
    """One attempt to deliver one event to one receiver (a duplicate is a separate delivery with ``copy`` 1)."""

    seq: int
    event_seq: int
    event: str
    subscription: str
    url: str
    body: bytes
    headers: dict[str, str]
    copy: int = 0
    delay: float = 0.0
    held: bool = False
    outcome: Outcome = "pending"
    status: int | None = None
    attempts: int = 0
    error: str | None = None
    emitted_at: str = ""
    sent_at: str | None = None
    sent_order: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "seq": self.seq,
            "event_seq": self.event_seq,
            "event": self.event,
            "subscription": self.subscription,
            "url": self.url,
            "body": self.body.decode("utf-8", "replace"),
            "headers": dict(self.headers),
            "copy": self.copy,
            "delay": self.delay,
            "held": self.held,
            "outcome": self.outcome,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "emitted_at": self.emitted_at,
            "sent_at": self.sent_at,
            "sent_order": self.sent_order,
        }


class WebhookDispatcher:
    """Queues deliveries and sends them from one background thread, in due-time order.

    Args:
        signer: adds the vendor's authentication headers to each delivery.
        faults: the simulator's fault injector (webhook drop, duplicate, reorder, delay).
        retry_delays: seconds to wait before each retry of a failed delivery (empty: no retries).
        hold_seconds: how long a reordered delivery waits for a successor before it is sent anyway.
        transport: an httpx transport (tests can deliver straight into an ASGI app or a MockTransport).
    """

    def __init__(
        self,
        *,
        signer: Signer | None = None,
        faults: FaultInjector | None = None,
        clock: Clock | None = None,
        retry_delays: Sequence[float] = (),
        hold_seconds: float = 2.0,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        history: int = 50_000,
    ) -> None:
        self.signer = signer
        self.faults = faults
        self.clock = clock or SystemClock()
        self.retry_delays = tuple(retry_delays)
        self.hold_seconds = hold_seconds
        self._timeout = timeout
        self._transport = transport
        self._subscriptions: dict[str, Subscription] = {}
        self._deliveries: deque[Delivery] = deque(maxlen=history)
        self._queue: list[tuple[float, int, Delivery]] = []
        self._held: list[tuple[float, Delivery]] = []
        self._order = itertools.count()
        self._seq = itertools.count(1)
        self._event_seq = itertools.count(1)
        self._sent = itertools.count(1)
        self._busy = 0
        self._closed = False
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    # --- receivers ---------------------------------------------------------------------------------------------------

    def subscribe(
        self,
        url: str,
        *,
        secret: str = "",
        headers: Mapping[str, str] | None = None,
        events: Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> Subscription:
        """Register a receiver and return it."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL")
        subscription = Subscription(
            id=id or uuid.uuid4().hex,
            url=url,
            secret=secret,
            headers=dict(headers or {}),
            events=frozenset(events),
            data=dict(data or {}),
        )
        with self._cv:
            self._subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        """Remove a receiver; False if there was none."""
        with self._cv:
            return self._subscriptions.pop(subscription_id, None) is not None

    def subscriptions(self) -> list[Subscription]:
        """The registered receivers."""
        with self._cv:
            return list(self._subscriptions.values())

    # --- sending -----------------------------------------------------------------------------------------------------

    def emit(
        self, event: str, payload: Payload, *, match: Callable[[Subscription], bool] | None = None
    ) -> list[Delivery]:
        """Queue ``event`` for every receiver that wants it (and matches ``match``); return the deliveries."""
        event_seq = next(self._event_seq)
        emitted_at = self.clock.now().isoformat().replace("+00:00", "Z")
        made: list[Delivery] = []
        for subscription in self.subscriptions():
            if not subscription.wants(event) or (match is not None and not match(subscription)):
                continue
            body = _encode(payload(subscription) if callable(payload) else payload)
            headers = {"Content-Type": "application/json", **subscription.headers}
            if self.signer is not None:
                headers.update(self.signer(body, subscription))
            plan = self.faults.webhook_plan() if self.faults else WebhookPlan()
            original = Delivery(
                seq=next(self._seq),
                event_seq=event_seq,
                event=event,
                subscription=subscription.id,
                url=subscription.url,
                body=body,
                headers=headers,
                delay=plan.delay,
                held=plan.hold,
                emitted_at=emitted_at,
            )
            if plan.drop:
                original.outcome = "dropped"
                made.append(original)
                continue
            made.append(original)
            if plan.duplicate:
                made.append(
                    Delivery(
                        seq=next(self._seq),
                        event_seq=event_seq,
                        event=event,
                        subscription=subscription.id,
                        url=subscription.url,
                        body=body,
                        headers=dict(headers),
                        copy=1,
                        delay=plan.delay + 0.05,
                        emitted_at=emitted_at,
                    )
                )
        self._enqueue(made)
        return made

    def _enqueue(self, deliveries: list[Delivery]) -> None:
        now = time.monotonic()
        with self._cv:
            self._deliveries.extend(deliveries)
            # Deliveries held back by earlier events go out right after this event's: that is the reordering.
            released = [d for _, d in self._held]
            self._held = []
            latest = now
            for delivery in deliveries:
                if delivery.outcome == "dropped":
                    continue
                if delivery.held:
                    self._held.append((now + self.hold_seconds, delivery))
                    continue
                due = now + delivery.delay
                latest = max(latest, due)
                self._push(due, delivery)
            for delivery in released:
                self._push(latest, delivery)  # same due time, later in order: right after them
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def _push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self._queue, (due, next(self._order), delivery))

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
            while True:
                delivery = self._next()
                if delivery is None:
                    return
                self._send(client, delivery)

    def _next(self) -> Delivery | None:
        with self._cv:
            while not self._closed:
                now = time.monotonic()
                if self._held and min(deadline for deadline, _ in self._held) <= now:
                    still = []
                    for deadline, delivery in self._held:
                        if deadline <= now:
                            self._push(now, delivery)
                        else:
                            still.append((deadline, delivery))
                    self._held = still
                if self._queue and self._queue[0][0] <= now:
                    self._busy += 1
                    return heapq.heappop(self._queue)[2]
                waits = [self._queue[0][0] - now] if self._queue else []
                waits.extend(deadline - now for deadline, _ in self._held)
                self._cv.wait(max(0.0, min(waits)) if waits else None)
            return None

    def _send(self, client: httpx.Client, delivery: Delivery) -> None:
        delivery.attempts += 1
        try:
            response = client.post(delivery.url, content=delivery.body, headers=delivery.headers)
            delivery.status = response.status_code
            delivery.error = None if response.is_success else response.text[:200]
            ok = response.is_success
        except httpx.HTTPError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            ok = False
        with self._cv:
            self._busy -= 1
            delivery.sent_at = self.clock.now().isoformat().replace("+00:00", "Z")
            delivery.sent_order = next(self._sent)
            if ok:
                delivery.outcome = "sent"
            elif delivery.attempts <= len(self.retry_delays):
                delivery.outcome = "pending"
                self._push(time.monotonic() + self.retry_delays[delivery.attempts - 1], delivery)
            else:
                delivery.outcome = "failed"
                log.info(
                    "webhook to %s failed after %d attempt(s): %s", delivery.url, delivery.attempts, delivery.error
                )
            self._cv.notify_all()

    # --- inspection and shutdown -------------------------------------------------------------------------------------

    def deliveries(self) -> list[Delivery]:
        """Every delivery so far (dropped ones included), in emission order."""
        with self._cv:
            return list(self._deliveries)

    def flush(self, timeout: float = 10.0) -> bool:
        """Send held deliveries now and wait until nothing is queued or in flight; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            now = time.monotonic()
            for _, delivery in self._held:
                self._push(now, delivery)
            self._held = []
            self._cv.notify_all()
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
            return True

    def close(self) -> None:
        """Stop the sender thread (queued deliveries stay pending)."""
        with self._cv:
            self._closed = True
            thread = self._thread
            self._cv.notify_all()
        if thread is not None:
            thread.join(timeout=5)


def _encode(body: bytes | str | JsonLike) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
