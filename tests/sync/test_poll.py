"""Polling stores its list pages: the watermark advances only with the page it covers, nothing is lost or stored
twice, a record equal to the stored copy costs nothing, a spent budget paces the poll, one bad record fails alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from psabridge.errors import PermanentError, RateLimitedError, RetryLaterError
from psabridge.store import Database, sync_state, upgrade
from psabridge.store.models import DeadLetter, FindingRow, InboxDelivery, RawSnapshot, Run
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.pacing import Pacer, RunTimeLimitError, SliceEndedError
from psabridge.sync.poll import poll_connection
from psabridge.vendordata import RawRecord

from .conftest import RecordingQueue, World, make_world
from .fakes import T0, FakeConnector


def watermark(world: World) -> str | None:
    with world.db.session() as s:
        found = sync_state.get_watermark(s, "acme-snow")
        return found.isoformat() if found else None


def stored_ids(world: World) -> list[str]:
    with world.db.session() as s:
        return sorted(s.scalars(sa.text("SELECT external_id FROM tickets WHERE connection = 'acme-snow'")))


def test_the_first_poll_backfills_and_the_next_reads_only_changes(plain: World) -> None:
    ids = [plain.snow.create() for _ in range(7)]  # three pages of three
    result = poll_connection(plain.ctx, "acme-snow")
    assert (result.pages, result.seen, result.counts["created"]) == (3, 7, 7)
    assert stored_ids(plain) == sorted(ids) and plain.snow.reads == 7
    assert watermark(plain) == plain.snow.tickets[ids[-1]]["updated"]
    assert isinstance(plain.ctx.queue, RecordingQueue) and plain.ctx.queue.of("ingest") == []  # stored, not queued
    # Re-reading the newest page (the watermark is inclusive): equal to the store, nothing read or written
    again = poll_connection(plain.ctx, "acme-snow")
    assert again.seen >= 1 and again.stored == 0 and again.counts["unchanged"] == again.seen
    assert plain.snow.reads == 7
    plain.snow.change(ids[2], state="in_progress")
    changed = poll_connection(plain.ctx, "acme-snow")
    assert (changed.counts["updated"], plain.snow.reads) == (1, 8)
    stored = plain.ticket(f"acme-snow:{ids[2]}")
    assert stored is not None and stored.status == "in_progress"
    with plain.db.session() as s:
        runs = list(s.scalars(sa.select(Run).where(Run.kind == "poll").order_by(Run.id)))
    assert [r.counts.get("created", 0) + r.counts.get("updated", 0) for r in runs] == [7, 0, 1]
    assert {r.status for r in runs} == {"ok"}


def test_a_poll_failing_between_pages_keeps_what_it_committed_and_loses_nothing(plain: World) -> None:
    ids = [plain.snow.create() for _ in range(7)]

    def outage() -> None:
        raise RetryLaterError("503 from the vendor")

    plain.snow.fail("between_pages", lambda: None, outage)  # page 1 ok, fails after page 2
    with pytest.raises(RetryLaterError):
        poll_connection(plain.ctx, "acme-snow")
    # The watermark covers exactly the two committed pages, whose tickets are stored
    assert watermark(plain) == plain.snow.tickets[ids[5]]["updated"]
    assert stored_ids(plain) == sorted(ids[:6])
    with plain.db.session() as s:
        assert s.scalars(sa.select(Run)).one().status == "failed"
    # The next poll resumes from there: every ticket is stored, each read once
    assert poll_connection(plain.ctx, "acme-snow").counts["created"] == 1
    assert stored_ids(plain) == sorted(ids) and plain.snow.reads == 7


def test_a_second_change_within_the_same_second_is_still_picked_up(plain: World) -> None:
    ticket_id = plain.snow.create()
    poll_connection(plain.ctx, "acme-snow")
    plain.snow.tickets[ticket_id]["title"] = "Printer offline again"  # vendor time did not move (1 s resolution)
    assert poll_connection(plain.ctx, "acme-snow").counts["updated"] == 1


def test_records_older_than_the_stored_copy_are_neither_read_nor_stored(plain: World) -> None:
    ticket_id = plain.snow.create()
    stale = dict(plain.snow.tickets[ticket_id])
    plain.snow.change(ticket_id, state="in_progress")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    plain.snow.tickets[ticket_id] = stale  # a lagging list endpoint
    result = poll_connection(plain.ctx, "acme-snow")
    assert (result.counts["stale"], result.stored, plain.snow.reads) == (1, 0, 1)
    stored = plain.ticket(f"acme-snow:{ticket_id}")
    assert stored is not None and stored.status == "in_progress"


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
    assert plain.snow.reads == 1


def test_the_backfill_stores_open_tickets_of_any_age_and_closed_ones_within_backfill_since(plain: World) -> None:
    old = (T0 - timedelta(days=200)).isoformat()
    old_open = plain.snow.create(state="in_progress", created=old, updated=old)
    old_closed = plain.snow.create(state="closed", created=old, updated=old)
    recent_closed = plain.snow.create(state="closed")
    result = poll_connection(plain.ctx, "acme-snow")
    assert stored_ids(plain) == sorted([old_open, recent_closed])
    assert (result.counts["outside"], result.counts["created"], plain.snow.reads) == (1, 2, 2)
    # `backfill_since: all` stores everything
    plain.ctx.settings.connection("acme-snow").backfill_since = None
    with plain.db.transaction() as s:
        s.execute(sa.text("DELETE FROM sync_state"))
    poll_connection(plain.ctx, "acme-snow")
    assert old_closed in stored_ids(plain)


class Throttled:
    """Raises RateLimitedError from the fake's hooks when told to."""

    def __init__(self, retry_after: float = 7.0) -> None:
        self.retry_after = retry_after

    def __call__(self) -> None:
        raise RateLimitedError("budget spent", retry_after=self.retry_after)


def test_a_spent_budget_paces_the_poll_which_waits_and_goes_on(plain: World) -> None:
    ids = [plain.snow.create() for _ in range(7)]
    # The budget runs out after the first list page, and twice while reading tickets
    plain.snow.fail("between_pages", Throttled(7.0))
    plain.snow.fail("get_ticket", lambda: None, Throttled(3.0), Throttled(2.0))
    waits: list[tuple[str, float]] = []
    slept: list[float] = []
    pacer = Pacer(on_wait=lambda name, seconds: waits.append((name, seconds)), sleep=slept.append)
    result = poll_connection(plain.ctx, "acme-snow", pacer=pacer)
    assert stored_ids(plain) == sorted(ids) and result.counts.get("failed", 0) == 0
    assert sorted(slept) == [2.0, 3.0, 7.0] and {name for name, _ in waits} == {"acme-snow"}
    assert plain.snow.reads == 7  # every ticket read exactly once: the waits repeated nothing


def test_a_poll_job_hands_the_wait_back_after_storing_what_it_read(plain: World) -> None:
    ids = [plain.snow.create() for _ in range(7)]
    plain.snow.fail("get_ticket", lambda: None, lambda: None, lambda: None, lambda: None, Throttled(30.0))
    with pytest.raises(RateLimitedError):
        poll_connection(plain.ctx, "acme-snow", pacer=Pacer(inline=False))
    assert stored_ids(plain) == sorted(ids[:4])  # page 1 whole, and what page 2 read before the budget ran out
    assert watermark(plain) == plain.snow.tickets[ids[2]]["updated"]  # covers page 1 only
    poll_connection(plain.ctx, "acme-snow")
    assert stored_ids(plain) == sorted(ids) and plain.snow.reads == 7  # nothing was read twice


def test_a_poll_jobs_time_slice_ends_it_part_way_through_a_page_with_what_it_read_stored(plain: World) -> None:
    ids = [plain.snow.create() for _ in range(3)]  # one page
    now = [0.0]

    def slow() -> None:  # reading the second ticket takes the job past its slice
        now[0] = 61.0

    plain.snow.fail("get_ticket", lambda: None, slow)
    with pytest.raises(SliceEndedError):
        poll_connection(plain.ctx, "acme-snow", pacer=Pacer(inline=False, deadline=60.0, clock=lambda: now[0]))
    assert stored_ids(plain) == sorted(ids[:2]) and watermark(plain) is None
    assert poll_connection(plain.ctx, "acme-snow").counts["created"] == 1 and plain.snow.reads == 3


def test_a_wait_past_the_time_limit_stops_the_run_with_a_clear_message(plain: World) -> None:
    plain.snow.create()
    plain.snow.fail("get_ticket", Throttled(3600.0))
    with pytest.raises(RunTimeLimitError, match="after this run's time limit"):
        poll_connection(plain.ctx, "acme-snow", pacer=Pacer.within(60.0))


def test_one_record_the_vendor_refuses_or_the_mapping_cannot_read_fails_alone(plain: World) -> None:
    ids = [plain.snow.create() for _ in range(3)]  # one page
    plain.snow.broken[ids[0]] = PermanentError("no access to this ticket", status=403)

    class NoId(FakeConnector):  # its full record of ids[1] lacks the id the mapping needs
        def get_ticket(self, external_id: str) -> RawRecord:
            raw = super().get_ticket(external_id)
            return {k: v for k, v in raw.items() if k != "id"} if external_id == ids[1] else raw

        def external_id_of(self, record: RawRecord) -> str:
            return str(record.get("id") or str(record["number"]).rsplit("-", 1)[1])

    plain.ctx.connector_factory = lambda conn: NoId(conn, plain.snow)
    plain.ctx._connectors.clear()
    result = poll_connection(plain.ctx, "acme-snow")
    assert stored_ids(plain) == [ids[2]] and result.counts["failed"] == 2
    with plain.db.session() as s:
        letters = {tuple(d.args): d.error["message"] for d in s.scalars(sa.select(DeadLetter))}
    assert set(letters) == {("acme-snow", ids[0]), ("acme-snow", ids[1])}
    assert "no access" in letters[("acme-snow", ids[0])] and "no id" in letters[("acme-snow", ids[1])]


@pytest.fixture
def both(tmp_path: Path, db: Database) -> Iterator[World]:
    """The pipeline without a broker, on SQLite and PostgreSQL."""
    made = make_world(tmp_path, db, RecordingQueue(), None)
    yield made
    made.ctx.close()


@pytest.fixture
def on_postgres(tmp_path: Path, postgres_url: str) -> Iterator[World]:
    """The pipeline without a broker, on PostgreSQL."""
    upgrade(postgres_url)
    made = make_world(tmp_path, Database(postgres_url), RecordingQueue(), None)
    yield made
    made.ctx.close()


def test_a_nul_character_is_removed_with_a_finding_and_stops_nothing(both: World) -> None:
    # A NUL in a subject (seen in Freshservice) used to stop every reconcile of the connection on PostgreSQL
    ids = [both.snow.create() for _ in range(3)]
    both.snow.change(ids[1], title="VPN\x00 drops", body="line one\x00line two")
    result = poll_connection(both.ctx, "acme-snow")
    assert result.counts["created"] == 3 and result.counts.get("failed", 0) == 0
    stored = both.ticket(f"acme-snow:{ids[1]}")
    assert stored is not None and stored.summary == "VPN drops" and stored.description == "line oneline two"
    with both.db.session() as s:
        codes = sorted(s.scalars(sa.select(FindingRow.code).where(FindingRow.ticket_key == f"acme-snow:{ids[1]}")))
        raws = [r["title"] for r in s.scalars(sa.select(RawSnapshot.raw))]
    assert codes == ["mapping.unstorable_character.raw.body", "mapping.unstorable_character.raw.title"]
    assert "VPN drops" in raws


@pytest.mark.integration
def test_a_value_the_database_still_refuses_fails_only_its_ticket(on_postgres: World) -> None:
    world = on_postgres
    ids = [world.snow.create() for _ in range(3)]
    world.snow.change(ids[2], number="N" * 150)  # the number column holds 100 characters: PostgreSQL refuses more
    result = poll_connection(world.ctx, "acme-snow")
    assert stored_ids(world) == sorted(ids[:2]) and result.counts["failed"] == 1
    with world.db.session() as s:
        [letter] = s.scalars(sa.select(DeadLetter)).all()
    assert letter.args == ["acme-snow", ids[2]] and "refused" in letter.error["message"]
    assert watermark(world) == world.snow.tickets[ids[2]]["updated"]  # the page is done: the watermark moved


def test_deliveries_a_page_covers_are_closed(plain: World) -> None:
    from psabridge.store import inbox

    ticket_id = plain.snow.create()
    with plain.db.transaction() as s:
        inbox.record_delivery(s, "acme-snow", "hook-1", external_id=ticket_id, event="updated")
    poll_connection(plain.ctx, "acme-snow")
    with plain.db.session() as s:
        assert s.scalars(sa.select(InboxDelivery.status)).all() == ["done"]
