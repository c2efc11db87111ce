"""Errors onto worker policy on the in-process broker: what is retried, how long it waits, what is dead-lettered,
and replaying a dead letter."""

from __future__ import annotations

import time
from pathlib import Path

import dramatiq
import pytest
import sqlalchemy as sa

from psabridge.errors import (
    AuthError,
    BackingOffError,
    NotDueError,
    PermanentError,
    RateLimitedError,
    RetryLaterError,
)
from psabridge.model import SetFields
from psabridge.rules import RulesRegistry
from psabridge.store import evaluations, inbox, outbox
from psabridge.store.models import DeadLetter, InboxDelivery, OutboxAction
from psabridge.sync.deadletters import list_dead_letters, replay
from psabridge.sync.policy import backoff_seconds, delays_as_retry, error_record, retry_when

from .conftest import TEST_OPTIONS, World


def dead(world: World) -> list[DeadLetter]:
    with world.db.session() as s:
        return list(s.scalars(sa.select(DeadLetter)))


def summary(world: World, ticket_id: str) -> str | None:
    """The stored summary of a ServiceNow ticket (None: not stored)."""
    stored = world.ticket(f"acme-snow:{ticket_id}")
    return stored.summary if stored is not None else None


def test_policy_table() -> None:
    decide = retry_when(3)
    assert not decide(0, AuthError("bad key"))
    assert not decide(0, PermanentError("rejected"))
    assert decide(2, RetryLaterError("503")) and not decide(3, RetryLaterError("503"))
    assert decide(0, ValueError("surprise"))
    with pytest.raises(dramatiq.Retry) as caught, delays_as_retry():
        raise RateLimitedError("slow down", retry_after=2.5)
    assert caught.value.delay == 2500
    assert decide(10, caught.value)  # rate limits get more attempts than other errors


def test_a_write_backs_back_off_and_its_early_messages_are_retried_with_their_own_delay() -> None:
    decide = retry_when(3)

    def backing_off() -> None:
        try:
            raise TimeoutError("read timed out")
        except TimeoutError as exc:
            raise BackingOffError("read timed out (retried in 0.250s)", retry_after=0.25) from exc

    with pytest.raises(dramatiq.Retry) as backing, delays_as_retry():
        backing_off()
    assert backing.value.delay == 250
    assert decide(2, backing.value) and not decide(3, backing.value)  # a failed attempt: counted like any other
    assert error_record(backing.value)["type"] == "TimeoutError"  # the failure behind the back-off is kept
    with pytest.raises(dramatiq.Retry) as early, delays_as_retry():
        raise NotDueError("outbox action 7 is not due until ...", retry_after=0.0004)
    assert early.value.delay == 1 and decide(10, early.value)  # not a failure: more attempts, like rate limits


def test_back_off_doubles_per_attempt_with_jitter_up_to_the_maximum_and_honours_retry_after() -> None:
    def seconds(attempts: int, rand: float, retry_after: float | None = None) -> float:
        return backoff_seconds(
            attempts, min_backoff_ms=1_000, max_backoff_ms=300_000, retry_after=retry_after, rand=lambda: rand
        )

    assert [seconds(n, 0.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert [seconds(n, 1.0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert seconds(20, 0.0) == 150.0 and seconds(20, 1.0) == 300.0
    assert seconds(1, 0.5, retry_after=42.0) == 42.0 and seconds(1, 0.0, retry_after=0.0) == 1.0


def test_a_permanent_error_is_not_retried_and_is_dead_lettered(world: World) -> None:
    def refused() -> None:
        raise PermanentError("this ticket is locked", status=403)

    world.snow.fail("get_ticket", refused, refused)
    ticket_id = world.snow.create()
    with world.db.transaction() as s:
        inbox.record_delivery(s, "acme-snow", "hook-1", external_id=ticket_id, event="updated")
    world.deliver("acme-snow", ticket_id)
    world.run(fail_fast=False)
    [letter] = dead(world)
    assert (letter.actor, letter.args, letter.attempts) == ("ingest", ["acme-snow", ticket_id], 1)
    assert letter.error["type"] == "PermanentError" and "locked" in letter.error["message"]
    assert len(world.snow.faults["get_ticket"]) == 1  # tried once, not again
    with world.db.session() as s:
        assert s.scalars(sa.select(InboxDelivery)).one().status == "failed"  # recovery will not resend a poison job


def test_transient_errors_back_off_and_then_succeed(world: World) -> None:
    def busy() -> None:
        raise RetryLaterError("503 Service Unavailable")

    world.snow.fail("get_ticket", busy, busy)
    ticket_id = world.snow.create()
    world.deliver("acme-snow", ticket_id)
    world.run()
    assert summary(world, ticket_id) == "Printer offline" and dead(world) == []
    assert world.snow.faults["get_ticket"] == [] and world.snow.reads == 1  # both refusals used, then one good read


def test_a_rate_limited_job_waits_the_vendors_delay(world: World) -> None:
    def throttled() -> None:
        raise RateLimitedError("429", retry_after=1.2)

    world.snow.fail("get_ticket", throttled)
    ticket_id = world.snow.create()
    started = time.monotonic()
    world.deliver("acme-snow", ticket_id)
    world.run()
    assert time.monotonic() - started >= 1.2  # the back-off alone would be milliseconds in these tests
    assert summary(world, ticket_id) == "Printer offline" and dead(world) == []


def test_retries_exhausted_dead_letter_the_job_and_replay_runs_it_again(world: World) -> None:
    def down() -> None:
        raise RetryLaterError("connection refused")

    attempts = TEST_OPTIONS.max_retries + 1
    world.snow.fail("get_ticket", *[down] * attempts)
    ticket_id = world.snow.create()
    world.deliver("acme-snow", ticket_id)
    world.run(fail_fast=False)
    [letter] = list_dead_letters(world.db)
    assert letter.attempts == attempts and letter.error["type"] == "RetryLaterError"
    assert world.ticket(f"acme-snow:{ticket_id}") is None
    # When the vendor is back and an operator replays it
    assert replay(world.ctx, [letter.id]) == [letter.id]
    world.run()
    assert summary(world, ticket_id) == "Printer offline"
    assert list_dead_letters(world.db) == []
    [replayed] = list_dead_letters(world.db, include_replayed=True)
    assert replayed.id == letter.id
    assert replayed.replayed_at is not None and replayed.replayed_at >= letter.failed_at


def test_a_dead_write_back_is_marked_dead_and_replay_sends_it_once(world: World) -> None:
    ticket_id = world.snow.create()
    world.deliver("acme-snow", ticket_id)
    world.run()

    def down() -> None:
        raise RetryLaterError("connection refused before sending")

    world.snow.fail("update_ticket", *[down] * (TEST_OPTIONS.max_retries + 1))
    action = SetFields(ticket_key=f"acme-snow:{ticket_id}", target="acme-snow", origin="r", fields={"priority": "P2"})
    with world.db.transaction() as s:
        [outbox_id] = outbox.outbox_ids(s, outbox.enqueue_actions(s, [action]))
    world.ctx.queue.dispatch(outbox_id)
    world.run(fail_fast=False)
    with world.db.session() as s:
        assert s.get(OutboxAction, outbox_id).status == "dead"  # type: ignore[union-attr]
    [letter] = list_dead_letters(world.db)
    replay(world.ctx, [letter.id])
    world.run()
    with world.db.session() as s:
        assert s.get(OutboxAction, outbox_id).status == "done"  # type: ignore[union-attr]
    assert world.snow.tickets[ticket_id]["prio"] == "P2" and [v for v, _ in world.snow.writes] == ["update"]


def test_a_ticket_that_vanished_is_not_an_error(world: World) -> None:
    world.deliver("acme-snow", "404")
    world.run()
    assert dead(world) == []  # the fake answered NotFoundError: the ticket is gone, nothing to retry


def test_replaying_an_unknown_dead_letter_says_so(world: World) -> None:
    with pytest.raises(LookupError, match="no dead letter 999"):
        replay(world.ctx, [999])


def test_a_poison_event_blocks_neither_other_tickets_nor_later_events_of_its_own(world: World) -> None:
    poison, other = world.snow.create(), world.snow.create()
    world.snow.broken[poison] = PermanentError("malformed record", status=500)
    world.deliver("acme-snow", poison)
    world.deliver("acme-snow", other)
    world.run(fail_fast=False)
    assert summary(world, other) == "Printer offline"
    assert [(d.actor, d.args, d.error["type"]) for d in dead(world)] == [
        ("ingest", ["acme-snow", poison], "PermanentError")
    ]
    # the vendor fixed the record: the next change notification of the same ticket goes through
    del world.snow.broken[poison]
    world.snow.change(poison, title="Printer offline (fixed record)")
    world.deliver("acme-snow", poison)
    world.run()
    assert summary(world, poison) == "Printer offline (fixed record)"


def test_an_evaluation_that_cannot_run_is_dead_lettered_parked_and_replayed(world: World, tmp_path: Path) -> None:
    # Given a rules file that never loaded (no last good rules): the evaluation is a configuration error
    broken = tmp_path / "rules-broken.yaml"
    broken.write_text("rules: {priority: {enabled: maybe}}\n")
    good = world.ctx.rules
    world.ctx.rules = RulesRegistry(broken, tenants=world.ctx.settings.tenants)
    ticket_id = world.snow.create()
    key = f"acme-snow:{ticket_id}"
    world.deliver("acme-snow", ticket_id)
    world.run(fail_fast=False)
    [letter] = dead(world)
    assert (letter.actor, letter.args, letter.attempts) == ("evaluate", [key], 1)
    assert "enabled" in letter.error["message"]
    with world.db.session() as s:
        assert evaluations.needing_evaluation(s) == []  # parked: recovery does not resend a poison job
    # When the file is fixed and the dead letter replayed, the ticket is evaluated
    world.ctx.rules = good
    assert replay(world.ctx, [letter.id]) == [letter.id]
    world.run()
    with world.db.session() as s:
        assert evaluations.evaluation_record(s, key).evaluated_at is not None
        assert evaluations.needing_evaluation(s) == []
