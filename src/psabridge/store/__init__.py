"""Persistence: SQLAlchemy 2.0 tables, the engine and session factory, repositories and Alembic migrations."""

from __future__ import annotations

from psabridge.store.db import Database, make_engine
from psabridge.store.migrate import current_revision, downgrade, upgrade

__all__ = ["Database", "current_revision", "downgrade", "make_engine", "upgrade"]
