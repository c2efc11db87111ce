"""Why a ticket is hands-off: ``evaluations.hands_off_reason`` (``psabridge rules hands-off --reason``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hands_off_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_column("hands_off_reason")
