"""Pages and channel posts through the outbox, over the sandbox's PagerDuty and chat simulators: their own queue, no
ticket lock, a 400 refused for good and dead-lettered with the vendor's words, a 429 or 5xx retried until it lands
once, and a channel post whose answer was lost never posted again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from psabridge.connectors.http import HttpRuntime
from psabridge.connectors.notifier import get_notifier
from psabridge.errors import BackingOffError, PermanentError, RateLimitedError
from psabridge.model import AddNote, PageOnCall, PostToChannel
from psabridge.settings import Credentials, NotifierSettings
from psabridge.store import deadletters, outbox
from psabridge.store.outbox import OutboxStatus
from psabridge.sync.outbox import dispatch_action, queue_actions
from psabridge_sandbox.credentials import PD_ROUTING_KEY
from psabridge_sandbox.runner import SandboxRunner
from tests.connectors.scripted import LOST, REFUSED, ScriptedTransport, answer

from .conftest import World
from .test_outbox import enqueue, row, when_due

KEY = "acme-snow:INC0010001"


@pytest.fixture(scope="module")
def paging() -> Iterator[SandboxRunner]:
    with SandboxRunner(port_base=0, only=("pagerduty", "chat")) as runner:
        yield runner


def notifiers(world: World, paging: SandboxRunner, **pd_secrets: str) -> ScriptedTransport:
    """The world's notifiers on the sandbox, their requests through one scripted transport (no real sleeps)."""
    pd = NotifierSettings(name="pagerduty", kind="pagerduty", base_url=paging.infos["pagerduty"].base_url)
    pd._credentials = Credentials({k: SecretStr(v) for k, v in ({"routing_key": PD_ROUTING_KEY} | pd_secrets).items()})
    chat = NotifierSettings(name="incident", kind="slack", base_url=paging.infos["chat"].base_url)
    world.ctx.settings.notifiers = [pd, chat]
    transport = ScriptedTransport(httpx.HTTPTransport())
    runtime = HttpRuntime(transport=transport, sleep=lambda seconds: None, namespace=f"t-{uuid.uuid4().hex[:8]}")
    world.ctx.notifier_factory = lambda settings: get_notifier(settings, runtime=runtime)
    return transport


def page(key: str) -> PageOnCall:
    return PageOnCall(
        ticket_key=KEY, target="pagerduty", origin="rules.paging", summary="P1 #1: mail down", dedup_key=key
    )


def post(text: str) -> PostToChannel:
    return PostToChannel(ticket_key=KEY, target="incident", origin="rules.paging", text=text)


def incidents(paging: SandboxRunner, key: str) -> list[dict[str, Any]]:
    return [i for i in paging.simulators["pagerduty"].state()["incidents"] if i["dedup_key"] == key]


def messages(paging: SandboxRunner, text: str) -> list[str]:
    return [m["text"] for m in paging.simulators["chat"].state()["messages"] if text in m["text"]]


class _NoLocks:
    """Locks that refuse to be taken: pages and posts must not need the ticket's lock."""

    def hold(self, key: str) -> AbstractContextManager[None]:
        raise AssertionError(f"a page took the lock of {key}")

    def close(self) -> None:
        """Nothing to release."""


def test_pages_and_posts_go_to_the_notify_queue_and_need_no_ticket_lock(plain: World, paging: SandboxRunner) -> None:
    notifiers(plain, paging)
    key = f"psabridge:{KEY}#{uuid.uuid4().hex[:6]}"
    actions = [page(key), post(f"P1 {key}"), AddNote(ticket_key=KEY, target="acme-snow", origin="r", text="n")]
    with plain.db.transaction() as session:
        rows = outbox.outbox_rows(session, outbox.enqueue_actions(session, actions, now=plain.ctx.now()))
    queue_actions(plain.ctx, rows)
    assert [kind for kind, _ in plain.ctx.queue.calls] == ["notify", "notify", "dispatch"]  # type: ignore[attr-defined]
    real_locks, plain.ctx.locks = plain.ctx.locks, _NoLocks()  # type: ignore[assignment]
    try:
        for outbox_id, _, kind in rows[:2]:
            assert dispatch_action(plain.ctx, outbox_id).outcome == "written", kind
    finally:
        plain.ctx.locks = real_locks
    assert len(incidents(paging, key)) == 1 and len(messages(paging, f"P1 {key}")) == 1


def test_a_400_is_refused_for_good_and_dead_lettered_with_pagerdutys_words(world: World, paging: SandboxRunner) -> None:
    notifiers(world, paging, routing_key="0" * 32)
    key = f"psabridge:{KEY}#{uuid.uuid4().hex[:6]}"
    with world.db.transaction() as session:
        rows = outbox.outbox_rows(session, outbox.enqueue_actions(session, [page(key)], now=world.ctx.now()))
    queue_actions(world.ctx, rows)
    world.run(fail_fast=False)
    [(outbox_id, _, _)] = rows
    assert row(world, outbox_id).status == OutboxStatus.FAILED
    assert row(world, outbox_id).attempts == 1  # never retried
    with world.db.session() as session:
        [dead] = deadletters.list_dead_letters(session)
    assert dead.actor == "notify" and dead.args[0] == outbox_id
    assert "Event object is invalid: Invalid routing key" in str(dead.error)
    assert incidents(paging, key) == []


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (answer(429), OutboxStatus.PENDING),  # refused: nothing landed
        (REFUSED, OutboxStatus.PENDING),
        (answer(503), OutboxStatus.SENDING),  # may have landed: harmless for a page, its key dedups
        (LOST, OutboxStatus.SENDING),
    ],
)
def test_a_page_that_fails_is_retried_when_due_and_lands_once(
    plain: World, paging: SandboxRunner, failure: Any, status: OutboxStatus
) -> None:
    transport = notifiers(plain, paging)
    transport.add([failure] * 4)  # every inline retry of the first attempt fails too
    key = f"psabridge:{KEY}#{uuid.uuid4().hex[:6]}"
    outbox_id = enqueue(plain, page(key))
    with pytest.raises((RateLimitedError, BackingOffError)):
        dispatch_action(plain.ctx, outbox_id)
    waited = row(plain, outbox_id)
    assert waited.status == status
    when_due(plain, outbox_id)
    assert dispatch_action(plain.ctx, outbox_id).outcome == "written"  # a page may be sent again: its key dedups
    assert len(incidents(paging, key)) == 1


def test_a_channel_post_whose_answer_was_lost_is_not_posted_again(plain: World, paging: SandboxRunner) -> None:
    transport = notifiers(plain, paging)
    text = f"P1 #1 mail down {uuid.uuid4().hex[:6]}"
    transport.add([LOST])
    outbox_id = enqueue(plain, post(text))
    with pytest.raises(BackingOffError):
        dispatch_action(plain.ctx, outbox_id)
    assert row(plain, outbox_id).status == OutboxStatus.SENDING  # it may have landed
    when_due(plain, outbox_id)
    result = dispatch_action(plain.ctx, outbox_id)
    assert result.outcome == "skipped"
    assert row(plain, outbox_id).result == {
        "skipped": "an earlier attempt may have posted it (sent, no answer): not posted again"
    }
    assert len(messages(paging, text)) == 1  # it had landed: posted once, not twice
    assert [a.outcome for a in plain.audit() if a.action_type == "post_to_channel"] == ["retry", "skipped"]


def test_a_channel_post_refused_before_it_was_sent_is_posted_when_due(plain: World, paging: SandboxRunner) -> None:
    transport = notifiers(plain, paging)
    text = f"P1 #2 phones down {uuid.uuid4().hex[:6]}"
    transport.add([REFUSED] * 4)
    outbox_id = enqueue(plain, post(text))
    with pytest.raises(BackingOffError):
        dispatch_action(plain.ctx, outbox_id)
    assert row(plain, outbox_id).status == OutboxStatus.PENDING  # certainly not landed
    when_due(plain, outbox_id)
    assert dispatch_action(plain.ctx, outbox_id).outcome == "written"
    assert len(messages(paging, text)) == 1


def test_a_permanent_error_is_not_masked_as_a_retry(plain: World, paging: SandboxRunner) -> None:
    notifiers(plain, paging, routing_key="short")
    outbox_id = enqueue(plain, page(f"psabridge:{KEY}#x"))
    with pytest.raises(PermanentError):
        dispatch_action(plain.ctx, outbox_id)
    assert row(plain, outbox_id).status == OutboxStatus.FAILED
