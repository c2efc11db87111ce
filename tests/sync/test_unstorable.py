"""Strings a database cannot store in a vendor record: cleaned before storing, with a finding naming the field; one
bad record is a per-ticket failure at worst, never a connection-wide one (polls, reconcile and webhook ingests keep
going), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from psabridge.store import Database
from psabridge.store.models import FindingRow, RawSnapshot
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.poll import poll_connection
from psabridge.sync.reconcile import reconcile
from psabridge.sync.scrub import scrub_record

from .conftest import RecordingQueue, World, make_world

CUT_EMOJI = "VPN down \ud83d again"  # half of a UTF-16 pair (an emoji cut in two): UTF-8 cannot encode it


@pytest.fixture
def both(tmp_path: Path, db: Database) -> Iterator[World]:
    """The pipeline without a broker, on SQLite and PostgreSQL."""
    made = make_world(tmp_path, db, RecordingQueue(), None)
    yield made
    made.ctx.close()


def codes_of(world: World, key: str) -> list[str]:
    with world.db.session() as s:
        return sorted(s.scalars(sa.select(FindingRow.code).where(FindingRow.ticket_key == key)))


def test_half_a_surrogate_pair_is_replaced_with_a_finding_and_the_poll_goes_on(both: World) -> None:
    ids = [both.snow.create() for _ in range(3)]
    both.snow.change(ids[1], title=CUT_EMOJI, category="Net\x00work")
    result = poll_connection(both.ctx, "acme-snow")
    assert result.counts["created"] == 3 and result.counts.get("failed", 0) == 0
    stored = both.ticket(f"acme-snow:{ids[1]}")
    assert stored is not None and stored.summary == "VPN down \ufffd again" and stored.category == "Network"
    assert codes_of(both, f"acme-snow:{ids[1]}") == [
        "mapping.unstorable_character.raw.category",
        "mapping.unstorable_character.raw.title",
    ]
    with both.db.session() as s:
        assert "VPN down \ufffd again" in [r["title"] for r in s.scalars(sa.select(RawSnapshot.raw))]


def test_a_webhook_ingest_cleans_the_record_too(both: World) -> None:
    ticket_id = both.snow.create(title="Printer\x00 jam", body=CUT_EMOJI)
    ingest_ticket(both.ctx, "acme-snow", ticket_id)
    stored = both.ticket(f"acme-snow:{ticket_id}")
    assert stored is not None and (stored.summary, stored.description) == ("Printer jam", "VPN down \ufffd again")
    assert codes_of(both, f"acme-snow:{ticket_id}") == [
        "mapping.unstorable_character.raw.body",
        "mapping.unstorable_character.raw.title",
    ]


def test_reconcile_stores_every_ticket_around_one_with_unstorable_text(both: World) -> None:
    ids = [both.snow.create() for _ in range(4)]
    both.snow.change(ids[2], title=CUT_EMOJI + "\x00")
    report = reconcile(both.ctx, connections=["acme-snow"])
    counts = report.connections["acme-snow"]
    assert (counts.created, counts.failed) == (4, 0)
    stored = both.ticket(f"acme-snow:{ids[2]}")
    assert stored is not None and stored.summary == "VPN down \ufffd again"


def test_keys_and_nested_values_are_cleaned_and_a_clean_record_is_returned_as_is() -> None:
    clean = {"title": "ok", "notes": [{"text": "fine ✓"}]}
    assert scrub_record(clean) == (clean, []) and scrub_record(clean)[0] is clean
    dirty = {"ti\x00tle": "x", "notes": [{"text": "a\ud800b"}]}
    cleaned, paths = scrub_record(dirty)
    assert cleaned == {"title": "x", "notes": [{"text": "a\ufffdb"}]}
    assert paths == ["'ti\\x00tle'", "notes[0].text"]
