"""What the pipeline functions run with: settings, store, mappings, connectors, locks, the work queue and a clock.

One ``SyncContext`` per process (``set_context``/``current_context``): actors take ids and look everything else up
here. Tests build one around fake connectors and a recording queue; ``build_context`` builds the real one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from psabridge.connectors import get_connector
from psabridge.connectors.base import Connector
from psabridge.connectors.http import HttpRuntime
from psabridge.connectors.notifier import Notifier, get_notifier
from psabridge.errors import BugError, ConfigError
from psabridge.locking import Locks
from psabridge.mapping import MappingRegistry
from psabridge.rules import RulesRegistry
from psabridge.settings import ConnectionSettings, LinkSettings, NotifierSettings, Settings
from psabridge.store import Database, Session, utcnow
from psabridge.sync.broker import BrokerOptions, broker_options
from psabridge.sync.locks import locks_for
from psabridge.sync.shares import ConnectionShares
from psabridge.vendordata import VendorMetadata

__all__ = ["SyncContext", "WorkQueue", "build_context", "current_context", "set_context"]


class WorkQueue(Protocol):
    """Where the pipeline sends follow-up work (after its transaction committed): actors, or a list in tests.

    Each job goes to its connection's queue (a write-back to its target's); ``delay`` (seconds) holds it back.
    """

    def ingest(self, connection: str, external_id: str, *, delay: float | None = None) -> None:
        """Ingest one ticket (re-fetched from its vendor)."""

    def dispatch(self, outbox_id: int, target: str | None = None, *, delay: float | None = None) -> None:
        """Carry out one outbox action (``target``: the connection it writes to, when the sender knows it)."""

    def evaluate(self, ticket_key: str, *, delay: float | None = None) -> None:
        """Evaluate one stored ticket's rules (it needs evaluating: a real change, or a wake-up fell due)."""

    def poll(self, connection: str, *, delay: float | None = None) -> None:
        """Poll one connection for changes."""

    def notify(self, outbox_id: int) -> None:
        """Carry out one page or channel post (its own queue: a P1 never waits behind write-backs)."""


@dataclass
class SyncContext:
    """Everything a pipeline function needs, built once per process.

    Attributes:
        settings: the configuration.
        db: the store.
        mappings: the mapping registry (hot-reloading).
        locks: per-ticket locks.
        queue: where follow-up work goes.
        rules: the rules registry (config/rules.yaml, hot-reloaded): the checklist the evaluate step runs.
        clock: the wall clock (tests inject a fixed one).
        options: broker and retry options.
        connector_factory: builds a connection's connector (tests inject fakes).
        notifier_factory: builds a notifier (tests inject fakes); None: the real one, on this context's broker.
        shares: each connection's share of this process's worker threads (shares.py).
    """

    settings: Settings
    db: Database
    mappings: MappingRegistry
    locks: Locks
    queue: WorkQueue
    rules: RulesRegistry = field(default_factory=lambda: RulesRegistry(None))
    clock: Callable[[], datetime] = utcnow
    options: BrokerOptions = field(default_factory=BrokerOptions)
    connector_factory: Callable[[ConnectionSettings], Connector] | None = None
    notifier_factory: Callable[[NotifierSettings], Notifier] | None = None
    shares: ConnectionShares = field(default_factory=ConnectionShares)
    _connectors: dict[str, Connector] = field(default_factory=dict, repr=False)
    _notifiers: dict[str, Notifier] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> datetime:
        """The current time from the context's clock."""
        return self.clock()

    @contextmanager
    def unit(self, *, dry_run: bool = False) -> Iterator[Session]:
        """A transaction that commits on success, or always rolls back with ``dry_run``."""
        with self.db.session() as session:
            session.begin()
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            if dry_run:
                session.rollback()
            else:
                session.commit()

    def connector(self, name: str) -> Connector:
        """The (cached) connector of a configured connection.

        Raises:
            ConfigError: no such connection, or it is disabled.
        """
        with self._lock:
            found = self._connectors.get(name)
            if found is None:
                conn = self.settings.connection(name)
                if not conn.enabled:
                    raise ConfigError(f"connection {name!r} is disabled", connection=name)
                if self.connector_factory is not None:
                    found = self.connector_factory(conn)
                else:
                    found = get_connector(conn, broker_url=self.settings.broker, namespace=self.options.namespace)
                self._connectors[name] = found
            return found

    def metadata(self, name: str) -> VendorMetadata:
        """The connection's vendor metadata (cached by the connector)."""
        return self.connector(name).metadata()

    def notifier(self, name: str) -> Notifier:
        """The (cached) notifier called ``name``.

        Raises:
            ConfigError: no such notifier.
        """
        with self._lock:
            found = self._notifiers.get(name)
            if found is None:
                for candidate in self.settings.notifiers:
                    if candidate.name == name:
                        if self.notifier_factory is not None:
                            found = self.notifier_factory(candidate)
                        else:
                            runtime = HttpRuntime(broker_url=self.settings.broker, namespace=self.options.namespace)
                            found = get_notifier(candidate, runtime=runtime)
                        self._notifiers[name] = found
                        break
                else:
                    names = ", ".join(n.name for n in self.settings.notifiers) or "none"
                    raise ConfigError(f"no notifier named {name!r}; configured: {names}")
            return found

    def link(self, name: str) -> LinkSettings | None:
        """The enabled link called ``name``, if configured."""
        for link in self.settings.links:
            if link.name == name and link.enabled:
                return link
        return None

    def close(self) -> None:
        """Close connectors, notifiers, lock connections and the database."""
        with self._lock:
            for connector in self._connectors.values():
                connector.close()
            for notifier in self._notifiers.values():
                notifier.close()
            self._connectors.clear()
            self._notifiers.clear()
        self.locks.close()
        self.db.dispose()


_current: SyncContext | None = None


def set_context(context: SyncContext | None) -> None:
    """Make ``context`` the one actors use in this process (None: unset)."""
    global _current
    _current = context


def current_context() -> SyncContext:
    """The process's context.

    Raises:
        BugError: none was set (a worker must call set_context before it starts).
    """
    if _current is None:
        raise BugError("no sync context in this process: call psabridge.sync.context.set_context(...) first")
    return _current


def build_context(
    settings: Settings,
    queue: WorkQueue,
    *,
    options: BrokerOptions | None = None,
    rules: RulesRegistry | None = None,
    lock_wait: float = 30.0,
) -> SyncContext:
    """The real context for ``settings``: database, mapping and rules registries, locks, vendor connectors.

    ``rules`` (None): a registry of ``settings.rules`` (the built-in checklist without a file), loaded up front so a
    broken file is reported at start-up; a bad edit later keeps the last good rules in force.
    """
    options = options or broker_options(settings)
    db = Database(settings.database)
    mappings = MappingRegistry(settings.connections)
    # Loaded up front: the registry's first load is not safe against worker threads asking at the same moment.
    mappings.load_all()
    if rules is None:
        rules = RulesRegistry(settings.rules, tenants=settings.tenants)
        rules.reload()
    return SyncContext(
        settings=settings,
        db=db,
        mappings=mappings,
        locks=locks_for(settings.broker, db, namespace=options.namespace, wait=lock_wait),
        queue=queue,
        rules=rules,
        options=options,
    )
