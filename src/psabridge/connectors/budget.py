"""Rate budgets: keep our own traffic to one connection under the vendor's limits, across threads, processes and hosts.

A budget enforces rolling windows of *credits* (a request costs one credit unless the vendor charges more, as
Freshservice does for each ``include``) and at most ``concurrency`` requests in flight per endpoint:

- the connection's own window, ``requests`` credits per ``per`` seconds (``rate_budget`` in the settings, else the
  vendor's default): every request counts;
- the vendor's windows (``BudgetLimits.windows``): an endpoint's sub-limit (Freshservice's list tickets, view
  ticket ...) counts the requests whose ``Charge`` names it; an account-wide window (``every=True``: Freshservice's
  account limit, Autotask's database threshold) counts every request, and also what other integrations used, as
  the vendor reports it (``observe``).

``slot(endpoint, charge=...)`` waits (bounded by ``max_wait``) until every window has room and the endpoint a free
in-flight slot, and raises ``RateLimitedError`` with the exact wait when a window will not free up in time, so a
caller that sleeps ``retry_after`` and tries again gets room (and a worker thread is not blocked for minutes).

Two implementations share that behaviour:

- ``RedisBudget`` (broker ``redis://``): the state lives in Redis, so every process and host serving the connection
  shares it. A window is Dramatiq's bucketed sliding window (``dramatiq/rate_limits``) with buckets of ``per / 60``
  seconds, checked and charged for all windows at once by one Lua script; the in-flight cap is a lease per slot in a
  sorted set, so a killed worker's slot frees itself (at once when it died on the same host, else when its lease
  ends).
- ``LocalBudget`` (embedded or amqp broker): the same rules over exact sliding logs in process memory, shared by every
  client of the connection in this process.

Keys are ``<namespace>:budget:<connection>:...``; tests pass their own namespace.
"""

from __future__ import annotations

import abc
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
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
    "OWN_WINDOW",
    "Budget",
    "BudgetLimits",
    "BudgetSnapshot",
    "Charge",
    "LocalBudget",
    "RedisBudget",
    "Window",
    "WindowUsage",
    "budget_for",
]

DEFAULT_NAMESPACE = "psabridge"
OWN_WINDOW = "budget"
"""The name of the connection's own window (``requests`` per ``per``) in snapshots."""
_POLL = 0.02  # seconds between looks at a busy concurrency slot
_BUCKETS = 60  # buckets per window in Redis: a request is counted for at most per * (1 + 1/60) seconds


@dataclass(frozen=True)
class Window:
    """A vendor's rolling limit: ``limit`` credits per ``per`` seconds.

    Attributes:
        name: what the vendor calls it (``list_tickets``, ``view_ticket``, ``account``, ``database`` ...).
        limit: credits allowed per window.
        per: the window in seconds.
        every: every request counts against it (an account-wide limit); otherwise only requests whose ``Charge``
            names it (an endpoint's sub-limit).
    """

    name: str
    limit: int
    per: float
    every: bool = False

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.per <= 0:
            raise ConfigError(f"rate window {self.name!r} needs a positive limit and length")


@dataclass(frozen=True)
class Charge:
    """What one request costs: ``credits`` against the budget, its account-wide windows and the named windows."""

    credits: int = 1
    windows: tuple[str, ...] = ()


@dataclass(frozen=True)
class BudgetLimits:
    """The limits a budget enforces.

    Attributes:
        requests: credits allowed per window (None: no limit of our own); a request costs one credit unless the
            vendor charges more.
        per: the window in seconds.
        concurrency: requests in flight per endpoint (None: no cap).
        windows: the vendor's own windows (sub-limits per endpoint, account-wide limits).
    """

    requests: int | None = None
    per: float = 3600.0
    concurrency: int | None = None
    windows: tuple[Window, ...] = ()

    def __post_init__(self) -> None:
        if self.requests is not None and self.requests <= 0:
            raise ConfigError(f"rate_budget.requests must be positive, not {self.requests}")
        if self.per <= 0:
            raise ConfigError(f"rate_budget.per must be a positive duration, not {self.per}s")
        if self.concurrency is not None and self.concurrency <= 0:
            raise ConfigError(f"rate_budget.concurrency must be positive, not {self.concurrency}")
        names = [w.name for w in self.windows]
        if OWN_WINDOW in names or len(set(names)) != len(names):
            raise ConfigError(f"rate windows need distinct names other than {OWN_WINDOW!r}: {names}")

    @classmethod
    def resolve(cls, configured: RateBudget, default: BudgetLimits) -> BudgetLimits:
        """The connection's ``rate_budget`` with the vendor's default for what it leaves out.

        ``per`` is taken from the configuration when it was written there or when ``requests`` was (the settings
        model documents an hour as the default window); otherwise the vendor's window applies. The vendor's own
        windows always apply (they are the vendor's, not ours to configure), unless ``vendor_limits`` is off: then
        only what is configured counts, for a sandbox whose limits are lifted.
        """
        per_given = "per" in configured.model_fields_set or configured.requests is not None
        if not configured.vendor_limits:
            return cls(
                requests=configured.requests,
                per=configured.per.total_seconds(),
                concurrency=configured.concurrency,
            )
        return cls(
            requests=configured.requests if configured.requests is not None else default.requests,
            per=configured.per.total_seconds() if per_given else default.per,
            concurrency=configured.concurrency if configured.concurrency is not None else default.concurrency,
            windows=default.windows,
        )

    def all_windows(self) -> tuple[Window, ...]:
        """Our own window (if any, named ``OWN_WINDOW``, counting every request) and the vendor's windows."""
        own = (Window(OWN_WINDOW, self.requests, self.per, every=True),) if self.requests is not None else ()
        return own + self.windows


@dataclass(frozen=True)
class WindowUsage:
    """One window's state.

    Attributes:
        window: the window (its limit as the vendor last reported it, if it did).
        used: credits counted now (ours, and others' as the vendor reported them).
        remaining: credits that may still be spent now.
    """

    window: Window
    used: int
    remaining: int


@dataclass(frozen=True)
class BudgetSnapshot:
    """A budget's state, for ``psabridge status`` and logs.

    Attributes:
        connection: the connection the budget belongs to.
        limits: the limits in force.
        shared: whether the state is shared across processes (Redis).
        used: credits counted in our own window (None without one).
        remaining: credits that may start now in every window (None: unlimited).
        windows: every window's usage, ours first.
    """

    connection: str
    limits: BudgetLimits
    shared: bool
    used: int | None
    remaining: int | None
    windows: tuple[WindowUsage, ...] = ()


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
        self._windows = limits.all_windows()
        self._by_name = {w.name: w for w in self._windows}

    @contextmanager
    def slot(
        self, endpoint: str = "*", *, charge: Charge | None = None, max_wait: float | None = None
    ) -> Iterator[None]:
        """Hold room for one request to ``endpoint`` while the body of the ``with`` runs.

        Args:
            endpoint: what the concurrency cap counts against.
            charge: what the request costs (default one credit, no endpoint window).
            max_wait: wait at most this long (and never longer than the budget's ``max_wait``).

        Raises:
            RateLimitedError: a window has no room within ``max_wait`` (``retry_after`` says when it will).
            RetryLaterError: every concurrent slot of the endpoint stayed busy for ``max_wait``, or the shared
                budget store is unreachable.
        """
        charge = charge or Charge()
        deadline = self._clock() + (self.max_wait if max_wait is None else max(0.0, min(max_wait, self.max_wait)))
        if self.limits.concurrency is None:
            self._take(deadline, charge)
            yield
            return
        while True:
            with self._hold(endpoint) as held:
                if held:
                    self._take(deadline, charge)
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
        """How many credits may be spent now without waiting (None: no limit applies)."""
        return self.snapshot().remaining

    def charged(self, charge: Charge) -> list[Window]:
        """The windows a request with ``charge`` counts against: every account-wide one, and those it names."""
        return [w for w in self._windows if w.every or w.name in charge.windows]

    @abc.abstractmethod
    def snapshot(self) -> BudgetSnapshot:
        """The budget's current state."""

    @abc.abstractmethod
    def observe(self, window: str, *, used: int, limit: int | None = None, resets_in: float | None = None) -> None:
        """Take in what the vendor reports of an account-wide window: ``used`` credits counted now (and its limit).

        What the vendor counted beyond our own traffic is other integrations' use: it is held against the window
        until ``resets_in`` seconds from now (default: the window's length), when it has left the vendor's window
        too. A limit the vendor reports replaces the declared one for that long. The latest report wins. A report
        about a window the budget does not have (the vendor's limits are off) is ignored.
        """

    @abc.abstractmethod
    def _try_take(self, charge: Charge) -> float | None:
        """Count a request if every window it is charged to has room; else the seconds until all of them will."""

    @abc.abstractmethod
    def _hold(self, endpoint: str) -> AbstractContextManager[bool]:
        """Try to take a concurrent slot of ``endpoint``; the context yields whether it was taken."""

    def _take(self, deadline: float, charge: Charge) -> None:
        while True:
            wait = self._try_take(charge)
            if wait is None:
                return
            now = self._clock()
            if now + wait > deadline:
                raise RateLimitedError(
                    f"our rate budget is used up ({_describe(self.charged(charge))}); room again in {wait:.1f}s",
                    retry_after=wait,
                    connection=self.connection,
                    details={"source": "budget"},
                )
            # A little jitter so processes waiting for the same moment do not all retry at once.
            self._sleep(max(wait, 0.001) + random.uniform(0, 0.01))


def _describe(windows: Iterable[Window]) -> str:
    return ", ".join(f"{w.name} {w.limit} per {w.per:g}s" for w in windows) or "no window"


def _snapshot(budget: Budget, usages: list[WindowUsage]) -> BudgetSnapshot:
    own = next((u for u in usages if u.window.name == OWN_WINDOW), None)
    remaining = min((u.remaining for u in usages if u.window.every), default=None)
    return BudgetSnapshot(
        budget.connection,
        budget.limits,
        budget.shared,
        own.used if own is not None else None,
        remaining,
        tuple(usages),
    )


# --- in process -------------------------------------------------------------------------------------------------------


class _Log:
    """One window's exact sliding log of (time, credits), plus other integrations' use as the vendor reported it."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.entries: deque[tuple[float, int]] = deque()
        self.ours = 0
        self.foreign = 0
        self.foreign_until = 0.0
        self.reported_limit: int | None = None

    def expire(self, now: float) -> None:
        horizon = now - self.window.per
        while self.entries and self.entries[0][0] <= horizon:
            self.ours -= self.entries.popleft()[1]
        if self.foreign_until and now >= self.foreign_until:
            self.foreign, self.foreign_until, self.reported_limit = 0, 0.0, None

    @property
    def limit(self) -> int:
        return self.reported_limit if self.reported_limit is not None else self.window.limit

    def wait_for(self, credits: int, now: float) -> float:
        """Seconds until ``credits`` more fit (0: now); requests leave the window oldest first, others' at once."""
        used = self.ours + self.foreign
        need = used + credits - self.limit
        if need <= 0 or used == 0:
            return 0.0  # (a request costing more than the whole window goes alone into an empty one)
        freed = 0
        foreign = self.foreign
        for stamp, spent in self.entries:
            leaves = stamp + self.window.per
            if foreign and self.foreign_until <= leaves:
                freed, foreign = freed + foreign, 0
                if freed >= need:
                    return max(0.0, self.foreign_until - now)
            freed += spent
            if freed >= need:
                return max(0.0, leaves - now)
        return max(0.0, self.foreign_until - now)

    def usage(self) -> WindowUsage:
        window = self.window if self.reported_limit is None else _with_limit(self.window, self.reported_limit)
        used = self.ours + self.foreign
        return WindowUsage(window, used, max(0, self.limit - used))


def _with_limit(window: Window, limit: int) -> Window:
    return Window(window.name, limit, window.per, window.every)


class LocalBudget(Budget):
    """A budget in process memory: a sliding log per window and in-flight counters, under one lock."""

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
        self._logs = {w.name: _Log(w) for w in self._windows}
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def _try_take(self, charge: Charge) -> float | None:
        with self._lock:
            now = self._clock()
            logs = [self._logs[w.name] for w in self.charged(charge)]
            for log in logs:
                log.expire(now)
            wait = max((log.wait_for(charge.credits, now) for log in logs), default=0.0)
            if wait > 0:
                return wait
            for log in logs:
                log.entries.append((now, charge.credits))
                log.ours += charge.credits
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

    def observe(self, window: str, *, used: int, limit: int | None = None, resets_in: float | None = None) -> None:
        """Take in what the vendor reports of an account-wide window (see ``Budget.observe``)."""
        declared = self._by_name.get(window)
        if declared is None:
            return
        with self._lock:
            now = self._clock()
            log = self._logs[window]
            log.expire(now)
            log.foreign = max(0, used - log.ours)
            log.reported_limit = limit
            log.foreign_until = now + (declared.per if resets_in is None else resets_in)

    def snapshot(self) -> BudgetSnapshot:
        """The budget's current state."""
        with self._lock:
            now = self._clock()
            for log in self._logs.values():
                log.expire(now)
            return _snapshot(self, [log.usage() for log in self._logs.values()])


# --- shared through Redis ---------------------------------------------------------------------------------------------

_TAKE = """
local credits = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local k, a = 1, 4
local wait = 0
local current = {}
for w = 1, n do
  local count, limit, width = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local ttl, cur = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 5
  local seen = KEYS[k]
  local reported = redis.call('HMGET', seen, 'limit', 'foreign')
  if reported[1] then limit = tonumber(reported[1]) end
  local foreign = tonumber(reported[2]) or 0
  local values = redis.call('MGET', unpack(KEYS, k + 1, k + count))
  local used = foreign
  for i = 1, count do used = used + (tonumber(values[i]) or 0) end
  if used > 0 and used + credits > limit then
    local need = used + credits - limit
    local foreign_at = now + math.max(0, redis.call('PTTL', seen)) / 1000
    local freed, found = 0, false
    for i = count, 1, -1 do
      local leaves = (cur - (i - 1) + count) * width
      if foreign > 0 and foreign_at <= leaves then
        freed, foreign = freed + foreign, 0
        if freed >= need then wait, found = math.max(wait, foreign_at - now), true break end
      end
      freed = freed + (tonumber(values[i]) or 0)
      if freed >= need then wait, found = math.max(wait, leaves - now), true break end
    end
    if not found then wait = math.max(wait, foreign_at - now) end
  end
  current[w] = {KEYS[k + 1], ttl}
  k = k + 1 + count
end
if wait > 0 then return {0, tostring(wait)} end
for w = 1, n do
  redis.call('INCRBY', current[w][1], credits)
  redis.call('PEXPIRE', current[w][1], current[w][2])
end
return {1, '0'}
"""
"""Charge every window of a request at once, or say how long until all of them have room.

Per window the KEYS are its report hash (limit and foreign use the vendor reported, expiring with the report) and
its bucket keys, newest first; ARGV holds the credits, the wall time, the number of windows and per window its bucket
count, limit, bucket width, bucket TTL and current bucket index. A bucket counts until all of it is older than the
window (Dramatiq's WindowRateLimiter), so a request is counted at most one bucket longer than the window.
"""

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

_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _redis_client(url: str) -> redis.Redis:
    """One Redis client (one connection pool) per Redis URL and process."""
    import redis

    with _CLIENTS_LOCK:
        client = _CLIENTS.get(url)
        if client is None:
            client = _CLIENTS[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return client


class _Buckets:
    """Where one window's buckets live in Redis, and how they are named at a moment (``<key>@<bucket index>``)."""

    def __init__(self, prefix: str, window: Window) -> None:
        self.window = window
        self.key = f"{prefix}:window" if window.name == OWN_WINDOW else f"{prefix}:window:{window.name}"
        self.reported = f"{prefix}:reported:{window.name}"
        self.width = window.per / _BUCKETS
        self.count = _BUCKETS + 1
        self.ttl_ms = math.ceil((window.per + 2 * self.width) * 1000)

    def at(self, now: float) -> tuple[int, list[str]]:
        """The current bucket index and the keys of every bucket that still counts, newest first."""
        current = math.floor(now / self.width)
        return current, [f"{self.key}@{current - i}" for i in range(self.count)]


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
        self._client: redis.Redis = _redis_client(url)
        self._wall = wall
        self.prefix = f"{namespace}:budget:{connection}"
        self._buckets = {w.name: _Buckets(self.prefix, w) for w in self._windows}
        self._take_script = self._client.register_script(_TAKE)
        self._slot_ttl_ms = math.ceil(slot_ttl * 1000)
        self._slot_take = self._client.register_script(_SLOT_TAKE)

    def _unreachable(self, exc: Exception) -> RetryLaterError:
        return RetryLaterError(
            f"the shared rate budget (Redis) is unreachable: {exc}",
            connection=self.connection,
            details={"source": "budget"},
        )

    def _try_take(self, charge: Charge) -> float | None:
        import redis

        windows = self.charged(charge)
        if not windows:
            return None
        now = self._wall()
        keys: list[str] = []
        args: list[Any] = [charge.credits, repr(now), len(windows)]
        for window in windows:
            buckets = self._buckets[window.name]
            current, names = buckets.at(now)
            keys += [buckets.reported, *names]
            args += [buckets.count, window.limit, repr(buckets.width), buckets.ttl_ms, current]
        try:
            taken, wait = self._take_script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc
        return None if int(taken) else max(0.001, float(wait))

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

    def _ours(self, buckets: _Buckets) -> int:
        _, names = buckets.at(self._wall())
        return sum(int(v) for v in self._client.mget(names) if v)

    def observe(self, window: str, *, used: int, limit: int | None = None, resets_in: float | None = None) -> None:
        """Take in what the vendor reports of an account-wide window, for every process (see ``Budget.observe``)."""
        import redis

        declared = self._by_name.get(window)
        if declared is None:
            return
        buckets = self._buckets[window]
        seconds = declared.per if resets_in is None else resets_in
        try:
            foreign = max(0, used - self._ours(buckets))
            fields: dict[str, int] = {"foreign": foreign}
            if limit is not None:
                fields["limit"] = limit
            with self._client.pipeline() as pipe:
                pipe.delete(buckets.reported)
                pipe.hset(buckets.reported, mapping=fields)  # type: ignore[arg-type]
                pipe.pexpire(buckets.reported, max(1, math.ceil(seconds * 1000)))
                pipe.execute()
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc

    def snapshot(self) -> BudgetSnapshot:
        """The budget's current state, read from Redis."""
        import redis

        usages = []
        try:
            for window in self._windows:
                buckets = self._buckets[window.name]
                reported = self._client.hmget(buckets.reported, ["limit", "foreign"])
                limit = int(reported[0]) if reported[0] is not None else window.limit
                used = self._ours(buckets) + (int(reported[1]) if reported[1] is not None else 0)
                shown = window if limit == window.limit else _with_limit(window, limit)
                usages.append(WindowUsage(shown, used, max(0, limit - used)))
        except redis.RedisError as exc:
            raise self._unreachable(exc) from exc
        return _snapshot(self, usages)


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
