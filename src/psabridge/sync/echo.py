"""Echo suppression: is a stored change only the echo of psabridge's own write? Pure functions, no I/O.

A change is an echo when every field that changed is explained by our writes:

* notes and time entries that are new carry our marker (``origin``), or were made by the integration user;
* any other field now holds the value the write-back recorded as written (``tickets.written``), compared by hash of
  its canonical JSON value;
* a ticket seen for the first time is an echo when it is a mirror psabridge created (its link names it).

An echo is stored (the store keeps the vendor's latest copy) but not evaluated by rules and not mirrored again, so a
write can never bounce between two systems.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from psabridge.model import Note, TimeEntry
from psabridge.store.tickets import TicketChange, UpsertOutcome

__all__ = ["is_echo", "value_hash"]


def value_hash(value: Any) -> str:
    """A stable hash of a canonical JSON value."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _new_items(before: Iterable[Note | TimeEntry], after: Iterable[Note | TimeEntry]) -> list[Note | TimeEntry]:
    """Notes or time entries in ``after`` that ``before`` did not have (or had with other content)."""
    seen = {json.dumps(item.model_dump(mode="json"), sort_keys=True) for item in before}
    return [item for item in after if json.dumps(item.model_dump(mode="json"), sort_keys=True) not in seen]


def _ours(item: Note | TimeEntry, integration_user: str | None) -> bool:
    if item.origin:
        return True
    author = item.author if isinstance(item, Note) else item.who
    return integration_user is not None and author is not None and author == integration_user


def is_echo(
    change: TicketChange,
    written: Mapping[str, str],
    *,
    integration_user: str | None = None,
    created_by_us: bool = False,
) -> bool:
    """Whether a stored change is only the echo of our own writes.

    Args:
        change: what storing the ticket did.
        written: field -> ``value_hash`` of the canonical value psabridge wrote.
        integration_user: the vendor identity our writes are made as; its notes count as ours.
        created_by_us: the ticket is a mirror psabridge created.
    """
    if change.outcome == UpsertOutcome.CREATED:
        return created_by_us
    if change.outcome != UpsertOutcome.UPDATED or change.before is None or change.after is None:
        return False
    before, after = change.before, change.after
    data = after.model_dump(mode="json")
    for name in change.changed:
        if name in ("notes", "time_entries"):
            old: tuple[Note | TimeEntry, ...] = getattr(before, name)
            new: tuple[Note | TimeEntry, ...] = getattr(after, name)
            added = _new_items(old, new)
            if len(_new_items(new, old)) > 0 or not all(_ours(item, integration_user) for item in added):
                return False
        elif written.get(name) != value_hash(data.get(name)):
            return False
    return bool(change.changed)
