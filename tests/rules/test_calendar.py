"""Business calendars and SLA clocks: settings validation and each rule of rules/calendar.py and rules/sla_clock.py."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from psabridge.rules.calendar import BusinessCalendar, CalendarSettings, compile_calendars, to_us
from psabridge.rules.sla_clock import due, elapsed, merge_pauses

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS_9_TO_5 = {day: ("09:00-17:00",) for day in ALL_DAYS[:5]}

# The example of issue 11, as an admin writes it in config/rules.yaml.
ISSUE_EXAMPLE = """
calendars:
  us-east-business:
    timezone: America/New_York
    hours: {mon: ["08:00-12:00", "13:00-17:00"], tue: ["08:00-17:00"], wed: ["08:00-17:00"], thu: ["08:00-17:00"],
            fri: ["08:00-16:00"]}
    holidays: ["2026-12-25", "2027-01-01"]          # local dates, whole days off
    holidays_from: {country: US, subdivision: NY}   # the `holidays` package, added to the list above
  24x7: {timezone: UTC, hours: always}
"""


def calendar(timezone: str, hours: Any, **more: Any) -> BusinessCalendar:
    return BusinessCalendar.from_config({"timezone": timezone, "hours": hours, **more})


def whole_days(timezone: str, days: tuple[str, ...] = ALL_DAYS) -> BusinessCalendar:
    return calendar(timezone, {day: ["00:00-24:00"] for day in days})


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(scope="module")
def us_east() -> BusinessCalendar:
    return compile_calendars(
        {name: CalendarSettings.model_validate(c) for name, c in yaml.safe_load(ISSUE_EXAMPLE)["calendars"].items()}
    )["us-east-business"]


# --- settings ---------------------------------------------------------------------------------------------------------


def test_the_issue_example_loads_and_compiles() -> None:
    raw = yaml.safe_load(ISSUE_EXAMPLE)["calendars"]
    compiled = compile_calendars({name: CalendarSettings.model_validate(c) for name, c in raw.items()})
    assert sorted(compiled) == ["24x7", "us-east-business"]
    business = compiled["us-east-business"]
    assert business.name == "us-east-business" and business.zone == NY
    assert business.settings.hours != "always"
    assert business.settings.hours["mon"] == ("08:00-12:00", "13:00-17:00")
    assert business.settings.holidays == (date(2026, 12, 25), date(2027, 1, 1))
    assert compiled["24x7"].always is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "Mars/Olympus", "hours": "always"}, "unknown timezone 'Mars/Olympus'"),
        (
            {"timezone": "UTC", "hours": {"mon": ["08:00-12:30", "12:00-13:00"]}},
            "'08:00-12:30' and '12:00-13:00' overlap",
        ),
        ({"timezone": "UTC", "hours": {"tue": ["17:00-08:00"]}}, "tue: '17:00-08:00' ends before it starts"),
        ({"timezone": "UTC", "hours": {"wed": ["09:00-09:00"]}}, "ends before it starts"),
        ({"timezone": "UTC", "hours": {"moon": ["08:00-17:00"]}}, "unknown weekday 'moon': use mon, tue, wed"),
        ({"timezone": "UTC", "hours": {"mon": ["8am-5pm"]}}, "mon: '8am-5pm' is not an interval; write HH:MM-HH:MM"),
        ({"timezone": "UTC", "hours": {"mon": ["08:00-24:30"]}}, "is not a time of day"),
        ({"timezone": "UTC", "hours": {"mon": ["24:00-24:00"]}}, "is not a time of day"),
        ({"timezone": "UTC", "hours": {"mon": [], "sat": []}}, "no business hours on any weekday"),
        ({"timezone": "UTC", "hours": "sometimes"}, "'sometimes' is not opening hours"),
        ({"timezone": "UTC", "hours": {"Mon": ["08:00-12:00"], "mon": ["13:00-17:00"]}}, "mon is given twice"),
        (
            {"timezone": "UTC", "hours": "always", "holidays": ["2026-13-01"]},
            "holidays[0]: '2026-13-01' is not a local",
        ),
        ({"timezone": "UTC", "hours": "always", "holidays": [20261225]}, "holidays[0]: 20261225 is not a local ISO"),
        ({"timezone": "UTC", "hours": "always", "holidays_from": {"country": "XX"}}, "unknown country 'XX'"),
        (
            {"timezone": "UTC", "hours": "always", "holidays_from": {"country": "US", "subdivision": "ZZ"}},
            "unknown subdivision 'ZZ' of US: use one of",
        ),
        ({"timezone": "UTC", "hours": "always", "hollidays": []}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_say_what_is_wrong(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CalendarSettings.model_validate(data)
    assert message in str(caught.value)


def test_settings_accept_a_single_interval_any_order_and_case_and_yaml_dates() -> None:
    settings = CalendarSettings.model_validate(
        {
            "timezone": "UTC",
            "hours": {"Fri": "13:00-17:00", "mon": ["13:00-17:00", "8:00-12:00"]},
            "holidays": [date(2026, 12, 25), "2026-12-24", "2026-12-25"],
            "holidays_from": {"country": "de"},
        }
    )
    assert settings.hours == {"fri": ("13:00-17:00",), "mon": ("8:00-12:00", "13:00-17:00")}
    assert settings.holidays == (date(2026, 12, 24), date(2026, 12, 25))
    assert settings.holidays_from is not None and settings.holidays_from.country == "DE"


def test_touching_intervals_are_one_period() -> None:
    cal = calendar("UTC", {"mon": ["08:00-12:00", "12:00-17:00"]})
    assert cal.periods_between(utc(2026, 6, 1), utc(2026, 6, 2)) == [(utc(2026, 6, 1, 8), utc(2026, 6, 1, 17))]


# --- holidays ---------------------------------------------------------------------------------------------------------


def test_holidays_from_the_package_are_added_to_the_explicit_list(us_east: BusinessCalendar) -> None:
    days = us_east.holidays_in(2026)
    assert days[date(2026, 11, 26)] == "Thanksgiving Day"
    assert days[date(2026, 7, 3)] == "Independence Day (observed)"  # 4 July 2026 is a Saturday
    assert date(2026, 12, 25) in days
    assert us_east.is_holiday(date(2027, 1, 1)) and us_east.is_holiday(date(2027, 12, 24))  # Christmas observed
    assert not us_east.is_holiday(date(2026, 11, 27))
    # A holiday is a whole day off even on a business weekday: Thanksgiving (Thu) is closed all day.
    assert us_east.next_opening(local(NY, 2026, 11, 26, 9)) == local(NY, 2026, 11, 27, 8)


def test_explicit_holidays_alone() -> None:
    cal = calendar("Europe/Berlin", WEEKDAYS_9_TO_5, holidays=["2026-05-01"])
    assert cal.holidays_in(2026) == {date(2026, 5, 1): "holiday"}
    assert not cal.is_open(local(BERLIN, 2026, 5, 1, 12))
    assert cal.next_opening(local(BERLIN, 2026, 5, 1, 12)) == local(BERLIN, 2026, 5, 4, 9)


# --- the rules --------------------------------------------------------------------------------------------------------


def test_periods_are_half_open(us_east: BusinessCalendar) -> None:
    assert us_east.is_open(local(NY, 2026, 6, 1, 8))  # opening instant: open
    assert not us_east.is_open(local(NY, 2026, 6, 1, 12))  # lunch starts: closed
    assert us_east.is_open(local(NY, 2026, 6, 1, 11, 59, 59, 999999))
    assert not us_east.is_open(local(NY, 2026, 6, 1, 17))  # closing instant: closed
    assert us_east.next_opening(local(NY, 2026, 6, 1, 17)) == local(NY, 2026, 6, 2, 8)
    assert us_east.next_opening(local(NY, 2026, 6, 1, 12)) == local(NY, 2026, 6, 1, 13)
    assert us_east.next_opening(local(NY, 2026, 6, 1, 9, 30)) == local(NY, 2026, 6, 1, 9, 30)


def test_a_clock_started_out_of_hours_starts_at_the_next_opening(us_east: BusinessCalendar) -> None:
    friday_night = local(NY, 2026, 6, 5, 22, 15)
    assert us_east.add_business_time(friday_night, timedelta(hours=1)) == local(NY, 2026, 6, 8, 9)
    assert us_east.business_time_between(friday_night, local(NY, 2026, 6, 8, 9)) == timedelta(hours=1)


def test_lunch_breaks_do_not_count(us_east: BusinessCalendar) -> None:
    assert us_east.add_business_time(local(NY, 2026, 6, 1, 11, 30), timedelta(hours=1)) == local(NY, 2026, 6, 1, 13, 30)
    assert us_east.business_time_between(local(NY, 2026, 6, 1, 8), local(NY, 2026, 6, 2, 8)) == timedelta(hours=8)


def test_a_target_running_out_at_a_period_end_is_due_then(us_east: BusinessCalendar) -> None:
    assert us_east.add_business_time(local(NY, 2026, 6, 1, 11), timedelta(hours=1)) == local(NY, 2026, 6, 1, 12)
    assert us_east.add_business_time(local(NY, 2026, 6, 1, 8), timedelta(hours=8)) == local(NY, 2026, 6, 1, 17)
    # Friday closes at 16:00: a whole Friday runs out at 16:00 Friday, not at Monday 08:00.
    assert us_east.add_business_time(local(NY, 2026, 6, 5, 8), timedelta(hours=8)) == local(NY, 2026, 6, 5, 16)


def test_a_zero_target_is_due_at_the_next_opening(us_east: BusinessCalendar) -> None:
    assert us_east.add_business_time(local(NY, 2026, 6, 6, 10), timedelta(0)) == local(NY, 2026, 6, 8, 8)
    assert us_east.add_business_time(local(NY, 2026, 6, 1, 10, 5), timedelta(0)) == local(NY, 2026, 6, 1, 10, 5)
    assert us_east.add_business_time(local(NY, 2026, 6, 1, 17), timedelta(0)) == local(NY, 2026, 6, 2, 8)


def test_seconds_and_microseconds_are_kept(us_east: BusinessCalendar) -> None:
    start = local(NY, 2026, 6, 1, 16, 59, 59, 123456)
    target = timedelta(seconds=2, microseconds=900000)
    assert us_east.add_business_time(start, target) == local(NY, 2026, 6, 2, 8, 0, 2, 23456)
    assert us_east.business_time_between(start, local(NY, 2026, 6, 2, 8, 0, 2, 23456)) == target


def test_results_are_utc_whatever_zone_the_arguments_are_in(us_east: BusinessCalendar) -> None:
    start = datetime(2026, 6, 1, 18, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # = 2026-06-01 05:00 New York
    result = us_east.add_business_time(start, timedelta(hours=1))
    assert result == local(NY, 2026, 6, 1, 9) and result.tzinfo is UTC


def test_naive_datetimes_and_negative_targets_are_refused(us_east: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match=r"start 2026-06-01T08:00:00 has no time zone"):
        us_east.add_business_time(datetime(2026, 6, 1, 8), timedelta(hours=1))
    with pytest.raises(ValueError, match=r"target -1 day, 23:00:00 is negative"):
        us_east.add_business_time(utc(2026, 6, 1), timedelta(hours=-1))
    with pytest.raises(ValueError, match="end 2026-06-02T00:00:00 has no time zone"):
        us_east.business_time_between(utc(2026, 6, 1), datetime(2026, 6, 2))


def test_between_is_zero_backwards_and_counts_only_business_time(us_east: BusinessCalendar) -> None:
    assert us_east.business_time_between(utc(2026, 6, 2), utc(2026, 6, 1)) == timedelta(0)
    # A whole week: Mon 8 h, Tue-Thu 9 h, Fri 8 h.
    assert us_east.business_time_between(local(NY, 2026, 6, 1), local(NY, 2026, 6, 8)) == timedelta(hours=43)


def test_the_calendar_zone_is_used_whatever_the_server_zone(foreign_server_zone: str) -> None:
    cal = calendar("America/New_York", {"mon": ["09:00-17:00"]})
    answers = []
    for server_zone in ("UTC", "America/Los_Angeles", foreign_server_zone, "Pacific/Chatham"):
        os.environ["TZ"] = server_zone
        time.tzset()
        fresh = calendar("America/New_York", {"mon": ["09:00-17:00"]})  # also compiled under that server zone
        answers.append(
            (fresh.next_opening(utc(2026, 6, 1)), cal.add_business_time(utc(2026, 6, 1), timedelta(hours=7)))
        )
    assert answers == [(utc(2026, 6, 1, 13), utc(2026, 6, 1, 20))] * 4


# --- DST --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("Europe/Berlin", date(2026, 3, 29), 23),
        ("Europe/Berlin", date(2026, 10, 25), 25),
        ("Australia/Sydney", date(2026, 10, 4), 23),  # southern hemisphere: spring forward in October
        ("Australia/Sydney", date(2026, 4, 5), 25),
        # Brazil changed its clocks at midnight: 4 Nov 2018 00:00 did not exist, 17 Feb 2018 had 23:00-24:00 twice.
        ("America/Sao_Paulo", date(2018, 11, 4), 23),
        ("America/Sao_Paulo", date(2018, 2, 17), 25),
        # Brazil abolished DST in 2019 (the tz database knows): early November is a plain 24-hour day again.
        ("America/Sao_Paulo", date(2019, 11, 3), 24),
        ("America/Sao_Paulo", date(2026, 2, 15), 24),
    ],
)
def test_a_whole_day_has_its_real_length_on_dst_days(zone: str, day: date, hours: int) -> None:
    tz = ZoneInfo(zone)
    that_weekday = whole_days(zone, (ALL_DAYS[day.weekday()],))  # 00:00-24:00 on that weekday only
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    [(opening, closing)] = that_weekday.periods_between(noon - timedelta(days=1), noon + timedelta(days=1))
    assert closing - opening == timedelta(hours=hours)
    assert that_weekday.business_time_between(noon - timedelta(days=3), noon + timedelta(days=3)) == timedelta(
        hours=hours
    )
    every_day = whole_days(zone)
    assert every_day.add_business_time(opening, timedelta(hours=hours)) == closing


def test_a_time_that_does_not_exist_is_moved_forward_to_the_end_of_the_gap() -> None:
    # 8 Mar 2026, New York: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist.
    cal = calendar("America/New_York", {"sun": ["02:30-04:00"]})
    assert cal.next_opening(local(NY, 2026, 3, 8)) == utc(2026, 3, 8, 7)  # 03:00 EDT, the end of the gap
    assert cal.periods_between(utc(2026, 3, 7), utc(2026, 3, 9)) == [(utc(2026, 3, 8, 7), utc(2026, 3, 8, 8))]
    # A whole interval inside the gap is empty that day: the next opening is a week later.
    gap_only = calendar("America/New_York", {"sun": ["02:10-02:50"]})
    assert gap_only.next_opening(local(NY, 2026, 3, 8)) == local(NY, 2026, 3, 15, 2, 10)


def test_a_time_that_exists_twice_is_its_first_occurrence() -> None:
    # 1 Nov 2026, New York: 02:00 EDT falls back to 01:00 EST; 01:30 happens at 05:30 UTC and again at 06:30 UTC.
    cal = calendar("America/New_York", {"sun": ["01:30-03:00"]})
    assert cal.next_opening(local(NY, 2026, 11, 1)) == utc(2026, 11, 1, 5, 30)
    assert cal.business_time_between(utc(2026, 10, 31), utc(2026, 11, 2)) == timedelta(hours=2, minutes=30)
    closing = calendar("America/New_York", {"sun": ["00:00-01:30"]})
    assert closing.periods_between(utc(2026, 10, 31), utc(2026, 11, 2)) == [
        (utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30))
    ]


def test_targets_across_a_dst_change_count_real_hours() -> None:
    berlin = whole_days("Europe/Berlin")
    start = local(BERLIN, 2026, 3, 28, 12)
    assert berlin.add_business_time(start, timedelta(hours=24)) == local(BERLIN, 2026, 3, 29, 13)
    sydney = calendar("Australia/Sydney", WEEKDAYS_9_TO_5)
    # Friday 3 Apr 2026 16:00 AEDT + 2 h: 1 h on Friday, the weekend changes the clock, 1 h on Monday (AEST).
    assert sydney.add_business_time(local(SYDNEY, 2026, 4, 3, 16), timedelta(hours=2)) == local(SYDNEY, 2026, 4, 6, 10)
    assert sydney.add_business_time(local(SYDNEY, 2026, 4, 3, 16), timedelta(hours=2)) == utc(2026, 4, 6, 0)


# --- long ranges, year ends, the past ---------------------------------------------------------------------------------


def test_a_target_across_holidays_and_the_year_end(us_east: BusinessCalendar) -> None:
    # Thu 31 Dec 2026 15:00: 2 h that day, Fri 1 Jan 2027 off, the weekend, then Mon 4 Jan from 08:00.
    assert us_east.add_business_time(local(NY, 2026, 12, 31, 15), timedelta(hours=4)) == local(NY, 2027, 1, 4, 10)
    # 2027 ends with Christmas observed (Fri 24 Dec) and New Year's Day observed (Fri 31 Dec): Thu 23 Dec 16:00 + 2 h
    # runs 1 h on the 23rd and 1 h on Monday 27th; Thu 30 Dec 16:00 + 2 h ends on Monday 3 Jan 2028.
    assert us_east.add_business_time(local(NY, 2027, 12, 23, 16), timedelta(hours=2)) == local(NY, 2027, 12, 27, 9)
    assert us_east.add_business_time(local(NY, 2027, 12, 30, 16), timedelta(hours=2)) == local(NY, 2028, 1, 3, 9)


def test_long_targets_and_queries_in_the_past_extend_the_cache() -> None:
    cal = calendar("Europe/Berlin", WEEKDAYS_9_TO_5, holidays_from={"country": "DE"})
    start = local(BERLIN, 2030, 6, 3, 9)
    far = cal.add_business_time(start, timedelta(hours=8 * 250 * 3))  # about three working years
    assert far.year == 2033
    assert cal.business_time_between(start, far) == timedelta(hours=6000)
    old = local(BERLIN, 2001, 12, 24, 16)
    assert cal.add_business_time(old, timedelta(hours=2)) == local(BERLIN, 2001, 12, 27, 10)  # 25, 26 Dec off
    assert cal.business_time_between(old, start) == cal.business_time_between(old, far) - timedelta(hours=6000)


def test_a_calendar_with_no_business_time_left_raises() -> None:
    mondays = [(date(2030, 1, 7) + timedelta(weeks=w)).isoformat() for w in range(52 * 12)]
    dead = calendar("UTC", {"mon": ["09:00-10:00"]}, holidays=mondays)  # every Monday off for twelve years
    with pytest.raises(ValueError, match="no business hours in the 10 years"):
        dead.add_business_time(utc(2030, 1, 1), timedelta(hours=1))


# --- 24x7 -------------------------------------------------------------------------------------------------------------


def test_always_is_wall_clock_time() -> None:
    cal = calendar("UTC", "always")
    assert cal.always and cal.is_open(utc(2026, 1, 1, 3))
    assert cal.add_business_time(utc(2026, 3, 7, 23, 30), timedelta(hours=50)) == utc(2026, 3, 10, 1, 30)
    assert cal.business_time_between(utc(2026, 3, 7), utc(2026, 3, 9)) == timedelta(days=2)
    assert cal.periods_between(utc(2026, 3, 7), utc(2026, 3, 9)) == [(utc(2026, 3, 7), utc(2026, 3, 9))]


def test_always_with_holidays_keeps_the_days_off() -> None:
    cal = calendar("Europe/Berlin", "always", holidays=["2026-12-25"])
    assert not cal.always
    assert cal.add_business_time(local(BERLIN, 2026, 12, 24, 23), timedelta(hours=2)) == local(BERLIN, 2026, 12, 26, 1)


# --- SLA clocks with pauses -------------------------------------------------------------------------------------------


def test_a_pause_adds_back_only_its_business_time(us_east: BusinessCalendar) -> None:
    start = local(NY, 2026, 6, 1, 9)  # Monday
    target = timedelta(hours=16)  # without pauses: Tue 17:00 (Mon 7 h, Tue 9 h)
    assert due(us_east, start, target) == local(NY, 2026, 6, 2, 17)
    # On hold Monday 15:00 to Wednesday 10:00, over two nights: 2 h of Monday, all 9 h of Tuesday and 2 h of
    # Wednesday are added back: 5 h ran on Monday, 7 h run on Wednesday, the last 4 h on Thursday from 08:00.
    on_hold = [(local(NY, 2026, 6, 1, 15), local(NY, 2026, 6, 3, 10))]
    assert due(us_east, start, target, on_hold) == local(NY, 2026, 6, 4, 12)
    assert elapsed(us_east, start, local(NY, 2026, 6, 4, 12), on_hold) == target


def test_pauses_over_a_weekend_and_a_holiday_add_back_nothing(us_east: BusinessCalendar) -> None:
    start = local(NY, 2026, 7, 2, 16)  # Thursday; Fri 3 July is Independence Day observed
    weekend = [(local(NY, 2026, 7, 2, 17), local(NY, 2026, 7, 6, 8))]
    assert due(us_east, start, timedelta(hours=2), weekend) == local(NY, 2026, 7, 6, 9)
    assert due(us_east, start, timedelta(hours=2)) == local(NY, 2026, 7, 6, 9)


def test_overlapping_pauses_count_once_and_may_run_past_now(us_east: BusinessCalendar) -> None:
    start = local(NY, 2026, 6, 2, 8)  # Tuesday 08:00-17:00
    pauses = [
        (local(NY, 2026, 6, 2, 10), local(NY, 2026, 6, 2, 12)),
        (local(NY, 2026, 6, 2, 11), local(NY, 2026, 6, 2, 13)),
        (local(NY, 2026, 6, 2, 15), local(NY, 2026, 6, 3, 12)),  # still going on at `now`
    ]
    assert merge_pauses(pauses)[0] == (to_us(local(NY, 2026, 6, 2, 10)), to_us(local(NY, 2026, 6, 2, 13)))
    now = local(NY, 2026, 6, 2, 16)
    assert elapsed(us_east, start, now, pauses) == timedelta(hours=4)  # 08-10 and 13-15 run; 15-16 is paused
    assert due(us_east, start, timedelta(hours=4), pauses) == local(NY, 2026, 6, 2, 15)
    assert due(us_east, start, timedelta(hours=5), pauses) == local(NY, 2026, 6, 3, 13)


def test_a_clock_started_inside_a_pause_or_before_one(us_east: BusinessCalendar) -> None:
    start = local(NY, 2026, 6, 2, 9)
    pauses = [(local(NY, 2026, 6, 2, 7), local(NY, 2026, 6, 2, 11))]
    assert due(us_east, start, timedelta(hours=1), pauses) == local(NY, 2026, 6, 2, 12)
    assert due(us_east, start, timedelta(0), pauses) == local(NY, 2026, 6, 2, 11)  # zero: first running instant
    assert elapsed(us_east, start, local(NY, 2026, 6, 2, 12), pauses) == timedelta(hours=1)
    earlier = [(local(NY, 2026, 6, 1, 7), local(NY, 2026, 6, 1, 11))]  # before the start: no effect
    assert due(us_east, start, timedelta(hours=1), earlier) == local(NY, 2026, 6, 2, 10)


def test_a_target_running_out_where_a_pause_begins_is_due_then(us_east: BusinessCalendar) -> None:
    start = local(NY, 2026, 6, 2, 8)
    pauses = [(local(NY, 2026, 6, 2, 10), local(NY, 2026, 6, 2, 14))]
    assert due(us_east, start, timedelta(hours=2), pauses) == local(NY, 2026, 6, 2, 10)


def test_wall_clock_targets_with_pauses(us_east: BusinessCalendar) -> None:
    start = local(NY, 2026, 6, 5, 22)  # Friday night, out of hours: a wall-clock target runs anyway
    pauses = [(local(NY, 2026, 6, 6, 1), local(NY, 2026, 6, 6, 3, 30))]
    assert due(us_east, start, timedelta(hours=4), clock="wall") == local(NY, 2026, 6, 6, 2)
    assert due(us_east, start, timedelta(hours=4), pauses, clock="wall") == local(NY, 2026, 6, 6, 4, 30)
    assert elapsed(us_east, start, local(NY, 2026, 6, 6, 4, 30), pauses, clock="wall") == timedelta(hours=4)


def test_bad_pauses_and_clocks_are_refused(us_east: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match=r"pauses\[0\] ends \(2026-06-01T09:00:00\+00:00\) before it starts"):
        due(us_east, utc(2026, 6, 1), timedelta(hours=1), [(utc(2026, 6, 1, 10), utc(2026, 6, 1, 9))])
    with pytest.raises(ValueError, match=r"pauses\[0\] end 2026-06-01T10:00:00 has no time zone"):
        elapsed(us_east, utc(2026, 6, 1), utc(2026, 6, 2), [(utc(2026, 6, 1, 9), datetime(2026, 6, 1, 10))])
    with pytest.raises(ValueError, match="clock 'calendar' is not one of business, wall"):
        due(us_east, utc(2026, 6, 1), timedelta(hours=1), clock="calendar")  # type: ignore[arg-type]
    assert elapsed(us_east, utc(2026, 6, 2), utc(2026, 6, 1)) == timedelta(0)
    assert merge_pauses([(utc(2026, 6, 1), utc(2026, 6, 1))]) == []  # an empty pause is no pause


def test_the_readme_example_is_the_issue_example_and_valid() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Business calendars", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)["calendars"]
    assert documented == yaml.safe_load(ISSUE_EXAMPLE)["calendars"]
    assert {name: CalendarSettings.model_validate(c).timezone for name, c in documented.items()} == {
        "us-east-business": "America/New_York",
        "24x7": "UTC",
    }
