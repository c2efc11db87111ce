"""Recovery re-queues only what no live process has in hand, once: N restarts queue each open item once, and the work
of a holder that was SIGKILLed is queued again when its claim expires (at once on its own host)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from psabridge.store import Database, inbox, leases
from psabridge.sync.claims import QUEUED_FOR, dispatch_claim, holding, ingest_claim
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.recovery import recover
from psabridge.sync.scheduler import Scheduler

from .conftest import RecordingQueue, World, make_world, restarted


@pytest.fixture
def recording(tmp_path: Path, db: Database) -> Iterator[World]:
    """The pipeline without a broker, on SQLite and PostgreSQL: what is queued is only recorded."""
    made = make_world(tmp_path, db, RecordingQueue(), None)
    yield made
    made.ctx.close()


def open_work(world: World) -> int:
    """Five open deliveries for three tickets, and one ingested ticket whose CreateMirror was never sent."""
    with world.db.transaction() as s:
        for n, ticket in enumerate(["7", "7", "8", "9", "9"]):
            inbox.record_delivery(s, "acme-snow", f"hook-{n}", external_id=ticket, event="updated")
    ingest_ticket(world.ctx, "acme-snow", world.snow.create(queue="MSP Support"))
    [row] = world.outbox()
    return row.id


def restart(world: World) -> RecordingQueue:
    """A process starting: a new context on the same store; its start-up recovery; what it queued."""
    queue = RecordingQueue()
    ctx = restarted(world, queue)
    try:
        recover(ctx, polls=False)
    finally:
        ctx.close()
    return queue


def claimed_work(queue: RecordingQueue) -> list[tuple[str, tuple[object, ...]]]:
    """What a restart queued of the work claims cover (evaluations are recovery's too, without claims)."""
    return [(kind, args) for kind, args in queue.calls if kind in ("ingest", "dispatch")]


def test_nine_restarts_queue_each_open_delivery_and_write_back_once(recording: World) -> None:
    outbox_id = open_work(recording)
    queued = [restart(recording) for _ in range(9)]
    ingests = [args for q in queued for args in q.of("ingest")]
    dispatches = [args for q in queued for args in q.of("dispatch")]
    assert sorted(ingests) == [("acme-snow", "7"), ("acme-snow", "8"), ("acme-snow", "9")]
    assert dispatches == [(outbox_id,)]


def test_a_broker_that_outlives_processes_keeps_the_claim_until_the_message_is_presumed_lost(recording: World) -> None:
    recording.ctx.settings = recording.ctx.settings.model_copy(update={"broker": "redis://127.0.0.1:6379/0"})
    open_work(recording)
    first = restart(recording)
    assert len(first.of("ingest")) == 3
    with recording.db.session() as s:
        assert {lease.holder for lease in leases.held_leases(s, "claim:")} == {"queued"}
    recording.clock.later(QUEUED_FOR.total_seconds() - 5)
    assert claimed_work(restart(recording)) == []  # still trusted to be in Redis
    recording.clock.later(10)
    again = restart(recording)  # never started in ten minutes: lost; queued once more, and claimed again
    assert len(again.of("ingest")) == 3 and len(again.of("dispatch")) == 1
    assert claimed_work(restart(recording)) == []


def test_work_in_a_live_workers_hands_is_left_to_it(recording: World) -> None:
    open_work(recording)
    with holding(recording.ctx, ingest_claim("acme-snow", "8")):
        ingests = restart(recording).of("ingest")
    assert ("acme-snow", "8") not in ingests and len(ingests) == 2


def killed_pid() -> int:
    """A process that was SIGKILLed (and reaped): its pid is free."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.send_signal(signal.SIGKILL)
    child.wait()
    return child.pid


def test_a_sigkilled_holders_work_is_queued_again_after_its_claim_expires(recording: World) -> None:
    outbox_id = open_work(recording)
    here = f"{socket.gethostname()}:{killed_pid()}:deadbeef0000"  # a worker on this host, SIGKILLed mid-job
    elsewhere = "worker-b.example:4242:deadbeef0001"  # a worker on another host, SIGKILLed mid-job
    with recording.ctx.unit() as s:
        leases.hold_lease(s, ingest_claim("acme-snow", "7"), here, QUEUED_FOR, now=recording.ctx.now())
        leases.hold_lease(s, ingest_claim("acme-snow", "8"), elsewhere, QUEUED_FOR, now=recording.ctx.now())
        leases.hold_lease(s, dispatch_claim(outbox_id), elsewhere, QUEUED_FOR, now=recording.ctx.now())
    # This host can tell its dead process at once; another host's holder is trusted until its claim expires
    first = restart(recording)
    assert sorted(first.of("ingest")) == [("acme-snow", "7"), ("acme-snow", "9")] and first.of("dispatch") == []
    recording.clock.later(QUEUED_FOR.total_seconds() + 1)
    later = restart(recording)
    assert ("acme-snow", "8") in later.of("ingest") and later.of("dispatch") == [(outbox_id,)]


def test_jobs_for_one_ticket_at_once_each_hold_and_give_back_the_claim(recording: World) -> None:
    import threading

    name = ingest_claim("acme-snow", "7")
    together = threading.Barrier(6)
    errors: list[BaseException] = []

    def job() -> None:
        try:
            together.wait(timeout=10)
            with holding(recording.ctx, name):
                together.wait(timeout=10)  # all six hold it at the same time
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with recording.db.session() as s:
        assert leases.held_leases(s, "claim:") == []


def test_a_broker_restart_voids_the_claims_of_its_lost_messages_and_queues_the_work_again_once(
    recording: World,
) -> None:
    recording.ctx.settings = recording.ctx.settings.model_copy(update={"broker": "redis://127.0.0.1:6379/0"})
    outbox_id = open_work(recording)
    assert len(restart(recording).of("ingest")) == 3  # queued, and claimed by the queued messages
    epochs = iter(["run-1", "run-1", "run-2", "run-2"])
    queue = RecordingQueue()
    ctx = restarted(recording, queue)
    try:
        scheduler = Scheduler(ctx, epoch=lambda: next(epochs))
        assert scheduler.watch_broker() is False  # the first look only learns the run
        assert scheduler.watch_broker() is False and claimed_work(queue) == []  # same run: the messages are there
        assert scheduler.watch_broker() is True  # Redis restarted: its messages are gone
        assert sorted(args for kind, args in claimed_work(queue) if kind == "ingest") == [
            ("acme-snow", "7"), ("acme-snow", "8"), ("acme-snow", "9"),
        ]  # fmt: skip
        assert queue.of("dispatch") == [(outbox_id,)]
        assert scheduler.watch_broker() is False  # once: the new run's messages hold the new claims
        assert len(claimed_work(queue)) == 4
    finally:
        ctx.close()
    assert claimed_work(restart(recording)) == []  # and a process start leaves them to the new messages


def test_a_broker_that_cannot_be_reached_is_looked_at_again_later(recording: World) -> None:
    def down() -> str | None:
        raise ConnectionError("Redis is down")

    assert Scheduler(recording.ctx, epoch=down).watch_broker() is False
