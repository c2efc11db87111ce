"""SQLAlchemy 2.0 typed tables: tickets, snapshots, links, sync state, inbox, outbox, findings, rules, runs, audit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false as sa_false

from psabridge.store.types import JsonType, UtcDateTime

__all__ = [
    "AuditEntry",
    "Base",
    "DeadLetter",
    "EvaluationRow",
    "FindingRow",
    "InboxDelivery",
    "LedgerRow",
    "Link",
    "Lock",
    "OutboxAction",
    "RawSnapshot",
    "RuleStateRow",
    "Run",
    "RunItem",
    "SyncState",
    "TicketRow",
    "TransitionRow",
    "WakeupRow",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention (so migrations name things the same everywhere)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JsonType,
        list[Any]: JsonType,
    }


class TicketRow(Base):
    """The canonical ticket as last stored, with the columns queries filter on."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("connection", "external_id"),
        Index(None, "connection", "updated_at"),
        Index(None, "tenant", "status"),
        Index(None, "priority"),
        Index(None, "content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    connection: Mapped[str] = mapped_column(String(100))
    system: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(190))
    number: Mapped[str | None] = mapped_column(String(100))
    tenant: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[str | None] = mapped_column(String(4))
    updated_at: Mapped[datetime | None]
    version: Mapped[str | None] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]
    # What psabridge just wrote to this ticket (canonical field -> hash of the value): the next ingest that sees those
    # values is our own echo, not a change a person made. Cleared by that ingest.
    written: Mapped[dict[str, Any] | None]

    raw: Mapped[RawSnapshot | None] = relationship(back_populates="ticket", cascade="all, delete-orphan", uselist=False)


class RawSnapshot(Base):
    """The vendor record exactly as last fetched, and its hash, so a mapping change can be replayed offline."""

    __tablename__ = "raw_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    raw: Mapped[dict[str, Any]]
    raw_hash: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[TicketRow] = relationship(back_populates="raw")


class Link(Base):
    """A mirror pair: a source ticket and its mirror in another connection (one per source and target connection)."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("source_key", "target_connection"),
        UniqueConstraint("target_connection", "target_external_id"),
        Index(None, "target_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    source_key: Mapped[str] = mapped_column(String(300))
    source_connection: Mapped[str] = mapped_column(String(100))
    target_connection: Mapped[str] = mapped_column(String(100))
    target_external_id: Mapped[str | None] = mapped_column(String(190))
    target_key: Mapped[str | None] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending -> created
    marker: Mapped[str] = mapped_column(String(100))  # written into the mirror so a lost create can be found again
    sync: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per-field last synced values and hashes
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncState(Base):
    """Per-connection polling state: the watermark advances only after the page it covers is committed."""

    __tablename__ = "sync_state"

    connection: Mapped[str] = mapped_column(String(100), primary_key=True)
    watermark: Mapped[datetime | None]
    cursor: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_poll_started_at: Mapped[datetime | None]
    last_poll_finished_at: Mapped[datetime | None]
    last_run_id: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # When the connection's first poll (its backfill) started: the rules' default ``act_since``.
    first_synced_at: Mapped[datetime | None]


class InboxDelivery(Base):
    """A webhook delivery received; unique per delivery, so a vendor's duplicate is recognised."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("connection", "delivery_id"),
        Index(None, "status", "received_at"),
        Index(None, "connection", "external_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(100))
    delivery_id: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(190))
    event: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="received")  # received -> done | failed (store/inbox.py)
    error: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class OutboxAction(Base):
    """A write-back action, written in the same transaction as the change that caused it; sent by the dispatcher."""

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "status", "next_attempt_at"), Index(None, "ticket_key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_key: Mapped[str] = mapped_column(String(300))
    target: Mapped[str] = mapped_column(String(100))
    action_type: Mapped[str] = mapped_column(String(40))
    origin: Mapped[str] = mapped_column(String(200))
    action: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending -> sending -> done | failed | dead
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class FindingRow(Base):
    """A rule result on a ticket (also: vendor values no mapping covers)."""

    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("ticket_key", "rule", "code"), Index(None, "rule", "severity"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_key: Mapped[str] = mapped_column(String(300))
    rule: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(20))  # info, warning, error
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None]
    # The checklist's bookkeeping (rules.engine.StoredFinding): which occurrence, the rule's instance of it, whether
    # a note announced it and its resolution, the finding's effect and checklist step.
    occurrence: Mapped[int] = mapped_column(default=1, server_default="1")
    instance: Mapped[str] = mapped_column(String(200), default="", server_default="")
    noted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    resolution_noted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    effect: Mapped[str | None] = mapped_column(String(10))
    step: Mapped[str | None] = mapped_column(String(200))


class TransitionRow(Base):
    """A change of a tracked field (status, priority, queue, assignee, tier), recorded by ingest."""

    __tablename__ = "transitions"
    __table_args__ = (Index(None, "ticket_key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_key: Mapped[str] = mapped_column(String(300))
    field: Mapped[str] = mapped_column(String(20))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(10))  # human | bridge


class EvaluationRow(Base):
    """Per ticket: whether it needs evaluating (since when), and what the last evaluation saw and found."""

    __tablename__ = "evaluations"
    __table_args__ = (Index(None, "needed_since"), Index(None, "signature"))

    ticket_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    needed_since: Mapped[datetime | None]  # the first change not evaluated yet (None: up to date)
    changes: Mapped[int] = mapped_column(default=0)  # bumped by every change: an evaluation clears only what it saw
    evaluated_at: Mapped[datetime | None]
    before: Mapped[dict[str, Any] | None]  # the canonical ticket as last evaluated (the rules' ``before``)
    signature: Mapped[str | None] = mapped_column(String(300))  # error_signature of the copy last evaluated
    would_write: Mapped[int] = mapped_column(default=0)  # actions act_since held back at the last evaluation
    hands_off: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RuleStateRow(Base):
    """One rule's saved JSON state on one ticket."""

    __tablename__ = "rule_states"
    __table_args__ = (PrimaryKeyConstraint("ticket_key", "rule"),)

    ticket_key: Mapped[str] = mapped_column(String(300))
    rule: Mapped[str] = mapped_column(String(100))
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LedgerRow(Base):
    """A value psabridge itself set on a ticket (never fight a human: a person's later change wins for good)."""

    __tablename__ = "ledger"
    __table_args__ = (Index(None, "ticket_key", "set_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_key: Mapped[str] = mapped_column(String(300))
    field: Mapped[str] = mapped_column(String(40))
    value: Mapped[str | None] = mapped_column(Text)
    set_at: Mapped[datetime]
    origin: Mapped[str] = mapped_column(String(200), default="")


class WakeupRow(Base):
    """When a ticket's rules want to look at it again even if nothing changes (one row per ticket)."""

    __tablename__ = "wakeups"
    __table_args__ = (Index(None, "due_at"),)

    ticket_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    due_at: Mapped[datetime]


class Run(Base):
    """One poll, backfill or reconcile run, with its counts."""

    __tablename__ = "runs"
    __table_args__ = (Index(None, "connection", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # poll, backfill, reconcile
    connection: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")  # running, ok, failed
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    items: Mapped[list[RunItem]] = relationship(back_populates="run", cascade="all, delete-orphan")


class RunItem(Base):
    """What a run did to one ticket."""

    __tablename__ = "run_items"
    __table_args__ = (Index(None, "run_id", "outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    ticket_key: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))  # created, updated, unchanged, closed, repaired, failed
    detail: Mapped[str | None] = mapped_column(Text)

    run: Mapped[Run] = relationship(back_populates="items")


class AuditEntry(Base):
    """Every write psabridge made to a vendor: what, when, before and after."""

    __tablename__ = "audit"
    __table_args__ = (Index(None, "ticket_key", "at"), Index(None, "idempotency_key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    connection: Mapped[str] = mapped_column(String(100))
    ticket_key: Mapped[str | None] = mapped_column(String(300))
    action_type: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(200))
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    outcome: Mapped[str] = mapped_column(String(20))  # written, skipped, failed
    error: Mapped[str | None] = mapped_column(Text)


class DeadLetter(Base):
    """A job that exhausted its retries or failed permanently; an operator can inspect and replay it."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index(None, "actor", "failed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    queue: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(100))
    args: Mapped[list[Any]] = mapped_column(default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    replayed_at: Mapped[datetime | None]


class Lock(Base):
    """A named lease (e.g. the reconcile lock) for deployments without Redis; expires so a crash cannot wedge it."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
