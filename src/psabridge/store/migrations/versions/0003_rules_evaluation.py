"""The evaluate step's tables: transitions, evaluations, rule states, ledger, wake-ups; findings' bookkeeping columns.

Also ``sync_state.first_synced_at`` (the rules' default ``act_since``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import psabridge.store.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _time(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, psabridge.store.types.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_key", sa.String(length=300), nullable=False),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        _time("at", nullable=False),
        sa.Column("by", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transitions")),
    )
    with op.batch_alter_table("transitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transitions_ticket_key_at"), ["ticket_key", "at"], unique=False)

    op.create_table(
        "evaluations",
        sa.Column("ticket_key", sa.String(length=300), nullable=False),
        _time("needed_since", nullable=True),
        sa.Column("changes", sa.Integer(), nullable=False),
        _time("evaluated_at", nullable=True),
        sa.Column("before", _JSON, nullable=True),
        sa.Column("signature", sa.String(length=300), nullable=True),
        sa.Column("would_write", sa.Integer(), nullable=False),
        sa.Column("hands_off", sa.Boolean(), nullable=False),
        _time("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("ticket_key", name=op.f("pk_evaluations")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluations_needed_since"), ["needed_since"], unique=False)
        batch_op.create_index(batch_op.f("ix_evaluations_signature"), ["signature"], unique=False)

    op.create_table(
        "rule_states",
        sa.Column("ticket_key", sa.String(length=300), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("state", _JSON, nullable=False),
        _time("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("ticket_key", "rule", name=op.f("pk_rule_states")),
    )

    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_key", sa.String(length=300), nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        _time("set_at", nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
    )
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_ticket_key_set_at"), ["ticket_key", "set_at"], unique=False)

    op.create_table(
        "wakeups",
        sa.Column("ticket_key", sa.String(length=300), nullable=False),
        _time("due_at", nullable=False),
        sa.PrimaryKeyConstraint("ticket_key", name=op.f("pk_wakeups")),
    )
    with op.batch_alter_table("wakeups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wakeups_due_at"), ["due_at"], unique=False)

    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurrence", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("instance", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("noted", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("resolution_noted", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("effect", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("step", sa.String(length=200), nullable=True))

    with op.batch_alter_table("sync_state", schema=None) as batch_op:
        batch_op.add_column(_time("first_synced_at", nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("sync_state", schema=None) as batch_op:
        batch_op.drop_column("first_synced_at")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        for name in ("step", "effect", "resolution_noted", "noted", "instance", "occurrence"):
            batch_op.drop_column(name)
    for table in ("wakeups", "ledger", "rule_states", "evaluations", "transitions"):
        op.drop_table(table)
