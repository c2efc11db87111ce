"""Polling: the watermark advances only after the page it covers is committed, nothing is lost or recorded twice."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from psabridge.errors import RetryLaterError
from psabridge.store import sync_state
from psabridge.store.models import InboxDelivery, Run
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.poll import poll_connection

from .conftest import RecordingQueue, World


def queued(world: World) -> list[str]:
    assert isinstance(world.ctx.queue, RecordingQueue)
    found = [external_id for _, external_id in world.ctx.queue.of("ingest")]
    world.ctx.queue.calls.clear()
    return found


def watermark(world: World) -> str | None:
    with world.db.session() as s:
        found = sync_state.get_watermark(s, "acme-snow")
        return found.isoformat() if found else None


def test_the_first_poll_backfills_and_the_next_finds_only_changes(plain: World) -> None:
    ids = [plain.snow.create() for _ in range(7)]  # three pages of three
    result = poll_connection(plain.ctx, "acme-snow")
    assert (result.pages, result.seen, result.queued) == (3, 7, 7)
    assert sorted(queued(plain)) == sorted(ids)
    assert watermark(plain) == plain.snow.tickets[ids[-1]]["updated"]
    # Re-reading the newest page (the watermark is inclusive) records nothing twice
    again = poll_connection(plain.ctx, "acme-snow")
    assert again.seen >= 1 and again.queued == 0 and queued(plain) == []
    plain.snow.change(ids[2], state="in_progress")
    assert poll_connection(plain.ctx, "acme-snow").queued == 1
    assert queued(plain) == [ids[2]]
    with plain.db.session() as s:
        runs = list(s.scalars(sa.select(Run).where(Run.kind == "poll")))
    assert [r.counts["queued"] for r in runs] == [7, 0, 1] and {r.status for r in runs} == {"ok"}


def test_a_poll_failing_between_pages_keeps_what_it_committed_and_loses_nothing(plain: World) -> None:
    ids = [plain.snow.create() for _ in range(7)]

    def outage() -> None:
        raise RetryLaterError("503 from the vendor")

    plain.snow.fail("between_pages", lambda: None, outage)  # page 1 ok, fails after page 2
    with pytest.raises(RetryLaterError):
        poll_connection(plain.ctx, "acme-snow")
    # The watermark covers exactly the two committed pages, whose tickets are recorded for ingest
    assert watermark(plain) == plain.snow.tickets[ids[5]]["updated"]
    first = queued(plain)
    assert sorted(first) == sorted(ids[:6])
    with plain.db.session() as s:
        assert s.scalars(sa.select(Run)).one().status == "failed"
    # The next poll resumes from there: every ticket is recorded exactly once in all
    poll_connection(plain.ctx, "acme-snow")
    assert sorted(first + queued(plain)) == sorted(ids)


def test_a_second_change_within_the_same_second_is_still_picked_up(plain: World) -> None:
    ticket_id = plain.snow.create()
    poll_connection(plain.ctx, "acme-snow")
    queued(plain)
    plain.snow.tickets[ticket_id]["title"] = "Printer offline again"  # vendor time did not move (1 s resolution)
    assert poll_connection(plain.ctx, "acme-snow").queued == 1


def test_records_older_than_the_stored_copy_are_not_queued(plain: World) -> None:
    ticket_id = plain.snow.create()
    stale = dict(plain.snow.tickets[ticket_id])
    plain.snow.change(ticket_id, state="in_progress")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    plain.snow.tickets[ticket_id] = stale  # a lagging list endpoint
    assert poll_connection(plain.ctx, "acme-snow").queued == 0


def test_overlapping_polls_of_one_connection_do_not_run_twice(plain: World) -> None:
    plain.snow.create()
    entered, release = threading.Event(), threading.Event()

    def slow() -> None:
        entered.set()
        release.wait(10)

    plain.snow.fail("iter_changes", slow)
    first = threading.Thread(target=poll_connection, args=(plain.ctx, "acme-snow"))
    first.start()
    assert entered.wait(10)
    assert poll_connection(plain.ctx, "acme-snow").skipped
    release.set()
    first.join()
    assert not poll_connection(plain.ctx, "acme-snow").skipped
    with plain.db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(InboxDelivery)) == 1
