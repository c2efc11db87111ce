"""Published cases from mature help desks' own test suites, ported to our calendar and SLA clock.

Each case names the repository, file and commit it comes from. Where their convention differs from ours (see the
docstrings of rules/calendar.py and rules/sla_clock.py) the case asserts OUR value and says what theirs is and why.
The conventions that differ, in short:

- zendesk/biz treated a period's end as inside the period until 1.8.2 (PR #139, "Treat endpoints consistently in
  calculations": start included, end excluded); we exclude the end, as biz does now.
- Zammad's legacy test (test/unit/ticket_sla_test.rb) and its current spec (spec/models/ticket/escalation_examples.rb)
  disagree on a target that runs out exactly at closing time: legacy says at the close, current says the next
  opening. We say at the close.
- Zammad and GLPI count whole minutes; RT's Business::Hours counts whole seconds inclusively; we keep microseconds.
- GLPI's "waiting" status extends time-to-resolve but not time-to-own; which clock a status pauses is the SLA rule's
  choice (config per clock), not the calendar's: the pauses given to ``due``/``elapsed`` are the ones that apply.
- Znuny counts real seconds over DST changes (a 23-hour day has 23 working hours), like us; the older OTRS time
  module counted clock hours.

All times of Znuny's tests are local times in the named zone (its TimeStamp2SystemTime reads them so); Zammad's, RT's
and GLPI's are UTC unless said otherwise. The process runs in a foreign server zone (tests/rules/conftest.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from psabridge.rules.calendar import BusinessCalendar
from psabridge.rules.sla_clock import due, elapsed

ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
H = timedelta(hours=1)
M = timedelta(minutes=1)


def calendar(timezone: str, hours: Any, holidays: list[str] | None = None) -> BusinessCalendar:
    return BusinessCalendar.from_config({"timezone": timezone, "hours": hours, "holidays": holidays or []})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def at(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


# --- zendesk/biz ------------------------------------------------------------------------------------------------------
# The spec schedule (spec/support/time.rb @ 0fb58f6c4dc994f38ef9dc6b7de9f5da5bf92af2): UTC, Mon/Wed/Fri 09-17,
# Tue/Thu 10-16, Sat 11:00-14:30. 1 Jan 2006 is a Sunday.

BIZ_HOURS = {
    "mon": ["09:00-17:00"],
    "tue": ["10:00-16:00"],
    "wed": ["09:00-17:00"],
    "thu": ["10:00-16:00"],
    "fri": ["09:00-17:00"],
    "sat": ["11:00-14:30"],
}


@pytest.fixture(scope="module")
def biz() -> BusinessCalendar:
    return calendar("Etc/UTC", BIZ_HOURS, ["2006-01-01", "2006-12-25"])


@pytest.mark.parametrize(
    ("start", "target", "expected"),
    [
        # spec/calculation/for_duration_spec.rb @ 324fe55f9182156ac1bff8c69433070977dbd376
        (utc(2006, 1, 4, 15, 58, 30), timedelta(seconds=90), utc(2006, 1, 4, 16)),
        (utc(2006, 1, 4, 15, 30), 90 * M, utc(2006, 1, 4, 17)),  # runs out at Wednesday's close: due at 17:00
        (utc(2006, 1, 4, 14), 3 * H, utc(2006, 1, 4, 17)),
        (utc(2006, 1, 3), timedelta(0), utc(2006, 1, 3, 10)),  # zero: "the first active moment forward in time"
        # spec/calculation/for_duration_spec.rb @ 0fb58f6c4dc994f38ef9dc6b7de9f5da5bf92af2
        (utc(2006, 1, 2, 11), 19 * H, utc(2006, 1, 4, 16)),
        # spec/schedule_spec.rb @ 318930d1e56edff599645d73cb93eed82e84e9a1
        (utc(2006, 1, 2, 9), 30 * M, utc(2006, 1, 2, 9, 30)),
    ],
)
def test_biz_time_after(biz: BusinessCalendar, start: datetime, target: timedelta, expected: datetime) -> None:
    assert biz.add_business_time(start, target) == expected


def test_biz_within_and_in_hours(biz: BusinessCalendar) -> None:
    # spec/schedule_spec.rb @ 318930d1e56edff599645d73cb93eed82e84e9a1
    assert biz.business_time_between(utc(2006, 1, 5, 12), utc(2006, 1, 6, 12)) == 7 * H
    assert biz.is_open(utc(2006, 1, 2, 8)) is False
    assert biz.is_open(utc(2006, 1, 2, 12)) is True
    assert biz.is_holiday(date(2006, 12, 25)) and not biz.is_holiday(date(2006, 12, 26))
    # spec/calculation/duration_within_spec.rb @ 0fb58f6c4dc994f38ef9dc6b7de9f5da5bf92af2
    week = calendar("Etc/UTC", BIZ_HOURS)
    assert week.business_time_between(utc(2006, 1, 1), utc(2006, 1, 8)) == timedelta(hours=39.5)
    assert week.business_time_between(utc(2006, 1, 8), utc(2006, 1, 1)) == timedelta(0)
    assert week.business_time_between(utc(2006, 1, 1), utc(2006, 1, 1)) == timedelta(0)


def test_biz_period_ends_are_outside_the_period() -> None:
    week = calendar("Etc/UTC", BIZ_HOURS)
    # spec/calculation/active_spec.rb @ 0fb58f6c4dc994f38ef9dc6b7de9f5da5bf92af2 expected `true` at Monday 17:00
    # ("when the time is at the end of an interval"). Ours is False: a period excludes its end, which is what biz
    # itself adopted in 1.8.2 (PR #139: "including the start time and excluding the end time").
    assert week.is_open(utc(2006, 1, 2, 17)) is False
    assert week.is_open(utc(2006, 1, 2, 9)) is True  # the start is inside (both versions)
    # spec/calculation/active_spec.rb @ cc8ee6101b170b75e7a401ab836727f5a3e7eeae: a holiday is never active.
    wednesday_off = calendar("Etc/UTC", BIZ_HOURS, ["2006-01-04"])
    assert wednesday_off.is_open(utc(2006, 1, 4, 12)) is False
    assert wednesday_off.is_open(utc(2006, 1, 2, 12)) is True
    assert wednesday_off.is_open(utc(2006, 1, 1, 6)) is False


def test_biz_periods_skip_holidays() -> None:
    # spec/periods/after_spec.rb @ 049cc1332794a5962a32520cdfbe50d37852fe41
    cal = calendar("Etc/UTC", BIZ_HOURS, ["2006-01-16", "2006-01-18"])
    assert cal.periods_between(utc(2006, 1, 14), utc(2006, 1, 20)) == [
        (utc(2006, 1, 14, 11), utc(2006, 1, 14, 14, 30)),
        (utc(2006, 1, 17, 10), utc(2006, 1, 17, 16)),
        (utc(2006, 1, 19, 10), utc(2006, 1, 19, 16)),
    ]
    assert cal.periods_between(utc(2006, 1, 2, 12), utc(2006, 1, 3))[0] == (utc(2006, 1, 2, 12), utc(2006, 1, 2, 17))


def test_biz_an_interval_inside_the_spring_forward_gap() -> None:
    # spec/periods/after_spec.rb @ 049cc1332794a5962a32520cdfbe50d37852fe41, "when an empty interval is generated":
    # sun 02:30-03:15 in America/Los_Angeles on 2 Apr 2006 (02:00 PST jumps to 03:00 PDT). biz drops the interval
    # as empty, so its first period is Monday 09:00-17:00. We move the non-existent 02:30 forward to 03:00, the end of
    # the gap, so Sunday keeps 03:00-03:15 PDT: the clock reads from 03:00 to 03:15, a quarter of an hour of business.
    cal = calendar("America/Los_Angeles", {"sun": ["02:30-03:15"], "mon": ["09:00-17:00"]})
    la = "America/Los_Angeles"
    assert cal.periods_between(at(la, 2006, 4, 2), at(la, 2006, 4, 4)) == [
        (at(la, 2006, 4, 2, 3), at(la, 2006, 4, 2, 3, 15)),
        (at(la, 2006, 4, 3, 9), at(la, 2006, 4, 3, 17)),
    ]


def test_biz_top_level_schedule() -> None:
    # spec/biz_spec.rb @ 1b8915b5f391e3dab473e0994f5ef51d050907c7: Sundays 11-12 in Africa/Abidjan (UTC+0).
    cal = calendar("Africa/Abidjan", {"sun": ["11:00-12:00"]}, ["2015-12-25"])
    # 2 h from Sun 1 Jan 2006 00:00: 11-12 that day, then 11-12 a week later: due at that period's end, 12:00.
    assert cal.add_business_time(utc(2006, 1, 1), 2 * H) == utc(2006, 1, 8, 12)
    assert cal.business_time_between(utc(2006, 1, 1, 11, 30), utc(2006, 1, 8, 11, 30)) == H
    assert cal.is_open(utc(2006, 1, 1, 11)) is True
    assert cal.is_holiday(date(2015, 12, 25))


# --- Zammad -----------------------------------------------------------------------------------------------------------
# Calendars are Europe/Berlin; SLA targets in minutes; expected escalation times in UTC.

ZAMMAD_LEGACY = "zammad/zammad test/unit/ticket_sla_test.rb @ 0d1d86511f20981defe9fcf8fdca403a4b6f5f61"


def berlin(days: tuple[str, ...], interval: str, holidays: list[str] | None = None) -> BusinessCalendar:
    return calendar("Europe/Berlin", {day: [interval] for day in days}, holidays)


@pytest.mark.parametrize(
    ("interval", "days", "created", "minutes", "expected"),
    [
        # ZAMMAD_LEGACY 'ticket sla', calendar "EU 1": Mon-Fri 09-17, created Thu 21 Mar 2013 10:30 CET.
        ("09:00-17:00", ALL_DAYS[:5], utc(2013, 3, 21, 9, 30), 60, utc(2013, 3, 21, 10, 30)),
        ("09:00-17:00", ALL_DAYS[:5], utc(2013, 3, 21, 9, 30), 180, utc(2013, 3, 21, 12, 30)),
        ("09:00-17:00", ALL_DAYS[:5], utc(2013, 3, 21, 9, 30), 240, utc(2013, 3, 21, 13, 30)),
        # calendar "EU 2": Mon-Fri 08-18 (also spec/models/ticket/escalation_examples.rb @ 1aa4e68c6c9f...).
        ("08:00-18:00", ALL_DAYS[:5], utc(2013, 3, 21, 9, 30), 120, utc(2013, 3, 21, 11, 30)),
        ("08:00-18:00", ALL_DAYS[:5], utc(2013, 3, 21, 9, 30), 180, utc(2013, 3, 21, 12, 30)),
        # 'ticket sla + timezone + holiday', calendar "EU 4": every day 08-17, summer time (UTC+2).
        ("08:00-17:00", ALL_DAYS, utc(2013, 10, 21, 9, 30), 120, utc(2013, 10, 21, 11, 30)),
        # created out of hours (07:30 local): the clock starts at 08:00 local = 06:00 UTC.
        ("08:00-17:00", ALL_DAYS, utc(2013, 10, 21, 5, 30), 120, utc(2013, 10, 21, 8)),
        ("08:00-17:00", ALL_DAYS, utc(2013, 10, 21, 5, 30), 180, utc(2013, 10, 21, 9)),
        ("08:00-17:00", ALL_DAYS, utc(2013, 10, 21, 5, 30), 240, utc(2013, 10, 21, 10)),
    ],
)
def test_zammad_escalation_times(
    interval: str, days: tuple[str, ...], created: datetime, minutes: int, expected: datetime
) -> None:
    assert berlin(days, interval).add_business_time(created, minutes * M) == expected


def test_zammad_a_public_holiday() -> None:
    # ZAMMAD_LEGACY 'ticket sla + timezone + holiday': "EU 4" with 2015-09-22 an active public holiday (the 23rd and
    # 24th entries are inactive). Created Mon 21 Sep 2015 16:30 CEST: 30 min that day, Tuesday off, Wednesday 08:00.
    cal = berlin(ALL_DAYS, "08:00-17:00", ["2015-09-22"])
    created = utc(2015, 9, 21, 14, 30)
    assert cal.add_business_time(created, 120 * M) == utc(2015, 9, 23, 7, 30)
    assert cal.add_business_time(created, 180 * M) == utc(2015, 9, 23, 8, 30)
    assert cal.add_business_time(created, 240 * M) == utc(2015, 9, 23, 9, 30)


def test_zammad_response_times_in_minutes_and_seconds() -> None:
    cal = berlin(ALL_DAYS[:5], "08:00-18:00")
    # ZAMMAD_LEGACY: first response at 14:00 UTC for a ticket created 09:30 UTC: first_response_in_min 270.
    assert cal.business_time_between(utc(2013, 3, 21, 9, 30), utc(2013, 3, 21, 14)) == 270 * M
    # ZAMMAD_LEGACY: created Thu 28 Mar 2013 23:49 UTC (night), agent answer Fri 07:00:03 UTC (08:00:03 CET):
    # Zammad says first_response_in_min 0 (whole minutes). We keep the seconds: 3 s of business time.
    assert cal.business_time_between(utc(2013, 3, 28, 23, 49), utc(2013, 3, 29, 7, 0, 3)) == timedelta(seconds=3)


def test_zammad_escalation_suspended_while_pending() -> None:
    # ZAMMAD_LEGACY 'ticket escalation suspend' and escalation_examples.rb: calendar "EU 5", every day 09-18 Berlin
    # (07-16 UTC in June); created 2013-06-04 09:00 UTC, pending reminder 10:00-10:30, answered 10:45, closed 12:00.
    cal = berlin(ALL_DAYS, "09:00-18:00")
    created = utc(2013, 6, 4, 9)
    pending = [(utc(2013, 6, 4, 10), utc(2013, 6, 4, 10, 30))]
    assert due(cal, created, 120 * M, pending) == utc(2013, 6, 4, 11, 30)  # first_response_escalation_at
    assert due(cal, created, 250 * M, pending) == utc(2013, 6, 4, 13, 40)  # close_escalation_at
    assert elapsed(cal, created, utc(2013, 6, 4, 10, 45), pending) == 75 * M  # first_response_in_min
    assert elapsed(cal, created, utc(2013, 6, 4, 12), pending) == 150 * M  # close_in_min
    # update_escalation_at: 180 min from the agent's last contact at 10:15, pending until 10:30.
    assert due(cal, utc(2013, 6, 4, 10, 15), 180 * M, pending) == utc(2013, 6, 4, 13, 30)


def test_zammad_pending_and_closed_periods_both_pause() -> None:
    # ZAMMAD_LEGACY 'ticket escalation suspend close reopen bug', ticket1: pending 09:30-09:45, closed 10:00-10:30.
    cal = berlin(ALL_DAYS, "09:00-18:00")
    pauses = [(utc(2013, 6, 4, 9, 30), utc(2013, 6, 4, 9, 45)), (utc(2013, 6, 4, 10), utc(2013, 6, 4, 10, 30))]
    assert due(cal, utc(2013, 6, 4, 9), 120 * M, pauses) == utc(2013, 6, 4, 11, 45)


def test_zammad_legacy_and_current_disagree_on_a_target_ending_at_the_close() -> None:
    # Created 2013-06-04 09:00 UTC, pending 10:00-15:00, first response target 120 min, every day 09-18 Berlin.
    # 60 min run before the pause, the other 60 from 15:00 UTC: they run out at 16:00 UTC = 18:00 CEST, the close.
    # ZAMMAD_LEGACY ticket2 expects 2013-06-04 16:00 UTC (at the close), like us.
    # zammad/zammad spec/models/ticket/escalation_examples.rb @ 1aa4e68c6c9ff7dd2cfbc864c78a464c4df85c3a ("when
    # Ticket transitions from pending to open") expects 2013-06-05 07:00 UTC, the next opening. Ours stays 16:00: the
    # whole target has run by then, and a breach announced the next morning would be late.
    cal = berlin(ALL_DAYS, "09:00-18:00")
    pending = [(utc(2013, 6, 4, 10), utc(2013, 6, 4, 15))]
    assert due(cal, utc(2013, 6, 4, 9), 120 * M, pending) == utc(2013, 6, 4, 16)


@pytest.mark.parametrize(
    ("start_after", "expected_after"),
    [
        (timedelta(0), timedelta(minutes=30)),  # "when whole span fits"
        (timedelta(minutes=75), timedelta(minutes=135)),  # runs 15 min, pauses 30 min, runs 15 min
        (timedelta(minutes=120), timedelta(minutes=150)),  # "when timeframe starts in the middle of ticket life"
    ],
)
def test_zammad_destination_time_24x7(start_after: timedelta, expected_after: timedelta) -> None:
    # zammad/zammad spec/lib/escalation/destination_time_spec.rb @ 1aa4e68c6c9ff7dd2cfbc864c78a464c4df85c3a: a 24/7
    # calendar; new at T0, open at +60 min, pending close at +90 min, closed at +120 min; span 30 min.
    cal = calendar("Europe/Berlin", "always")
    t0 = utc(2021, 5, 3, 9)
    pending = [(t0 + 90 * M, t0 + 120 * M)]
    assert due(cal, t0 + start_after, 30 * M, pending) == t0 + expected_after


def test_zammad_period_working_minutes_24x7() -> None:
    # zammad/zammad spec/lib/escalation/period_working_minutes_spec.rb @ 1aa4e68c6c9f...: same ticket life; Zammad
    # clips the timeframe to the ticket's life (created..closed); we pass the close as `now`.
    cal = calendar("Europe/Berlin", "always")
    t0 = utc(2021, 5, 3, 9)
    pending = [(t0 + 90 * M, t0 + 120 * M)]
    assert elapsed(cal, t0, t0 + 120 * M, pending) == 90 * M  # "when timeframe takes whole ticket life"
    assert elapsed(cal, t0 + 30 * M, t0 + 120 * M, pending) == 60 * M  # "starts in the middle of ticket life"
    assert elapsed(cal, t0, t0 + 30 * M, pending) == 30 * M  # "end in the middle of ticket life"


# --- GLPI -------------------------------------------------------------------------------------------------------------
# glpi-project/glpi tests/functional/CalendarTest.php @ 1114b467fb8600cf2c81d7ae75ec0ed013136ff0. The "Default"
# calendar of GLPI's test database is Mon-Fri 08:00-20:00 in the server's zone (UTC here); 1 Jan 2019 is a Tuesday.

GLPI_DEFAULT = {day: ["08:00-20:00"] for day in ALL_DAYS[:5]}


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(2019, 1, 1, 7), utc(2019, 1, 1, 9), H),
        (utc(2019, 1, 1, 6), utc(2019, 1, 1, 7), timedelta(0)),
        (utc(2019, 1, 1), utc(2019, 1, 8), 12 * H * 5),
        (utc(2019, 1, 8), utc(2019, 1, 1), timedelta(0)),
    ],
)
def test_glpi_active_time_between(start: datetime, end: datetime, expected: timedelta) -> None:
    assert calendar("UTC", GLPI_DEFAULT).business_time_between(start, end) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2019, 1, 1), False),
        (utc(2019, 1, 2, 8, 30), True),
        (utc(2019, 1, 3, 18, 10), True),
        (utc(2019, 1, 4, 21), False),
        (utc(2019, 1, 5, 8, 30), False),
        (utc(2019, 1, 6), False),
    ],
)
def test_glpi_is_a_working_hour(moment: datetime, expected: bool) -> None:
    assert calendar("UTC", GLPI_DEFAULT).is_open(moment) is expected


def test_glpi_compute_end_date() -> None:
    # testComputeEndDate, "5x24" calendar (Mon-Fri 00:00-24:00): 2018-11-19 10:00 + 7 days -> 2018-11-28 10:00.
    # GLPI counts 7 working days; over 24-hour working days that is 168 business hours, our unit, same answer.
    five_by_24 = calendar("UTC", {day: ["00:00-24:00"] for day in ALL_DAYS[:5]})
    assert five_by_24.add_business_time(utc(2018, 11, 19, 10), 7 * 24 * H) == utc(2018, 11, 28, 10)
    # The same call on the Default calendar gives GLPI 2018-11-28 10:00 too, because it counts days, not hours. We
    # have no day unit: 168 business hours over 12-hour days is 14 business days, so ours is 2018-12-07 10:00. An
    # admin who means "7 working days" writes 84 hours for this calendar.
    assert calendar("UTC", GLPI_DEFAULT).add_business_time(utc(2018, 11, 19, 10), 7 * 24 * H) == utc(2018, 12, 7, 10)


def test_glpi_ttr_created_out_of_hours_and_waiting() -> None:
    # glpi-project/glpi tests/functional/SLMTest.php @ 13f65026207200e0b5147206430131ad0bfe189d,
    # testInternalTtrComputation: a calendar with only "tomorrow" 09:00-19:00, a TTR of 4 hours assigned today
    # (out of hours): due tomorrow 13:00, not "now + 4 h" (the zero-delay bug of glpi-project/glpi#687). Waiting
    # from then to tomorrow 10:00 moves it to tomorrow 14:00: only the waiting's business hour is added back.
    cal = calendar("UTC", {"wed": ["09:00-19:00"]})
    today = utc(2026, 3, 3, 15)  # a Tuesday
    assert due(cal, today, 4 * H) == utc(2026, 3, 4, 13)
    assert due(cal, today, 4 * H, [(today, utc(2026, 3, 4, 10))]) == utc(2026, 3, 4, 14)
    # The same test then sets a manual TTR and adds 1 hour of waiting spent out of hours; GLPI moves the manual
    # date by the full hour. We add back business time only: a pause outside business hours moves nothing.
    assert due(cal, today, 4 * H, [(today, today + H)]) == utc(2026, 3, 4, 13)


# --- Znuny / OTRS -----------------------------------------------------------------------------------------------------
# znuny/Znuny scripts/test/Time/WorkingTime.t @ 2b5823d5428fc2ebe5a726bfdefe43a815b6bf40 and
# scripts/test/Time/DestinationTime.t @ 0d9ab529f7343886f896913470e06c9350f2eb36. Working hours are lists of whole
# hours: [0..23] is 00:00-24:00, [8..17] is 08:00-18:00, [8..12, 14..17] is 08:00-13:00 and 14:00-18:00.
# TimeVacationDays recur every year: 1 Jan, 1 May, 24, 25, 26 and 31 Dec.

ZNUNY_HOURS = {
    "MonToSun 0To23": {day: ["00:00-24:00"] for day in ALL_DAYS},
    "MonToSun 8To12_14To17": {day: ["08:00-13:00", "14:00-18:00"] for day in ALL_DAYS},
    "MonToFri 0To23": {day: ["00:00-24:00"] for day in ALL_DAYS[:5]},
    "MonToFri 8To17": {day: ["08:00-18:00"] for day in ALL_DAYS[:5]},
    "MonToFri 8To12_14To17": {day: ["08:00-13:00", "14:00-18:00"] for day in ALL_DAYS[:5]},
}
VACATION_DAYS = [
    f"{y}-{md}" for y in range(2012, 2019) for md in ("01-01", "05-01", "12-24", "12-25", "12-26", "12-31")
]


def znuny(zone: str, hours: str, vacations: bool = True) -> BusinessCalendar:
    return calendar(zone, ZNUNY_HOURS[hours], VACATION_DAYS if vacations else [])


@pytest.mark.parametrize(
    ("zone", "hours", "vacations", "start", "stop", "seconds"),
    [
        # WorkingTime.t
        ("Europe/Berlin", "MonToSun 0To23", True, (2015, 12, 23, 8, 10, 15), (2015, 12, 28, 17, 10, 14), 205199),
        # "DST start": 49 clock hours, 48 real ones (the older OTRS module counted clock hours).
        ("Europe/Berlin", "MonToSun 0To23", True, (2016, 3, 26, 22, 24, 39), (2016, 3, 28, 23, 24, 39), 48 * 3600),
        ("Europe/Berlin", "MonToSun 8To12_14To17", True, (2016, 2, 1, 12, 15, 41), (2016, 2, 6, 12, 15, 41), 45 * 3600),
        (
            "Europe/Berlin",
            "MonToFri 8To12_14To17",
            True,
            (2016, 3, 25, 12, 15, 41),
            (2016, 3, 29, 10, 15, 41),
            16 * 3600,
        ),
        (
            "Europe/Berlin",
            "MonToFri 8To12_14To17",
            True,
            (2016, 3, 24, 12, 15, 41),
            (2016, 3, 30, 10, 15, 41),
            34 * 3600,
        ),
        ("Europe/Berlin", "MonToFri 8To12_14To17", True, (2016, 3, 25, 8, 15, 41), (2016, 3, 25, 14, 15, 41), 5 * 3600),
        ("Europe/Berlin", "MonToFri 8To12_14To17", True, (2016, 3, 25, 8), (2016, 3, 25, 15), 6 * 3600),
        ("Europe/Berlin", "MonToSun 0To23", False, (2015, 2, 17, 12), (2015, 5, 18, 12), 90 * 86400 - 3600),
        ("America/Sao_Paulo", "MonToSun 0To23", False, (2015, 2, 21, 22), (2015, 2, 22, 2), 5 * 3600),
        ("America/Sao_Paulo", "MonToSun 0To23", False, (2015, 2, 20, 22, 10, 5), (2015, 2, 25, 4, 30, 20), 372015),
        ("America/Sao_Paulo", "MonToSun 0To23", False, (2015, 10, 17, 22), (2015, 10, 18, 4), 5 * 3600),
        ("Australia/Sydney", "MonToSun 0To23", False, (2015, 1, 21, 12), (2015, 4, 22, 4), 7837200),
        ("Asia/Tehran", "MonToSun 0To23", False, (2015, 3, 21, 12), (2015, 3, 22, 4), 15 * 3600),
        ("UTC", "MonToSun 0To23", False, (2015, 2, 20, 22, 10, 5), (2015, 2, 25, 4, 30, 20), 368415),
    ],
)
def test_znuny_working_time(
    zone: str, hours: str, vacations: bool, start: tuple[int, ...], stop: tuple[int, ...], seconds: int
) -> None:
    cal = znuny(zone, hours, vacations)
    assert cal.business_time_between(at(zone, *start), at(zone, *stop)) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("zone", "hours", "vacations", "start", "target", "destination"),
    [
        # DestinationTime.t: 730 days over two years with their vacation days (one leap year) -> 28 Feb 2017.
        ("UTC", "MonToSun 0To23", True, (2015, 2, 17, 12), timedelta(days=730), (2017, 2, 28, 12)),
        ("Europe/Berlin", "MonToSun 0To23", True, (2015, 2, 17, 12), timedelta(days=90, hours=1), (2015, 5, 19, 14)),
        ("America/Sao_Paulo", "MonToSun 0To23", True, (2015, 2, 21, 22), 5 * H, (2015, 2, 22, 2)),
        ("America/Sao_Paulo", "MonToSun 0To23", True, (2015, 10, 17, 22), 7 * H, (2015, 10, 18, 6)),
        (
            "America/Sao_Paulo",
            "MonToSun 0To23",
            False,
            (2015, 2, 21, 22, 10, 5),
            timedelta(days=4, hours=5, minutes=20, seconds=15),
            (2015, 2, 26, 2, 30, 20),
        ),
        ("Australia/Sydney", "MonToSun 0To23", True, (2016, 4, 2, 12), timedelta(days=1, hours=17), (2016, 4, 4, 4)),
        ("Europe/Berlin", "MonToFri 8To17", True, (2016, 1, 31, 12, 25, 30), 5 * H, (2016, 2, 1, 13)),
        ("Europe/Berlin", "MonToFri 8To17", True, (2016, 2, 1, 16, 59, 30), 3.5 * H, (2016, 2, 2, 10, 29, 30)),
        ("Europe/Berlin", "MonToFri 8To12_14To17", True, (2016, 2, 1, 12, 25, 30), 5 * H, (2016, 2, 2, 8, 25, 30)),
        # Across Christmas (24-26 Dec off) and a weekend.
        ("Europe/Berlin", "MonToFri 8To12_14To17", True, (2015, 12, 22, 16, 24, 49), 20 * H, (2015, 12, 29, 8, 24, 49)),
        ("Europe/Berlin", "MonToFri 8To17", True, (2013, 3, 16, 10), M, (2013, 3, 18, 8, 1)),  # "Weekend"
        ("Asia/Tehran", "MonToFri 0To23", True, (2016, 3, 20), timedelta(days=1, hours=5), (2016, 3, 22, 6)),
        ("Asia/Tehran", "MonToSun 0To23", True, (2016, 3, 20), timedelta(days=1, hours=5), (2016, 3, 21, 6)),
    ],
)
def test_znuny_destination_time(
    zone: str,
    hours: str,
    vacations: bool,
    start: tuple[int, ...],
    target: timedelta,
    destination: tuple[int, ...],
) -> None:
    cal = znuny(zone, hours, vacations)
    assert cal.add_business_time(at(zone, *start), target) == at(zone, *destination)


def test_znuny_calendar_in_another_zone_than_the_system() -> None:
    # DestinationTime.t "Calendar 9": the system zone is UTC, calendar 9 is Europe/Berlin MonToFri 8-13/14-18 with
    # the vacation days. Fri 27 Mar 2015 11:00 UTC + 15 h (Berlin changes to summer time on Sunday 29th).
    cal = znuny("Europe/Berlin", "MonToFri 8To12_14To17")
    assert cal.add_business_time(utc(2015, 3, 27, 11), 15 * H) == utc(2015, 3, 31, 7)


# --- Request Tracker --------------------------------------------------------------------------------------------------
# RT::SLA deadlines use Business::Hours, whose default week is Mon-Fri 09:00-18:00 (45 hours, as
# bestpractical/business-hours t/1-business-hours.t @ 26cd622cca0d8b1cf368deaed5b4456908cd0a84 asserts).

RT_DEFAULT = {day: ["09:00-18:00"] for day in ALL_DAYS[:5]}


def test_rt_sla_in_the_queue_time_zone() -> None:
    # bestpractical/rt t/sla/timezone.t @ 1788ee4f2dc58fed2ff109172d09a480f3413a1f: created 2007-01-01 22:00 UTC,
    # Resolve 120 business minutes. The US queue (America/New_York): 17:00 local, in hours; 1 h that day, 1 h Tuesday.
    us = calendar("America/New_York", RT_DEFAULT)
    created = utc(2007, 1, 1, 22)
    assert us.next_opening(created) == utc(2007, 1, 1, 22)
    assert us.add_business_time(created, 120 * M) == utc(2007, 1, 2, 15)
    # The RU queue (Europe/Moscow, UTC+3 in 2007): 01:00 local on Tuesday, out of hours; starts at 09:00 local.
    ru = calendar("Europe/Moscow", RT_DEFAULT)
    assert ru.next_opening(created) == utc(2007, 1, 2, 6)
    assert ru.add_business_time(created, 120 * M) == utc(2007, 1, 2, 8)


def test_rt_sla_business_hours_per_level() -> None:
    # bestpractical/rt t/sla/business_hours.t @ 0c8b78212d917f7430786d129566078484e312aa: created Monday 2007-01-01
    # 00:00 UTC, Resolve 60 business minutes; level "Sunday" has Sunday 9:00-17:00 only, level "Monday" Monday only.
    sunday = calendar("UTC", {"sun": ["09:00-17:00"]})
    created = utc(2007, 1, 1)
    assert sunday.next_opening(created) == utc(2007, 1, 7, 9)
    assert sunday.add_business_time(created, 60 * M) == utc(2007, 1, 7, 10)
    monday = calendar("UTC", {"mon": ["09:00-17:00"]})
    assert monday.add_business_time(created, 60 * M) == utc(2007, 1, 1, 10)


@pytest.mark.parametrize(
    ("created", "starts"),
    [
        (utc(2007, 1, 1, 13, 15), utc(2007, 1, 1, 13, 15)),
        (utc(2007, 1, 1, 19, 15), utc(2007, 1, 2, 9)),
        (utc(2007, 1, 6, 13, 15), utc(2007, 1, 8, 9)),
    ],
)
def test_rt_sla_starts(created: datetime, starts: datetime) -> None:
    # bestpractical/rt t/sla/starts.t @ 0c8b78212d917f7430786d129566078484e312aa: Mon and Tue 09:00-17:00 UTC.
    cal = calendar("UTC", {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]})
    assert cal.next_opening(created) == starts
    assert due(cal, created, timedelta(0)) == starts


def test_business_hours_counts_seconds_inclusively_we_do_not() -> None:
    # bestpractical/business-hours t/1-business-hours.t @ 26cd622cca0d8b1cf368deaed5b4456908cd0a84.
    cal = calendar("UTC", RT_DEFAULT)
    # "how many business hours were there in the first week": 1 Jan 1970 (a Thursday) to 7 days minus a second.
    assert cal.business_time_between(utc(1970, 1, 1), utc(1970, 1, 7, 23, 59, 59)) == 45 * H
    # add_seconds(start, 30 min), then for_timespan(start, result): Business::Hours counts 1801 seconds, "the first
    # second is a business second, too" (a span of whole seconds, both ends in). Ours is half-open time: 1800 s.
    start = utc(1970, 1, 1, 20)  # 20:00 UTC on a Thursday: out of hours, the clock starts Friday 09:00
    result = cal.add_business_time(start, 30 * M)
    assert result == utc(1970, 1, 2, 9, 30)
    assert cal.business_time_between(start, result) == timedelta(seconds=1800)
