"""Reconcile: finds what webhooks missed, repairs mirror drift through the normal paths, records the run, and does
not run twice at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from psabridge.errors import PermanentError
from psabridge.holders import holder_id
from psabridge.store import leases, tickets
from psabridge.store.models import OutboxAction, Run, RunItem
from psabridge.sync.ingest import ingest_ticket
from psabridge.sync.reconcile import LEASE, ReconcileLockedError, ReconcileReport, add_write_back_failures, reconcile

from .conftest import World


def runs(world: World) -> list[Run]:
    with world.db.session() as s:
        return list(s.scalars(sa.select(Run).where(Run.kind == "reconcile").order_by(Run.id)))


def items(world: World, run_id: int) -> list[tuple[str, str]]:
    with world.db.session() as s:
        return sorted((i.ticket_key, i.outcome) for i in s.scalars(sa.select(RunItem).where(RunItem.run_id == run_id)))


def test_changes_no_webhook_announced_are_found_and_mirrored(world: World) -> None:
    # Given tickets the bridge never heard about: one new in the MSP queue, one closed since we stored it
    stored = world.snow.create()
    world.deliver("acme-snow", stored)
    world.run()
    fresh = world.snow.create(queue="MSP Support")
    world.snow.change(stored, state="closed")
    # When reconcile runs
    report = reconcile(world.ctx)
    world.run()
    # Then both are ingested, the new one mirrored once, and the run records what happened per ticket
    counts = report.connections["acme-snow"].as_dict()
    assert counts == {"seen": 2, "created": 1, "updated": 1, "closed": 1, "repaired": 0, "failed": 0}
    assert world.mirror_of(fresh) and [v for v, _ in world.cw.writes] == ["create"]
    snow_run = runs(world)[0]
    assert snow_run.status == "ok" and snow_run.counts["seen"] == 2
    assert set(items(world, snow_run.id)) == {(f"acme-snow:{fresh}", "created"), (f"acme-snow:{stored}", "closed")}
    # and a second reconcile finds nothing to do
    again = reconcile(world.ctx)
    world.run()
    assert again.connections["acme-snow"].as_dict()["created"] == 0 and len(world.cw.writes) == 1


def test_mirror_drift_is_repaired_from_the_owning_side(world: World) -> None:
    snow_id = world.snow.create(queue="MSP Support", prio="P2")
    world.deliver("acme-snow", snow_id)
    world.run()
    cw_id = world.mirror_of(snow_id)
    # Someone changed the mirror's priority (owned by the ServiceNow side) and the webhook got lost
    world.cw.change(cw_id, prio="P4")
    report = reconcile(world.ctx)
    world.run()
    assert report.connections["acme-snow"].repaired == 1
    assert world.cw.tickets[cw_id]["prio"] == "P2"
    # and the repair's echo does not bounce
    writes = len(world.cw.writes) + len(world.snow.writes)
    world.deliver("msp-cw", cw_id)
    world.deliver("acme-snow", snow_id)
    world.run()
    assert len(world.cw.writes) + len(world.snow.writes) == writes


def test_a_mirror_whose_creation_died_is_created_by_reconcile(world: World) -> None:
    def refused() -> None:
        raise PermanentError("board is locked", status=400)

    world.cw.fail("refuse_create", refused)
    snow_id = world.snow.create(queue="MSP Support")
    world.deliver("acme-snow", snow_id)
    world.run(fail_fast=False)
    assert [lk.state for lk in world.links()] == ["creating"]
    report = reconcile(world.ctx)
    world.run()
    assert report.connections["acme-snow"].repaired == 1
    assert world.mirror_of(snow_id)
    assert [v for v, _ in world.cw.writes] == ["create"]


def test_a_dry_run_changes_nothing(world: World) -> None:
    snow_id = world.snow.create(queue="MSP Support")
    report = reconcile(world.ctx, dry_run=True)
    world.run()
    assert report.dry_run and report.connections["acme-snow"].created == 1
    assert world.cw.writes == [] and world.ticket(f"acme-snow:{snow_id}") is None
    with world.db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxAction)) == 0


def test_failures_are_counted_recorded_and_fail_the_run(world: World) -> None:
    broken = world.snow.create()
    world.snow.create()
    world.snow.broken[broken] = PermanentError("no access to this incident", status=403)
    report = reconcile(world.ctx, connections=["acme-snow"])
    counts = report.connections["acme-snow"]
    assert (counts.failed, counts.created, report.failed) == (1, 1, 1)
    [run] = runs(world)
    assert run.status == "failed" and (f"acme-snow:{broken}", "failed") in items(world, run.id)


def test_write_backs_that_fail_after_reconcile_count_as_failures(world: World) -> None:
    def refused() -> None:
        raise PermanentError("board is locked", status=400)

    world.cw.fail("refuse_create", refused, refused)  # reconcile may already send the failed create again
    world.snow.create(queue="MSP Support")
    report = reconcile(world.ctx)
    world.run(fail_fast=False)
    add_write_back_failures(world.ctx, report)
    assert report.connections["msp-cw"].failed == 1 and report.failed == 1
    assert {r.connection: r.status for r in runs(world)} == {"acme-snow": "ok", "msp-cw": "failed"}


def test_full_reconcile_notices_tickets_gone_from_the_vendor(plain: World) -> None:
    gone = plain.snow.create()
    ingest_ticket(plain.ctx, "acme-snow", gone)
    del plain.snow.tickets[gone]
    assert reconcile(plain.ctx, connections=["acme-snow"]).connections["acme-snow"].updated == 0
    report = reconcile(plain.ctx, connections=["acme-snow"], full=True)
    assert report.connections["acme-snow"].updated == 1
    with plain.db.session() as s:
        assert tickets.stored_versions(s, "acme-snow", [gone]) == {}


def test_a_second_reconcile_while_one_runs_is_refused_with_a_clear_message(plain: World) -> None:
    with plain.db.transaction() as s:
        assert leases.take_lease(s, "reconcile", holder_id(), LEASE)
    with pytest.raises(ReconcileLockedError, match="another reconcile is running"):
        reconcile(plain.ctx)


def test_a_second_full_reconcile_of_an_unchanged_vendor_reads_nothing_but_its_list(plain: World) -> None:
    for _ in range(7):
        plain.snow.create()
    first = reconcile(plain.ctx, connections=["acme-snow"], full=True)
    assert (first.connections["acme-snow"].created, plain.snow.reads) == (7, 7)
    again = reconcile(plain.ctx, connections=["acme-snow"], full=True)
    counts = again.connections["acme-snow"]
    assert (counts.seen, counts.unchanged, counts.created + counts.updated, plain.snow.reads) == (7, 7, 0, 7)
    # a change is found by comparing, and only that ticket is read
    ticket_id = next(iter(plain.snow.tickets))
    plain.snow.change(ticket_id, title="Printer offline, toner empty")
    third = reconcile(plain.ctx, connections=["acme-snow"], full=True)
    assert (third.connections["acme-snow"].updated, plain.snow.reads) == (1, 8)


def test_a_spent_budget_paces_the_reconcile_and_says_so(plain: World) -> None:
    from psabridge.errors import RateLimitedError
    from psabridge.sync.pacing import Pacer

    slept: list[float] = []

    def spent() -> None:
        raise RateLimitedError("budget spent", retry_after=42.0)

    ids = [plain.snow.create() for _ in range(5)]
    plain.snow.fail("get_ticket", spent, spent)
    plain.snow.fail("between_pages", spent)

    class Told:
        def __init__(self) -> None:
            self.waits: list[tuple[str, float]] = []

        def compared(self, connection: str, counts: object) -> None:
            pass

        def waiting(self, connection: str, seconds: float) -> None:
            self.waits.append((connection, seconds))

        def draining(self, done: int, total: int, eta: float | None) -> None:
            pass

    told = Told()
    pacer = Pacer(sleep=slept.append)  # no real waiting in the test
    report = reconcile(plain.ctx, connections=["acme-snow"], full=True, progress=told, pacer=pacer)
    counts = report.connections["acme-snow"]
    assert (counts.created, counts.failed) == (len(ids), 0)
    assert told.waits == [("acme-snow", 42.0)] * 3 and slept == [42.0] * 3


def test_a_full_reconcile_leaves_old_closed_tickets_out_and_since_reaches_them(plain: World) -> None:
    from .fakes import T0

    old = (T0 - timedelta(days=400)).isoformat()
    old_closed = plain.snow.create(state="closed", created=old, updated=old)
    old_open = plain.snow.create(state="new", created=old, updated=old)
    report = reconcile(plain.ctx, connections=["acme-snow"], full=True)
    assert report.connections["acme-snow"].created == 1
    assert plain.ticket(f"acme-snow:{old_open}") is not None and plain.ticket(f"acme-snow:{old_closed}") is None
    reach = reconcile(plain.ctx, connections=["acme-snow"], since=T0 - timedelta(days=500))
    assert reach.connections["acme-snow"].created == 1 and plain.ticket(f"acme-snow:{old_closed}") is not None


def test_the_lock_covers_the_drain_which_ends_when_the_runs_own_work_is_done(world: World) -> None:
    import threading

    from psabridge.model import SetFields
    from psabridge.store import outbox

    # Someone else's write-back, backing off for a few seconds: not this run's work, so the drain does not wait for it
    cw_id = world.cw.create()
    other = SetFields(ticket_key=f"msp-cw:{cw_id}", target="msp-cw", origin="someone", fields={"priority": "P1"})
    with world.db.transaction() as s:
        outbox.enqueue_actions(s, [other], now=world.ctx.now())
        s.execute(sa.update(OutboxAction).values(next_attempt_at=world.ctx.now() + timedelta(seconds=4)))
    # The mirror this run creates is slow to write: the drain waits for it, holding the lock
    entered, release = threading.Event(), threading.Event()

    def slow() -> None:
        entered.set()
        release.wait(20)

    world.cw.fail("refuse_create", slow)
    world.snow.create(queue="MSP Support")
    done: list[object] = []
    runner = threading.Thread(target=lambda: done.append(reconcile(world.ctx, wait=30)))
    runner.start()
    assert entered.wait(20)
    with pytest.raises(ReconcileLockedError):
        reconcile(world.ctx)
    release.set()
    runner.join(30)
    [report] = done
    assert isinstance(report, ReconcileReport)
    # the mirror (and its read-back) and the evaluations of the two tickets the run stored and of the new mirror
    assert (report.unfinished, report.left) == (False, 0) and report.queued in (4, 5)
    assert [v for v, _ in world.cw.writes] == ["create"]
    with world.db.session() as s:
        assert leases.lease_of(s, "reconcile") is None
        assert s.scalar(sa.select(OutboxAction.status).where(OutboxAction.origin == "someone")) == "pending"
    world.run()  # the other write-back goes out when due, recovered by the reconcile
    assert [v for v, _ in world.cw.writes] == ["create", "update"]


def test_a_first_reconcile_is_the_connections_first_sync_and_a_later_one_keeps_it(plain: World) -> None:
    from psabridge.store import sync_state

    plain.snow.create()
    reconcile(plain.ctx, connections=["acme-snow"], dry_run=True)
    with plain.db.session() as s:
        assert sync_state.first_synced_at(s, "acme-snow") is None  # a dry run syncs nothing
    first = reconcile(plain.ctx, connections=["acme-snow"])
    plain.clock.later(60)
    reconcile(plain.ctx, connections=["acme-snow"])
    with plain.db.session() as s:
        # The rules' default act_since: what the first reconcile found is history, not acted on
        assert sync_state.first_synced_at(s, "acme-snow") == first.started_at
        assert sync_state.first_synced_at(s, "msp-cw") is None
