"""Property-based tests of the calendar and SLA clock: monotonic due times, pauses never hurry a ticket, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psabridge.rules.calendar import BusinessCalendar
from psabridge.rules.sla_clock import Clock, Pause, due, elapsed

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
CALENDARS = {
    # The example: lunch break on Mondays, short Fridays, explicit and US/NY public holidays.
    "us-east": BusinessCalendar.from_config(
        {
            "timezone": "America/New_York",
            "hours": {"mon": ["08:00-12:00", "13:00-17:00"], **{d: ["08:00-17:00"] for d in WEEKDAYS[1:4]}}
            | {"fri": ["08:00-16:00"]},
            "holidays": ["2026-12-25", "2027-01-01"],
            "holidays_from": {"country": "US", "subdivision": "NY"},
        }
    ),
    # Southern hemisphere, lunch every day, Saturday morning, a subdivision's holidays.
    "sydney": BusinessCalendar.from_config(
        {
            "timezone": "Australia/Sydney",
            "hours": {**{d: ["09:00-12:30", "13:30-17:30"] for d in WEEKDAYS}, "sat": ["09:00-12:00"]},
            "holidays_from": {"country": "AU", "subdivision": "NSW"},
        }
    ),
    # Whole days with Brazil's midnight DST changes (until 2019) and intervals inside the US-style gaps.
    "sao-paulo": BusinessCalendar.from_config(
        {"timezone": "America/Sao_Paulo", "hours": {d: ["00:00-24:00"] for d in (*WEEKDAYS, "sat")}}
    ),
    "night-shift": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"sun": ["01:30-03:30"], "mon": ["00:00-06:00", "22:00-24:00"]}}
    ),
    "24x7": BusinessCalendar.from_config({"timezone": "UTC", "hours": "always"}),
}

calendars = st.sampled_from(sorted(CALENDARS)).map(CALENDARS.__getitem__)
instants = st.datetimes(min_value=datetime(2014, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
targets = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200))
clocks = st.sampled_from(["business", "wall"])


@st.composite
def pause_lists(draw: st.DrawFn, around: datetime) -> list[Pause]:
    """Up to four pauses near ``around``: overlapping, over nights and weekends, some before it."""
    out: list[Pause] = []
    for _ in range(draw(st.integers(0, 4))):
        begin = around + draw(st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=20)))
        out.append((begin, begin + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4)))))
    return out


PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTIES
@given(calendars, instants, targets, targets, clocks, st.data())
def test_due_is_monotonic_in_the_target(
    cal: BusinessCalendar, start: datetime, a: timedelta, b: timedelta, clock: Clock, data: st.DataObject
) -> None:
    pauses = data.draw(pause_lists(start))
    low, high = sorted((a, b))
    assert due(cal, start, low, pauses, clock=clock) <= due(cal, start, high, pauses, clock=clock)


@PROPERTIES
@given(calendars, instants, targets, clocks, st.data())
def test_adding_a_pause_never_makes_a_ticket_due_earlier(
    cal: BusinessCalendar, start: datetime, target: timedelta, clock: Clock, data: st.DataObject
) -> None:
    pauses = data.draw(pause_lists(start))
    [extra] = data.draw(pause_lists(start).filter(lambda p: len(p) == 1))
    assert due(cal, start, target, [*pauses, extra], clock=clock) >= due(cal, start, target, pauses, clock=clock)


@PROPERTIES
@given(calendars, instants, targets)
def test_business_time_to_the_due_time_is_the_target(cal: BusinessCalendar, start: datetime, target: timedelta) -> None:
    assert cal.business_time_between(start, cal.add_business_time(start, target)) == target


@PROPERTIES
@given(calendars, instants, targets, clocks, st.data())
def test_elapsed_at_the_due_time_is_the_target(
    cal: BusinessCalendar, start: datetime, target: timedelta, clock: Clock, data: st.DataObject
) -> None:
    pauses = data.draw(pause_lists(start))
    assert elapsed(cal, start, due(cal, start, target, pauses, clock=clock), pauses, clock=clock) == target


@PROPERTIES
@given(calendars, instants, targets, st.data())
def test_the_due_time_is_inside_a_business_period_or_at_its_end(
    cal: BusinessCalendar, start: datetime, target: timedelta, data: st.DataObject
) -> None:
    pauses = data.draw(pause_lists(start))
    for moment in (cal.add_business_time(start, target), due(cal, start, target, pauses)):
        assert cal.is_open(moment) or cal.is_open(moment - timedelta(microseconds=1))
        assert moment >= start


@PROPERTIES
@given(calendars, instants, targets)
def test_the_clock_starts_at_the_next_opening(cal: BusinessCalendar, start: datetime, target: timedelta) -> None:
    opening = cal.next_opening(start)
    assert cal.is_open(opening) and opening >= start
    assert cal.business_time_between(start, opening) == timedelta(0)
    assert cal.add_business_time(start, target) == cal.add_business_time(opening, target)
