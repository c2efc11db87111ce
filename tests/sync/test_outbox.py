"""The write-back dispatcher: exactly-once writes, a retry that may have landed looks first, every write audited,
failures classified, and pages and chat posts delivered to the (simulated) paging services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from psabridge.errors import MappingError, PermanentError, RateLimitedError, RetryLaterError
from psabridge.model import AddNote, AddTimeEntry, PageOnCall, PostToChannel, SetFields
from psabridge.settings import Credentials, NotifierSettings
from psabridge.store import repo
from psabridge.store.models import Finding, OutboxAction
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.outbox import dispatch_action
from psabridge_sandbox.runner import SandboxRunner

from .conftest import World


def enqueue(world: World, action: object) -> int:
    with world.db.transaction() as s:
        keys = repo.enqueue_actions(s, [action])  # type: ignore[list-item]
        [outbox_id] = repo.outbox_ids(s, keys)
    return outbox_id


def row(world: World, outbox_id: int) -> OutboxAction:
    with world.db.session() as s:
        found = s.get(OutboxAction, outbox_id)
        assert found is not None
        return found


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
    assert dispatch_action(plain.ctx, outbox_id).outcome == "found"
    assert plain.snow.notes_with(ticket, "Rebooted the switch") == 1
    assert [a.outcome for a in plain.audit()] == ["retry", "found"]


def test_a_retried_time_entry_is_not_billed_twice(plain: World, ticket: str) -> None:
    def lost() -> None:
        raise RetryLaterError("gateway timeout")

    plain.snow.fail("add_time_entry", lost)
    action = AddTimeEntry(ticket_key=f"acme-snow:{ticket}", target="acme-snow", origin="rules.t", minutes=30)
    outbox_id = enqueue(plain, action)
    with pytest.raises(RetryLaterError):
        dispatch_action(plain.ctx, outbox_id)
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
        finding = s.scalars(sa.select(Finding).where(Finding.rule == "writeback")).one()
    assert "category" in finding.code
    assert row(plain, outbox_id).status == "failed"


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
