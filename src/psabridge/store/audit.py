"""The audit repository: every write psabridge made (or tried) at a vendor, with what, when, before and after."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.log import mask_secrets, mask_text
from psabridge.store.models import AuditEntry

__all__ = ["count_by_outcome", "record_audit"]


def record_audit(
    session: Session,
    *,
    connection: str,
    action_type: str,
    outcome: str,
    ticket_key: str | None = None,
    idempotency_key: str | None = None,
    origin: str | None = None,
    request: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Append one row to the audit trail of vendor writes (``outcome``: what the dispatcher did, or failed, retry)."""
    session.add(
        AuditEntry(
            connection=connection,
            ticket_key=ticket_key,
            action_type=action_type,
            idempotency_key=idempotency_key,
            origin=origin,
            request=mask_secrets(request or {}),
            before=before,
            after=after,
            outcome=outcome,
            error=mask_text(error) if error is not None else None,  # a vendor may echo our credentials
        )
    )


def count_by_outcome(session: Session, outcome: str) -> Counter[str]:
    """Audit rows with ``outcome`` per connection written to (e.g. the writes the tenant guard refused)."""
    query = (
        sa.select(AuditEntry.connection, sa.func.count())
        .where(AuditEntry.outcome == outcome)
        .group_by(AuditEntry.connection)
    )
    return Counter({str(connection): int(count) for connection, count in session.execute(query)})
