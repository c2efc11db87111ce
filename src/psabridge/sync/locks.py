"""Per-ticket locks that hold across threads, processes and hosts, so jobs for one ticket never interleave.

Three implementations of one contract (``hold(name)`` is a context manager; ``LockTimeoutError`` when the lock stays
taken for ``wait`` seconds, which the worker retries with back-off):

* ``RedisLocks`` (broker ``redis://``): ``SET NX PX`` with a token, renewed while held, released by a compare-and-
  delete script; a crashed holder's lock expires after ``ttl`` seconds.
* ``PostgresLocks`` (PostgreSQL database, other brokers): session advisory locks on a dedicated connection; the
  server releases them when the holder's connection dies.

Redis locks and leases of a process that died on this host are freed when a worker starts (``clear_abandoned``),
so a restarted worker does not wait out their expiry.
* ``LeaseLocks`` (SQLite, the one-machine default): a lock per name inside the process, plus a lease row in the
  ``locks`` table (renewed while held) for other processes on the same machine.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from psabridge.errors import RetryLaterError
from psabridge.holders import abandoned, holder_id
from psabridge.store import Database, repo
from psabridge.store.models import Lock

if TYPE_CHECKING:
    import redis

__all__ = [
    "LeaseLocks",
    "LockTimeoutError",
    "Locks",
    "PostgresLocks",
    "RedisLocks",
    "abandoned",
    "holder_id",
    "locks_for",
]

_POLL = 0.02


class LockTimeoutError(RetryLaterError):
    """Another job held the lock for longer than we were willing to wait; try again later."""


class Locks(abc.ABC):
    """Named mutual-exclusion locks.

    Args:
        wait: seconds ``hold`` waits for a taken lock before raising LockTimeoutError.
        ttl: seconds a lock outlives a holder that died without releasing it (renewed while the holder lives).
    """

    def __init__(self, *, wait: float = 30.0, ttl: float = 20.0) -> None:
        self.wait = wait
        self.ttl = ttl

    @contextmanager
    def hold(self, name: str, *, wait: float | None = None) -> Iterator[None]:
        """Hold the lock ``name`` while the body runs.

        Raises:
            LockTimeoutError: it stayed taken for ``wait`` seconds.
        """
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        token = self._acquire(name, deadline)
        if token is None:
            raise LockTimeoutError(f"lock {name!r} is held by another job", details={"lock": name})
        stop = threading.Event()
        keeper = threading.Thread(target=self._keep, args=(name, token, stop), name=f"lock-{name}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()
            self._release(name, token)

    def close(self) -> None:  # noqa: B027 - optional: implementations without connections need not override it
        """Release connections."""

    def clear_abandoned(self) -> int:
        """Free locks held by processes on this host that died; returns how many.

        Called at start-up, so a restarted worker need not wait out their expiry. Other hosts' locks expire.
        """
        return 0

    def _keep(self, name: str, token: Any, stop: threading.Event) -> None:
        while not stop.wait(self.ttl / 3):
            self._renew(name, token)

    @abc.abstractmethod
    def _acquire(self, name: str, deadline: float) -> Any:
        """Take the lock before ``deadline`` (monotonic); a token to release it with, or None."""

    @abc.abstractmethod
    def _renew(self, name: str, token: Any) -> None:
        """Extend a held lock's expiry."""

    @abc.abstractmethod
    def _release(self, name: str, token: Any) -> None:
        """Give the lock back."""


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
"""


class RedisLocks(Locks):
    """Locks in Redis, shared by every process and host using the same Redis."""

    def __init__(self, url: str, *, namespace: str = "psabridge", wait: float = 30.0, ttl: float = 20.0) -> None:
        super().__init__(wait=wait, ttl=ttl)
        import redis

        self._client: redis.Redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = f"{namespace}:lock:"
        self._release_script = self._client.register_script(_RELEASE)
        self._renew_script = self._client.register_script(_RENEW)

    def _acquire(self, name: str, deadline: float) -> Any:
        import redis

        token = holder_id()
        while True:
            try:
                if self._client.set(self._prefix + name, token, nx=True, px=int(self.ttl * 1000)):
                    return token
            except redis.RedisError as exc:
                raise RetryLaterError(f"Redis is unreachable for lock {name!r}: {exc}") from exc
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL)

    def _renew(self, name: str, token: Any) -> None:
        import redis

        # A failed renewal is settled by the next one (or the expiry); the job itself goes on.
        with contextlib.suppress(redis.RedisError):
            self._renew_script(keys=[self._prefix + name], args=[token, int(self.ttl * 1000)])

    def _release(self, name: str, token: Any) -> None:
        import redis

        with contextlib.suppress(redis.RedisError):  # else the lock expires after ttl
            self._release_script(keys=[self._prefix + name], args=[token])

    def close(self) -> None:
        """Close the Redis connections."""
        self._client.close()

    def clear_abandoned(self) -> int:
        """Free this host's locks held by processes that died."""
        import redis

        freed = 0
        try:
            for key in self._client.scan_iter(match=f"{self._prefix}*", count=500):
                holder = self._client.get(key)
                text = holder.decode() if isinstance(holder, bytes) else holder
                if text is not None and abandoned(str(text)):
                    freed += int(self._release_script(keys=[key], args=[str(text)]))
        except redis.RedisError:
            return freed  # they expire after ttl anyway
        return freed


def advisory_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresLocks(Locks):
    """PostgreSQL session advisory locks; each held lock keeps its own connection, so a crash releases it."""

    def __init__(self, url: str, *, wait: float = 30.0, ttl: float = 20.0, pool_size: int = 10) -> None:
        super().__init__(wait=wait, ttl=ttl)
        self._engine = sa.create_engine(url, pool_size=pool_size, max_overflow=50, pool_pre_ping=True)

    def _acquire(self, name: str, deadline: float) -> Any:
        conn = self._engine.connect()
        key = advisory_key(name)
        try:
            while True:
                if conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                    conn.commit()
                    return conn
                conn.rollback()
                if time.monotonic() >= deadline:
                    conn.close()
                    return None
                time.sleep(_POLL)
        except sa.exc.OperationalError as exc:
            conn.close()
            raise RetryLaterError(f"PostgreSQL is unreachable for lock {name!r}") from exc

    def _renew(self, name: str, token: Any) -> None:
        """Advisory locks do not expire."""

    def _release(self, name: str, token: Any) -> None:
        conn: sa.Connection = token
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(name)})
            conn.commit()
        except sa.exc.DBAPIError:
            conn.invalidate()  # the server drops the lock with the connection
        finally:
            conn.close()

    def close(self) -> None:
        """Close the lock connections."""
        self._engine.dispose()


class LeaseLocks(Locks):
    """A lock per name in this process, plus a lease row in the database for other processes on this machine."""

    def __init__(self, db: Database, *, wait: float = 30.0, ttl: float = 20.0) -> None:
        super().__init__(wait=wait, ttl=ttl)
        self._db = db
        self._mutex = threading.Lock()
        self._local: dict[str, tuple[threading.Lock, int]] = {}

    def _acquire(self, name: str, deadline: float) -> Any:
        local = self._local_lock(name)
        if not local.acquire(timeout=max(0.0, deadline - time.monotonic())):
            self._drop_local(name)
            return None
        token = holder_id()
        while True:
            with self._db.transaction() as session:
                if repo.acquire_lock(session, f"ticket:{name}", token, timedelta(seconds=self.ttl)):
                    return token
            if time.monotonic() >= deadline:
                local.release()
                self._drop_local(name)
                return None
            time.sleep(_POLL)

    def _renew(self, name: str, token: Any) -> None:
        with self._db.transaction() as session:
            repo.acquire_lock(session, f"ticket:{name}", token, timedelta(seconds=self.ttl))

    def _release(self, name: str, token: Any) -> None:
        try:
            with self._db.transaction() as session:
                repo.release_lock(session, f"ticket:{name}", token)
        finally:
            self._local[name][0].release()
            self._drop_local(name)

    def clear_abandoned(self) -> int:
        """Free this host's leases held by processes that died."""
        freed = 0
        with self._db.transaction() as session:
            for name, holder in session.execute(sa.select(Lock.name, Lock.holder).where(Lock.name.like("ticket:%"))):
                if abandoned(holder):
                    repo.release_lock(session, name, holder)
                    freed += 1
        return freed

    def _local_lock(self, name: str) -> threading.Lock:
        with self._mutex:
            lock, users = self._local.get(name, (threading.Lock(), 0))
            self._local[name] = (lock, users + 1)
            return lock

    def _drop_local(self, name: str) -> None:
        with self._mutex:
            lock, users = self._local[name]
            if users <= 1:
                del self._local[name]
            else:
                self._local[name] = (lock, users - 1)


def locks_for(broker_url: str, db: Database, *, namespace: str = "psabridge", wait: float = 30.0) -> Locks:
    """The lock implementation for a deployment: Redis when the broker is Redis, else PostgreSQL, else leases."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisLocks(broker_url, namespace=namespace, wait=wait)
    if db.dialect == "postgresql":
        return PostgresLocks(db.url, wait=wait)
    return LeaseLocks(db, wait=wait)
