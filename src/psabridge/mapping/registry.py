"""The mapping of every connection, re-read when its files change; a bad edit keeps the last good mapping in force."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from psabridge.errors import ConfigError
from psabridge.log import get_logger
from psabridge.mapping.engine import Mapper
from psabridge.mapping.loader import MappingFileError, build_mapping
from psabridge.mapping.results import MappingContext
from psabridge.settings import ConnectionSettings
from psabridge.yamlsource import Problem

__all__ = ["MappingRegistry"]

_log = get_logger("psabridge.mapping")

Signature = tuple[tuple[str, int, int], ...]


@dataclass
class _Entry:
    settings: ConnectionSettings
    path: Path
    mapper: Mapper | None = None
    files: list[str] = field(default_factory=list)
    signature: Signature | None = None
    problems: list[Problem] = field(default_factory=list)
    checked_at: float | None = None


def _signature(files: Iterable[str]) -> Signature:
    out = []
    for name in files:
        try:
            stat = Path(name).stat()
            out.append((name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            out.append((name, -1, -1))
    return tuple(out)


class MappingRegistry:
    """Serves the current mapping per connection and reloads it when a mapping file changes, without a restart.

    The files of a connection (its mapping file and every file it ``extends``) are checked at most once per
    ``check_every`` seconds, by modification time and size. A change is compiled in full before it replaces the
    mapping in force; if it has problems, the last good mapping stays, the problems are logged and kept for
    ``problems()`` (and ``psabridge mapping check`` shows them), and nothing else changes.

    Args:
        connections: the configured connections (``Settings.connections``).
        check_every: seconds between checks for changed files (0: check on every call).
        clock: monotonic seconds; injected in tests.
    """

    def __init__(
        self,
        connections: Iterable[ConnectionSettings],
        *,
        check_every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: dict[str, _Entry] = {}
        for conn in connections:
            if conn.mapping is None:
                raise ConfigError(f"connection {conn.name!r} has no mapping file", connection=conn.name)
            self._entries[conn.name] = _Entry(conn, Path(conn.mapping))
        self._check_every = check_every
        self._clock = clock
        self._lock = threading.Lock()

    def load_all(self) -> dict[str, list[Problem]]:
        """Load every connection's mapping now; returns the problems per connection (empty lists when all is well)."""
        return {name: self.reload(name) for name in self._entries}

    def mapper(self, connection: str) -> Mapper:
        """The mapping in force for ``connection``, re-read first if its files changed.

        Raises:
            ConfigError: no such connection.
            MappingFileError: the mapping has never loaded without problems (there is no last good one to use).
        """
        entry = self._entry(connection)
        now = self._clock()
        if entry.checked_at is None or now - entry.checked_at >= self._check_every:
            self.reload(connection)
        if entry.mapper is None:
            raise MappingFileError(entry.problems)
        return entry.mapper

    def context(self, connection: str) -> MappingContext:
        """The mapping context of ``connection`` (name, vendor, tenants)."""
        return MappingContext.for_connection(self._entry(connection).settings)

    def problems(self, connection: str) -> list[Problem]:
        """The problems of the last load of ``connection``'s mapping (empty when the files in force are current)."""
        return list(self._entry(connection).problems)

    def reload(self, connection: str, *, force: bool = False) -> list[Problem]:
        """Re-read ``connection``'s mapping if its files changed (or ``force``); returns the problems found."""
        entry = self._entry(connection)
        with self._lock:
            try:
                return self._reload(connection, entry, force)
            finally:
                # Marked checked only once the load is done: a thread asking meanwhile waits on the lock instead of
                # finding no mapping yet and failing.
                entry.checked_at = self._clock()

    def _reload(self, connection: str, entry: _Entry, force: bool) -> list[Problem]:
        signature = _signature(entry.files) if entry.files else None
        if not force and signature is not None and signature == entry.signature:
            return list(entry.problems)
        mapper, files, problems = build_mapping(entry.path)
        entry.files = files
        entry.signature = _signature(files)
        if mapper is not None and mapper.system != entry.settings.system:
            problems = [
                Problem(
                    str(entry.path),
                    1,
                    "system",
                    f"is {mapper.system.value}, but connection {connection!r} is {entry.settings.system.value}",
                )
            ]
            mapper = None
        entry.problems = problems
        if mapper is not None:
            if entry.mapper is not None:
                _log.info("mapping reloaded", connection=connection, file=str(entry.path))
            entry.mapper = mapper
        else:
            _log.warning(
                "mapping has problems; the last good mapping stays in force"
                if entry.mapper is not None
                else "mapping has problems; tickets of this connection cannot be mapped",
                connection=connection,
                problems=[str(p) for p in problems],
            )
        return list(problems)

    def _entry(self, connection: str) -> _Entry:
        entry = self._entries.get(connection)
        if entry is None:
            raise ConfigError(f"no connection named {connection!r}; configured: {', '.join(self._entries)}")
        return entry
