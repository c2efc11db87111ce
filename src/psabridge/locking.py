"""The per-ticket lock contract every backend keeps: ``Locks.hold(name)`` and ``LockTimeoutError``.

Backends: Redis (sync/locks.py) and, needing the database, PostgreSQL advisory locks and the lease table
(store/locks.py); ``psabridge.sync.locks.locks_for`` picks one for a deployment. The locks held in a process are
renewed together by one background thread (``ttl / 3`` apart, in one batch: ``_renew_all``), so a long job keeps its
lock, a crashed one loses it after ``ttl``, and holding a lock costs no thread of its own. Backends whose locks do not
expire (``renews = False``) start no thread at all.
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

    renews: bool = True
    """Whether held locks expire unless renewed (PostgreSQL advisory locks do not)."""

    def __init__(self, *, wait: float = 30.0, ttl: float = 20.0) -> None:
        self.wait = wait
        self.ttl = ttl
        self._held: dict[int, tuple[str, Any]] = {}
        self._held_mutex = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._closing = threading.Event()

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
        hold = object()
        with self._held_mutex:
            self._held[id(hold)] = (name, token)
            if self.renews and (self._renewer is None or not self._renewer.is_alive()):
                self._closing.clear()
                self._renewer = threading.Thread(target=self._renew_held, name="lock-renewer", daemon=True)
                self._renewer.start()
        try:
            yield
        finally:
            with self._held_mutex:
                self._held.pop(id(hold), None)
            self._release(name, token)

    def close(self) -> None:
        """Stop renewing (subclasses also release their connections)."""
        self._closing.set()
        renewer = self._renewer
        if renewer is not None and renewer is not threading.current_thread():
            renewer.join(timeout=5)

    def clear_abandoned(self) -> int:
        """Free locks held by processes on this host that died; returns how many.

        Called at start-up, so a restarted worker need not wait out their expiry. Other hosts' locks expire.
        """
        return 0

    def held(self) -> int:
        """Locks this object holds now."""
        with self._held_mutex:
            return len(self._held)

    def _renew_held(self) -> None:
        """The renewer thread: every ``ttl / 3``, renew every lock held at that moment, as one batch."""
        while not self._closing.wait(self.ttl / 3):
            with self._held_mutex:
                held = list(self._held.values())
            if held:
                self._renew_all(held)

    def _renew_all(self, held: list[tuple[str, Any]]) -> None:
        """Extend every held lock's expiry (a backend may do it in one round trip)."""
        for name, token in held:
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
