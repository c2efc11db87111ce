"""The evaluate step on the fake vendors: transitions recorded by ingest, echoes not evaluated, durable wake-ups, the
backfill guardrail, reruns that write nothing, a second occurrence that acts again, never fighting a human (the
ledger), and a mirror pair evaluated once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from psabridge.rules import CHECKLIST, RulesRegistry
from psabridge.store import evaluations, findings, ledger, transitions
from psabridge.store.models import OutboxAction
from psabridge.sync.evaluate import evaluate_stored, wake_due
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.outbox import dispatch_action
from psabridge.sync.poll import poll_connection
from psabridge.sync.recovery import recover

from .conftest import RecordingQueue, World, restarted

OUTAGE = "None of us can print since this morning."


def use_rules(world: World, folder: Path, guardrails: dict[str, Any] | None = None, **rules: dict[str, Any]) -> None:
    """Only these checklist rules, with these settings, run in the world's evaluate step."""
    document: dict[str, Any] = {"rules": {rule.id: rules.get(rule.id, {"enabled": False}) for rule in CHECKLIST}}
    if guardrails:
        document["guardrails"] = guardrails
    path = folder / "rules-some.yaml"
    path.write_text(yaml.safe_dump(document))
    world.ctx.rules = RulesRegistry(path, tenants=world.ctx.settings.tenants)


PRIORITY_SET = {"effects": {"understated": "set"}}
PRIORITY_NOTE = {"effects": {"understated": "note"}}


def drive(world: World) -> None:
    """Run the queued work as the actors would, follow-ups included, until none is left."""
    queue = world.ctx.queue
    assert isinstance(queue, RecordingQueue)
    for _ in range(200):
        if not queue.calls:
            return
        kind, args = queue.calls.pop(0)
        if kind == "evaluate":
            evaluate_stored(world.ctx, args[0])
        elif kind == "dispatch":
            dispatch_action(world.ctx, args[0])
        elif kind == "ingest":
            ingest_ticket(world.ctx, *args)
    raise AssertionError("the queue did not drain")


def outbox_of(world: World, key: str) -> list[OutboxAction]:
    with world.db.session() as s:
        query = sa.select(OutboxAction).where(OutboxAction.ticket_key == key).order_by(OutboxAction.id)
        return list(s.scalars(query))


def test_ingest_records_transitions_and_an_echo_is_recorded_as_ours_but_not_evaluated(
    plain: World, tmp_path: Path
) -> None:
    use_rules(plain, tmp_path, priority=PRIORITY_SET)
    ticket_id = plain.snow.create(body=OUTAGE)
    key = f"acme-snow:{ticket_id}"
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    assert plain.evaluated == [key]
    drive(plain)  # evaluated: the priority goes to P1, written by the dispatcher
    assert plain.snow.tickets[ticket_id]["prio"] == "P1"
    echo = ingest_ticket(plain.ctx, "acme-snow", ticket_id)  # our own write comes back
    assert echo.outcome == "echo" and plain.evaluated == [key]  # not evaluated again
    plain.snow.change(ticket_id, state="in_progress")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    with plain.db.session() as s:
        recorded = [(t.field, t.before, t.after, t.by) for t in transitions.transitions_of(s, key)]
        assert evaluations.needing_evaluation(s) == [key]
    assert recorded == [("priority", "P3", "P1", "bridge"), ("status", "new", "in_progress", "human")]
    assert plain.evaluated == [key, key]


def test_a_rerun_writes_nothing_and_a_second_occurrence_acts_again(plain: World, tmp_path: Path) -> None:
    use_rules(plain, tmp_path, priority=PRIORITY_NOTE)
    ticket_id = plain.snow.create(body=OUTAGE)
    key = f"acme-snow:{ticket_id}"
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    drive(plain)
    assert plain.snow.notes_with(ticket_id, "Priority P3") == 1
    # Evaluated again and again (a redelivered message, recovery, a reconcile): nothing more is written
    for _ in range(2):
        assert evaluate_stored(plain.ctx, key, force=True).outbox_ids == ()
    drive(plain)
    assert plain.snow.notes_with(ticket_id, "Priority P3") == 1
    [stored] = [f for f in _findings(plain, key) if f.rule == "priority"]
    assert (stored.occurrence, stored.noted, stored.resolved) == (1, True, False)
    # The evidence goes away (resolved), then comes back: a second occurrence, noted again (not de-duplicated)
    plain.snow.change(ticket_id, body="The 2nd floor printer shows offline.")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    drive(plain)
    assert [f.resolved for f in _findings(plain, key) if f.rule == "priority"] == [True]
    plain.snow.change(ticket_id, body=OUTAGE)
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    drive(plain)
    assert plain.snow.notes_with(ticket_id, "Priority P3") == 2
    [stored] = [f for f in _findings(plain, key) if f.rule == "priority"]
    assert (stored.occurrence, stored.noted, stored.resolved) == (2, True, False)
    # gone from the vendor: not evaluated, nothing written
    plain.snow.tickets.pop(ticket_id)
    assert ingest_ticket(plain.ctx, "acme-snow", ticket_id).outcome == "deleted"
    assert not evaluate_stored(plain.ctx, key, force=True).evaluated
    notes = [row for row in outbox_of(plain, key) if row.action_type == "add_note"]
    assert len(notes) == 2 and len({row.idempotency_key for row in notes}) == 2
    assert {row.status for row in notes} == {"done"}


def _findings(world: World, key: str) -> tuple[Any, ...]:
    with world.db.session() as s:
        return findings.stored_findings(s, key)


def test_never_fight_a_human_a_value_a_person_changed_after_us_is_not_set_again(plain: World, tmp_path: Path) -> None:
    use_rules(plain, tmp_path, priority=PRIORITY_SET)
    ticket_id = plain.snow.create(body=OUTAGE)
    key = f"acme-snow:{ticket_id}"
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    drive(plain)
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)  # the echo
    with plain.db.session() as s:
        assert [(e.field, e.value, e.origin) for e in ledger.ledger_of(s, key)] == [
            ("priority", "P1", "rules.priority")
        ]
    # A technician puts it back to P3 (they know better), and adds a note: evaluated again
    plain.snow.change(ticket_id, prio="P3")
    plain.snow.note(ticket_id, "Only the billing printer; P3 is right.", by="dave")
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    result = evaluate_stored(plain.ctx, key)  # needs evaluating: a person's change
    assert result.evaluation is not None
    assert [w.reason for w in result.evaluation.withheld] == ["human_changed"]
    drive(plain)
    assert plain.snow.tickets[ticket_id]["prio"] == "P3"
    sets = [row for row in outbox_of(plain, key) if row.action_type == "set_fields"]
    assert len(sets) == 1  # only the first correction, never again


def test_a_backfill_of_old_tickets_stores_findings_but_writes_nothing(plain: World, tmp_path: Path) -> None:
    use_rules(plain, tmp_path, priority=PRIORITY_SET)
    old_open = plain.snow.create(body=OUTAGE)
    old_closed = plain.snow.create(body=OUTAGE, state="closed")
    poll_connection(plain.ctx, "acme-snow")  # the first sync: act_since is its start, after both last changed
    drive(plain)
    key = f"acme-snow:{old_open}"
    assert [f.code for f in _findings(plain, key) if f.rule == "priority"] == ["understated"]
    with plain.db.session() as s:
        assert evaluations.evaluation_record(s, key).would_write == 2  # the correction and the note
        assert evaluations.evaluation_record(s, f"acme-snow:{old_closed}").evaluated_at is not None
        assert evaluations.needing_evaluation(s) == []
    for ticket_id in (old_open, old_closed):
        assert outbox_of(plain, f"acme-snow:{ticket_id}") == []
    assert plain.snow.writes == [] and plain.snow.tickets[old_open]["prio"] == "P3"
    # reconciled again later: still nothing written
    for ticket_id in (old_open, old_closed):
        assert evaluate_stored(plain.ctx, f"acme-snow:{ticket_id}", force=True).outbox_ids == ()


def test_a_wakeup_fires_on_a_quiet_ticket_and_survives_a_restart(plain: World, tmp_path: Path) -> None:
    use_rules(plain, tmp_path, priority=PRIORITY_NOTE)
    ticket_id = plain.snow.create()
    key = f"acme-snow:{ticket_id}"
    ingest_ticket(plain.ctx, "acme-snow", ticket_id)
    drive(plain)
    due = plain.ctx.now() + timedelta(hours=2)
    with plain.db.transaction() as s:  # what a rule's wake_at leaves behind (the SLA rule's next milestone)
        evaluations.set_wakeup(s, key, due)
    assert wake_due(plain.ctx) == []  # not due yet
    # the process restarts; the wake-up is in the store, not in memory
    plain.clock.until(due)
    queue = RecordingQueue()
    ctx = restarted(plain, queue)
    try:
        assert wake_due(ctx) == [key] and queue.of("evaluate") == [(key,)]
        with ctx.db.session() as s:
            assert evaluations.wakeup_of(s, key) is None and evaluations.needing_evaluation(s) == [key]
        # its message is lost as well: recovery queues the evaluation again
        again = RecordingQueue()
        assert recover(ctx, polls=False, queue=again).evaluations == 1 and again.of("evaluate") == [(key,)]
        assert evaluate_stored(ctx, key).evaluated
        with ctx.db.session() as s:
            assert evaluations.needing_evaluation(s) == []
        assert not evaluate_stored(ctx, key).evaluated  # the duplicate message: up to date, left alone
    finally:
        ctx.close()


@pytest.mark.parametrize("side", ["source", "target"])
def test_a_mirror_pair_is_evaluated_once(plain: World, tmp_path: Path, side: str) -> None:
    use_rules(plain, tmp_path, {"evaluate_mirrors_on": side}, priority=PRIORITY_NOTE)
    snow_id = plain.snow.create(body=OUTAGE, queue="MSP Support")
    source = f"acme-snow:{snow_id}"
    ingest_ticket(plain.ctx, "acme-snow", snow_id)
    drive(plain)  # the mirror is created in ConnectWise and read back
    [link] = plain.links()
    target = str(link.target_key)
    assert plain.evaluated.count(target) == 1
    noted = [key for key in (source, target) if any(r.action_type == "add_note" for r in outbox_of(plain, key))]
    assert noted == [source if side == "source" else target]
    other = target if side == "source" else source
    assert not evaluate_stored(plain.ctx, other, force=True).evaluated
    assert _findings(plain, other) == ()
    with plain.db.session() as s:
        assert evaluations.needing_evaluation(s) == []
