"""Per-ticket locks that hold across threads, processes and hosts, so jobs for one ticket never interleave.

The contract is psabridge.locking (``hold(name)`` is a context manager; ``LockTimeoutError`` when the lock stays
taken for ``wait`` seconds, which the worker retries with back-off). ``locks_for`` picks the backend:

* ``RedisLocks`` (broker ``redis://``, here): ``SET NX PX`` with a token, renewed while held, released by a
  compare-and-delete script; a crashed holder's lock expires after ``ttl`` seconds, and the locks of a process that
  died on this host are freed when a worker starts (``clear_abandoned``).
* ``PostgresLocks`` (PostgreSQL database, other brokers) and ``LeaseLocks`` (SQLite): in the database, store/locks.py.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from psabridge.errors import RetryLaterError
from psabridge.holders import abandoned, holder_id
from psabridge.locking import POLL_SECONDS, Locks
from psabridge.store import Database
from psabridge.store.locks import LeaseLocks, PostgresLocks

if TYPE_CHECKING:
    import redis

__all__ = ["RedisLocks", "locks_for"]

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
            time.sleep(POLL_SECONDS)

    def _renew(self, name: str, token: Any) -> None:
        import redis

        # A failed renewal is settled by the next one (or the expiry); the job itself goes on.
        with contextlib.suppress(redis.RedisError):
            self._renew_script(keys=[self._prefix + name], args=[token, int(self.ttl * 1000)])

    def _release(self, name: str, token: Any) -> None:
        import redis

        with contextlib.suppress(redis.RedisError):  # else the lock expires after ttl
            self._release_script(keys=[self._prefix + name], args=[token])

    def _renew_all(self, held: list[tuple[str, Any]]) -> None:
        import redis

        pipe = self._client.pipeline(transaction=False)  # one round trip for every lock this process holds
        for name, token in held:
            self._renew_script(keys=[self._prefix + name], args=[token, int(self.ttl * 1000)], client=pipe)
        with contextlib.suppress(redis.RedisError):  # settled by the next renewal (or the expiry)
            pipe.execute()

    def close(self) -> None:
        """Stop renewing; close the Redis connections."""
        super().close()
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


def locks_for(broker_url: str, db: Database, *, namespace: str = "psabridge", wait: float = 30.0) -> Locks:
    """The lock implementation for a deployment: Redis when the broker is Redis, else PostgreSQL, else leases."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisLocks(broker_url, namespace=namespace, wait=wait)
    if db.dialect == "postgresql":
        return PostgresLocks(db.url, wait=wait)
    return LeaseLocks(db, wait=wait)
