"""Rate budgets: keep our own traffic to one connection under the vendor's limit, across threads, processes and hosts.

A budget allows ``requests`` per ``per`` seconds (a rolling window) and at most ``concurrency`` requests in flight
per endpoint. ``slot(endpoint)`` waits (bounded by ``max_wait``) until both allow a request, and raises
``RateLimitedError`` with the expected wait when the window will not free up in time, so a worker thread is not
blocked for minutes.

Two implementations share that behaviour:

- ``RedisBudget`` (broker ``redis://``): the state lives in Redis, so every process and host serving the connection
  shares it. The window is Dramatiq's bucketed sliding window (``dramatiq/rate_limits``) with buckets of ``per / 60``
  seconds (its ``WindowRateLimiter`` has one-second buckets, i.e. 3,600 Redis keys summed per request for an hourly
  budget); the in-flight cap is a lease per slot in a sorted set, so a killed worker's slot frees itself (at once
  when it died on the same host, else when its lease ends).
- ``LocalBudget`` (embedded or amqp broker): the same rules in process memory, shared by every client of the
  connection in this process.

A vendor's response hook may ``shrink`` the budget when the vendor's headers say the account-wide quota (shared
with other integrations) is nearly spent. Keys are ``<namespace>:budget:<connection>:...``; tests pass their own
namespace.
"""

from __future__ import annotations

import abc
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psabridge.errors import ConfigError, RateLimitedError, RetryLaterError
from psabridge.holders import abandoned, holder_id
from psabridge.settings import RateBudget

if TYPE_CHECKING:
    import redis

__all__ = [
    "DEFAULT_NAMESPACE",
    "Budget",
    "BudgetLimits",
    "BudgetSnapshot",
    "LocalBudget",
    "RedisBudget",
    "budget_for",
]

DEFAULT_NAMESPACE = "psabridge"
_POLL = 0.02  # seconds between looks at a busy concurrency slot
_BUCKETS = 60  # buckets per window in Redis: a request is counted for at most per * (1 + 1/60) seconds


@dataclass(frozen=True)
class BudgetLimits:
    """The limits a budget enforces.

    Attributes:
        requests: requests allowed per window (None: no window limit).
        per: the window in seconds.
        concurrency: requests in flight per endpoint (None: no cap).
    """

    requests: int | None = None
    per: float = 3600.0
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.requests is not None and self.requests <= 0:
            raise ConfigError(f"rate_budget.requests must be positive, not {self.requests}")
        if self.per <= 0:
            raise ConfigError(f"rate_budget.per must be a positive duration, not {self.per}s")
        if self.concurrency is not None and self.concurrency <= 0:
            raise ConfigError(f"rate_budget.concurrency must be positive, not {self.concurrency}")

    @classmethod
    def resolve(cls, configured: RateBudget, default: BudgetLimits) -> BudgetLimits:
        """The connection's ``rate_budget`` with the vendor's default for what it leaves out.

        ``per`` is taken from the configuration when it was written there or when ``requests`` was (the settings
        model documents an hour as the default window); otherwise the vendor's window applies.
        """
        per_given = "per" in configured.model_fields_set or configured.requests is not None
        return cls(
            requests=configured.requests if configured.requests is not None else default.requests,
            per=configured.per.total_seconds() if per_given else default.per,
            concurrency=configured.concurrency if configured.concurrency is not None else default.concurrency,
        )


@dataclass(frozen=True)
class BudgetSnapshot:
    """A budget's state, for ``psabridge status`` and logs.

    Attributes:
        connection: the connection the budget belongs to.
        limits: the limits in force.
        shared: whether the state is shared across processes (Redis).
        used: requests counted in the current window (None without a window limit).
        remaining: requests that may still start now (None: unlimited).
        vendor_remaining: the vendor-reported quota still usable, while one is in force.
    """

    connection: str
    limits: BudgetLimits
    shared: bool
    used: int | None
    remaining: int | None
    vendor_remaining: int | None


class Budget(abc.ABC):
    """The rate budget of one connection.

    Args:
        connection: the connection name.
        limits: what to enforce.
        max_wait: the longest ``slot`` waits for room, in seconds.
        sleep: how to wait (injected in tests).
        clock: a monotonic clock in seconds (injected in tests).
    """

    shared: bool = False

    def __init__(
        self,
        connection: str,
        limits: BudgetLimits,
        *,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.limits = limits
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock

    @contextmanager
    def slot(self, endpoint: str = "*", *, max_wait: float | None = None) -> Iterator[None]:
        """Hold room for one request to ``endpoint`` while the body of the ``with`` runs.

        Args:
            endpoint: what the concurrency cap counts against.
            max_wait: wait at most this long (and never longer than the budget's ``max_wait``).

        Raises:
            RateLimitedError: the window has no room within ``max_wait`` (``retry_after`` says when it will).
            RetryLaterError: every concurrent slot of the endpoint stayed busy for ``max_wait``, or the shared
                budget store is unreachable.
        """
        deadline = self._clock() + (self.max_wait if max_wait is None else max(0.0, min(max_wait, self.max_wait)))
        if self.limits.concurrency is None:
            self._take(deadline)
            yield
            return
        while True:
            with self._hold(endpoint) as held:
                if held:
                    self._take(deadline)
                    yield
                    return
            if self._clock() >= deadline:
                raise RetryLaterError(
                    f"all {self.limits.concurrency} concurrent slots for {endpoint!r} stayed busy",
                    connection=self.connection,
                    details={"source": "budget", "endpoint": endpoint},
                )
            self._sleep(_POLL * (1 + random.random()))

    def remaining(self) -> int | None:
        """How many requests may start now without waiting (None: no limit applies)."""
        return self.snapshot().remaining

    @abc.abstractmethod
    def snapshot(self) -> BudgetSnapshot:
        """The budget's current state."""

    @abc.abstractmethod
    def shrink(self, remaining: int, *, resets_in: float | None = None) -> None:
        """Allow at most ``remaining`` more requests until ``resets_in`` seconds from now (default: one window).

        For a vendor hook that reads the account-wide quota from response headers. The latest call wins.
        """

    @abc.abstractmethod
    def _try_take(self) -> float | None:
        """Count one request if the window (and any vendor quota) allows; else the seconds until it may."""

    @abc.abstractmethod
    def _hold(self, endpoint: str) -> AbstractContextManager[bool]:
        """Try to take a concurrent slot of ``endpoint``; the context yields whether it was taken."""

    def _take(self, deadline: float) -> None:
        while True:
            wait = self._try_take()
            if wait is None:
                return
            now = self._clock()
            if now + wait > deadline:
                raise RateLimitedError(
                    f"our rate budget is used up ({self.limits.requests} requests per {self.limits.per:g}s, "
                    f"or the vendor's remaining quota); room again in {wait:.1f}s",
                    retry_after=wait,
                    connection=self.connection,
                    details={"source": "budget"},
                )
            # A little jitter so processes waiting for the same moment do not all retry at once.
            self._sleep(max(wait, 0.001) + random.uniform(0, 0.01))


class LocalBudget(Budget):
    """A budget in process memory: a sliding log of request times and in-flight counters, under one lock."""

    def __init__(
        self,
        connection: str,
        limits: BudgetLimits,
        *,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(connection, limits, max_wait=max_wait, sleep=sleep, clock=clock)
        self._log: deque[float] = deque()
        self._in_flight: dict[str, int] = {}
        self._cap: int | None = None
        self._cap_until = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        horizon = now - self.limits.per
        while self._log and self._log[0] <= horizon:
            self._log.popleft()
        if self._cap is not None and now >= self._cap_until:
            self._cap = None

    def _try_take(self) -> float | None:
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self._cap is not None and self._cap <= 0:
                return self._cap_until - now
            if self.limits.requests is not None and len(self._log) >= self.limits.requests:
                return self._log[0] + self.limits.per - now
            if self.limits.requests is not None:
                self._log.append(now)
            if self._cap is not None:
                self._cap -= 1
            return None

    @contextmanager
    def _hold(self, endpoint: str) -> Iterator[bool]:
        assert self.limits.concurrency is not None
        with self._lock:
            held = self._in_flight.get(endpoint, 0) < self.limits.concurrency
            if held:
                self._in_flight[endpoint] = self._in_flight.get(endpoint, 0) + 1
        try:
            yield held
        finally:
            if held:
                with self._lock:
                    self._in_flight[endpoint] -= 1

    def in_flight(self, endpoint: str) -> int:
        """Requests to ``endpoint`` in flight now."""
        with self._lock:
            return self._in_flight.get(endpoint, 0)

    def shrink(self, remaining: int, *, resets_in: float | None = None) -> None:
        """Allow at most ``remaining`` more requests until ``resets_in`` seconds from now (default: one window)."""
        with self._lock:
            self._cap = max(0, remaining)
            self._cap_until = self._clock() + (self.limits.per if resets_in is None else resets_in)

    def snapshot(self) -> BudgetSnapshot:
        """The budget's current state."""
        with self._lock:
            self._expire(self._clock())
            used = len(self._log) if self.limits.requests is not None else None
            return _snapshot(self, used, self._cap)


class _BucketWindowLimiter:
    """Dramatiq's bucketed sliding window (``WindowRateLimiter``) with buckets of any width.

    A request is counted in the bucket of its start time; a bucket counts until all of it is older than ``per``,
    so every request of the last ``per`` seconds is always counted (and a request counts at most one bucket
    longer). ``incr_and_sum`` is Dramatiq's atomic (WATCH/MULTI) "add one unless the sum would exceed".
    """

    def __init__(self, backend: Any, key: str, *, limit: int, per: float, wall: Callable[[], float]) -> None:
        self.backend = backend
        self.key = key
        self.limit = limit
        self.width = per / _BUCKETS
        self.count = _BUCKETS + 1
        self.ttl_ms = math.ceil((per + 2 * self.width) * 1000)
        self._wall = wall

    def _keys(self, now: float) -> tuple[int, list[str]]:
        current = math.floor(now / self.width)
        return current, [f"{self.key}@{current - i}" for i in range(self.count)]

    def try_acquire(self) -> bool:
        _, keys = self._keys(self._wall())
        return bool(self.backend.incr_and_sum(keys[0], lambda: keys, 1, maximum=self.limit, ttl=self.ttl_ms))

    def usage(self) -> tuple[int, float]:
        """(requests counted now, seconds until the oldest counted bucket stops counting)."""
        now = self._wall()
        current, keys = self._keys(now)
        values = self.backend.client.mget(keys)
        used = 0
        oldest: int | None = None
        for offset, value in enumerate(values):
            if value:
                used += int(value)
                oldest = current - offset
        frees_in = (oldest + self.count) * self.width - now if oldest is not None else 0.0
        return used, max(0.0, frees_in)


_CAP_TAKE = """
local v = redis.call('GET', KEYS[1])
if not v then return 1 end
if tonumber(v) <= 0 then return 0 end
redis.call('DECR', KEYS[1])
return 1
"""
"""Take one from the vendor quota if one is in force; DECR keeps the key's expiry."""

_SLOT_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
"""Take one in-flight slot as a lease of its own (member = holder token, score = its expiry, in Redis time).

A counter (Dramatiq's ConcurrentRateLimiter) cannot tell whose slots it counts: slots of a killed worker stay taken,
and each later request renews the counter's expiry, so concurrency could stay reduced for good. A lease per slot
expires on its own, whatever the others do.
"""

_BACKENDS: dict[str, Any] = {}
_BACKENDS_LOCK = threading.Lock()


def _redis_backend(url: str) -> Any:
    """One Dramatiq RedisBackend (one connection pool) per Redis URL and process."""
    from dramatiq.rate_limits.backends import RedisBackend

    with _BACKENDS_LOCK:
        backend = _BACKENDS.get(url)
        if backend is None:
            backend = _BACKENDS[url] = RedisBackend(url=url, socket_timeout=5, socket_connect_timeout=5)
        return backend


class RedisBudget(Budget):
    """A budget whose state lives in Redis, shared by every process and host serving the connection.

    Args:
        connection: the connection name.
        limits: what to enforce.
        url: the Redis URL (the broker setting).
        namespace: prefix of every key (tests use a unique one).
        max_wait, sleep, clock: as for Budget.
        wall: wall-clock seconds, which name the window buckets (hosts must agree on the time).
        slot_ttl: seconds an in-flight slot is leased for, so a slot held by a crashed process frees itself; keep it
            above the longest request (connect + read timeout).
    """

    shared = True

    def __init__(
        self,
        connection: str,
        limits: BudgetLimits,
        *,
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        slot_ttl: float = 120.0,
    ) -> None:
        super().__init__(connection, limits, max_wait=max_wait, sleep=sleep, clock=clock)

        self._backend = _redis_backend(url)
        self._client: redis.Redis = self._backend.client
        self.prefix = f"{namespace}:budget:{connection}"
        self._window = (
            _BucketWindowLimiter(
                self._backend, f"{self.prefix}:window", limit=limits.requests, per=limits.per, wall=wall
            )
            if limits.requests is not None
            else None
        )
        self._cap_key = f"{self.prefix}:quota"
        self._cap_take = self._client.register_script(_CAP_TAKE)
        self._slot_ttl_ms = math.ceil(slot_ttl * 1000)
        self._slot_take = self._client.register_script(_SLOT_TAKE)

    def _unreachable(self, exc: Exception) -> RetryLaterError:
        return RetryLaterError(
            f"the shared rate budget (Redis) is unreachable: {exc}",
            connection=self.connection,
            details={"source": "budget"},
        )

    def _try_take(self) -> float | None:
        import redis

        try:
            cap = self._client.get(self._cap_key)
            if cap is not None and int(cap) <= 0:
                return max(0.001, int(self._client.pttl(self._cap_key)) / 1000)
            if self._window is not None and not self._window.try_acquire():
                return max(0.001, self._window.usage()[1])
            if cap is not None:
                self._cap_take(keys=[self._cap_key])
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc
        return None

    def _hold(self, endpoint: str) -> AbstractContextManager[bool]:
        assert self.limits.concurrency is not None
        return self._lease(f"{self.prefix}:inflight:{endpoint}", self.limits.concurrency)

    @contextmanager
    def _lease(self, key: str, limit: int) -> Iterator[bool]:
        import redis

        token = holder_id()  # host:pid:random, so a slot of a process that died on this host can be told apart
        try:
            held = bool(self._slot_take(keys=[key], args=[token, limit, self._slot_ttl_ms]))
            if not held and self._free_abandoned(key):
                held = bool(self._slot_take(keys=[key], args=[token, limit, self._slot_ttl_ms]))
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc
        try:
            yield held
        finally:
            if held:
                with suppress(redis.RedisError):  # the lease expires on its own
                    self._client.zrem(key, token)

    def _free_abandoned(self, key: str) -> bool:
        """End at once the slots of processes that died on this host (a restarted worker need not wait their lease)."""
        members = [m.decode() if isinstance(m, bytes) else str(m) for m in self._client.zrange(key, 0, -1)]
        dead = [member for member in members if abandoned(member)]
        return bool(dead) and bool(self._client.zrem(key, *dead))

    def in_flight(self, endpoint: str) -> int:
        """Slots of ``endpoint`` leased right now, across every process (expired leases not counted)."""
        import redis

        try:
            seconds, micros = self._client.time()
            now_ms = int(seconds) * 1000 + int(micros) // 1000
            return int(self._client.zcount(f"{self.prefix}:inflight:{endpoint}", f"({now_ms}", "+inf"))
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc

    def shrink(self, remaining: int, *, resets_in: float | None = None) -> None:
        """Allow at most ``remaining`` more requests until ``resets_in`` seconds from now (default: one window)."""
        import redis

        seconds = self.limits.per if resets_in is None else resets_in
        try:
            self._client.set(self._cap_key, max(0, remaining), px=max(1, math.ceil(seconds * 1000)))
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc

    def snapshot(self) -> BudgetSnapshot:
        """The budget's current state, read from Redis."""
        import redis

        try:
            used = self._window.usage()[0] if self._window is not None else None
            cap = self._client.get(self._cap_key)
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc
        return _snapshot(self, used, int(cap) if cap is not None else None)


def _snapshot(budget: Budget, used: int | None, cap: int | None) -> BudgetSnapshot:
    remaining: int | None = None
    if budget.limits.requests is not None and used is not None:
        remaining = max(0, budget.limits.requests - used)
    if cap is not None:
        remaining = min(cap, remaining) if remaining is not None else max(0, cap)
    return BudgetSnapshot(budget.connection, budget.limits, budget.shared, used, remaining, cap)


_LOCAL: dict[tuple[str, str], LocalBudget] = {}
_LOCAL_LOCK = threading.Lock()


def budget_for(
    connection: str,
    limits: BudgetLimits,
    *,
    broker_url: str = "embedded",
    namespace: str = DEFAULT_NAMESPACE,
    max_wait: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    slot_ttl: float = 120.0,
) -> Budget:
    """The budget of a connection: shared through Redis when the broker is Redis, else one per process.

    ``slot_ttl`` is how long a shared in-flight slot is leased (longer than any one request may take).

    Every client of the same connection and namespace in this process gets the same ``LocalBudget`` (a new one if
    the limits changed), so two connectors of one connection cannot each spend the whole budget.
    """
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBudget(
            connection,
            limits,
            url=broker_url,
            namespace=namespace,
            max_wait=max_wait,
            sleep=sleep,
            clock=clock,
            slot_ttl=slot_ttl,
        )
    key = (namespace, connection)
    with _LOCAL_LOCK:
        budget = _LOCAL.get(key)
        reusable = (
            budget is not None
            and (budget.limits, budget.max_wait) == (limits, max_wait)
            and (budget._sleep, budget._clock) == (sleep, clock)
        )
        if budget is None or not reusable:
            budget = _LOCAL[key] = LocalBudget(connection, limits, max_wait=max_wait, sleep=sleep, clock=clock)
        return budget
