"""Persistence, the only package that talks SQL: tables, the engine, migrations and one repository per aggregate.

Repositories (functions over a ``Session``, returning domain values): tickets.py (tickets and raw snapshots),
sync_state.py (watermarks, first sync), inbox.py (deliveries), outbox.py (write-backs), links.py (mirror pairs),
findings.py, transitions.py (tracked field changes), evaluations.py (needs evaluation, the last evaluated copy, rule
states, wake-ups), ledger.py (what psabridge set), runs.py (runs and their per-ticket reports), audit.py,
deadletters.py, leases.py (named leases); locks.py holds the lock backends that live in the database. models.py (the
ORM tables) is private to this package.
"""

from __future__ import annotations

from psabridge.store.db import Database, Session, StoreRefusedError, make_engine
from psabridge.store.migrate import current_revision, downgrade, upgrade
from psabridge.store.models import utcnow

__all__ = [
    "Database",
    "Session",
    "StoreRefusedError",
    "current_revision",
    "downgrade",
    "make_engine",
    "upgrade",
    "utcnow",
]
