"""Ingest without a broker: hashes decide what changed, a real change (never an echo) is marked as needing evaluation
in the transaction that stores it and its evaluation queued after the commit, older copies never overwrite newer."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from psabridge.model import AddNote, SetFields
from psabridge.store import evaluations, inbox
from psabridge.store.models import FindingRow, InboxDelivery, OutboxAction, TicketRow
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.outbox import dispatch_action

from .conftest import RecordingQueue, World


def queue(world: World) -> RecordingQueue:
    assert isinstance(world.ctx.queue, RecordingQueue)
    return world.ctx.queue


def dispatch_all(world: World) -> None:
    for (outbox_id,) in queue(world).of("dispatch"):
        dispatch_action(world.ctx, outbox_id)
    queue(world).calls.clear()


def test_a_new_ticket_is_stored_and_evaluated_once(plain: World) -> None:
    ticket_id = plain.snow.create()
    result = ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    assert (result.outcome, result.evaluated) == ("created", True)
    again = ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    assert (again.outcome, again.evaluated) == ("unchanged", False)
    assert plain.evaluated == [f"acme-snow:{ticket_id}"]
    stored = plain.ticket(f"acme-snow:{ticket_id}")
    assert stored is not None and stored.summary == "Printer offline" and stored.tenant == "acme"


def test_rules_run_once_per_real_change_and_never_for_the_echo_of_their_own_write(plain: World) -> None:
    # Given a ticket whose evaluation asked for the asset tag
    ticket_id = plain.snow.create()
    key = f"acme-snow:{ticket_id}"
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    ask = AddNote(ticket_key=key, target="acme-snow", origin="rules.asset", text="Asset tag?", occurrence_key="a:1")
    plain.emit([ask])
    # When the rule's note is written
    dispatch_all(plain)
    assert plain.snow.notes_with(ticket_id, "Asset tag?") == 1
    # and the note comes back (the echo), twice
    echo = ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    again = ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    # Then the echo is stored but not evaluated
    assert (echo.outcome, echo.evaluated, again.outcome) == ("echo", False, "unchanged")
    stored = plain.ticket(key)
    assert stored is not None and stored.notes[0].origin is not None
    assert len(plain.evaluated) == 1
    with plain.db.session() as s:
        assert evaluations.needing_evaluation(s) == [key]  # nothing ran it here (no broker): still pending
    # And a person's change is evaluated again (the rule's note is not written twice: same idempotency key)
    plain.snow.note(ticket_id, "It is PRN-0042", by="dave")
    real = ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    plain.emit([ask])
    dispatch_all(plain)
    assert (real.outcome, real.evaluated, len(plain.evaluated)) == ("updated", True, 2)
    assert plain.snow.notes_with(ticket_id, "Asset tag?") == 1


def triage(world: World, ticket_id: str) -> None:
    """What a rule moving the ticket to Networking would queue."""
    key = f"acme-snow:{ticket_id}"
    world.emit([SetFields(ticket_key=key, target="acme-snow", origin="rules.triage", fields={"queue": "Networking"})])


def test_the_echo_of_a_field_write_is_recognised_by_its_hash(plain: World) -> None:
    ticket_id = plain.snow.create()
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    triage(plain, ticket_id)
    dispatch_all(plain)
    assert plain.snow.tickets[ticket_id]["queue"] == "Networking"
    assert ingest_ticket(plain.ctx, "acme-snow", ticket_id).outcome == "echo"
    # a person moving it back is a real change, even though the value was ours before
    plain.snow.change(ticket_id, queue="Service Desk")
    assert ingest_ticket(plain.ctx, "acme-snow", ticket_id).outcome == "updated"
    plain.snow.change(ticket_id, queue="Networking")
    assert ingest_ticket(plain.ctx, "acme-snow", ticket_id).outcome == "updated"
    assert len(plain.evaluated) == 3


def test_needs_evaluation_commits_with_the_change_or_not_at_all(plain: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given recording "needs evaluation" fails after the ticket was upserted in the transaction
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("store bug")

    monkeypatch.setattr(evaluations, "mark_needed", broken)
    ticket_id = plain.snow.create()
    with pytest.raises(RuntimeError):
        ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    # Then nothing is stored and nothing queued: the next attempt sees the change again (and evaluates it)
    with plain.db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(TicketRow)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxAction)) == 0
    assert plain.evaluated == []
    monkeypatch.undo()
    assert ingest_ticket(plain.ctx, "acme-snow", ticket_id).outcome == "created"
    with plain.db.session() as s:
        assert evaluations.needing_evaluation(s) == [f"acme-snow:{ticket_id}"]


def test_an_older_copy_never_overwrites_a_newer_one(plain: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket_id = plain.snow.create()
    old = plain.snow.raw(ticket_id)
    plain.snow.change(ticket_id, state="in_progress")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    # When a lagging replica answers with the copy from before the change
    connector = plain.ctx.connector("acme-snow")
    monkeypatch.setattr(connector, "get_ticket", lambda external_id: old)
    result = ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    # Then it is refused as stale and the store keeps the newer one
    assert result.outcome == "stale"
    stored = plain.ticket(f"acme-snow:{ticket_id}")
    assert stored is not None and stored.status is not None and stored.status.value == "in_progress"


def test_a_ticket_gone_from_the_vendor_is_marked_deleted(plain: World) -> None:
    ticket_id = plain.snow.create()
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    gone = plain.snow.tickets.pop(ticket_id)
    assert ingest_ticket(plain.ctx, "acme-snow", ticket_id).outcome == "deleted"
    with plain.db.session() as s:
        row = s.scalars(sa.select(TicketRow)).one()
        assert row.deleted_at is not None
    # restored from the vendor's recycle bin: present again
    plain.snow.tickets[ticket_id] = gone
    plain.snow.change(ticket_id, state="in_progress")
    assert ingest_ticket(plain.ctx, "acme-snow", ticket_id).outcome == "updated"
    with plain.db.session() as s:
        assert s.scalars(sa.select(TicketRow)).one().deleted_at is None


def test_mapping_findings_are_stored_with_the_ticket(plain: World) -> None:
    ticket_id = plain.snow.create(state="waiting on vendor")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    with plain.db.session() as s:
        finding = s.scalars(sa.select(FindingRow)).one()
    assert finding.rule == "mapping" and finding.ticket_key == f"acme-snow:{ticket_id}"
    assert "waiting on vendor" in str(finding.data)


def test_ingest_closes_the_deliveries_it_covers(plain: World) -> None:
    ticket_id = plain.snow.create()
    with plain.db.transaction() as s:
        inbox.record_delivery(s, "acme-snow", "d-1", external_id=ticket_id, event="updated")
        inbox.record_delivery(s, "acme-snow", "d-2", external_id=ticket_id, event="updated")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    with plain.db.session() as s:
        assert {d.status for d in s.scalars(sa.select(InboxDelivery))} == {"done"}
        assert inbox.open_deliveries(s) == []


def test_a_dry_run_stores_nothing(plain: World) -> None:
    ticket_id = plain.snow.create(queue="MSP Support")
    result = ingest_ticket(plain.ctx, "acme-snow", ticket_id, dry_run=True)
    assert result.outcome == "created" and result.outbox_ids
    assert queue(plain).calls == []
    with plain.db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(TicketRow)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxAction)) == 0


def test_a_persons_change_made_just_before_our_write_is_not_taken_for_our_echo(plain: World) -> None:
    ticket_id = plain.snow.create()
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    triage(plain, ticket_id)
    plain.snow.change(ticket_id, title="Printer offline on floor 2")  # its webhook has not arrived yet
    dispatch_all(plain)  # our write's answer already shows the person's new title
    result = ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    assert (result.outcome, result.evaluated) == ("updated", True)
    assert set(result.changed) == {"summary", "queue"}
