"""The connector contract: what every vendor connector must do against its simulator, over real HTTP on loopback.

Parametrized over ``vendors.HARNESSES`` (see harness.py); tests carry a ``harness`` argument that the folder's
conftest fills in.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from psabridge.connectors.base import Connector, NewTimeEntry
from psabridge.errors import AuthError, NotFoundError, PermanentError, WebhookVerificationError
from psabridge.markers import marker_for
from psabridge.model import NoteKind
from psabridge.settings import Timeouts
from psabridge.vendordata import RawRecord

from .fixtures import StartVendor
from .harness import Served, VendorHarness, WebhookVariant, serve_vendor, ticket_ids


def some_ticket(served: Served) -> str:
    return sorted(served.tickets())[len(served.tickets()) // 2]


def requests_for(served: Served, connector: Connector, external_id: str) -> int:
    """How many requests ``get_ticket`` costs once caches are warm (the baseline for fault counts)."""
    connector.get_ticket(external_id)
    served.gate.reset()
    connector.get_ticket(external_id)
    count = len(served.gate.arrivals())
    served.gate.reset()
    return count


# --- reading ----------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_full_backfill_returns_every_ticket_exactly_once(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor(tickets=harness.backfill_tickets)
    connector = served.connector()

    found, watermark, _ = ticket_ids(iter(connector.iter_changes(None)), connector)

    expected = served.tickets()
    assert len(expected) == harness.backfill_tickets
    duplicates = sorted(i for i, count in Counter(found).items() if count > 1)
    assert duplicates == [], f"returned more than once: {duplicates[:10]}"
    assert set(found) == set(expected), f"missing: {sorted(set(expected) - set(found))[:10]}"
    assert watermark is not None


def test_an_incremental_run_returns_exactly_the_changed_tickets(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor(tickets=300)
    # No overlap window, so the only tickets that may come again are those updated at the watermark itself.
    connector = served.connector(overlap=timedelta(0))
    _, watermark, _ = ticket_ids(iter(connector.iter_changes(None)), connector)
    assert watermark is not None
    before = served.tickets()
    changed = sorted(before)[5::40]

    harness.change_tickets(served, changed)

    after = served.tickets()
    assert all(after[i] > before[i] for i in changed), "change_tickets must move the tickets' update time"
    found, _, _ = ticket_ids(iter(connector.iter_changes(watermark)), connector)
    assert len(found) == len(set(found))
    assert set(changed) <= set(found), f"changes not returned: {sorted(set(changed) - set(found))}"
    extras = {i for i in set(found) - set(changed) if after[i] < watermark}
    assert extras == set(), f"returned although unchanged since the watermark: {sorted(extras)[:10]}"


def test_records_changing_during_paging_are_not_lost(harness: VendorHarness, vendor: StartVendor) -> None:
    # Given a list served in many pages, while records are changed and created between pages
    served = vendor(tickets=400)
    connector = served.connector(page_size=50)
    before = served.tickets()
    served.control.set_faults({"profile": "churn"})

    # When a backfill runs, and then the next incremental run from its watermark (after the churn stopped)
    first, watermark, first_records = ticket_ids(iter(connector.iter_changes(None)), connector)
    served.control.set_faults({"profile": "none"})
    final = served.tickets()
    assert final != before, "the simulator did not change records while paging (call Simulator.between_pages)"
    _, _, second_records = ticket_ids(iter(connector.iter_changes(watermark)), connector)

    # Then every ticket's latest version was returned by one run or the other
    newest: dict[str, datetime] = {}
    for record in first_records + second_records:
        key, updated = connector.external_id_of(record), connector.updated_at_of(record)
        if updated is not None and (key not in newest or updated > newest[key]):
            newest[key] = updated
    lost = sorted(i for i, updated in final.items() if i not in newest or newest[i] < updated)
    assert lost == [], f"{len(lost)} changes lost, e.g. {lost[:10]}"
    # and within one run a record came again only as a newer version
    versions = Counter((connector.external_id_of(r), connector.updated_at_of(r)) for r in first_records)
    assert [key for key, count in versions.items() if count > 1] == []
    assert len(set(first)) >= len(before)


@dataclass
class Pass:
    """One sync pass as the sync engine makes it: each list page, completed against the store."""

    pages: list[list[str]] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # tickets whose full record the pass built
    counted: int = 0  # the requests the connector reported (pages and completions)
    sent: int = 0  # the requests that reached the simulator
    refused: int = 0  # of them, answered 429 or refused for a thread limit
    watermark: datetime | None = None


def sync_pass(served: Served, connector: Connector, store: dict[str, RawRecord], since: datetime | None) -> Pass:
    """List every changed page and complete it against ``store`` (which takes the full records built)."""
    served.gate.reset()
    done = Pass()
    for page in connector.iter_changes(since):
        ids = [connector.external_id_of(record) for record in page.records]
        completion = connector.complete_page(page.records, {i: store[i] for i in ids if i in store})
        store.update((connector.external_id_of(full), full) for full in completion.full)
        done.pages.append(ids)
        done.completed += [connector.external_id_of(full) for full in completion.full]
        done.counted += page.request_count + completion.request_count
        done.watermark = page.watermark if page.watermark is not None else done.watermark
    arrivals = served.gate.arrivals()
    done.sent = len(arrivals)
    done.refused = sum(1 for a in arrivals if a.status == 429 or (a.status == 500 and a.scripted is None))
    return done


def test_a_sync_costs_what_the_design_says(harness: VendorHarness, vendor: StartVendor) -> None:
    """Backfill, an incremental poll with one change, and a pass over unchanged data, requests counted.

    Each vendor's harness states the design's count (``design_requests``): a list request per page, bulk pages for
    the page's new or changed tickets, and per ticket only the reads the vendor forces. Counted against a sandbox
    without rate limits (the count does not depend on them, and the test stays short).
    """
    served = vendor(tickets=harness.count_tickets, limits=False)
    connector = served.connector(page_size=harness.count_page_size, rate_budget={"vendor_limits": False})
    store: dict[str, RawRecord] = {}

    backfill = sync_pass(served, connector, store, None)

    every = [i for page in backfill.pages for i in page]
    assert sorted(every) == sorted(served.tickets()) and len(store) == harness.count_tickets
    assert backfill.sent == backfill.counted, "request_count must count every request sent"
    assert backfill.sent <= harness.setup_requests + harness.design_requests(served, backfill.pages, every)
    assert len(backfill.pages) >= 2

    changed = sorted(served.tickets())[len(every) // 3]
    harness.change_tickets(served, [changed])
    poll = sync_pass(served, connector, store, backfill.watermark)

    assert poll.completed == [changed], "only the changed ticket is built again"
    assert poll.sent == poll.counted
    assert poll.sent <= harness.design_requests(served, poll.pages, {changed})

    again = sync_pass(served, connector, store, None)

    assert again.sent == again.counted == len(again.pages) == len(backfill.pages), "list pages only"
    assert again.refused == backfill.refused == poll.refused == 0


@pytest.mark.slow
def test_a_backfill_past_the_vendors_default_limits_causes_no_429(limited: VendorHarness, namespace: str) -> None:
    """A backfill that needs more of the vendor's per-minute limits than a minute holds waits for them instead."""
    assert limited.limited_tickets is not None
    with ExitStack() as stack:
        served = serve_vendor(limited, tickets=limited.limited_tickets, namespace=namespace, stack=stack)
        connector = served.connector()
        stack.callback(connector.close)
        store: dict[str, RawRecord] = {}

        backfill = sync_pass(served, connector, store, None)

        every = [i for page in backfill.pages for i in page]
        assert len(store) == len(every) == limited.limited_tickets
        assert backfill.refused == 0, "our own traffic must never be refused for the vendor's limits"
        assert (
            backfill.sent
            == backfill.counted
            <= limited.setup_requests + limited.design_requests(served, backfill.pages, every)
        )


# --- failures ---------------------------------------------------------------------------------------------------------


def test_a_429_waits_as_told(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor()
    connector = served.connector()
    external_id = some_ticket(served)
    baseline = requests_for(served, connector, external_id)

    served.gate.fail_next(status=429, message="Too Many Requests", headers={"Retry-After": "1"})
    connector.get_ticket(external_id)

    arrivals = served.gate.arrivals()
    assert len(arrivals) == baseline + 1
    refused, retried = arrivals[0], arrivals[1]
    assert (refused.scripted, refused.status) == ("error", 429)
    assert refused.answered_at is not None
    assert retried.at - refused.answered_at >= 1.0


def test_a_401_fails_at_once_with_a_configuration_error(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor()
    connector = served.connector(wrong_credentials=True)

    with pytest.raises(AuthError) as caught:
        connector.get_ticket(some_ticket(served))

    assert caught.value.connection == connector.name
    refused = [a for a in served.gate.arrivals() if a.status == 401]
    assert len(refused) == 1, f"expected exactly one refused request, saw {len(refused)}"


def test_5xx_are_retried_and_then_succeed(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor()
    connector = served.connector()
    external_id = some_ticket(served)
    baseline = requests_for(served, connector, external_id)

    served.gate.fail_next(2, status=503, message="Service Unavailable")
    record = connector.get_ticket(external_id)

    assert connector.external_id_of(record) == external_id
    arrivals = served.gate.arrivals()
    assert [a.status for a in arrivals[:2]] == [503, 503]
    assert len(arrivals) == baseline + 2


def test_timeouts_are_retried_and_then_succeed(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor()
    connector = served.connector(timeouts=Timeouts(connect=2.0, read=0.5))
    external_id = some_ticket(served)
    baseline = requests_for(served, connector, external_id)

    served.gate.hang_next(seconds=1.5)
    record = connector.get_ticket(external_id)

    assert connector.external_id_of(record) == external_id
    arrivals = served.gate.arrivals()
    assert arrivals[0].scripted == "hang"
    assert len(arrivals) == baseline + 1


def test_error_bodies_become_typed_errors_carrying_the_vendor_message(
    harness: VendorHarness, vendor: StartVendor
) -> None:
    served = vendor()
    connector = served.connector()
    external_id = some_ticket(served)
    text = f"contract check {uuid.uuid4().hex[:8]}: value not allowed"

    served.gate.fail_next(status=400, message=text, code="InvalidObject")
    with pytest.raises(PermanentError) as caught:
        connector.update_ticket(external_id, harness.update_patch())
    assert caught.value.vendor_message is not None
    assert text in caught.value.vendor_message
    assert caught.value.status == 400

    with pytest.raises(NotFoundError) as missing:
        connector.get_ticket(harness.missing_id())
    assert missing.value.connection == connector.name


# --- webhooks ---------------------------------------------------------------------------------------------------------


def test_a_correctly_signed_webhook_is_accepted(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor()
    connector = served.connector()
    external_id = some_ticket(served)
    delivery = harness.webhook(served, external_id, "valid")
    assert delivery is not None

    event = connector.parse_webhook(delivery.headers, delivery.body)

    assert event.external_id == external_id
    assert event.delivery_id


@pytest.mark.parametrize("variant", ["wrong", "missing"])
def test_a_webhook_signed_wrong_or_not_at_all_is_rejected(
    variant: WebhookVariant, harness: VendorHarness, vendor: StartVendor
) -> None:
    served = vendor()
    connector = served.connector()
    delivery = harness.webhook(served, some_ticket(served), variant)
    assert delivery is not None, f"{harness.id} must produce a {variant!r} delivery"

    with pytest.raises(WebhookVerificationError):
        connector.parse_webhook(delivery.headers, delivery.body)


def test_a_stale_or_replayed_webhook_cannot_act_twice(harness: VendorHarness, vendor: StartVendor) -> None:
    """Stale deliveries are refused where the vendor signs a time; elsewhere a replay keeps its delivery id.

    ConnectWise and Freshservice deliveries carry no signed time, so staleness cannot be judged there; what stops a
    replay is the inbox, which refuses a delivery id it has seen. The id must therefore be stable for the same body.
    """
    served = vendor()
    connector = served.connector()
    external_id = some_ticket(served)
    stale = harness.webhook(served, external_id, "stale")
    if stale is not None:
        with pytest.raises(WebhookVerificationError):
            connector.parse_webhook(stale.headers, stale.body)
        return
    valid = harness.webhook(served, external_id, "valid")
    assert valid is not None
    first = connector.parse_webhook(valid.headers, valid.body)
    replay = connector.parse_webhook(dict(valid.headers), bytes(valid.body))
    assert replay.delivery_id == first.delivery_id
    other = harness.webhook(served, external_id, "valid")
    assert other is not None
    # a different delivery gets a different id (two identical bodies are one event as far as anyone can tell)
    other_id = connector.parse_webhook(other.headers, other.body).delivery_id
    assert (other_id == first.delivery_id) == (other.body == valid.body)


# --- writes -----------------------------------------------------------------------------------------------------------


def test_an_update_lands_in_the_simulator(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor()
    connector = served.connector()
    external_id = some_ticket(served)
    patch = harness.update_patch()

    connector.update_ticket(external_id, patch)

    assert harness.patch_landed(served, external_id, patch), harness.stored_ticket(served, external_id)


def test_a_note_lands_in_the_simulator_with_its_marker(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor()
    connector = served.connector()
    external_id = some_ticket(served)
    marker = marker_for(f"contract-{uuid.uuid4().hex[:12]}")

    connector.add_note(external_id, "Checked the printer queue.", kind=NoteKind.INTERNAL, marker=marker)

    assert any(marker in t and "Checked the printer queue." in t for t in harness.note_texts(served, external_id))
    assert any(marker in json.dumps(note) for note in connector.list_notes(external_id))


def test_a_time_entry_lands_in_the_simulator_with_its_marker(harness: VendorHarness, vendor: StartVendor) -> None:
    served = vendor()
    connector = served.connector()
    external_id = some_ticket(served)
    marker = marker_for(f"contract-{uuid.uuid4().hex[:12]}")
    entry = NewTimeEntry(minutes=15, note="Remote session", started_at=datetime.now(UTC) - timedelta(hours=1))

    connector.add_time_entry(external_id, entry, marker=marker)

    assert any(marker in text for text in harness.time_entry_texts(served, external_id))


def test_a_created_ticket_lands_in_the_simulator_and_is_found_by_its_marker(
    harness: VendorHarness, vendor: StartVendor
) -> None:
    served = vendor()
    connector = served.connector()
    marker = marker_for(f"contract-{uuid.uuid4().hex[:12]}")

    created = connector.create_ticket(harness.new_ticket_fields(), marker=marker)

    external_id = connector.external_id_of(created)
    assert external_id in served.tickets()
    assert connector.find_by_marker(marker) == external_id
    assert connector.find_by_marker(marker_for(f"contract-{uuid.uuid4().hex[:12]}")) is None
