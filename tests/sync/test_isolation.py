"""Connections do not wait for each other: each has its own queues and share of the worker threads, a spent budget
pauses only its own connection (its jobs are sent again for later instead of holding threads), live work goes ahead
of polls."""

from __future__ import annotations

import time

import sqlalchemy as sa

from psabridge.errors import RateLimitedError
from psabridge.store.models import DeadLetter, TicketRow
from psabridge.sync.broker import queue_for
from psabridge.sync.shares import ConnectionShares

from .bridge import wait_for
from .conftest import World


def stored(world: World, connection: str) -> int:
    with world.db.session() as s:
        return int(s.scalar(sa.select(sa.func.count()).where(TicketRow.connection == connection)) or 0)


def test_a_throttled_connection_does_not_delay_another(world: World) -> None:
    world.ctx.shares.configure(threads=4, connections=2)

    def spent() -> None:  # the vendor's budget: a request waits a while for room, then gives up
        time.sleep(0.3)
        raise RateLimitedError("hourly budget spent", retry_after=0.4)

    # Given a ServiceNow whose budget is spent for its next twelve requests, and 20 of its tickets announced first
    world.snow.fail("get_ticket", *[spent] * 12)
    snow_ids = [world.snow.create() for _ in range(20)]
    cw_ids = [world.cw.create() for _ in range(5)]
    for ticket_id in snow_ids:
        world.deliver("acme-snow", ticket_id)
    # When five ConnectWise tickets are announced after them
    for ticket_id in cw_ids:
        world.deliver("msp-cw", ticket_id)
    # Then ConnectWise's tickets are stored while ServiceNow still waits for its budget (without the shares its jobs
    # would take every thread, each waiting for the budget, until the budget's refusals were all used up)
    wait_for("the ConnectWise tickets", lambda: stored(world, "msp-cw") == 5, timeout=10, every=0.05)
    assert stored(world, "acme-snow") < 20 and world.snow.faults["get_ticket"]
    # and ServiceNow's arrive once its budget has room again, each once, none dead-lettered
    world.run()
    assert stored(world, "acme-snow") == 20 and world.snow.faults["get_ticket"] == []
    assert world.snow.reads == 20
    with world.db.session() as s:
        assert s.scalars(sa.select(DeadLetter)).all() == []


def test_each_connection_has_its_own_queues(world: World) -> None:
    world.deliver("msp-cw", world.cw.create())
    assert world.broker is not None
    assert {queue_for("ingest", "msp-cw"), queue_for("ingest", "acme-snow")} <= world.broker.get_declared_queues()
    world.run()
    assert stored(world, "msp-cw") == 1


def test_shares_divide_the_threads_and_keep_one_for_live_work() -> None:
    now = [0.0]
    shares = ConnectionShares(clock=lambda: now[0])
    shares.configure(threads=8, connections=4)
    held = []
    for _ in range(3):
        held.append(shares.hold("msp-cw"))
    granted = [h.__enter__() for h in held]
    assert granted == [True, True, False]  # 8 threads, 4 connections: two each
    with shares.hold("acme-snow") as other:
        assert other  # another connection still has its share
    for h in reversed(held):
        h.__exit__(None, None, None)
    polls = [shares.hold_poll() for _ in range(8)]
    assert [p.__enter__() for p in polls] == [True] * 7 + [False]  # polls never take the last thread
    for p in reversed(polls):
        p.__exit__(None, None, None)
    shares.pause("ingest", "msp-cw", 5.0)
    assert shares.paused_for("ingest", "msp-cw") == 5.0 and shares.paused_for("dispatch", "msp-cw") == 0.0
    now[0] = 5.0
    assert shares.paused_for("ingest", "msp-cw") == 0.0
