#!/usr/bin/env python3
"""Seed-generation benchmark: how fast the sandbox's ticket generator makes 1k, 10k and 100k tickets.

Usage: python3 run.py bench seed [COUNT ...] [--seed S]   (default counts: 1000 10000 100000)
Prints, per count: wall time, tickets per second, notes and time entries made, and the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, datetime

from psabridge_sandbox.scenarios import Scenario
from psabridge_sandbox.tickets import generate_tickets
from psabridge_sandbox.world import build_world

ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def main(argv: list[str]) -> int:
    """Run the benchmark and print one line per count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", nargs="*", type=int, default=[1_000, 10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    world = build_world(args.seed)
    print(f"world: {len(world.contacts)} contacts, {len(world.assets)} assets in {time.perf_counter() - started:.3f}s")
    header = ("tickets", "seconds", "tickets/s", "notes", "time entries", "scenarios", "peak MB")
    print("{:>9} {:>8} {:>10} {:>8} {:>12} {:>9} {:>8}".format(*header))
    for count in args.counts:
        started = time.perf_counter()
        tickets = generate_tickets(world, count, anchor=ANCHOR)
        seconds = time.perf_counter() - started
        notes = sum(len(t.notes) for t in tickets)
        entries = sum(len(t.time_entries) for t in tickets)
        covered = len({s for t in tickets for s in t.scenarios})
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
        print(
            f"{count:>9,} {seconds:>8.3f} {count / seconds:>10,.0f} {notes:>8,} {entries:>12,} "
            f"{covered:>4}/{len(Scenario):<4} {peak:>8.0f}"
        )
        del tickets
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
