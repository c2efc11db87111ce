#!/usr/bin/env python3
"""SLA clock benchmark: due-time computations per second per core over a business calendar with holidays and lunch.

Usage: python3 run.py bench sla [--seconds S]
The calendar is issue 11's example (America/New_York, a Monday lunch break, short Fridays, explicit holidays plus the
US/NY public holidays); the target is 40 business hours (a working week). Starts are random instants over 2026-2028,
the same every run. One thread, CPU time, so the figures are per core. The goal is 50,000 due times per second.
Prints one JSON line: due times/s without pauses, with two pauses, elapsed-time readings/s, the one-off cost of
compiling the calendar and its first year of business periods, and the SLA rule's own figure: evaluations/s of
rules/sla.py (response, plan and resolution clocks with their milestones and the merged SLA state) for tickets
with a week-long resolution target over the same calendar, without and with a history of two on-hold spells.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from bench_mapping import _rate  # items per CPU second of a callable: the same measure as the mapping bench

from psabridge.model import Priority, Status, System, Ticket
from psabridge.rules import RuleInput, RuleSet, TenantView, Transition
from psabridge.rules.base import NO_KNOWLEDGE, STANDALONE, ConnectionView, RuleContext
from psabridge.rules.calendar import BusinessCalendar
from psabridge.rules.config import RulesDocument
from psabridge.rules.sla import SlaRule
from psabridge.rules.sla_clock import Pause, due, elapsed
from psabridge.rules.text import TicketText

CALENDAR = {
    "timezone": "America/New_York",
    "hours": {
        "mon": ["08:00-12:00", "13:00-17:00"],
        "tue": ["08:00-17:00"],
        "wed": ["08:00-17:00"],
        "thu": ["08:00-17:00"],
        "fri": ["08:00-16:00"],
    },
    "holidays": ["2026-12-25", "2027-01-01"],
    "holidays_from": {"country": "US", "subdivision": "NY"},
}
TARGET = timedelta(hours=40)
CONNECTION = ConnectionView("msp-cw", System.CONNECTWISE)
SAMPLES = 2_000


def main(argv: list[str]) -> int:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement")
    args = parser.parse_args(argv)

    began = time.process_time()
    calendar = BusinessCalendar.from_config(CALENDAR, "us-east-business")
    calendar.add_business_time(datetime(2026, 6, 1, tzinfo=UTC), TARGET)
    first_year_ms = (time.process_time() - began) * 1000

    rng = random.Random(11)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [
        base + timedelta(seconds=rng.randrange(3 * 365 * 86400), microseconds=rng.randrange(10**6))
        for _ in range(SAMPLES)
    ]
    pauses: list[list[Pause]] = []
    for start in starts:
        first = start + timedelta(hours=rng.randrange(1, 30))
        second = first + timedelta(hours=rng.randrange(20, 80))
        pauses.append([(first, first + timedelta(hours=rng.randrange(1, 16))), (second, second + timedelta(hours=3))])
    nows = [start + timedelta(days=3) for start in starts]

    def plain() -> int:
        for start in starts:
            calendar.add_business_time(start, TARGET)
        return SAMPLES

    def paused() -> int:
        for start, stops in zip(starts, pauses, strict=True):
            due(calendar, start, TARGET, stops)
        return SAMPLES

    def readings() -> int:
        for start, stops, now in zip(starts, pauses, nows, strict=True):
            elapsed(calendar, start, now, stops)
        return SAMPLES

    rule_plain, rule_history = _rule_rates(starts, args.seconds)
    row = {
        "bench": "sla",
        "python": sys.version.split()[0],
        "target_business_hours": TARGET / timedelta(hours=1),
        "due_per_s": round(_rate(plain, args.seconds)),
        "due_with_2_pauses_per_s": round(_rate(paused, args.seconds)),
        "elapsed_with_2_pauses_per_s": round(_rate(readings, args.seconds)),
        "compile_and_first_year_ms": round(first_year_ms, 1),
        "sla_rule_per_s": round(rule_plain),
        "sla_rule_with_2_holds_per_s": round(rule_history),
        "goal_due_per_s": 50_000,
    }
    print(json.dumps(row))
    return 0


def _rule_rates(starts: list[datetime], seconds: float) -> tuple[float, float]:
    """SLA rule evaluations per CPU second: plain tickets, and tickets with two on-hold spells in their history."""
    tiers = {"bench": {"targets": {"P3": {"response": "4h", "plan": "8h", "resolution": "40h"}}}}
    document = RulesDocument.model_validate(
        {"calendars": {"us-east-business": CALENDAR}, "rules": {"sla": {"tiers": tiers}}}
    )
    rules = RuleSet.from_document(document)
    settings = rules.settings("sla", None)
    context = RuleContext(rules.calendars, rules.settings_by_rule(None))
    tenant = TenantView.of("acme", name="Acme Dental", contract_tier="bench", calendar="us-east-business")
    rule = SlaRule()
    inputs: list[tuple[RuleInput[object], RuleInput[object]]] = []
    for start in starts[:500]:
        ticket = Ticket(connection="msp-cw", system=System.CONNECTWISE, external_id="1", tenant="acme",
                        summary="Outlook slow", status=Status.IN_PROGRESS, priority=Priority.P3,
                        created_at=start, updated_at=start)  # fmt: skip
        hold = start + timedelta(hours=5)
        history = (
            Transition("status", "new", "in_progress", start + timedelta(minutes=20)),
            Transition("status", "in_progress", "on_hold", hold),
            Transition("status", "on_hold", "in_progress", hold + timedelta(hours=14)),
            Transition("status", "in_progress", "on_hold", hold + timedelta(days=2)),
            Transition("status", "on_hold", "in_progress", hold + timedelta(days=3)),
        )
        now = start + timedelta(days=4)
        shared = (ticket, TicketText(ticket), None)
        rest = (tenant, STANDALONE, CONNECTION, (), NO_KNOWLEDGE, now, None, settings, context)
        inputs.append((RuleInput(*shared, (), *rest), RuleInput(*shared, history, *rest)))  # type: ignore[arg-type]

    def plain() -> int:
        for data, _ in inputs:
            rule.evaluate(data)  # type: ignore[arg-type]
        return len(inputs)

    def with_history() -> int:
        for _, data in inputs:
            rule.evaluate(data)  # type: ignore[arg-type]
        return len(inputs)

    return _rate(plain, seconds), _rate(with_history, seconds)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
