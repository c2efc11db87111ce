"""The per-ticket lock contract every backend keeps: ``Locks.hold(name)`` and ``LockTimeoutError``.

Backends: Redis (sync/locks.py) and, needing the database, PostgreSQL advisory locks and the lease table
(store/locks.py); ``psabridge.sync.locks.locks_for`` picks one for a deployment. A holder's lock is renewed from a
background thread while the body runs, so a long job keeps it and a crashed one loses it after ``ttl``.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psabridge.errors import RetryLaterError

__all__ = ["POLL_SECONDS", "LockTimeoutError", "Locks"]

POLL_SECONDS = 0.02
"""How often a backend tries a taken lock again while it waits."""


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
