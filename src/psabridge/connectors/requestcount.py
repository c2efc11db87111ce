"""Counting the HTTP requests a piece of work sends (every attempt, retries included), across the threads it uses.

``with counting() as count:`` counts every request any ``HttpClient`` sends in this context until the block ends;
blocks nest (an outer count includes an inner one's). Work handed to other threads carries the count along when it
runs in a copy of the context (``contextvars.copy_context().run``, as ``HttpConnector.each`` does).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["RequestCount", "counted", "counting"]


class RequestCount:
    """A thread-safe count of requests sent."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        """Requests counted so far."""
        with self._lock:
            return self._value

    def add(self) -> None:
        """Count one request."""
        with self._lock:
            self._value += 1


_ACTIVE: ContextVar[tuple[RequestCount, ...]] = ContextVar("psabridge_request_counts", default=())


@contextmanager
def counting() -> Iterator[RequestCount]:
    """Count the requests sent in this context (and in copies of it) while the block runs."""
    count = RequestCount()
    token = _ACTIVE.set((*_ACTIVE.get(), count))
    try:
        yield count
    finally:
        _ACTIVE.reset(token)


def counted() -> None:
    """Count one request sent now in every count open in this context (called by the HTTP layer per attempt)."""
    for count in _ACTIVE.get():
        count.add()
