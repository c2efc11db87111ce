"""Property-based tests of the SLA rule (through the engine): the due time is monotonic in the target, a pause never
makes a ticket due earlier, and the due time does not depend on when the ticket is read while it runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psabridge.model import Priority, SlaState, Status
from psabridge.rules import Transition
from psabridge.rules.sla import sla_of

from .sla_helpers import make, result_of, rules_for, run, tenant

PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CALENDARS = st.sampled_from(["us-east", "berlin", "ny-days", "sydney-days"])
created_at = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))
hours = st.integers(min_value=1, max_value=120)


@st.composite
def holds(draw: st.DrawFn, created: datetime) -> tuple[Transition, ...]:
    """Up to three on-hold spells after creation, over nights and weekends, in order and apart."""
    moves: list[Transition] = []
    cursor = created
    for _ in range(draw(st.integers(0, 3))):
        begin = cursor + draw(st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=5)))
        end = begin + draw(st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=4)))
        moves += [
            Transition("status", "in_progress", "on_hold", begin),
            Transition("status", "on_hold", "in_progress", end),
        ]
        cursor = end
    return tuple(moves)


def resolution_due(created: datetime, target: int, calendar: str, moves: tuple[Transition, ...]) -> datetime:
    """The P3 resolution due time the rule computes for a P3 ``target`` hours long, read after every hold ended."""
    tiers = {"t": {"targets": {"P3": {"resolution": f"{target}h"}}}}
    ticket = make(created, Priority.P3, status=Status.IN_PROGRESS)
    now = (moves[-1].at if moves else created) + timedelta(minutes=1)
    evaluation = run(ticket, now, rules_for({"sla": {"tiers": tiers}}), tenant=tenant(calendar, "t"), transitions=moves)
    state = sla_of(result_of(evaluation).outcome.state or {})
    assert isinstance(state, SlaState) and state.resolution_due is not None
    return state.resolution_due


@PROPERTIES
@given(created_at, hours, hours, CALENDARS, st.data())
def test_the_due_time_is_monotonic_in_the_target(
    created: datetime, a: int, b: int, calendar: str, data: st.DataObject
) -> None:
    moves = data.draw(holds(created))
    low, high = sorted((a, b))
    assert resolution_due(created, low, calendar, moves) <= resolution_due(created, high, calendar, moves)


@PROPERTIES
@given(created_at, hours, CALENDARS, st.data())
def test_adding_a_pause_never_makes_a_ticket_due_earlier(
    created: datetime, target: int, calendar: str, data: st.DataObject
) -> None:
    moves = data.draw(holds(created))
    assert len(moves) % 2 == 0
    cut = data.draw(st.integers(0, len(moves) // 2)) * 2  # drop one on-hold spell (a pair of moves)
    fewer = moves[:cut] + moves[cut + 2 :]
    assert resolution_due(created, target, calendar, moves) >= resolution_due(created, target, calendar, fewer)


@PROPERTIES
@given(created_at, hours, CALENDARS, st.integers(min_value=1, max_value=600))
def test_reading_a_running_clock_later_does_not_move_its_due_time(
    created: datetime, target: int, calendar: str, minutes: int
) -> None:
    tiers = {"t": {"targets": {"P3": {"resolution": f"{target}h"}}}}
    rules = rules_for({"sla": {"tiers": tiers}})
    ticket = make(created, Priority.P3)
    dues = []
    for later in (timedelta(minutes=1), timedelta(minutes=minutes)):
        evaluation = run(ticket, created + later, rules, tenant=tenant(calendar, "t"))
        state = sla_of(result_of(evaluation).outcome.state or {})
        assert state is not None
        dues.append(state.resolution_due)
    assert dues[0] == dues[1]
