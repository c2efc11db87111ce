"""What the receiver keeps of a delivery: headers masked unless known harmless, text a database can hold, a bound.

Masking happens here, before anything is written: the inbox never holds a signature, a shared secret (whatever
header a connection's options name for it), an Authorization header or a cookie, because only the values of plain
HTTP headers are kept and every other header is stored as ``***``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from psabridge.log import MASK, mask_text

__all__ = ["KEPT_BODY", "KEPT_HEADERS", "PLAIN_HEADERS", "RecentCount", "stored_headers", "stored_text"]

KEPT_BODY = 64_000
"""Characters of a body kept in the inbox."""
KEPT_HEADERS = 50
KEPT_VALUE = 300
PLAIN_HEADERS = frozenset(
    {
        "accept", "accept-encoding", "accept-language", "connection", "content-encoding", "content-length",
        "content-type", "date", "expect", "forwarded", "host", "traceparent", "tracestate", "transfer-encoding",
        "user-agent", "via", "x-forwarded-for", "x-forwarded-host", "x-forwarded-port", "x-forwarded-proto",
        "x-real-ip", "x-request-id",
    }
)  # fmt: skip
"""Standard HTTP headers whose values are kept; any other header (a vendor's, a secret's) is kept as ``***``."""


def stored_text(text: str, limit: int = KEPT_BODY) -> str:
    """``text`` cut to ``limit`` characters, with NUL characters (which PostgreSQL text cannot hold) replaced."""
    return text[:limit].replace("\x00", "\ufffd")


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers as the inbox keeps them: plain headers' values (masked, cut short), every other value ``***``."""
    kept: dict[str, str] = {}
    for name, value in list(headers.items())[:KEPT_HEADERS]:
        key = stored_text(name.lower(), 100)
        kept[key] = stored_text(mask_text(value), KEPT_VALUE) if key in PLAIN_HEADERS else MASK
    return kept


class RecentCount:
    """How many events each key had in the last ``per`` seconds, to stop at ``limit`` (thread-safe).

    Args:
        limit: events allowed per window and key.
        per: the window in seconds.
        clock: monotonic seconds (tests inject one).
    """

    def __init__(self, limit: int, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.per = per
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def full(self, key: str) -> bool:
        """Whether ``key`` reached the limit in the current window."""
        with self._lock:
            return len(self._recent(key)) >= self.limit

    def add(self, key: str) -> None:
        """Count one event of ``key``."""
        with self._lock:
            self._recent(key).append(self._clock())

    def _recent(self, key: str) -> deque[float]:
        seen = self._seen.setdefault(key, deque())
        horizon = self._clock() - self.per
        while seen and seen[0] <= horizon:
            seen.popleft()
        return seen
