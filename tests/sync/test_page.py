"""Ingesting a list page: a constant number of statements per page, safe next to a webhook ingest without a ticket
lock, and a ticket whose write-back awaits its echo is left to its own ingest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from psabridge.connectors.base import PageCompletion
from psabridge.model import SetFields
from psabridge.store import Database
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.outbox import dispatch_action
from psabridge.sync.pacing import Pacer
from psabridge.sync.page import ingest_page
from psabridge.sync.poll import poll_connection
from psabridge.vendordata import RawRecord

from .conftest import RecordingQueue, World, make_world
from .fakes import FakeConnector


@pytest.fixture
def both(tmp_path: Path, db: Database) -> Iterator[World]:
    """The pipeline without a broker, on SQLite and PostgreSQL."""
    made = make_world(tmp_path, db, RecordingQueue(), None)
    yield made
    made.ctx.close()


def paged(world: World, size: int) -> None:
    """The ServiceNow fake lists pages of ``size``."""
    world.ctx.connector_factory = lambda conn: FakeConnector(conn, world.snow if "snow" in conn.name else world.cw,
                                                             page_size=size)  # fmt: skip
    world.ctx._connectors.clear()


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    """Every SQL statement sent while the body runs (an executemany counts once)."""
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def test_a_backfill_page_costs_the_same_statements_whatever_its_size(both: World) -> None:
    per_page = []
    for size in (10, 60):
        with both.db.transaction() as s:  # a fresh start: no watermark, nothing stored
            for table in ("tickets", "raw_snapshots", "sync_state", "findings", "runs"):
                s.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names
        both.snow.tickets.clear()
        for _ in range(size):
            both.snow.create()
        paged(both, size)
        with counting(both.db) as sent:
            result = poll_connection(both.ctx, "acme-snow")
        assert (result.pages, result.counts["created"]) == (1, size)
        per_page.append(len(sent))
    assert per_page[0] == per_page[1], per_page
    # and a page that changed nothing (listed again from the start) costs one query for its keys and the poll's own
    # bookkeeping, nothing per ticket
    with both.db.transaction() as s:
        s.execute(sa.text("DELETE FROM sync_state"))
    with counting(both.db) as sent:
        again = poll_connection(both.ctx, "acme-snow")
    tickets = [statement for statement in sent if " tickets" in statement or "raw_snapshots" in statement]
    assert again.counts["unchanged"] == 60 and len(tickets) == 1 and tickets[0].startswith("SELECT")


def test_a_webhook_ingest_between_reading_and_storing_a_page_is_never_overwritten(both: World) -> None:
    ticket_id = both.snow.create()
    ingest_ticket(both.ctx, "acme-snow", ticket_id)
    both.snow.change(ticket_id, state="in_progress")  # v2: what the page will read

    class Racing(FakeConnector):
        def complete_page(self, records: list[RawRecord], stored: Mapping[str, RawRecord]) -> PageCompletion:
            done = super().complete_page(records, stored)
            # after the page was read, before it is stored: a person changes it again and its webhook is ingested
            both.snow.change(ticket_id, state="on_hold")  # v3
            ingest_ticket(both.ctx, "acme-snow", ticket_id)
            return done

    both.ctx.connector_factory = lambda conn: Racing(conn, both.snow)
    both.ctx._connectors.clear()
    record = {k: v for k, v in both.snow.tickets[ticket_id].items() if k not in ("notes", "time")}  # as listed
    result = ingest_page(both.ctx, "acme-snow", [record], pacer=Pacer(), listed_at=both.ctx.now())
    assert [r.outcome for r in result.results] == ["stale"]
    stored = both.ticket(f"acme-snow:{ticket_id}")
    assert stored is not None and stored.status == "on_hold"


def test_a_ticket_awaiting_the_echo_of_our_write_is_left_to_its_own_ingest(plain: World) -> None:
    ticket_id = plain.snow.create()
    poll_connection(plain.ctx, "acme-snow")
    key = f"acme-snow:{ticket_id}"
    plain.emit([SetFields(ticket_key=key, target="acme-snow", origin="rules.t", fields={"queue": "Net"})])
    queue = plain.ctx.queue
    assert isinstance(queue, RecordingQueue)
    [(outbox_id,)] = queue.of("dispatch")
    dispatch_action(plain.ctx, outbox_id)  # our write lands; its echo is what the next page lists
    queue.calls.clear()
    result = poll_connection(plain.ctx, "acme-snow")
    assert result.counts["deferred"] == 1 and queue.of("ingest") == [("acme-snow", ticket_id)]
    # the ticket's own ingest recognises the echo (the written values were not eaten by the page)
    assert ingest_ticket(plain.ctx, "acme-snow", ticket_id).outcome == "echo"
    assert poll_connection(plain.ctx, "acme-snow").counts.get("deferred", 0) == 0


def test_a_connector_that_completes_pages_in_bulk_gets_each_page_whole(plain: World) -> None:
    # Vendors override read_full (sub-resources in bulk for the page): completing such a connector ticket by ticket
    # turned its two bulk reads per page into two reads per ticket (0.015 requests per ticket became 2.0).
    calls: list[int] = []

    class Bulk(FakeConnector):
        def read_full(self, records: list[RawRecord]) -> dict[str, RawRecord]:
            calls.append(len(records))
            return super().read_full(records)

    for _ in range(5):
        plain.snow.create()
    plain.ctx.connector_factory = lambda conn: Bulk(conn, plain.snow if "snow" in conn.name else plain.cw,
                                                    page_size=5)  # fmt: skip
    plain.ctx._connectors.clear()
    assert poll_connection(plain.ctx, "acme-snow").counts["created"] == 5
    assert calls == [5]


def test_a_full_record_is_scrubbed_where_it_differs_from_its_scrubbed_list_record() -> None:
    from psabridge.sync.page import _scrub_full

    listed = {"id": 7, "title": "VPN drops", "custom": {"site": "CHI"}}
    full = {**listed, "_psa_notes": [{"text": "ok"}]}
    assert _scrub_full(full, listed) == (full, [])
    dirty = {**listed, "_psa_notes": [{"text": "line\x00two"}]}
    cleaned, paths = _scrub_full(dirty, listed)
    assert paths == ["_psa_notes[0].text"] and cleaned["_psa_notes"] == [{"text": "linetwo"}]
    # a list field the connector replaced (not the list record's own value) is looked at too
    replaced = {**listed, "title": "VPN\x00 drops"}
    assert _scrub_full(replaced, listed)[1] == ["title"]
    assert _scrub_full({"id": 8, "title": "a\x00"}, None)[1] == ["title"]
