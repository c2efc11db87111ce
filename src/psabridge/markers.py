"""Echo markers: a short tag psabridge writes into every note, time entry and mirror it creates.

When our own write comes back through a poll or webhook, the marker tells us it is an echo. The marker carries the
idempotency key of the action that wrote it, so a retried write can also look for its marker before writing again.
"""

from __future__ import annotations

import re

__all__ = ["MARKER_PATTERN", "find_marker", "marker_for", "strip_marker", "with_marker"]

# Plain text survives every vendor: ConnectWise and Autotask store text, ServiceNow journals, Freshservice HTML.
MARKER_PATTERN = re.compile(r"\[psabridge:([0-9a-zA-Z_-]{6,64})\]")


def marker_for(key: str) -> str:
    """The marker for an idempotency key (or link id): ``[psabridge:<key>]``."""
    if not re.fullmatch(r"[0-9a-zA-Z_-]{6,64}", key):
        raise ValueError(f"marker key {key!r} must be 6-64 characters of letters, digits, '_' or '-'")
    return f"[psabridge:{key}]"


def with_marker(text: str, key: str) -> str:
    """``text`` with the marker for ``key`` appended on its own line (idempotent)."""
    marker = marker_for(key)
    if marker in text:
        return text
    return f"{text.rstrip()}\n\n{marker}" if text.strip() else marker


def find_marker(text: str | None) -> str | None:
    """The key in the first marker found in ``text``, or None."""
    if not text:
        return None
    match = MARKER_PATTERN.search(text)
    return match.group(1) if match else None


def strip_marker(text: str) -> str:
    """``text`` without any marker, so what technicians see is compared, not our tag."""
    return MARKER_PATTERN.sub("", text).rstrip()
