"""Rate budgets: the in-process limiter (fake time, real threads) and the Redis limiter (real Redis, two processes)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from psabridge.connectors.budget import (
    BudgetLimits,
    Charge,
    LocalBudget,
    RedisBudget,
    Window,
    budget_for,
)
from psabridge.errors import ConfigError, RateLimitedError, RetryLaterError
from psabridge.settings import RateBudget

from .conftest import FakeTime
from .serving import serve

ROOT = Path(__file__).resolve().parents[2]


def local(fake: FakeTime, limits: BudgetLimits, max_wait: float = 30.0) -> LocalBudget:
    return LocalBudget("conn", limits, max_wait=max_wait, sleep=fake.sleep, clock=fake.clock)


# --- limits -----------------------------------------------------------------------------------------------------------


def test_configured_limits_take_the_vendor_default_for_what_they_leave_out() -> None:
    vendor = BudgetLimits(requests=10_000, per=3600, concurrency=3)
    assert BudgetLimits.resolve(RateBudget(), vendor) == vendor
    # The vendor's own windows always stay: they are the vendor's limits, not ours to configure.
    fresh = BudgetLimits(windows=(Window("account", 200, 61, every=True), Window("view_ticket", 80, 61)))
    assert BudgetLimits.resolve(RateBudget(requests=100, per=timedelta(minutes=1)), fresh) == BudgetLimits(
        100, 60, None, fresh.windows
    )
    assert BudgetLimits.resolve(RateBudget(concurrency=1), vendor) == BudgetLimits(10_000, 3600, 1)
    # A configured request count comes with the configured (or the documented default hourly) window.
    assert BudgetLimits.resolve(RateBudget(requests=500), BudgetLimits(100, 60)) == BudgetLimits(500, 3600)
    assert BudgetLimits.resolve(RateBudget(per=timedelta(minutes=1)), vendor) == BudgetLimits(10_000, 60, 3)


def test_without_vendor_limits_only_what_is_configured_counts() -> None:
    fresh = BudgetLimits(concurrency=3, windows=(Window("account", 200, 61, every=True),))
    assert BudgetLimits.resolve(RateBudget(vendor_limits=False), fresh) == BudgetLimits(per=3600)
    assert BudgetLimits.resolve(RateBudget(vendor_limits=False, requests=9, concurrency=2), fresh) == BudgetLimits(
        9, 3600, 2
    )


def test_invalid_limits_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="per"):
        BudgetLimits(requests=5, per=0)
    with pytest.raises(ConfigError, match="distinct names"):
        BudgetLimits(windows=(Window("a", 1, 60), Window("a", 2, 60)))
    with pytest.raises(ConfigError, match="positive"):
        Window("a", 0, 60)


# --- in process, on fake time -----------------------------------------------------------------------------------------


def test_the_window_lets_n_requests_through_then_waits_for_the_oldest_to_leave(fake_time: FakeTime) -> None:
    budget = local(fake_time, BudgetLimits(requests=3, per=10))
    for expected in (2, 1, 0):  # at t = 0, 1, 2
        with budget.slot():
            pass
        assert budget.remaining() == expected
        fake_time.advance(1)
    fake_time.advance(3)  # t = 6
    with budget.slot():
        pass
    assert len(fake_time.sleeps) == 1
    assert 4 <= fake_time.sleeps[0] <= 4.02  # until the first request (t = 0) is 10 s old
    assert budget.remaining() == 0  # those of t = 1 and 2 still count, and this one


def test_a_window_that_frees_too_late_raises_rate_limited_without_waiting(fake_time: FakeTime) -> None:
    budget = local(fake_time, BudgetLimits(requests=1, per=100), max_wait=5)
    with budget.slot():
        pass
    fake_time.advance(30)
    with pytest.raises(RateLimitedError) as caught, budget.slot():
        pass
    assert caught.value.retry_after == pytest.approx(70)
    assert caught.value.details == {"source": "budget"}
    assert fake_time.sleeps == []


def test_credits_count_in_the_account_window_and_in_the_named_endpoint_window(fake_time: FakeTime) -> None:
    limits = BudgetLimits(windows=(Window("account", 10, 60, every=True), Window("view", 6, 60)))
    budget = local(fake_time, limits, max_wait=1)
    view = Charge(credits=3, windows=("view",))
    for _ in range(2):
        with budget.slot(charge=view):
            pass
    assert [(u.window.name, u.used, u.remaining) for u in budget.snapshot().windows] == [
        ("account", 6, 4),
        ("view", 6, 0),
    ]
    fake_time.advance(10)
    with budget.slot():  # another endpoint: only the account window counts it
        pass
    with pytest.raises(RateLimitedError) as caught, budget.slot(charge=view):
        pass
    assert caught.value.retry_after == pytest.approx(50)  # when the first view (t = 0) leaves the view window
    assert budget.remaining() == 3


def test_a_wait_is_exact_so_sleeping_it_is_enough(fake_time: FakeTime) -> None:
    budget = local(fake_time, BudgetLimits(requests=4, per=60), max_wait=0)
    for step in (0, 5, 5, 5):  # at t = 0, 5, 10, 15
        fake_time.advance(step)
        with budget.slot(charge=Charge(credits=1)):
            pass
    with pytest.raises(RateLimitedError) as caught, budget.slot(charge=Charge(credits=2)):
        pass
    assert caught.value.retry_after == pytest.approx(50)  # two must leave: those of t = 0 and 5 (5 + 60 - 15)
    fake_time.advance(caught.value.retry_after)
    with budget.slot(charge=Charge(credits=2)):
        pass


def test_what_the_vendor_reports_beyond_our_traffic_is_held_until_it_leaves(fake_time: FakeTime) -> None:
    budget = local(fake_time, BudgetLimits(windows=(Window("account", 10, 60, every=True),)), max_wait=0)
    for _ in range(2):
        with budget.slot():
            pass
    # The vendor counts 7 in its window: our 2 and 5 of other apps.
    budget.observe("account", used=7, limit=10, resets_in=30)
    assert budget.remaining() == 3
    for _ in range(3):
        with budget.slot():
            pass
    with pytest.raises(RateLimitedError) as caught, budget.slot():
        pass
    assert caught.value.retry_after == pytest.approx(30)  # the others' leave with the report, before our own
    fake_time.advance(30)
    assert budget.remaining() == 5
    # A limit the vendor reports replaces the declared one while the report holds; our own traffic is never foreign.
    budget.observe("account", used=3, limit=20)
    assert [(u.window.limit, u.used) for u in budget.snapshot().windows] == [(20, 5)]
    fake_time.advance(61)
    assert [(u.window.limit, u.used) for u in budget.snapshot().windows] == [(10, 0)]


def test_concurrency_is_capped_per_endpoint(fake_time: FakeTime) -> None:
    budget = local(fake_time, BudgetLimits(concurrency=2), max_wait=1)
    with budget.slot("Tickets"), budget.slot("Tickets"):
        assert budget.in_flight("Tickets") == 2
        with budget.slot("Companies"):  # another endpoint has its own slots
            assert budget.in_flight("Companies") == 1
        with pytest.raises(RetryLaterError, match="concurrent"), budget.slot("Tickets"):
            pass
    assert budget.in_flight("Tickets") == 0
    with budget.slot("Tickets"):
        pass


def test_a_slot_is_given_back_when_the_request_fails(fake_time: FakeTime) -> None:
    budget = local(fake_time, BudgetLimits(concurrency=1))
    with pytest.raises(ZeroDivisionError), budget.slot("Tickets"):
        1 / 0  # noqa: B018
    assert budget.in_flight("Tickets") == 0


def test_an_unlimited_budget_never_waits(fake_time: FakeTime) -> None:
    budget = local(fake_time, BudgetLimits())
    for _ in range(1000):
        with budget.slot():
            pass
    assert budget.remaining() is None
    assert fake_time.sleeps == []


def test_every_client_of_a_connection_in_a_process_shares_one_local_budget(namespace: str) -> None:
    limits = BudgetLimits(requests=5, per=60)
    first = budget_for("conn", limits, namespace=namespace)
    assert budget_for("conn", limits, namespace=namespace) is first
    assert budget_for("other", limits, namespace=namespace) is not first
    assert budget_for("conn", limits, namespace=namespace + "x") is not first
    assert budget_for("conn", BudgetLimits(requests=6, per=60), namespace=namespace) is not first


# --- in process, real threads -----------------------------------------------------------------------------------------


@dataclass
class Observed:
    """Start times and the highest in-flight count seen by the threads using a budget."""

    starts: list[float] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any half-open interval [t, t + window) that starts at an event."""
    ordered = sorted(times)
    best = 0
    end = 0
    for start_index, start in enumerate(ordered):
        while end < len(ordered) and ordered[end] < start + window:
            end += 1
        best = max(best, end - start_index)
    return best


def test_the_local_budget_holds_under_many_threads() -> None:
    budget = LocalBudget("conn", BudgetLimits(requests=15, per=0.4, concurrency=3), max_wait=30)
    seen = Observed()

    def work() -> None:
        for _ in range(10):
            with budget.slot("Tickets"):
                with seen.lock:
                    seen.starts.append(time.monotonic())
                    seen.in_flight += 1
                    seen.peak = max(seen.peak, seen.in_flight)
                time.sleep(0.003)
                with seen.lock:
                    seen.in_flight -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen.starts) == 80
    assert seen.peak <= 3
    # Counted in windows a little shorter than the budget's, so scheduling jitter cannot fake a breach.
    assert max_in_window(seen.starts, 0.4 * 0.8) <= 15
    # And the load was enough to fill windows: it did not pass by being slow.
    assert max_in_window(seen.starts, 0.4) >= 12


# --- Redis ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_cleanup(redis_url: str, namespace: str) -> Iterator[None]:
    """Delete the test namespace's Redis keys afterwards."""
    import redis

    yield
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def shared(redis_url: str, namespace: str, fake: FakeTime, limits: BudgetLimits, **options: float) -> RedisBudget:
    return RedisBudget(
        "conn",
        limits,
        url=redis_url,
        namespace=namespace,
        sleep=fake.sleep,
        clock=fake.clock,
        wall=fake.wall,
        **options,
    )


@pytest.mark.integration
def test_two_redis_budgets_of_one_connection_share_the_window(
    redis_url: str, namespace: str, fake_time: FakeTime, redis_cleanup: None
) -> None:
    limits = BudgetLimits(requests=5, per=60)
    first = shared(redis_url, namespace, fake_time, limits, max_wait=5)
    second = shared(redis_url, namespace, fake_time, limits, max_wait=5)
    for budget in (first, second, first, second, first):
        with budget.slot():
            pass
    assert first.remaining() == second.remaining() == 0
    assert first.snapshot().shared
    with pytest.raises(RateLimitedError) as caught, second.slot():
        pass
    assert 55 <= caught.value.retry_after <= 62
    # Another connection, or another namespace, has its own window.
    with shared(redis_url, namespace + "o", fake_time, limits).slot():
        pass
    fake_time.advance(62)
    with second.slot():
        pass
    assert second.remaining() == 4


@pytest.mark.integration
def test_a_redis_budget_waits_inline_for_a_short_window(
    redis_url: str, namespace: str, fake_time: FakeTime, redis_cleanup: None
) -> None:
    budget = shared(redis_url, namespace, fake_time, BudgetLimits(requests=2, per=6), max_wait=30)
    for _ in range(3):
        with budget.slot():
            pass
    assert 5.9 <= sum(fake_time.sleeps) <= 6.5


@pytest.mark.integration
def test_a_vendor_report_holds_for_every_process(
    redis_url: str, namespace: str, fake_time: FakeTime, redis_cleanup: None
) -> None:
    limits = BudgetLimits(requests=100, per=60, windows=(Window("account", 10, 60, every=True),))
    first = shared(redis_url, namespace, fake_time, limits, max_wait=1)
    second = shared(redis_url, namespace, fake_time, limits, max_wait=1)
    with first.slot():
        pass
    first.observe("account", used=9, limit=10, resets_in=30)  # 8 of other apps
    assert second.remaining() == 1
    with second.slot():
        pass
    assert [(u.window.name, u.used, u.remaining) for u in first.snapshot().windows] == [
        ("budget", 2, 98),
        ("account", 10, 0),
    ]
    with pytest.raises(RateLimitedError) as caught, first.slot():
        pass
    assert 29 <= caught.value.retry_after <= 30  # the others' credits leave with the report


@pytest.mark.integration
def test_redis_windows_count_credits_per_endpoint_and_wait_exactly(
    redis_url: str, namespace: str, fake_time: FakeTime, redis_cleanup: None
) -> None:
    limits = BudgetLimits(windows=(Window("account", 10, 60, every=True), Window("view", 6, 60)))
    budget = shared(redis_url, namespace, fake_time, limits, max_wait=0)
    view = Charge(credits=3, windows=("view",))
    for _ in range(2):
        with budget.slot(charge=view):
            pass
    with budget.slot():
        pass
    with pytest.raises(RateLimitedError) as caught, budget.slot(charge=view):
        pass
    assert 60 <= caught.value.retry_after <= 62  # the view window frees when its first bucket leaves
    fake_time.advance(caught.value.retry_after)
    with budget.slot(charge=view):
        pass


@pytest.mark.integration
def test_redis_concurrency_slots_are_shared(
    redis_url: str, namespace: str, fake_time: FakeTime, redis_cleanup: None
) -> None:
    limits = BudgetLimits(concurrency=1)
    first = shared(redis_url, namespace, fake_time, limits, max_wait=0.5)
    second = shared(redis_url, namespace, fake_time, limits, max_wait=0.5)
    with first.slot("Tickets"):
        with pytest.raises(RetryLaterError, match="concurrent"), second.slot("Tickets"):
            pass
        with second.slot("Companies"):
            pass
    with second.slot("Tickets"):
        pass


@pytest.mark.integration
def test_redis_keys_are_namespaced_per_connection(redis_url: str, namespace: str, fake_time: FakeTime) -> None:
    import redis

    limits = BudgetLimits(requests=5, per=60, concurrency=2, windows=(Window("account", 9, 60, every=True),))
    budget = shared(redis_url, namespace, fake_time, limits)
    budget.observe("account", used=3)
    client = redis.Redis.from_url(redis_url)
    try:
        with budget.slot("Tickets"):
            keys = sorted(k.decode() for k in client.scan_iter(match=f"{namespace}:*"))
        assert keys
        assert all(k.startswith(f"{namespace}:budget:conn:") for k in keys)
        assert f"{namespace}:budget:conn:reported:account" in keys
        assert f"{namespace}:budget:conn:inflight:Tickets" in keys
    finally:
        client.delete(*client.scan_iter(match=f"{namespace}:*"))
        client.close()


def test_a_crashed_holders_slot_frees_itself_however_busy_the_others_are(redis_url: str, namespace: str) -> None:
    """A worker killed mid-request never gives its slot back; the slot's own lease ends it (others cannot renew it)."""
    limits = BudgetLimits(concurrency=1)
    crashed = RedisBudget("conn", limits, url=redis_url, namespace=namespace, slot_ttl=1.0)
    survivor = RedisBudget("conn", limits, url=redis_url, namespace=namespace, slot_ttl=1.0, max_wait=0.0)
    abandoned = crashed.slot("Tickets")
    abandoned.__enter__()  # taken, never released: the process "died" here
    assert survivor.in_flight("Tickets") == 1
    attempts = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        attempts += 1
        try:
            with survivor.slot("Tickets"):
                break
        except RetryLaterError:
            time.sleep(0.1)  # the survivor keeps trying: with a shared counter this would renew the crashed slot
    else:
        pytest.fail("the crashed holder's slot never freed")
    assert attempts > 3, "the slot was free before its lease ended"
    assert survivor.in_flight("Tickets") == 0


def test_a_slot_of_a_process_killed_on_this_host_frees_at_once(redis_url: str, namespace: str) -> None:
    """A worker restarted after a SIGKILL does not wait out the dead process's leases (they are a minute long here)."""
    holder = textwrap.dedent(
        f"""
        import sys, time
        from psabridge.connectors.budget import BudgetLimits, RedisBudget
        budget = RedisBudget("conn", BudgetLimits(concurrency=1), url={redis_url!r}, namespace={namespace!r},
                             slot_ttl=60.0)
        held = budget.slot("Tickets")  # kept referenced: a collected context manager would give the slot back
        held.__enter__()
        print("held", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        survivor = RedisBudget("conn", BudgetLimits(concurrency=1), url=redis_url, namespace=namespace, max_wait=0.0)
        with pytest.raises(RetryLaterError, match="stayed busy"), survivor.slot("Tickets"):
            pass  # the holder is alive: its slot is its own
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with survivor.slot("Tickets"):
            assert survivor.in_flight("Tickets") == 1  # ours; the dead one's was ended
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_an_unreachable_redis_is_a_transient_error(namespace: str) -> None:
    budget = RedisBudget("conn", BudgetLimits(requests=5, per=60), url="redis://127.0.0.1:1/0", namespace=namespace)
    with pytest.raises(RetryLaterError, match="unreachable"), budget.slot():
        pass


# --- two worker processes, one connection -----------------------------------------------------------------------------


class Arrivals:
    """A tiny API that records when each request arrived, from which worker, and how many were in flight."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.times: list[float] = []
        self.workers: list[str] = []
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        request = Request(scope)  # type: ignore[arg-type]
        self.times.append(time.monotonic())
        self.workers.append(request.headers.get("x-worker", "?"))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.hold)
        finally:
            self.in_flight -= 1
        await JSONResponse({"items": []})(scope, receive, send)  # type: ignore[arg-type]


def run_workers(base_url: str, broker: str, namespace: str, *, limit: int, per: float, concurrency: int) -> None:
    """Start two worker processes, release them together, wait for both to finish."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.connectors.budget_worker",
                base_url,
                broker,
                namespace,
                worker,
                "3",  # threads
                "6",  # requests per thread
                str(limit),
                str(per),
                str(concurrency),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in ("A", "B")
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "ready", f"worker did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert out.strip().splitlines()[-1] == "done 18"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.mark.integration
@pytest.mark.slow
def test_two_worker_processes_together_stay_under_one_connections_budget(
    redis_url: str, namespace: str, redis_cleanup: None
) -> None:
    # Given one connection allowed 10 requests per second, 2 in flight per endpoint, and two worker processes with
    # three threads each, together wanting 36 requests
    api = Arrivals(hold=0.03)
    with serve(api) as url:
        # When both send as fast as they can through the Redis budget
        run_workers(url, redis_url, namespace, limit=10, per=1.0, concurrency=2)

    # Then every request was served, both workers took part, and in no window did the API see more than allowed
    assert len(api.times) == 36
    assert set(api.workers) == {"A", "B"}
    assert max_in_window(api.times, 0.9) <= 10
    assert api.peak <= 2
    # (and the load was enough to fill windows)
    assert max_in_window(api.times, 1.0) >= 8


@pytest.mark.slow
def test_without_a_shared_store_two_processes_overrun_the_budget(namespace: str) -> None:
    # The control experiment for the test above: the same measurement catches per-process budgets adding up.
    api = Arrivals(hold=0.0)
    with serve(api) as url:
        run_workers(url, "embedded", namespace, limit=10, per=1.0, concurrency=3)
    assert len(api.times) == 36
    assert max_in_window(api.times, 0.9) > 10
