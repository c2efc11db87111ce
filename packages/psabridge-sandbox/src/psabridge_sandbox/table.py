"""A small in-memory table for simulator records: ids, modification-time bumping, stable order, change listeners."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from psabridge_sandbox.clock import Clock, SystemClock

__all__ = ["Change", "Listener", "Row", "RowId", "Table"]

RowId = int | str
Change = Literal["created", "updated", "deleted"]


@dataclass(slots=True)
class Row:
    """One record: the vendor-shaped ``data`` plus the bookkeeping every vendor has in some form."""

    id: RowId
    data: dict[str, Any]
    created: datetime
    updated: datetime
    version: int = 0  # bumped on every change (ServiceNow shows it as sys_mod_count)


Listener = Callable[[Change, Row], None]
"""Called after a row is created, updated or deleted (e.g. to emit a webhook)."""


class Table:
    """Rows in insertion order, keyed by id. Thread-safe.

    ``resolution`` truncates modification times (1.0: whole seconds), as vendors store them: two changes within the
    same second get the same timestamp, which is exactly what trips naive high-water marks.
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Clock | None = None,
        first_id: int = 1,
        id_factory: Callable[[int], RowId] | None = None,
        resolution: float = 1.0,
    ) -> None:
        self.name = name
        self.clock = clock or SystemClock()
        self._rows: dict[RowId, Row] = {}
        self._ids: tuple[RowId, ...] | None = ()
        self._next = first_id
        self._id_factory = id_factory
        self._resolution = resolution
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()

    def stamp(self) -> datetime:
        """The current time at the table's resolution."""
        now = self.clock.now()
        step = int(self._resolution * 1_000_000)
        if step <= 1:
            return now
        micros = round(now.timestamp() * 1_000_000)
        return datetime.fromtimestamp((micros - micros % step) / 1_000_000, UTC)

    def next_id(self) -> RowId:
        """Reserve the next id."""
        with self._lock:
            number = self._next
            self._next += 1
        return self._id_factory(number) if self._id_factory else number

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(change, row)`` after every insert, update and delete (not for ``notify=False``)."""
        self._listeners.append(listener)

    def insert(
        self,
        data: Mapping[str, Any],
        *,
        id: RowId | None = None,
        created: datetime | None = None,
        updated: datetime | None = None,
        notify: bool = True,
    ) -> Row:
        """Add a row (id reserved unless given; times default to now). Seeding passes ``notify=False``."""
        with self._lock:
            row_id = self.next_id() if id is None else id
            if row_id in self._rows:
                raise KeyError(f"{self.name}: id {row_id!r} exists")
            if isinstance(row_id, int) and row_id >= self._next:
                self._next = row_id + 1
            now = created or self.stamp()
            row = Row(row_id, dict(data), now, updated or now)
            self._rows[row_id] = row
            self._ids = None
        self._notify("created", row, notify)
        return row

    def get(self, row_id: RowId) -> Row | None:
        """The row, or None."""
        return self._rows.get(row_id)

    def __getitem__(self, row_id: RowId) -> Row:
        return self._rows[row_id]

    def __contains__(self, row_id: object) -> bool:
        return row_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows())

    def rows(self) -> list[Row]:
        """A snapshot of every row in insertion order."""
        with self._lock:
            return list(self._rows.values())

    def ids(self) -> tuple[RowId, ...]:
        """Every id in insertion order (cached until the next insert or delete)."""
        with self._lock:
            if self._ids is None:
                self._ids = tuple(self._rows)
            return self._ids

    def update(self, row_id: RowId, changes: Mapping[str, Any], *, notify: bool = True) -> Row:
        """Merge ``changes`` into the row's data, bump its modification time and version."""
        with self._lock:
            row = self._rows[row_id]
            row.data.update(changes)
            row.updated = self.stamp()
            row.version += 1
        self._notify("updated", row, notify)
        return row

    def replace(self, row_id: RowId, data: Mapping[str, Any], *, notify: bool = True) -> Row:
        """Replace the row's data (a PUT), bump its modification time and version."""
        with self._lock:
            row = self._rows[row_id]
            row.data = dict(data)
            row.updated = self.stamp()
            row.version += 1
        self._notify("updated", row, notify)
        return row

    def touch(self, row_id: RowId, *, notify: bool = True) -> Row:
        """Bump the modification time and version without changing data (someone saved the record)."""
        return self.update(row_id, {}, notify=notify)

    def delete(self, row_id: RowId, *, notify: bool = True) -> Row | None:
        """Remove the row; return it, or None if there was none."""
        with self._lock:
            row = self._rows.pop(row_id, None)
            if row is not None:
                self._ids = None
        if row is not None:
            self._notify("deleted", row, notify)
        return row

    def _notify(self, change: Change, row: Row, notify: bool) -> None:
        if notify:
            for listener in self._listeners:
                listener(change, row)
