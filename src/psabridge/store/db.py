"""Engine and session factory: SQLite (WAL, foreign keys on) as the embedded default, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from psabridge.errors import PermanentError
from psabridge.files import create_private, sqlite_path

__all__ = ["Database", "Session", "StoreRefusedError", "make_engine"]


class StoreRefusedError(PermanentError):
    """The database refused a value as data (a character or number it cannot hold): storing it again cannot help.

    Raised instead of the driver's DataError, so callers above the store can tell one bad record from an outage.
    """


def _refusals_as_errors(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def _refused(context: ExceptionContext) -> None:
        if isinstance(context.sqlalchemy_exception, exc.DataError):
            message = str(context.original_exception).strip().splitlines()[0]
            raise StoreRefusedError(f"the database refused a value: {message}") from context.original_exception


# ``Session`` is re-exported: callers outside store/ hold a session only to hand it to repository functions (the
# transaction they run in), never to build SQL with it.


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; on SQLite turn on WAL, foreign keys and a busy timeout for concurrent workers."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:  # the store holds clients' tickets: SQLite would create it world-readable (umask)
            create_private(path)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        _refusals_as_errors(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    _refusals_as_errors(engine)
    return engine


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session; use it as a context manager."""
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction that commits on success and rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
