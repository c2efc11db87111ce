"""The poll schedule of `psabridge serve`: each connection on its interval, and the recovery sweep."""

from __future__ import annotations

import time
from datetime import timedelta

from psabridge.store import evaluations, inbox
from psabridge.sync.scheduler import Scheduler

from .conftest import RecordingQueue, World


def test_each_connection_is_polled_on_its_interval_and_stale_work_is_swept(plain: World) -> None:
    assert isinstance(plain.ctx.queue, RecordingQueue)
    plain.ctx.settings.connection("acme-snow").poll_every = timedelta(seconds=0.3)
    plain.ctx.settings.connection("msp-cw").poll_every = timedelta(hours=1)
    with plain.db.transaction() as s:
        inbox.record_delivery(s, "acme-snow", "hook-1", external_id="7", event="updated")
    scheduler = Scheduler(plain.ctx, sweep_every=0.2, stale_after=timedelta(0))
    scheduler.start()
    time.sleep(1.0)
    scheduler.stop()
    polls = plain.ctx.queue.of("poll")
    assert 3 <= polls.count(("acme-snow",)) <= 5 and polls.count(("msp-cw",)) == 1
    assert ("acme-snow", "7") in plain.ctx.queue.of("ingest")  # the sweep found the delivery nobody ingested


def test_the_scheduler_turns_due_wakeups_into_evaluations(plain: World) -> None:
    assert isinstance(plain.ctx.queue, RecordingQueue)
    now = plain.ctx.now()
    with plain.db.transaction() as s:
        evaluations.set_wakeup(s, "acme-snow:1", now - timedelta(seconds=1))
        evaluations.set_wakeup(s, "acme-snow:2", now + timedelta(hours=1))
    scheduler = Scheduler(plain.ctx, sweep_every=3600, wake_every=0.1)
    scheduler.start()
    deadline = time.monotonic() + 10
    while not plain.ctx.queue.of("evaluate") and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    assert plain.ctx.queue.of("evaluate") == [("acme-snow:1",)]  # once: its row is gone, the other is not due
    with plain.db.session() as s:
        assert evaluations.due_wakeups(s, now + timedelta(hours=2)) == ["acme-snow:2"]
