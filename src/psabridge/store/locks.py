"""The lock backends that live in the database; the contract they keep is psabridge.locking.

* ``PostgresLocks`` (PostgreSQL database, a broker other than Redis): session advisory locks on a dedicated
  connection each; the server releases them when the holder's connection dies.
* ``LeaseLocks`` (SQLite, the one-machine default): a lock per name inside the process, plus a lease row in the
  ``locks`` table (renewed while held) for other processes on the same machine; leases of a process that died on
  this host are freed at start-up (``clear_abandoned``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from psabridge.errors import RetryLaterError
from psabridge.holders import abandoned, holder_id
from psabridge.locking import POLL_SECONDS, Locks
from psabridge.store.db import Database
from psabridge.store.leases import held_leases, release_lease, take_lease

__all__ = ["LeaseLocks", "PostgresLocks", "advisory_key"]

_TICKET = "ticket:"
"""Prefix of the lease names of per-ticket locks (other leases: the reconcile lock, polls)."""


def advisory_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresLocks(Locks):
    """PostgreSQL session advisory locks; each held lock keeps its own connection, so a crash releases it."""

    renews = False  # an advisory lock lives as long as its connection: nothing to renew

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
                time.sleep(POLL_SECONDS)
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
        super().close()
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
                if take_lease(session, _TICKET + name, token, timedelta(seconds=self.ttl)):
                    return token
            if time.monotonic() >= deadline:
                local.release()
                self._drop_local(name)
                return None
            time.sleep(POLL_SECONDS)

    def _renew(self, name: str, token: Any) -> None:
        self._renew_all([(name, token)])

    def _renew_all(self, held: list[tuple[str, Any]]) -> None:
        with self._db.transaction() as session:  # every lease this process holds, in one transaction
            for name, token in held:
                take_lease(session, _TICKET + name, token, timedelta(seconds=self.ttl))

    def _release(self, name: str, token: Any) -> None:
        try:
            with self._db.transaction() as session:
                release_lease(session, _TICKET + name, token)
        finally:
            self._local[name][0].release()
            self._drop_local(name)

    def clear_abandoned(self) -> int:
        """Free this host's leases held by processes that died."""
        freed = 0
        with self._db.transaction() as session:
            for lease in held_leases(session, _TICKET):
                if abandoned(lease.holder):
                    release_lease(session, lease.name, lease.holder)
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
