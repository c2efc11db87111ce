#!/usr/bin/env python3
"""Mapping benchmark: records mapped per second per core, per vendor, with the shipped default mappings.

Usage: python3 run.py bench mapping [--seconds S] [--vendor NAME ...]
Maps the realistic records of tests/mapping/fixtures (list-endpoint records as a backfill sees them, and full tickets
with notes and time entries) over and over in one thread with the vendor metadata loaded, and prints records per
second of CPU time (one core), plus canonical changes turned into patches per second. Mapping is pure and holds no
lock, so throughput scales with worker processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psabridge.default_mappings import builtin_mapping
from psabridge.mapping import MappingContext, load_mapping
from psabridge.model import System
from psabridge.vendordata import VendorMetadata

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "mapping" / "fixtures"
FILES = {
    "connectwise": ("tickets_list.json", "ticket_full.json"),
    "autotask": ("tickets_query.json", "ticket_full.json"),
    "servicenow": ("incidents_list.json", "incident_full.json"),
    "freshservice": ("tickets_list.json", "ticket_full.json"),
}
CONTEXTS = {
    "connectwise": MappingContext("msp-cw", System.CONNECTWISE, tenants={"AcmeDental": "acme", "Hooli": "hooli"}),
    "autotask": MappingContext("partner-at", System.AUTOTASK, tenants={"1001": "initech", "1002": "umbrella"}),
    "servicenow": MappingContext("acme-snow", System.SERVICENOW, tenant="acme"),
    "freshservice": MappingContext("globex-fs", System.FRESHSERVICE, tenant="globex"),
}
CHANGES = {"status": "on_hold", "priority": "P1", "summary": "Escalated to Tier 2", "source": "phone"}


def _rate(work: Callable[[], int], seconds: float) -> float:
    """Items per CPU second of ``work`` (which returns how many items it did), run for about ``seconds``."""
    work()  # warm up
    done = 0
    started = time.process_time()
    while (spent := time.process_time() - started) < seconds:
        done += work()
    return done / spent


def bench(vendor: str, seconds: float) -> dict[str, Any]:
    """Inbound (list records, full tickets) and outbound rates of one vendor."""
    mapper = load_mapping(builtin_mapping(vendor))
    metadata = VendorMetadata.model_validate_json((FIXTURES / vendor / "metadata.json").read_text())
    context = CONTEXTS[vendor]
    list_name, full_name = FILES[vendor]
    listed = mapper.records(json.loads((FIXTURES / vendor / list_name).read_text()))
    full = mapper.records(json.loads((FIXTURES / vendor / full_name).read_text()))
    findings = sum(len(mapper.inbound(r, context, metadata).findings) for r in listed + full)

    def inbound(records: list[dict[str, Any]]) -> Callable[[], int]:
        def run() -> int:
            for raw in records:
                mapper.inbound(raw, context, metadata)
            return len(records)

        return run

    def outbound() -> int:
        for raw in full:
            mapper.outbound(CHANGES, context, metadata, current=raw)
        return len(full)

    notes = sum(len(r.get("_psa_notes") or []) for r in full) / len(full)
    return {
        "vendor": vendor,
        "list": _rate(inbound(listed), seconds),
        "full": _rate(inbound(full), seconds),
        "notes": notes,
        "outbound": _rate(outbound, seconds),
        "findings": findings,
    }


def main(argv: list[str]) -> int:
    """Run the benchmark and print one line per vendor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    parser.add_argument("--vendor", action="append", choices=sorted(FILES), help="only these vendors")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, one thread; records per CPU second (= per core)")
    header = ("vendor", "list records/s", "full tickets/s", "notes/ticket", "patches/s", "findings")
    print("{:<13} {:>15} {:>15} {:>13} {:>10} {:>9}".format(*header))
    for vendor in args.vendor or list(FILES):
        row = bench(vendor, args.seconds)
        print(
            f"{row['vendor']:<13} {row['list']:>15,.0f} {row['full']:>15,.0f} {row['notes']:>13.1f} "
            f"{row['outbound']:>10,.0f} {row['findings']:>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
