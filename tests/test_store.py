from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from psabridge.store import Database, current_revision, downgrade, upgrade
from psabridge.store.migrate import head_revision
from psabridge.store.models import InboxDelivery, Link, OutboxAction, RawSnapshot, TicketRow


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    downgrade(database_url, "base")
    assert current_revision(database_url) is None
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert tables <= {"alembic_version"}
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


def test_schema_has_every_table(db: Database) -> None:
    tables = set(sa.inspect(db.engine).get_table_names())
    expected = {
        "tickets",
        "raw_snapshots",
        "links",
        "sync_state",
        "inbox",
        "outbox",
        "findings",
        "runs",
        "run_items",
        "audit",
        "dead_letters",
        "locks",
    }
    assert expected <= tables


def _ticket(key: str = "acme-snow:1", **kw: object) -> TicketRow:
    connection, external_id = key.split(":")
    data: dict[str, object] = {
        "key": key,
        "connection": connection,
        "system": "servicenow",
        "external_id": external_id,
        "content_hash": "0" * 64,
        "data": {"summary": "VPN drops"},
        "updated_at": datetime(2026, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
    }
    data.update(kw)
    return TicketRow(**data)


def test_ticket_round_trip_keeps_utc_aware_datetimes_and_json(db: Database) -> None:
    with db.transaction() as session:
        row = _ticket()
        row.raw = RawSnapshot(raw={"sys_id": "1", "number": "INC0000001"}, raw_hash="f" * 64)
        session.add(row)
    with db.session() as session:
        stored = session.scalars(sa.select(TicketRow)).one()
        assert stored.updated_at == datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
        assert stored.updated_at is not None and stored.updated_at.tzinfo is not None
        assert stored.data == {"summary": "VPN drops"}
        assert stored.raw is not None and stored.raw.raw["number"] == "INC0000001"


def test_naive_datetime_cannot_be_stored(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"), db.transaction() as session:
        session.add(_ticket(updated_at=datetime(2026, 5, 1, 9, 30)))


def test_ticket_is_unique_per_connection_and_external_id(db: Database) -> None:
    with db.transaction() as session:
        session.add(_ticket())
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(_ticket(key="acme-snow:1-dup", external_id="1"))


def test_one_mirror_per_source_and_target_connection(db: Database) -> None:
    with db.transaction() as session:
        session.add(
            Link(
                name="l",
                source_key="acme-snow:1",
                source_connection="acme-snow",
                target_connection="msp-cw",
                marker="m1",
            )
        )
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(
            Link(
                name="l",
                source_key="acme-snow:1",
                source_connection="acme-snow",
                target_connection="msp-cw",
                marker="m2",
            )
        )


def test_outbox_idempotency_key_and_inbox_delivery_are_unique(db: Database) -> None:
    def outbox() -> OutboxAction:
        return OutboxAction(
            idempotency_key="k1",
            ticket_key="t:1",
            target="msp-cw",
            action_type="add_note",
            origin="rules.x",
            action={"type": "add_note"},
        )

    with db.transaction() as session:
        session.add(outbox())
        session.add(InboxDelivery(connection="msp-cw", delivery_id="d1"))
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(outbox())
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(InboxDelivery(connection="msp-cw", delivery_id="d1"))


def test_raw_snapshot_goes_with_its_ticket(db: Database) -> None:
    with db.transaction() as session:
        row = _ticket()
        row.raw = RawSnapshot(raw={"a": 1}, raw_hash="a" * 64)
        session.add(row)
    with db.transaction() as session:
        session.delete(session.scalars(sa.select(TicketRow)).one())
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(RawSnapshot)) == 0


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
