"""Mirroring end to end on the in-process broker: one mirror per ticket, notes and fields flow as ownership says,
no echo loops, and a duplicated, reordered stream of notifications ends in the same state."""

from __future__ import annotations

import random

import pytest

from psabridge.errors import RetryLaterError

from .conftest import World


def open_mirrored(world: World, **fields: object) -> tuple[str, str]:
    """A ServiceNow ticket in the linked queue, ingested and mirrored; returns (snow id, cw id)."""
    snow_id = world.snow.create(queue="MSP Support", title="VPN drops every hour", **fields)
    world.deliver("acme-snow", snow_id)
    world.run()
    return snow_id, world.mirror_of(snow_id)


def test_a_ticket_in_the_linked_queue_gets_exactly_one_mirror_and_a_link(world: World) -> None:
    # Given a client's ServiceNow ticket handed to the MSP queue
    snow_id = world.snow.create(queue="MSP Support", title="VPN drops every hour", prio="P2")
    # When its change notification arrives three times
    for _ in range(3):
        world.deliver("acme-snow", snow_id)
    world.run()
    # Then ConnectWise has one mirror on the client's board, and the link names both
    assert [verb for verb, _ in world.cw.writes] == ["create"]
    [link] = world.links()
    cw_id = link.target_external_id
    assert (
        link.state == "created" and link.source_key == f"acme-snow:{snow_id}" and link.target_key == f"msp-cw:{cw_id}"
    )
    mirror = world.cw.tickets[str(cw_id)]
    assert (mirror["title"], mirror["prio"], mirror["queue"]) == ("VPN drops every hour", "P2", "Acme Service")
    assert f"[psabridge:{link.marker}]" in mirror["body"]
    # and the mirror itself was ingested (it is in the store) without being mirrored back
    assert world.ticket(f"msp-cw:{cw_id}") is not None
    assert world.snow.writes == []


def test_tickets_outside_the_linked_queue_or_closed_get_no_mirror(world: World) -> None:
    other = world.snow.create(queue="Service Desk")
    closed = world.snow.create(queue="MSP Support", state="closed")
    world.deliver("acme-snow", other)
    world.deliver("acme-snow", closed)
    world.run()
    assert world.cw.writes == [] and world.links() == []


def test_a_create_whose_answer_was_lost_is_found_by_its_marker_not_repeated(world: World) -> None:
    # Given ConnectWise creates the mirror but the answer never arrives
    def lost() -> None:
        raise RetryLaterError("read timed out")

    world.cw.fail("create_ticket", lost)
    snow_id = world.snow.create(queue="MSP Support")
    world.deliver("acme-snow", snow_id)
    world.run()
    # Then the retry finds the mirror by its marker instead of creating a second one
    assert [verb for verb, _ in world.cw.writes] == ["create"]
    assert world.mirror_of(snow_id) == world.cw.writes[0][1]
    outcomes = [a.outcome for a in world.audit() if a.action_type == "create_mirror"]
    assert outcomes == ["retry", "found"]


def test_notes_flow_both_ways_exactly_once(world: World) -> None:
    snow_id, cw_id = open_mirrored(world)
    # When the client adds a note in ServiceNow and the technician one in ConnectWise
    world.snow.note(snow_id, "User says it happens on Wi-Fi only", by="carol")
    world.deliver("acme-snow", snow_id)
    world.run()
    world.cw.note(cw_id, "Replaced the AP firmware", by="tech1")
    world.deliver("msp-cw", cw_id)
    world.run()
    # and every notification (the echoes of our own notes included) arrives again
    for _ in range(2):
        world.deliver("acme-snow", snow_id)
        world.deliver("msp-cw", cw_id)
    world.run()
    # Then each note is on the other side exactly once, carrying who wrote it
    assert world.cw.notes_with(cw_id, "User says it happens on Wi-Fi only") == 1
    assert world.snow.notes_with(snow_id, "Replaced the AP firmware") == 1
    assert world.cw.notes_with(cw_id, "[carol in acme-snow") == 1
    assert [v for v, _ in world.snow.writes] == ["note"]
    assert [v for v, _ in world.cw.writes] == ["create", "note"]


def test_notes_written_before_the_mirror_existed_are_carried_over(world: World) -> None:
    snow_id = world.snow.create(queue="Service Desk")
    world.snow.note(snow_id, "Collected the VPN logs")
    world.deliver("acme-snow", snow_id)
    world.run()
    world.snow.change(snow_id, queue="MSP Support")
    world.deliver("acme-snow", snow_id)
    world.run()
    assert world.cw.notes_with(world.mirror_of(snow_id), "Collected the VPN logs") == 1


def test_status_and_priority_flow_only_from_the_side_that_owns_them(world: World) -> None:
    snow_id, cw_id = open_mirrored(world)
    # status is owned by ConnectWise ("to"): its change reaches ServiceNow
    world.cw.change(cw_id, state="in_progress")
    world.deliver("msp-cw", cw_id)
    world.run()
    assert world.snow.tickets[snow_id]["state"] == "in_progress"
    # a status change in ServiceNow does not reach ConnectWise
    world.snow.change(snow_id, state="on_hold")
    world.deliver("acme-snow", snow_id)
    world.run()
    assert world.cw.tickets[cw_id]["state"] == "in_progress"
    # priority is owned by ServiceNow ("from"): its change reaches ConnectWise, not the other way round
    world.snow.change(snow_id, prio="P1")
    world.deliver("acme-snow", snow_id)
    world.run()
    assert world.cw.tickets[cw_id]["prio"] == "P1"
    world.cw.change(cw_id, prio="P4")
    world.deliver("msp-cw", cw_id)
    world.run()
    assert world.snow.tickets[snow_id]["prio"] == "P1"


def test_time_entries_flow_to_the_source_only(world: World) -> None:
    snow_id, cw_id = open_mirrored(world)
    world.cw.log_time(cw_id, 45, note="Remote session")
    world.snow.log_time(snow_id, 10, note="Client-side check")
    world.deliver("msp-cw", cw_id)
    world.deliver("acme-snow", snow_id)
    world.run()
    assert [t["minutes"] for t in world.snow.tickets[snow_id]["time"]] == [10, 45]
    assert [t["minutes"] for t in world.cw.tickets[cw_id]["time"]] == [45]


def test_no_echo_loop_our_writes_coming_back_write_nothing_more(world: World) -> None:
    snow_id, cw_id = open_mirrored(world)
    world.cw.change(cw_id, state="in_progress")
    world.snow.note(snow_id, "Any update?")
    world.deliver("msp-cw", cw_id)
    world.deliver("acme-snow", snow_id)
    world.run()
    writes = (len(world.snow.writes), len(world.cw.writes))
    evaluations = len(world.evaluated)
    # When every change notification of both tickets (our writes' echoes) is delivered again, several times
    for _ in range(3):
        world.deliver("acme-snow", snow_id)
        world.deliver("msp-cw", cw_id)
        world.run()
    # Then nothing more is written anywhere; of the echoes only the status ConnectWise's change carried into
    # ServiceNow is evaluated (once: the pair's rules must see a technician's change on its mirror side), the
    # echo of the mirrored note and every redelivery are not. Whether that status echo comes after the first run
    # depends on the order of the two deliveries' jobs: when ServiceNow's re-read for the agent's note already
    # carried the status, it was evaluated there, as the agent's change, and nothing is left to evaluate.
    assert (len(world.snow.writes), len(world.cw.writes)) == writes
    assert world.evaluated[evaluations:] in ([], [f"acme-snow:{snow_id}"])


@pytest.mark.parametrize("seed", [1, 2])
def test_a_duplicated_reordered_stream_gives_the_same_end_state(world: World, seed: int) -> None:
    snow_id, cw_id = open_mirrored(world)
    # Given a burst of changes on both sides, notified as vendors do: duplicated and out of order
    world.snow.note(snow_id, "Called the user back")
    world.snow.change(snow_id, prio="P2")
    world.cw.change(cw_id, state="in_progress")
    world.cw.note(cw_id, "Escalated to networking")
    world.snow.note(snow_id, "User confirms it is fixed")
    world.cw.change(cw_id, state="resolved")
    stream = [("acme-snow", snow_id)] * 4 + [("msp-cw", cw_id)] * 4
    random.Random(seed).shuffle(stream)
    for connection, external_id in stream:
        world.deliver(connection, external_id)
    world.run()
    for _ in range(2):  # the echoes of what we wrote arrive too
        world.deliver("acme-snow", snow_id)
        world.deliver("msp-cw", cw_id)
        world.run()
    # Then both tickets end as if every change had been delivered once, in order
    snow, cw = world.snow.tickets[snow_id], world.cw.tickets[cw_id]
    assert (snow["state"], snow["prio"]) == ("resolved", "P2")
    assert (cw["state"], cw["prio"]) == ("resolved", "P2")
    for text in ("Called the user back", "User confirms it is fixed"):
        assert world.cw.notes_with(cw_id, text) == 1
    assert world.snow.notes_with(snow_id, "Escalated to networking") == 1
    assert sum(v == "note" for v, _ in world.snow.writes) == 1
    assert sum(v == "note" for v, _ in world.cw.writes) == 2


def test_a_mirror_already_at_the_vendor_is_linked_not_duplicated(world: World) -> None:
    # Given the store lost its link (restored from an old backup) but ConnectWise still holds the mirror
    from psabridge.sync.mirror import link_marker

    snow_id = world.snow.create(queue="MSP Support")
    marker = f"[psabridge:{link_marker(f'acme-snow:{snow_id}', 'msp-cw')}]"
    existing = world.cw.create(title="VPN drops every hour", body=f"Mirrored earlier\n\n{marker}")
    # When the source is ingested
    world.deliver("acme-snow", snow_id)
    world.run()
    # Then the existing mirror is linked and nothing is created
    assert world.mirror_of(snow_id) == existing
    assert "create" not in [v for v, _ in world.cw.writes]
    assert [a.outcome for a in world.audit() if a.action_type == "create_mirror"] == ["found"]
