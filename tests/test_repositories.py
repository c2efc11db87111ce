from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from psabridge.model import AddNote, Status, System, Ticket
from psabridge.store import Database, deadletters, findings, inbox, leases, outbox, runs, sync_state, tickets
from psabridge.store.models import DeadLetter, FindingRow, OutboxAction, Run, RunItem, TicketRow
from psabridge.store.runs import RunKind

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def ticket(external_id: str = "1", **kw: object) -> Ticket:
    data: dict[str, object] = {
        "connection": "acme-snow",
        "system": System.SERVICENOW,
        "external_id": external_id,
        "summary": "VPN drops every hour",
        "status": Status.NEW,
        "updated_at": T0,
        "version": "1",
    }
    data.update(kw)
    return Ticket.model_validate(data)


def test_upsert_reports_created_updated_unchanged_and_keeps_raw(db: Database) -> None:
    with db.transaction() as s:
        [change] = tickets.upsert_tickets(s, [(ticket(), {"sys_id": "1", "state": "1"})])
        assert change.outcome == "created" and change.is_change
    with db.transaction() as s:
        [same] = tickets.upsert_tickets(s, [(ticket(updated_at=T0 + timedelta(minutes=1), version="2"), None)])
        assert same.outcome == "unchanged" and not same.is_change
    with db.transaction() as s:
        [upd] = tickets.upsert_tickets(
            s, [(ticket(status=Status.IN_PROGRESS, version="3", updated_at=T0 + timedelta(minutes=2)), {"state": "2"})]
        )
        assert upd.outcome == "updated"
        assert upd.changed == ("status",)
        assert upd.before is not None and upd.before.status == Status.NEW
    with db.session() as s:
        row = s.scalars(sa.select(TicketRow)).one()
        assert row.status == "in_progress" and row.version == "3"
        assert row.raw is not None and row.raw.raw == {"state": "2"}
        assert row.content_hash == ticket(status=Status.IN_PROGRESS).content_hash()
        loaded = tickets.load_ticket(s, "acme-snow:1")
        assert loaded is not None and loaded.status == Status.IN_PROGRESS


def test_older_data_never_overwrites_newer(db: Database) -> None:
    with db.transaction() as s:
        tickets.upsert_tickets(s, [(ticket(status=Status.ON_HOLD, version="10"), None)])
    with db.transaction() as s:
        [change] = tickets.upsert_tickets(s, [(ticket(status=Status.NEW, version="9"), None)])
        assert change.outcome == "stale"
    with db.session() as s:
        stored = tickets.load_ticket(s, "acme-snow:1")
        assert stored is not None and stored.status == Status.ON_HOLD


def test_older_by_update_time_when_there_is_no_version(db: Database) -> None:
    with db.transaction() as s:
        tickets.upsert_tickets(s, [(ticket(version=None, status=Status.ON_HOLD), None)])
    with db.transaction() as s:
        [change] = tickets.upsert_tickets(s, [(ticket(version=None, updated_at=T0 - timedelta(seconds=1)), None)])
        assert change.outcome == "stale"


def test_within_a_batch_the_newest_copy_wins(db: Database) -> None:
    newer = ticket(status=Status.RESOLVED, version="5")
    with db.transaction() as s:
        changes = tickets.upsert_tickets(s, [(newer, None), (ticket(version="4"), None), (ticket("2"), None)])
        assert [c.key for c in changes] == ["acme-snow:1", "acme-snow:2"]
    with db.session() as s:
        stored = tickets.load_tickets(s, ["acme-snow:1", "acme-snow:2", "acme-snow:404"])
        assert stored["acme-snow:1"].status == Status.RESOLVED
        assert set(stored) == {"acme-snow:1", "acme-snow:2"}


def test_watermark_never_moves_backwards(db: Database) -> None:
    with db.transaction() as s:
        assert sync_state.get_watermark(s, "msp-cw") is None
        sync_state.set_watermark(s, "msp-cw", T0)
    with db.transaction() as s:
        sync_state.set_watermark(s, "msp-cw", T0 - timedelta(hours=1))
    with db.session() as s:
        assert sync_state.get_watermark(s, "msp-cw") == T0


def test_outbox_enqueue_is_idempotent(db: Database) -> None:
    note = AddNote(ticket_key="acme-snow:1", target="acme-snow", origin="rules.x", text="Please add repro steps")
    other = AddNote(ticket_key="acme-snow:1", target="acme-snow", origin="rules.x", text="Different")
    with db.transaction() as s:
        assert outbox.enqueue_actions(s, [note, note]) == [note.idempotency_key()]
    with db.transaction() as s:
        assert outbox.enqueue_actions(s, [note, other]) == [other.idempotency_key()]
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxAction)) == 2


def test_delivery_recorded_once(db: Database) -> None:
    with db.transaction() as s:
        assert inbox.record_delivery(s, "msp-cw", "m-1", external_id="42", event="updated")
    with db.transaction() as s:
        assert not inbox.record_delivery(s, "msp-cw", "m-1", external_id="42", event="updated")


def test_findings_are_replaced_and_resolved(db: Database) -> None:
    with db.transaction() as s:
        findings.upsert_findings(
            s, "t:1", "mapping", [("status", "warning", "no map", {}), ("prio", "warning", "x", {})]
        )
    with db.transaction() as s:
        findings.upsert_findings(s, "t:1", "mapping", [("status", "warning", "still no map", {})])
    with db.session() as s:
        rows = {f.code: f for f in s.scalars(sa.select(FindingRow))}
        assert rows["status"].message == "still no map" and rows["status"].resolved_at is None
        assert rows["prio"].resolved_at is not None


def test_runs_with_items_and_counts(db: Database) -> None:
    with db.transaction() as s:
        run_id = runs.start_run(s, RunKind.RECONCILE, "msp-cw", {"dry_run": False})
        runs.record_run_items(s, run_id, [("msp-cw:1", "created", None), ("msp-cw:2", "failed", "HTTP 500")])
        runs.finish_run(s, run_id, counts={"seen": 2, "created": 1, "failed": 1})
    with db.session() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.status == "failed" and run.counts["seen"] == 2
        assert s.scalar(sa.select(sa.func.count()).select_from(RunItem)) == 2


def test_dead_letter_once_per_message(db: Database) -> None:
    for _ in range(2):
        with db.transaction() as s:
            deadletters.add_dead_letter(
                s,
                message_id="m1",
                queue="ingest",
                actor="ingest",
                args=["msp-cw", "1"],
                kwargs={},
                error={"type": "PermanentError"},
                attempts=3,
            )
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(DeadLetter)) == 1


def test_lock_is_exclusive_until_released_or_expired(db: Database) -> None:
    with db.transaction() as s:
        assert leases.take_lease(s, "reconcile", "a", timedelta(minutes=5), now=T0)
    with db.transaction() as s:
        assert not leases.take_lease(s, "reconcile", "b", timedelta(minutes=5), now=T0 + timedelta(minutes=1))
        assert leases.take_lease(s, "reconcile", "a", timedelta(minutes=5), now=T0 + timedelta(minutes=1))
    with db.transaction() as s:
        assert leases.take_lease(s, "reconcile", "b", timedelta(minutes=5), now=T0 + timedelta(minutes=7))
    with db.transaction() as s:
        leases.release_lease(s, "reconcile", "b")
        assert leases.take_lease(s, "reconcile", "c", timedelta(minutes=5), now=T0 + timedelta(minutes=8))
