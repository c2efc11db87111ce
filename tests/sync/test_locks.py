"""Per-ticket locks hold across threads and processes, on Redis, PostgreSQL and the SQLite lease; a holder that
dies does not wedge the ticket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from psabridge.locking import Locks, LockTimeoutError
from psabridge.store import Database
from psabridge.store.locks import LeaseLocks, PostgresLocks
from psabridge.sync.locks import RedisLocks
from tests.conftest import ROOT

HOLDER = """
import sys, time
from psabridge.store import Database
from psabridge.store.locks import LeaseLocks, PostgresLocks
from psabridge.sync.locks import RedisLocks
kind, url, namespace = sys.argv[1:4]
if kind == "redis":
    locks = RedisLocks(url, namespace=namespace, ttl=1.0)
elif kind == "postgres":
    locks = PostgresLocks(url, ttl=1.0)
else:
    locks = LeaseLocks(Database(url), ttl=1.0)
with locks.hold("acme-snow:42"):
    print("held", flush=True)
    time.sleep(float(sys.argv[4]))
print("released", flush=True)
"""


@pytest.fixture(
    params=[
        "lease",
        pytest.param("postgres", marks=pytest.mark.integration),
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(
    kind: str, request: pytest.FixtureRequest, namespace: str
) -> Iterator[tuple[str, str, Callable[..., Locks]]]:
    """(kind, url, factory of Locks) for each implementation."""
    if kind == "redis":
        url = str(request.getfixturevalue("redis_url"))
        yield kind, url, lambda **kw: RedisLocks(url, namespace=namespace, **kw)
    elif kind == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
        yield kind, url, lambda **kw: PostgresLocks(url, **kw)
    else:
        db: Database = request.getfixturevalue("sqlite_db")
        yield kind, db.url, lambda **kw: LeaseLocks(db, **kw)


def test_one_holder_at_a_time_per_name_across_threads(target: tuple[str, str, Callable[..., Locks]]) -> None:
    _, _, make = target
    locks = make(wait=10.0)
    inside: list[str] = []
    overlap: list[tuple[str, ...]] = []

    def job(name: str) -> None:
        with locks.hold(name):
            inside.append(name)
            if inside.count(name) > 1:
                overlap.append(tuple(inside))
            time.sleep(0.05)
            inside.remove(name)

    threads = [threading.Thread(target=job, args=(f"t:{i % 2}",)) for i in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == []
    # two names run side by side: 4 turns each of 50 ms, not 8
    assert time.monotonic() - started < 0.05 * 8
    locks.close()


def holder(kind: str, url: str, namespace: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, kind, url, namespace, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_held_by_another_process_excludes_this_one_until_released(
    target: tuple[str, str, Callable[..., Locks]], namespace: str
) -> None:
    kind, url, make = target
    locks = make(wait=0.3)
    proc = holder(kind, url, namespace, 1.0)
    try:
        with pytest.raises(LockTimeoutError, match="held by another job"), locks.hold("acme-snow:42"):
            pass
        with locks.hold("acme-snow:42", wait=10.0):
            pass
    finally:
        out, _ = proc.communicate(timeout=10)
        locks.close()
    assert out.strip() == "released"  # the other process had let go before we got it


def test_a_holder_killed_mid_job_does_not_wedge_the_ticket(
    target: tuple[str, str, Callable[..., Locks]], namespace: str
) -> None:
    kind, url, make = target
    locks = make(wait=5.0, ttl=1.0)
    proc = holder(kind, url, namespace, 60.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    started = time.monotonic()
    with locks.hold("acme-snow:42"):
        waited = time.monotonic() - started
    # PostgreSQL drops the lock with the connection; Redis and the lease expire after their ttl (1 s here)
    assert waited < (0.5 if kind == "postgres" else 3.0)
    locks.close()


def test_a_restarted_worker_frees_the_locks_of_its_dead_predecessor_at_once(
    target: tuple[str, str, Callable[..., Locks]], namespace: str
) -> None:
    kind, url, make = target
    locks = make(wait=0.2, ttl=30.0)  # expiry alone would take 30 s
    proc = holder(kind, url, namespace, 60.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    if kind != "postgres":  # PostgreSQL already dropped it with the connection
        with pytest.raises(LockTimeoutError), locks.hold("acme-snow:42"):
            pass
        assert locks.clear_abandoned() == 1
    with locks.hold("acme-snow:42"):
        pass
    locks.close()


def test_locks_held_at_once_share_one_renewer_and_outlive_their_ttl(
    target: tuple[str, str, Callable[..., Locks]],
) -> None:
    kind, _, make = target
    holder, other = make(ttl=0.6), make(wait=0.0, ttl=0.6)
    names = [f"acme-snow:{n}" for n in range(6)]
    entered = threading.Barrier(len(names) + 1)
    release = threading.Event()

    def job(name: str) -> None:
        with holder.hold(name):
            entered.wait(10)
            release.wait(10)

    threads = [threading.Thread(target=job, args=(name,)) for name in names]
    try:
        for thread in threads:
            thread.start()
        entered.wait(10)
        renewers = [t for t in threading.enumerate() if t.name == "lock-renewer"]
        assert holder.held() == len(names)
        assert len(renewers) == (0 if kind == "postgres" else 1)  # advisory locks need no renewal at all
        time.sleep(1.5)  # more than twice the ttl: only renewal keeps them
        for name in names:
            with pytest.raises(LockTimeoutError), other.hold(name):
                pass
    finally:
        release.set()
        for thread in threads:
            thread.join()
        holder.close()
        other.close()
    assert holder.held() == 0
