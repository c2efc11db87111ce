"""Statements the repositories share that differ by dialect: INSERT .. ON CONFLICT DO NOTHING, chunked IN lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from psabridge.errors import ConfigError

__all__ = ["chunks", "insert_ignore", "upsert"]

_T = TypeVar("_T")


def insert_ignore(session: Session, table: Any, rows: Sequence[dict[str, Any]], returning: str) -> list[Any]:
    """INSERT rows, skipping any that violate a unique constraint; returns ``returning`` of the rows inserted.

    ``INSERT .. ON CONFLICT DO NOTHING RETURNING`` is exact under concurrency on both databases: a row another
    process inserted first is simply not returned.
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - settings accept only SQLite and PostgreSQL URLs
        raise ConfigError(f"database {dialect!r} is not supported: use PostgreSQL or SQLite")
    stmt = stmt.values(list(rows)).returning(table.c[returning])
    return list(session.scalars(stmt))


def upsert(session: Session, table: Any, row: dict[str, Any], key: str) -> None:
    """INSERT one row, or UPDATE the row with the same ``key``.

    ``INSERT .. ON CONFLICT DO UPDATE`` is exact under concurrency, where a delete-then-insert races.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - settings accept only SQLite and PostgreSQL URLs
        raise ConfigError(f"database {dialect!r} is not supported: use PostgreSQL or SQLite")
    stmt = stmt.values(row)
    changes = {name: stmt.excluded[name] for name in row if name != key}
    session.execute(stmt.on_conflict_do_update(index_elements=[key], set_=changes))


def chunks(items: Sequence[_T], size: int = 500) -> Iterable[list[_T]]:
    """``items`` in lists of at most ``size`` (an IN list per chunk stays under every driver's parameter limit)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
