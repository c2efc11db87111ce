"""Business calendars: opening hours per weekday, holidays and a time zone, with business-time arithmetic.

A calendar is configured as :class:`CalendarSettings` (the ``calendars:`` section of config/rules.yaml, one entry per
name) and compiled once into a :class:`BusinessCalendar`, which answers in real elapsed time::

    us_east:
      timezone: America/New_York
      hours: {mon: ["08:00-12:00", "13:00-17:00"], tue: ["08:00-17:00"], fri: ["08:00-16:00"]}
      holidays: ["2026-12-25"]                        # local dates, whole days off
      holidays_from: {country: US, subdivision: NY}   # the `holidays` package, added to the list above
    24x7: {timezone: UTC, hours: always}

The rules (each one is tested in tests/rules/):

- **Real seconds, the calendar's own zone.** Opening hours are wall-clock times in the calendar's ``timezone``,
  whatever the server's zone is; business time is the real time elapsed inside the business periods. A day whose clock
  springs forward has an hour less (a 23-hour day of a 00:00-24:00 calendar has 23 business hours), a day whose clock
  falls back an hour more. This is Znuny's convention (scripts/test/Time/WorkingTime.t); old OTRS counted clock hours.
- **Local times that do not exist or exist twice.** A configured time is the first instant at which the local clock
  shows that time or later. So a time inside a spring-forward gap (02:30 on a US spring-forward day) is moved forward to
  the moment the clock jumps (03:00 local, the end of the gap), and a time that occurs twice when the clock falls back
  (01:30 on a US fall-back day) is its first occurrence (``fold=0``, the daylight-time one).
- **Half-open periods.** A business period includes its start and excludes its end: at 17:00 a 09:00-17:00 day is
  closed, and :meth:`BusinessCalendar.next_opening` then answers the next day's opening.
- **Start outside business hours.** A clock started outside business hours starts at the next opening.
- **Running out at a period end.** A target that runs out exactly at the end of a business period is due at that
  moment (17:00), not at the next opening. (zendesk/biz and Zammad's legacy tests agree; Zammad's current spec expects
  the next opening: see tests/rules/test_calendar_published.py.)
- **Zero target.** A zero target is due at the start's next opening (the start itself when it is inside business
  hours): the first instant the clock runs.
- **No rounding.** Seconds and microseconds are kept; nothing is rounded to minutes.
- **Holidays** are whole local days off: the explicit ``holidays`` plus, with ``holidays_from``, the public holidays
  (observed days included) of a country and subdivision from the `holidays` package.

``hours: always`` is a 24x7 calendar: business time is wall-clock time (holidays, if any are given, are still days off).
For wall-clock SLA targets over any calendar use :mod:`psabridge.rules.sla_clock` with ``clock="wall"``.

Internally a calendar precomputes its business periods per local year as integer microseconds since the epoch with
running totals, so every operation is a binary search: no stepping minute by minute, no pydantic on the hot path.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_package
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = [
    "WALL_CLOCK",
    "WEEKDAYS",
    "BusinessCalendar",
    "CalendarSettings",
    "HolidaySource",
    "Timeline",
    "compile_calendars",
    "duration_us",
    "from_us",
    "to_us",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The weekday keys of ``hours``, Monday first (``date.weekday()`` order)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_US_PER_MINUTE = 60_000_000
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_EMPTY_YEARS_LIMIT = 10


def to_us(value: datetime, what: str = "time") -> int:
    """An aware datetime as integer microseconds since 1970-01-01 UTC (exact, no float).

    Raises:
        ValueError: ``value`` is naive (has no time zone), which would make business time depend on the server.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value.isoformat()} has no time zone; give an aware datetime (e.g. ending in Z)")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=value)


def duration_us(value: timedelta, what: str = "duration") -> int:
    """A non-negative timedelta as integer microseconds.

    Raises:
        ValueError: ``value`` is negative.
    """
    if value < timedelta(0):
        raise ValueError(f"{what} {value} is negative")
    return value // _ONE_US


# --- settings -------------------------------------------------------------------------------------------------------


def _parse_interval(text: str, day: str) -> tuple[int, int]:
    """``"08:00-12:30"`` -> (480, 750) minutes after local midnight; ``"24:00"`` is allowed as an end only."""
    match = _INTERVAL.match(text)
    if not match:
        raise ValueError(f"{day}: {text!r} is not an interval; write HH:MM-HH:MM, e.g. 08:00-17:00")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sm > 59 or em > 59 or sh > 23 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"{day}: {text!r} is not a time of day (00:00 to 23:59, or 24:00 as an end)")
    start, end = sh * 60 + sm, eh * 60 + em
    if end <= start:
        raise ValueError(
            f"{day}: {text!r} ends before it starts; an interval cannot cross midnight: end the day at 24:00 and "
            "start the next one at 00:00"
        )
    return start, end


class HolidaySource(BaseModel):
    """Public holidays of a country (and optionally one of its subdivisions) from the `holidays` package."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str
    subdivision: str | None = None

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in _supported_countries():
            raise ValueError(
                f"unknown country {value!r}: use an ISO 3166-1 alpha-2 code the `holidays` package supports "
                "(e.g. US, DE, AU, BR, GB)"
            )
        return code

    @model_validator(mode="after")
    def _known_subdivision(self) -> HolidaySource:
        if self.subdivision is None:
            return self
        known = _supported_countries()[self.country]
        if self.subdivision not in known:
            hint = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            raise ValueError(
                f"unknown subdivision {self.subdivision!r} of {self.country}"
                + (f": use one of {hint}" if known else f": {self.country} has no subdivisions")
            )
        return self


@lru_cache(maxsize=1)
def _supported_countries() -> dict[str, list[str]]:
    return {code: list(subdivisions) for code, subdivisions in holidays_package.list_supported_countries().items()}


class CalendarSettings(BaseModel):
    """One business calendar as configured (see the module docstring for the YAML form and the rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str
    hours: Literal["always"] | dict[str, tuple[str, ...]]
    holidays: tuple[date, ...] = ()
    holidays_from: HolidaySource | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown timezone {value!r}: use an IANA name such as America/New_York, Europe/Berlin or UTC"
            ) from exc
        return value

    @field_validator("hours", mode="before")
    @classmethod
    def _weekly_hours(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().lower() == "always":
                return "always"
            raise ValueError(f"{value!r} is not opening hours: write `always` or a mapping of weekdays to intervals")
        if not isinstance(value, Mapping):
            raise ValueError("write `always` or a mapping of weekdays to intervals, e.g. {mon: [08:00-17:00]}")
        week: dict[str, tuple[str, ...]] = {}
        for key, intervals in value.items():
            day = str(key).strip().lower()
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {key!r}: use {', '.join(WEEKDAYS)}")
            if day in week:
                raise ValueError(f"{day} is given twice")
            items = [intervals] if isinstance(intervals, str) else intervals
            if items is None:
                items = []
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"{day}: give a list of HH:MM-HH:MM intervals, e.g. [08:00-12:00, 13:00-17:00]")
            parsed = sorted((_parse_interval(i, day), i.strip()) for i in items)
            for (prev, prev_text), (cur, cur_text) in pairwise(parsed):
                if cur[0] < prev[1]:
                    raise ValueError(f"{day}: {prev_text!r} and {cur_text!r} overlap")
            week[day] = tuple(text for _, text in parsed)
        if not any(week.values()):
            raise ValueError("no business hours on any weekday (write `always` for a 24x7 calendar)")
        return week

    @field_validator("holidays", mode="before")
    @classmethod
    def _local_dates(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError("give a list of local ISO dates, e.g. [2026-12-25, 2027-01-01]")
        days: list[date] = []
        for index, item in enumerate(value):
            if isinstance(item, date) and not isinstance(item, datetime):
                days.append(item)
                continue
            problem = f"holidays[{index}]: {item!r} is not a local ISO date (YYYY-MM-DD)"
            if not isinstance(item, str):
                raise ValueError(problem)
            try:
                days.append(date.fromisoformat(item.strip()))
            except ValueError as exc:
                raise ValueError(problem) from exc
        return tuple(sorted(set(days)))


# --- timelines ------------------------------------------------------------------------------------------------------


class Timeline(Protocol):
    """Business-time arithmetic on integer microseconds since the epoch (what :mod:`sla_clock` builds on)."""

    def is_open_us(self, t: int) -> bool:
        """Whether ``t`` is inside a business period."""
        ...

    def opening_us(self, t: int) -> int:
        """``t`` if it is inside a business period, else the start of the next one."""
        ...

    def between_us(self, start: int, end: int) -> int:
        """Business microseconds in ``[start, end)`` (0 when ``end <= start``)."""
        ...

    def add_us(self, start: int, duration: int) -> int:
        """The earliest instant by which ``duration`` business microseconds have run from ``start``'s next opening."""
        ...


class _WallTimeline:
    """Every instant is business time: wall-clock arithmetic."""

    def is_open_us(self, t: int) -> bool:
        return True

    def opening_us(self, t: int) -> int:
        return t

    def between_us(self, start: int, end: int) -> int:
        return end - start if end > start else 0

    def add_us(self, start: int, duration: int) -> int:
        return start + duration


WALL_CLOCK: Timeline = _WallTimeline()
"""Wall-clock time (24x7, no holidays): for SLA targets that are not in business time."""


@dataclass(frozen=True, slots=True)
class _Span:
    """Business periods of the local years ``first..last``, covering the instants ``[lo, hi)``."""

    first: int
    last: int
    lo: int
    hi: int
    starts: list[int]
    ends: list[int]
    cum_start: list[int]  # business microseconds from the span's first period to starts[i]
    cum_end: list[int]  # ... to ends[i]


class _PeriodTimeline:
    """Business periods generated per local year from weekly hours and holidays, cached, searched by bisection."""

    def __init__(
        self,
        zone: ZoneInfo,
        week: tuple[tuple[tuple[int, int], ...], ...],
        holiday_years: _HolidayYears,
    ) -> None:
        self._zone = zone
        self._week = week
        self._holidays = holiday_years
        self._years: dict[int, tuple[list[int], list[int]]] = {}
        self._span: _Span | None = None

    # Local wall-clock times -> instants.

    def _local_us(self, naive: datetime) -> int:
        """The first instant at which the local clock shows ``naive`` or later (see the module docstring)."""
        zone = self._zone
        first = naive.replace(tzinfo=zone)
        if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
            return to_us(first)  # exists; fold=0 is the earlier of two occurrences (PEP 495)
        # In a gap: find the transition, the first instant whose wall time is >= naive.
        a, b = sorted((to_us(first), to_us(naive.replace(tzinfo=zone, fold=1))))
        while a < b:
            mid = (a + b) // 2
            if from_us(mid).astimezone(zone).replace(tzinfo=None) >= naive:
                b = mid
            else:
                a = mid + 1
        return a

    def _year_periods(self, year: int) -> tuple[list[int], list[int]]:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        starts: list[int] = []
        ends: list[int] = []
        days_off = self._holidays(year)
        day = date(year, 1, 1)
        one_day = timedelta(days=1)
        while day.year == year:
            intervals = self._week[day.weekday()]
            if intervals and day not in days_off:
                midnight = datetime(day.year, day.month, day.day)
                for start_min, end_min in intervals:
                    start = self._local_us(midnight + timedelta(minutes=start_min))
                    end = self._local_us(midnight + timedelta(minutes=end_min))
                    if end <= start:
                        continue  # wholly inside a spring-forward gap
                    if ends and ends[-1] >= start:
                        ends[-1] = max(ends[-1], end)
                    else:
                        starts.append(start)
                        ends.append(end)
            day += one_day
        self._years[year] = (starts, ends)
        return starts, ends

    def _build(self, first: int, last: int) -> _Span:
        starts: list[int] = []
        ends: list[int] = []
        for year in range(first, last + 1):
            year_starts, year_ends = self._year_periods(year)
            for start, end in zip(year_starts, year_ends, strict=True):
                if ends and ends[-1] >= start:  # a period running to 24:00 on 31 Dec joins 1 Jan's
                    ends[-1] = max(ends[-1], end)
                else:
                    starts.append(start)
                    ends.append(end)
        cum_start: list[int] = []
        cum_end: list[int] = []
        total = 0
        for start, end in zip(starts, ends, strict=True):
            cum_start.append(total)
            total += end - start
            cum_end.append(total)
        lo = self._local_us(datetime(first, 1, 1))
        hi = self._local_us(datetime(last + 1, 1, 1))
        span = _Span(first, last, lo, hi, starts, ends, cum_start, cum_end)
        self._span = span  # one reference swap: readers holding the old span stay consistent
        return span

    def _covering(self, t: int) -> _Span:
        span = self._span
        if span is not None and span.lo <= t < span.hi:
            return span
        year = from_us(t).astimezone(self._zone).year
        first, last = (year, year) if span is None else (min(span.first, year), max(span.last, year))
        span = self._build(first, last)
        while t < span.lo:
            span = self._build(span.first - 1, span.last)
        while t >= span.hi:
            span = self._build(span.first, span.last + 1)
        return span

    def _grow(self, span: _Span, empty_years: int) -> tuple[_Span, int]:
        """The span with one more year at its end, and how many years in a row have had no business period."""
        grown = self._build(span.first, span.last + 1)
        empty_years = empty_years + 1 if len(grown.ends) == len(span.ends) else 0
        if empty_years >= _EMPTY_YEARS_LIMIT:
            raise ValueError(f"the calendar has no business hours in the {_EMPTY_YEARS_LIMIT} years to {grown.last}")
        return grown, empty_years

    # The Timeline protocol.

    def is_open_us(self, t: int) -> bool:
        span = self._covering(t)
        i = bisect_right(span.ends, t)
        return i < len(span.ends) and span.starts[i] <= t

    def opening_us(self, t: int) -> int:
        span = self._covering(t)
        empty = 0
        while True:
            i = bisect_right(span.ends, t)
            if i < len(span.ends):
                start = span.starts[i]
                return start if start > t else t
            span, empty = self._grow(span, empty)

    def _cumulative(self, span: _Span, t: int) -> int:
        i = bisect_right(span.ends, t)
        if i == len(span.ends):
            return span.cum_end[-1] if span.cum_end else 0
        start = span.starts[i]
        return span.cum_start[i] + (t - start if t > start else 0)

    def between_us(self, start: int, end: int) -> int:
        if end <= start:
            return 0
        span = self._covering(start)
        if end >= span.hi:
            span = self._covering(end)
        return self._cumulative(span, end) - self._cumulative(span, start)

    def add_us(self, start: int, duration: int) -> int:
        span = self._covering(start)
        empty = 0
        while True:
            ends = span.ends
            i = bisect_right(ends, start)
            if i < len(ends):
                period_start = span.starts[i]
                target = span.cum_start[i] + (start - period_start if start > period_start else 0) + duration
                j = bisect_left(span.cum_end, target, i)
                if j < len(ends):
                    return ends[j] - (span.cum_end[j] - target)
            span, empty = self._grow(span, empty)


class _HolidayYears:
    """The days off of one local year: the explicit list plus the `holidays` package's, cached per year."""

    def __init__(self, explicit: Iterable[date], source: HolidaySource | None) -> None:
        self._explicit = frozenset(explicit)
        self._source = source
        self._names: dict[int, dict[date, str]] = {}

    def names(self, year: int) -> dict[date, str]:
        """Every day off in ``year`` with its name."""
        cached = self._names.get(year)
        if cached is not None:
            return cached
        names: dict[date, str] = {}
        if self._source is not None:
            found = holidays_package.country_holidays(self._source.country, subdiv=self._source.subdivision, years=year)
            names.update((day, str(name)) for day, name in found.items() if day.year == year)
        names.update((day, "holiday") for day in self._explicit if day.year == year)
        self._names[year] = names
        return names

    def __call__(self, year: int) -> frozenset[date]:
        return frozenset(self.names(year))


# --- the compiled calendar ------------------------------------------------------------------------------------------


class BusinessCalendar:
    """A compiled business calendar: opening hours, holidays and a zone, answering in real elapsed time.

    Every datetime argument must be timezone-aware (any zone); results are aware UTC datetimes.

    Args:
        settings: the validated settings.
        name: the calendar's name in config (for messages).
    """

    def __init__(self, settings: CalendarSettings, name: str = "") -> None:
        self.settings = settings
        self.name = name
        self.zone = ZoneInfo(settings.timezone)
        self._holiday_years = _HolidayYears(settings.holidays, settings.holidays_from)
        hours = settings.hours
        if hours == "always":
            week: tuple[tuple[tuple[int, int], ...], ...] = tuple(((0, 1440),) for _ in WEEKDAYS)
        else:
            week = tuple(tuple(_parse_interval(i, day) for i in hours.get(day, ())) for day in WEEKDAYS)
        self.always = hours == "always" and not settings.holidays and settings.holidays_from is None
        self.timeline: Timeline = WALL_CLOCK if self.always else _PeriodTimeline(self.zone, week, self._holiday_years)

    @classmethod
    def from_config(cls, data: Mapping[str, Any], name: str = "") -> BusinessCalendar:
        """Validate and compile one calendar's config mapping (raises pydantic's ValidationError when invalid)."""
        return cls(CalendarSettings.model_validate(data), name)

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.name or self.settings.timezone!r})"

    def is_holiday(self, day: date) -> bool:
        """Whether the local date ``day`` is a whole day off."""
        return day in self._holiday_years.names(day.year)

    def holidays_in(self, year: int) -> dict[date, str]:
        """The days off of a local year with their names (explicit ones are named ``holiday``)."""
        return dict(sorted(self._holiday_years.names(year).items()))

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` is inside a business period (a period's end is not)."""
        return self.timeline.is_open_us(to_us(t))

    def next_opening(self, t: datetime) -> datetime:
        """``t`` itself if it is inside business hours, else the start of the next business period."""
        return from_us(self.timeline.opening_us(to_us(t)))

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The due time of a business-time target: ``duration`` of business time after ``start``'s next opening.

        A target that runs out exactly at the end of a period is due at that end; a zero target is due at the next
        opening.

        Raises:
            ValueError: ``start`` is naive or ``duration`` negative.
        """
        return from_us(self.timeline.add_us(to_us(start, "start"), duration_us(duration, "target")))

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in ``[start, end)``; zero when ``end`` is not after ``start``."""
        return timedelta(microseconds=self.timeline.between_us(to_us(start, "start"), to_us(end, "end")))

    def periods_between(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The business periods overlapping ``[start, end)``, clipped to it (for explanations and the CLI)."""
        a, b = to_us(start, "start"), to_us(end, "end")
        out: list[tuple[datetime, datetime]] = []
        timeline = self.timeline
        while a < b:
            opening = timeline.opening_us(a)
            if opening >= b:
                break
            closing = self._period_end(opening, b)
            out.append((from_us(opening), from_us(closing)))
            a = closing
        return out

    def _period_end(self, opening: int, limit: int) -> int:
        """The end of the business period that contains ``opening``, or ``limit`` if that comes first."""
        timeline = self.timeline
        if isinstance(timeline, _PeriodTimeline):
            span = timeline._covering(opening)
            end = span.ends[bisect_right(span.ends, opening)]
            return min(end, limit)
        return limit


def compile_calendars(settings: Mapping[str, CalendarSettings]) -> dict[str, BusinessCalendar]:
    """Compile the ``calendars:`` section: name -> calendar."""
    return {name: BusinessCalendar(calendar, name) for name, calendar in settings.items()}
