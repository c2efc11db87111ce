"""Request recording: every request a simulator answers, so tests and benchmarks can count calls and check budgets."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RecordedRequest", "Recorder"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One answered request. ``time`` is when it arrived (ISO 8601 UTC); ``fault`` names an injected fault."""

    seq: int
    method: str
    path: str
    query: str
    principal: str | None
    status: int
    time: str
    duration_ms: float
    fault: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class Recorder:
    """A thread-safe, bounded log of recorded requests (the oldest fall off past ``limit``)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._seq = 0

    def next_seq(self) -> int:
        """Reserve the sequence number of a request that has just arrived."""
        with self._lock:
            self._seq += 1
            return self._seq

    def add(self, item: RecordedRequest) -> None:
        """Record an answered request."""
        with self._lock:
            self._items.append(item)

    def clear(self) -> int:
        """Forget every recorded request; return how many there were. Sequence numbers keep counting."""
        with self._lock:
            count = len(self._items)
            self._items.clear()
            return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def find(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        principal: str | None = None,
        status: int | None = None,
        since: int | None = None,
        fault: str | None = None,
    ) -> list[RecordedRequest]:
        """Recorded requests in arrival order, filtered: ``path`` is a prefix, ``since`` a sequence number."""
        with self._lock:
            items: Iterable[RecordedRequest] = sorted(self._items, key=lambda r: r.seq)
        return [
            r
            for r in items
            if (method is None or r.method == method.upper())
            and (path is None or r.path.startswith(path))
            and (principal is None or r.principal == principal)
            and (status is None or r.status == status)
            and (since is None or r.seq > since)
            and (fault is None or r.fault == fault)
        ]
