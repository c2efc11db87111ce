"""SLA clock arithmetic: due times and elapsed time of a target in business or wall-clock time, with pauses.

An SLA clock starts at ``start`` and runs through the business periods of a calendar (``clock="business"``) or
through all time (``clock="wall"``), except while it is paused. The rules, on top of those of
:mod:`psabridge.rules.calendar`:

- A pause is a ``(start, end)`` pair of aware datetimes (the ticket on hold, waiting on the customer or a vendor).
  Paused time does not count: the business time inside a pause is added back to the due time. Pauses may overlap each
  other (they are merged), start before the clock, extend past ``now``, and span nights, weekends and holidays (only
  the business time inside them matters). A pause that is still going on is passed as ending at ``now``: the due time
  is then "if the clock resumed now".
- A clock started outside business hours, or inside a pause, starts at the first instant that is both business time
  and not paused. A zero target is due at that instant.
- A target that runs out exactly at the end of a business period, or exactly where a pause begins, is due at that
  moment.
- ``elapsed`` is the running time of the clock in ``[start, now)``; it is zero when ``now`` is not after ``start``.

So ``due(cal, s, t, pauses)`` is non-decreasing in ``t``, never earlier when a pause is added, and
``elapsed(cal, s, due(cal, s, t, p), p) == t``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from psabridge.rules.calendar import WALL_CLOCK, BusinessCalendar, Timeline, duration_us, from_us, to_us

__all__ = ["Clock", "Pause", "due", "elapsed", "merge_pauses"]

Clock = Literal["business", "wall"]
"""Which time a target is counted in: the calendar's business periods, or wall-clock time."""

Pause = tuple[datetime, datetime]
"""A paused interval ``(start, end)``; both ends aware datetimes, ``end >= start``."""


def _timeline(calendar: BusinessCalendar, clock: Clock) -> Timeline:
    if clock == "business":
        return calendar.timeline
    if clock == "wall":
        return WALL_CLOCK
    raise ValueError(f"clock {clock!r} is not one of business, wall")


def merge_pauses(pauses: Iterable[Pause]) -> list[tuple[int, int]]:
    """Pauses as sorted, disjoint ``(start, end)`` microsecond pairs (overlapping and touching ones merged).

    Raises:
        ValueError: a pause has a naive end, or ends before it starts.
    """
    spans: list[tuple[int, int]] = []
    for index, (begin, end) in enumerate(pauses):
        a, b = to_us(begin, f"pauses[{index}] start"), to_us(end, f"pauses[{index}] end")
        if b < a:
            raise ValueError(f"pauses[{index}] ends ({end.isoformat()}) before it starts ({begin.isoformat()})")
        if b > a:
            spans.append((a, b))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def due_us(timeline: Timeline, start: int, target: int, pauses: list[tuple[int, int]]) -> int:
    """:func:`due` on microseconds, with pauses already merged."""
    cursor, remaining = start, target
    for pause_start, pause_end in pauses:
        if pause_end <= cursor:
            continue
        if pause_start > cursor:
            running = timeline.between_us(cursor, pause_start)
            if running > 0 and running >= remaining:
                return timeline.add_us(cursor, remaining)
            remaining -= running
        cursor = pause_end
    return timeline.add_us(cursor, remaining)


def elapsed_us(timeline: Timeline, start: int, now: int, pauses: list[tuple[int, int]]) -> int:
    """:func:`elapsed` on microseconds, with pauses already merged."""
    if now <= start:
        return 0
    total = timeline.between_us(start, now)
    for pause_start, pause_end in pauses:
        if pause_end <= start:
            continue
        if pause_start >= now:
            break
        total -= timeline.between_us(max(pause_start, start), min(pause_end, now))
    return total


def due(
    calendar: BusinessCalendar,
    start: datetime,
    target: timedelta,
    pauses: Iterable[Pause] = (),
    *,
    clock: Clock = "business",
) -> datetime:
    """When a clock started at ``start`` has run for ``target``, paused time not counting (aware UTC).

    Args:
        calendar: the tenant's calendar (ignored for ``clock="wall"``).
        start: when the clock started (ticket created, reopened, priority set...).
        target: the SLA target, e.g. 8 hours for a response.
        pauses: paused intervals, in any order, overlapping or not.
        clock: ``business`` counts only the calendar's business periods, ``wall`` all time.

    Raises:
        ValueError: a naive datetime, a negative target, a pause ending before it starts, or an unknown clock.
    """
    timeline = _timeline(calendar, clock)
    return from_us(due_us(timeline, to_us(start, "start"), duration_us(target, "target"), merge_pauses(pauses)))


def elapsed(
    calendar: BusinessCalendar,
    start: datetime,
    now: datetime,
    pauses: Iterable[Pause] = (),
    *,
    clock: Clock = "business",
) -> timedelta:
    """How long the clock started at ``start`` has run by ``now``, paused time not counting.

    Raises:
        ValueError: a naive datetime, a pause ending before it starts, or an unknown clock.
    """
    timeline = _timeline(calendar, clock)
    spent = elapsed_us(timeline, to_us(start, "start"), to_us(now, "now"), merge_pauses(pauses))
    return timedelta(microseconds=spent)
