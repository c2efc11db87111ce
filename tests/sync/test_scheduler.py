"""The poll schedule of `psabridge serve`: each connection on its interval, and the recovery sweep."""

from __future__ import annotations

import time
from datetime import timedelta

from psabridge.store import inbox
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
