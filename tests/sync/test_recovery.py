"""Crash safety of the embedded broker: queued messages die with the process, the store does not."""

from __future__ import annotations

from psabridge.store import inbox
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.recovery import recover

from .conftest import RecordingQueue, World


def test_start_up_queues_open_deliveries_pending_write_backs_and_polls(plain: World) -> None:
    ticket_id = plain.snow.create(queue="MSP Support")
    with plain.db.transaction() as s:
        inbox.record_delivery(s, "acme-snow", "hook-1", external_id="99", event="updated")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)  # writes a CreateMirror the crashed process never sent
    assert isinstance(plain.ctx.queue, RecordingQueue)
    plain.ctx.queue.calls.clear()
    found = recover(plain.ctx)
    assert (found.ingests, found.dispatches, found.polls) == (1, 1, 2)
    assert plain.ctx.queue.of("ingest") == [("acme-snow", "99")]
    assert plain.ctx.queue.of("poll") == [("acme-snow",), ("msp-cw",)]


def test_a_sweep_leaves_recent_work_to_the_queue(plain: World) -> None:
    from datetime import timedelta

    with plain.db.transaction() as s:
        inbox.record_delivery(s, "acme-snow", "hook-1", external_id="99", event="updated")
    found = recover(plain.ctx, older_than=timedelta(minutes=10), polls=False)
    assert (found.ingests, found.dispatches, found.polls) == (0, 0, 0)


def test_messages_lost_in_a_crash_are_done_after_restart_exactly_once(world: World) -> None:
    # Given a webhook recorded and an ingest whose follow-up messages died with the process
    from psabridge.sync.actors import ActorQueue

    assert world.broker is not None
    snow_id = world.snow.create(queue="MSP Support")
    other_id = world.snow.create(queue="MSP Support")
    with world.db.transaction() as s:
        inbox.record_delivery(s, "acme-snow", "hook-7", external_id=other_id, event="created")
    lost = RecordingQueue()
    world.ctx.queue = lost
    ingest_ticket(world.ctx, "acme-snow", snow_id)
    assert lost.of("dispatch")
    world.broker.flush_all()  # the crash: nothing queued survives
    # When the process starts again
    world.ctx.queue = ActorQueue()
    recover(world.ctx)
    world.run()
    # Then both tickets are mirrored, once each
    assert sorted(v for v, _ in world.cw.writes) == ["create", "create"]
    assert {link.source_key for link in world.links()} == {f"acme-snow:{snow_id}", f"acme-snow:{other_id}"}
    recover(world.ctx)
    world.run()
    assert len(world.cw.writes) == 2
