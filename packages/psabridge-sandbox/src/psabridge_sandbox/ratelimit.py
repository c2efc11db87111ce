"""Rate limits a vendor simulator configures: rolling windows per principal or account, and in-flight caps.

The vendors differ in the rule (Autotask 10,000 requests per rolling hour per database, Freshservice per-minute
account limits, ServiceNow admin-defined hourly rules) and in how they refuse (status, body, headers); the vendor
module chooses both, and the Simulator enforces them before routing a request.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from psabridge_sandbox.clock import Clock, SystemClock

__all__ = [
    "ConcurrencyLimit",
    "KeyFunc",
    "RateLimit",
    "SlidingWindow",
    "Verdict",
    "by_header",
    "by_principal",
]

KeyFunc = Callable[[Request, str | None], str | None]
"""(request, principal) -> the bucket a request counts against, or None when the rule does not apply to it."""


def by_principal(request: Request, principal: str | None) -> str | None:
    """One bucket per authenticated principal; unauthenticated requests share the ``anonymous`` bucket."""
    return principal or "anonymous"


def by_header(name: str) -> KeyFunc:
    """One bucket per value of a request header (e.g. Autotask's ``ApiIntegrationCode``); none without it."""

    def key(request: Request, principal: str | None) -> str | None:
        return request.headers.get(name)

    return key


@dataclass(frozen=True, slots=True)
class Verdict:
    """The state of one bucket after a request was counted (or refused)."""

    allowed: bool
    limit: int
    used: int  # counted in the window, including this request if allowed
    remaining: int
    retry_after: float  # seconds until this request would fit (0 when allowed)
    reset: float  # epoch seconds when the oldest counted request leaves the window
    cost: int  # what this request cost (Freshservice charges extra credits for include=)

    @property
    def retry_after_header(self) -> str:
        """Retry-After as whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))


class SlidingWindow:
    """A rolling-window counter (a sliding log) per key: at most ``limit`` cost units within any ``seconds``."""

    def __init__(self, limit: int, seconds: float, clock: Clock | None = None) -> None:
        if limit <= 0 or seconds <= 0:
            raise ValueError("a sliding window needs a positive limit and length")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock or SystemClock()
        self._log: dict[str, deque[tuple[float, int]]] = {}
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, cost: int = 1, *, count_refused: bool = False) -> Verdict:
        """Count a request of ``cost`` units against ``key`` if it fits; refused requests count only if told so."""
        with self._lock:
            now = self._clock.time()
            log, used = self._expire(key, now)
            allowed = used + cost <= self.limit
            if allowed or count_refused:
                log.append((now, cost))
                used += cost
                self._used[key] = used
            return self._verdict(log, used, now, allowed, cost)

    def peek(self, key: str) -> Verdict:
        """The bucket's state without counting anything (e.g. for Autotask's ThresholdInformation)."""
        with self._lock:
            now = self._clock.time()
            log, used = self._expire(key, now)
            return self._verdict(log, used, now, used < self.limit, 0)

    def reset(self, key: str | None = None) -> None:
        """Forget one bucket, or all."""
        with self._lock:
            if key is None:
                self._log.clear()
                self._used.clear()
            else:
                self._log.pop(key, None)
                self._used.pop(key, None)

    def _expire(self, key: str, now: float) -> tuple[deque[tuple[float, int]], int]:
        log = self._log.setdefault(key, deque())
        used = self._used.get(key, 0)
        horizon = now - self.seconds
        while log and log[0][0] <= horizon:
            used -= log.popleft()[1]
        self._used[key] = used
        return log, used

    def _verdict(self, log: deque[tuple[float, int]], used: int, now: float, allowed: bool, cost: int) -> Verdict:
        retry_after = 0.0
        if not allowed:
            # Wait until enough of the oldest requests have left the window for this one to fit.
            excess = used + max(cost, 1) - self.limit
            for stamp, spent in log:
                excess -= spent
                if excess <= 0:
                    retry_after = stamp + self.seconds - now
                    break
        reset = log[0][0] + self.seconds if log else now
        return Verdict(allowed, self.limit, used, max(0, self.limit - used), max(0.0, retry_after), reset, cost)


class RateLimit:
    """A vendor's rate rule as the Simulator enforces it (create it with ``Simulator.rate_limit``).

    Args:
        limit: requests (cost units) allowed per window.
        per: window length in seconds.
        key: which bucket a request counts against (None: the rule does not apply).
        cost: units a request costs (default 1).
        status, message, code: how a refusal is answered (rendered by the vendor's error renderer).
        headers: headers the vendor adds to every response the rule applied to (e.g. X-RateLimit-Remaining).
        retry_after: add ``Retry-After`` to refusals.
        count_refused: refused requests use up the budget too.
    """

    def __init__(
        self,
        limit: int,
        per: float,
        *,
        key: KeyFunc = by_principal,
        cost: Callable[[Request], int] | None = None,
        status: int = 429,
        message: str = "Too Many Requests",
        code: str = "",
        headers: Callable[[Verdict], Mapping[str, str]] | None = None,
        retry_after: bool = True,
        count_refused: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.window = SlidingWindow(limit, per, clock)
        self.key = key
        self.cost = cost
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers
        self.retry_after = retry_after
        self.count_refused = count_refused

    def check(self, request: Request, principal: str | None) -> Verdict | None:
        """Count the request; None when the rule does not apply to it."""
        bucket = self.key(request, principal)
        if bucket is None:
            return None
        cost = self.cost(request) if self.cost else 1
        return self.window.hit(bucket, cost, count_refused=self.count_refused)

    def usage(self, bucket: str) -> Verdict:
        """The current state of one bucket, counting nothing."""
        return self.window.peek(bucket)


class ConcurrencyLimit:
    """At most ``limit`` requests in flight per key (Autotask: 3 per integration and endpoint)."""

    def __init__(
        self, limit: int, *, key: KeyFunc, status: int = 429, message: str = "Too Many Requests", code: str = ""
    ) -> None:
        if limit <= 0:
            raise ValueError("a concurrency limit must be positive")
        self.limit = limit
        self.key = key
        self.status = status
        self.message = message
        self.code = code
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def try_acquire(self, bucket: str) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            count = self._in_flight.get(bucket, 0)
            if count >= self.limit:
                return False
            self._in_flight[bucket] = count + 1
            return True

    def release(self, bucket: str) -> None:
        """Give a slot back."""
        with self._lock:
            count = self._in_flight.get(bucket, 0) - 1
            if count > 0:
                self._in_flight[bucket] = count
            else:
                self._in_flight.pop(bucket, None)

    def in_flight(self, bucket: str) -> int:
        """Requests of this bucket in flight now."""
        with self._lock:
            return self._in_flight.get(bucket, 0)
