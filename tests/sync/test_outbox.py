"""The write-back dispatcher: exactly-once writes, a retry that may have landed looks first, every write audited,
failures classified and backed off (a back-off that survives a restart), a handler for every action type, and
pages and chat posts delivered to the (simulated) paging services."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import get_args

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from psabridge.errors import (
    BackingOffError,
    MappingError,
    NotDueError,
    PermanentError,
    RateLimitedError,
    RetryLaterError,
)
from psabridge.model import Action, AddNote, AddTimeEntry, PageOnCall, PostToChannel, SetFields
from psabridge.settings import Credentials, NotifierSettings
from psabridge.store import outbox, utcnow
from psabridge.store.models import FindingRow, OutboxAction
from psabridge.sync.context import set_context
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.outbox import HANDLERS, dispatch_action, moved_with
from psabridge.sync.recovery import recover
from psabridge_sandbox.runner import SandboxRunner

from .conftest import TEST_OPTIONS, RecordingQueue, World, restarted


def enqueue(world: World, action: object) -> int:
    with world.db.transaction() as s:
        keys = outbox.enqueue_actions(s, [action], now=world.ctx.now())  # type: ignore[list-item]
        [outbox_id] = outbox.outbox_ids(s, keys)
    return outbox_id


def row(world: World, outbox_id: int) -> OutboxAction:
    with world.db.session() as s:
        found = s.get(OutboxAction, outbox_id)
        assert found is not None
        return found


def when_due(world: World, outbox_id: int) -> None:
    """Move the world's clock to the row's next attempt (the back-off itself is tested below)."""
    due = row(world, outbox_id).next_attempt_at
    assert due is not None
    world.clock.until(due)


@pytest.fixture
def ticket(plain: World) -> str:
    ticket_id = plain.snow.create()
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    return ticket_id


def note(ticket_id: str, text: str = "Rebooted the switch") -> AddNote:
    return AddNote(ticket_key=f"acme-snow:{ticket_id}", target="acme-snow", origin="rules.test", text=text)


def test_a_note_is_written_once_with_its_marker_and_audited(plain: World, ticket: str) -> None:
    outbox_id = enqueue(plain, note(ticket))
    assert dispatch_action(plain.ctx, outbox_id).outcome == "written"
    assert dispatch_action(plain.ctx, outbox_id).outcome == "already_done"
    assert plain.snow.notes_with(ticket, "Rebooted the switch") == 1
    key = row(plain, outbox_id).idempotency_key
    assert plain.snow.notes_with(ticket, f"[psabridge:{key}]") == 1
    [audit] = plain.audit()
    assert (audit.outcome, audit.idempotency_key, audit.connection) == ("written", key, "acme-snow")


def test_a_retry_after_a_lost_answer_finds_the_note_instead_of_writing_it_again(plain: World, ticket: str) -> None:
    def lost() -> None:
        raise RetryLaterError("connection reset after the request was sent")

    plain.snow.fail("add_note", lost)
    outbox_id = enqueue(plain, note(ticket))
    with pytest.raises(RetryLaterError):
        dispatch_action(plain.ctx, outbox_id)
    assert row(plain, outbox_id).status == "sending"  # it may have landed
    when_due(plain, outbox_id)
    assert dispatch_action(plain.ctx, outbox_id).outcome == "found"
    assert plain.snow.notes_with(ticket, "Rebooted the switch") == 1
    assert [a.outcome for a in plain.audit()] == ["retry", "found"]


def test_a_ticket_s_write_backs_reach_the_vendor_in_the_order_they_were_planned(plain: World, ticket: str) -> None:
    # Three notes planned in order; the newest's message arrives first (another worker, a budget wait, a retry)
    first, second, third = (enqueue(plain, note(ticket, f"step {n}")) for n in (1, 2, 3))
    assert dispatch_action(plain.ctx, third).outcome == "written"
    texts = [n["text"].split("\n")[0] for n in plain.snow.tickets[ticket]["notes"]]
    assert texts == ["step 1", "step 2", "step 3"]  # the earlier ones went first, under the ticket's lock
    assert [dispatch_action(plain.ctx, i).outcome for i in (first, second)] == ["already_done", "already_done"]
    assert [plain.snow.notes_with(ticket, f"step {n}") for n in (1, 2, 3)] == [1, 1, 1]


def test_a_write_back_waits_for_an_earlier_one_of_its_ticket_that_backs_off(plain: World, ticket: str) -> None:
    def throttled() -> None:
        raise RateLimitedError("slow down", retry_after=7)

    plain.snow.fail("update_ticket", throttled)
    fields = SetFields(ticket_key=f"acme-snow:{ticket}", target="acme-snow", origin="r", fields={"priority": "P1"})
    first, second = enqueue(plain, fields), enqueue(plain, note(ticket, "step 2"))
    with pytest.raises(RateLimitedError):
        dispatch_action(plain.ctx, first)
    with pytest.raises(NotDueError, match=f"waits for outbox action {first}"):
        dispatch_action(plain.ctx, second)  # nothing overtakes the priority change while it waits
    assert (row(plain, second).status, plain.snow.notes_with(ticket, "step 2")) == ("pending", 0)
    when_due(plain, first)
    assert dispatch_action(plain.ctx, second).outcome == "written"
    assert [kind for kind, _ in plain.snow.writes] == ["update", "note"]
    assert dispatch_action(plain.ctx, first).outcome == "already_done"


def test_an_earlier_write_back_that_failed_for_good_does_not_hold_the_ticket_up(plain: World, ticket: str) -> None:
    def refused() -> None:
        raise PermanentError("note too long", status=400)

    plain.snow.fail("add_note", refused)
    first, second = enqueue(plain, note(ticket, "step 1")), enqueue(plain, note(ticket, "step 2"))
    assert dispatch_action(plain.ctx, second).outcome == "written"
    assert row(plain, first).status == "failed" and "too long" in (row(plain, first).last_error or "")
    assert dispatch_action(plain.ctx, first).outcome == "skipped"


def test_a_retried_time_entry_is_not_billed_twice(plain: World, ticket: str) -> None:
    def lost() -> None:
        raise RetryLaterError("gateway timeout")

    plain.snow.fail("add_time_entry", lost)
    action = AddTimeEntry(ticket_key=f"acme-snow:{ticket}", target="acme-snow", origin="rules.t", minutes=30)
    outbox_id = enqueue(plain, action)
    with pytest.raises(RetryLaterError):
        dispatch_action(plain.ctx, outbox_id)
    when_due(plain, outbox_id)
    assert dispatch_action(plain.ctx, outbox_id).outcome == "found"
    assert [t["minutes"] for t in plain.snow.tickets[ticket]["time"]] == [30]


def test_a_rate_limited_write_is_pending_again_and_a_refused_one_fails(plain: World, ticket: str) -> None:
    def throttled() -> None:
        raise RateLimitedError("slow down", retry_after=7)

    def refused() -> None:
        raise PermanentError("state is read-only", status=400)

    plain.snow.fail("update_ticket", throttled, refused)
    action = SetFields(ticket_key=f"acme-snow:{ticket}", target="acme-snow", origin="r", fields={"priority": "P1"})
    outbox_id = enqueue(plain, action)
    with pytest.raises(RateLimitedError):
        dispatch_action(plain.ctx, outbox_id)
    assert row(plain, outbox_id).status == "pending"
    # not sent again before the vendor's delay is over
    plain.clock.later(6.5)
    with pytest.raises(NotDueError):
        dispatch_action(plain.ctx, outbox_id)
    plain.clock.later(0.6)
    with pytest.raises(PermanentError):
        dispatch_action(plain.ctx, outbox_id)
    failed = row(plain, outbox_id)
    assert failed.status == "failed" and "read-only" in (failed.last_error or "")
    # a stale message for the failed row sends nothing (only a replay or reconcile reopens it)
    assert dispatch_action(plain.ctx, outbox_id).outcome == "skipped"
    assert [a.outcome for a in plain.audit()] == ["retry", "failed"]
    assert plain.snow.writes == []


def test_fields_the_mapping_cannot_write_are_refused_with_a_finding(plain: World, ticket: str) -> None:
    action = SetFields(ticket_key=f"acme-snow:{ticket}", target="acme-snow", origin="r", fields={"category": "net"})
    outbox_id = enqueue(plain, action)
    with pytest.raises(MappingError, match="category"):
        dispatch_action(plain.ctx, outbox_id)
    with plain.db.session() as s:
        finding = s.scalars(sa.select(FindingRow).where(FindingRow.rule == "writeback")).one()
    assert "category" in finding.code
    assert row(plain, outbox_id).status == "failed"


def test_a_transient_failure_backs_off_and_is_not_sent_again_before_its_time_even_after_a_restart(
    plain: World, ticket: str
) -> None:
    # Given back-off of a minute or more, a frozen clock and a vendor refusing the first write
    plain.ctx.options = replace(TEST_OPTIONS, min_backoff_ms=60_000, max_backoff_ms=600_000)
    failed_at = plain.clock.freeze()

    def unavailable() -> None:
        raise RetryLaterError("503 Service Unavailable")

    plain.snow.fail("update_ticket", unavailable)
    action = SetFields(ticket_key=f"acme-snow:{ticket}", target="acme-snow", origin="r", fields={"priority": "P2"})
    outbox_id = enqueue(plain, action)
    with pytest.raises(BackingOffError) as caught:
        dispatch_action(plain.ctx, outbox_id)
    # Then the row is due again after 2 x 60 s, jittered into its upper half
    failed = row(plain, outbox_id)
    assert failed.next_attempt_at is not None
    delay = (failed.next_attempt_at - failed_at).total_seconds()
    assert 60 <= delay <= 120 and caught.value.retry_after == pytest.approx(delay, abs=0.001)
    assert (failed.status, failed.attempts) == ("sending", 1)
    # When the process restarts before that: recovery queues the row, and its dispatch waits for its time
    plain.clock.later(delay - 1)
    queue = RecordingQueue()
    ctx = restarted(plain, queue)
    try:
        assert recover(ctx, polls=False).dispatches == 1 and queue.of("dispatch") == [(outbox_id,)]
        with pytest.raises(NotDueError) as early:
            dispatch_action(ctx, outbox_id)
        assert early.value.retry_after == pytest.approx(1.0, abs=0.001)
        assert plain.snow.writes == [] and row(plain, outbox_id).attempts == 1
        # and once it is due, it is sent
        plain.clock.later(1)
        assert dispatch_action(ctx, outbox_id).outcome == "written"
    finally:
        ctx.close()
    assert plain.snow.writes == [("update", ticket)] and plain.snow.tickets[ticket]["prio"] == "P2"
    assert (row(plain, outbox_id).status, row(plain, outbox_id).attempts) == ("done", 2)
    assert [a.outcome for a in plain.audit()] == ["retry", "written"]


def test_the_back_off_doubles_per_attempt_up_to_the_maximum(plain: World, ticket: str) -> None:
    plain.ctx.options = replace(TEST_OPTIONS, min_backoff_ms=10_000, max_backoff_ms=50_000)
    plain.clock.freeze()

    def unavailable() -> None:
        raise RetryLaterError("503 Service Unavailable")

    plain.snow.fail("update_ticket", *[unavailable] * 4)
    action = SetFields(ticket_key=f"acme-snow:{ticket}", target="acme-snow", origin="r", fields={"priority": "P2"})
    outbox_id = enqueue(plain, action)
    delays = []
    for _ in range(4):
        with pytest.raises(BackingOffError) as caught:
            dispatch_action(plain.ctx, outbox_id)
        delays.append(caught.value.retry_after)
        when_due(plain, outbox_id)
    bounds = [(10, 20), (20, 40), (25, 50), (25, 50)]  # seconds: 2^n x 10 s in its upper half, at most 50 s
    assert [lo <= d <= hi for d, (lo, hi) in zip(delays, bounds, strict=True)] == [True] * 4
    assert row(plain, outbox_id).attempts == 4 and plain.snow.writes == []


def test_an_early_message_re_schedules_itself_until_the_row_is_due(world: World) -> None:
    # Given a write-back that failed once and a process that died before its retry was sent
    ticket_id = world.snow.create()
    world.deliver("acme-snow", ticket_id)
    world.run()
    world.ctx.options = replace(TEST_OPTIONS, min_backoff_ms=400, max_backoff_ms=4_000)
    sent_at: list[datetime] = []

    def unavailable() -> None:
        raise RetryLaterError("503 Service Unavailable")

    world.snow.fail("update_ticket", unavailable, lambda: sent_at.append(utcnow()))
    action = SetFields(ticket_key=f"acme-snow:{ticket_id}", target="acme-snow", origin="r", fields={"priority": "P2"})
    outbox_id = enqueue(world, action)
    with pytest.raises(BackingOffError):
        dispatch_action(world.ctx, outbox_id)
    due = row(world, outbox_id).next_attempt_at
    assert due is not None
    # When a restarted process queues every unfinished write-back at once
    from psabridge.sync.actors import ActorQueue  # only once the broker is set up (the world fixture did)

    ctx = restarted(world, ActorQueue())
    set_context(ctx)
    try:
        assert recover(ctx, polls=False).dispatches == 1
        world.run()
    finally:
        set_context(world.ctx)
        ctx.close()
    # Then the write was made once, and not before its time
    assert len(sent_at) == 1 and sent_at[0] >= due
    assert [v for v, _ in world.snow.writes] == ["update"] and row(world, outbox_id).status == "done"


@pytest.mark.parametrize("declared", [True, False])
def test_a_field_the_mapping_declares_derived_changes_with_our_write_as_our_own(
    plain: World, ticket: str, declared: bool
) -> None:
    # Given a vendor that moves a ticket's category whenever its queue is written, declared in the mapping or not
    if declared:
        mapping = plain.ctx.settings.connection("acme-snow").mapping
        with open(mapping, "a", encoding="utf-8") as out:
            out.write("derived:\n  category: [queue]\n")
        assert plain.ctx.mappings.reload("acme-snow", force=True) == []
    plain.snow.fail("update_ticket", lambda: plain.snow.tickets[ticket].update(category="Networking"))
    action = SetFields(ticket_key=f"acme-snow:{ticket}", target="acme-snow", origin="r", fields={"queue": "Network"})
    assert dispatch_action(plain.ctx, enqueue(plain, action)).outcome == "written"
    # Then the change it caused is our echo when declared, and a person's change (evaluated) when not
    result = ingest_ticket(plain.ctx, "acme-snow", ticket)
    assert set(result.changed) == {"queue", "category"}
    assert (result.outcome, result.evaluated) == (("echo", False) if declared else ("updated", True))


def test_every_action_type_has_a_handler() -> None:
    [union, _] = get_args(Action)
    assert set(HANDLERS) == set(get_args(union))


def test_fields_the_vendor_derives_count_as_written_with_the_ones_they_derive_from() -> None:
    derived = {"priority": ("impact", "urgency"), "tier": ("queue",)}
    assert moved_with(["priority"], derived) == {"impact", "urgency"}
    assert moved_with(["urgency"], derived) == {"priority"}
    assert moved_with(["queue", "tier"], derived) == set()
    assert moved_with(["queue"], derived) == {"tier"}
    assert moved_with(["status"], derived) == set()


@pytest.fixture(scope="module")
def paging() -> Iterator[SandboxRunner]:
    with SandboxRunner(port_base=0, only=("pagerduty", "opsgenie", "chat")) as runner:
        yield runner


def notifier(name: str, kind: str, url: str, **secrets: str) -> NotifierSettings:
    made = NotifierSettings(name=name, kind=kind, base_url=url)  # type: ignore[arg-type]
    made._credentials = Credentials({k: SecretStr(v) for k, v in secrets.items()})
    return made


def test_pages_and_chat_posts_reach_the_paging_services(plain: World, ticket: str, paging: SandboxRunner) -> None:
    from psabridge_sandbox.credentials import OG_API_KEY, PD_ROUTING_KEY

    infos = paging.infos
    plain.ctx.settings.notifiers = [
        notifier("pagerduty", "pagerduty", infos["pagerduty"].base_url, routing_key=PD_ROUTING_KEY),
        notifier("opsgenie", "opsgenie", infos["opsgenie"].base_url, api_key=OG_API_KEY),
        notifier("incident", "slack", infos["chat"].base_url),
    ]
    key = f"acme-snow:{ticket}"
    actions = [
        PageOnCall(ticket_key=key, target="pagerduty", origin="rules.p1", summary="P1: email down", dedup_key=key),
        PageOnCall(ticket_key=key, target="opsgenie", origin="rules.p1", summary="P1: email down", dedup_key=key),
        PostToChannel(ticket_key=key, target="incident", origin="rules.p1", text="P1 at Acme: email down"),
    ]
    for action in actions:
        outbox_id = enqueue(plain, action)
        assert dispatch_action(plain.ctx, outbox_id).outcome == "written"
        assert dispatch_action(plain.ctx, outbox_id).outcome == "already_done"
    pd = paging.simulators["pagerduty"].state()
    assert [e["event_action"] for e in pd["events"]] == ["trigger"] and pd["alerts"][key]["status"] == "triggered"
    og = paging.simulators["opsgenie"].state()
    assert [a["alias"] for a in og["alerts"]] == [key]
    chat = paging.simulators["chat"].state()
    [message] = chat["messages"]
    assert message["channel"] == "incident" and message["text"].startswith("P1 at Acme: email down")
    assert {a.outcome for a in plain.audit()} == {"written"}
