"""Benchmark: full backfill of N tickets per vendor from the sandbox over real HTTP on loopback.

Usage: python3 run.py bench connectors [--counts 10000,30000,100000] [--vendors connectwise,autotask,...]

For each count, one `psabridge sandbox serve` process holds every simulator (so its memory is not ours); each
vendor's backfill then runs in a fresh child process through `get_connector(...).iter_changes(None)`, exactly as a
poll does, and reports tickets per second, requests per ticket and the child's peak RSS; a second, traced run of the
same backfill reports the peak of Python heap memory (tracemalloc) and what is still held at the end. Simulator rate
limits are the vendors' except Freshservice, whose sandbox plan is set to `unlimited` (and our budget raised to
match) so the figure shows our own cost; the vendor limits that bound a real backfill are printed after the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = {
    "connectwise": "msp-cw",
    "autotask": "partner-at",
    "servicenow": "acme-snow",
    "freshservice": "globex-fs",
}
# What each vendor's own limit allows for a backfill with the largest page (see the connectors' budget defaults).
VENDOR_CEILING = {
    "connectwise": "no published limit (our default budget: 900 req/min x 1000 per page)",
    "autotask": "10,000 req/h per database x 500 per page (we take half by default)",
    "servicenow": "admin-defined rule x 1000 per page",
    "freshservice": "Growth plan: 70 list calls/min x 100 per page = 7,000 tickets/min",
}


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def child(vendor: str, config: str, traced: bool) -> None:
    """Run one backfill in this process and print its figures as JSON (heap figures when ``traced``)."""
    import tracemalloc

    from psabridge.connectors import get_connector
    from psabridge.log import configure_logging
    from psabridge.settings import load_settings

    configure_logging("warning", "json")
    settings = load_settings(config)
    connection = settings.connection(CONNECTIONS[vendor])
    connector = get_connector(connection, broker_url="embedded")
    baseline = _rss_kib()
    if traced:
        tracemalloc.start()
    records = requests = 0
    started = time.perf_counter()
    for page in connector.iter_changes(None):
        requests += page.request_count
        records += len(page.records)
    elapsed = time.perf_counter() - started
    heap_now, heap_peak = tracemalloc.get_traced_memory() if traced else (0, 0)
    connector.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "vendor": vendor,
                "records": records,
                "requests": requests,
                "seconds": round(elapsed, 2),
                "baseline_rss_mib": round(baseline / 1024, 1),
                "peak_rss_mib": round(peak / 1024, 1),
                "heap_peak_mib": round(heap_peak / 2**20, 1),
                "heap_end_mib": round(heap_now / 2**20, 1),
            }
        )
    )


def serve(count: int, workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the sandbox with ``count`` tickets per vendor; return the process and its config file."""
    urls, config = workdir / "urls.json", workdir / "psabridge.yaml"
    env = {**os.environ, "PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN": "unlimited"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "psabridge"),
            "sandbox",
            "serve",
            "--tickets",
            str(count),
            "--port-base",
            "0",
            "--urls-file",
            str(urls),
            "--config-out",
            str(config),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 900
    while not urls.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"sandbox serve did not start (exit {proc.returncode})")
        time.sleep(0.5)
    return proc, config


def main() -> int:
    """Parse arguments, run every (count, vendor) backfill, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10000,30000,100000")
    parser.add_argument("--vendors", default=",".join(CONNECTIONS))
    parser.add_argument("--json", action="store_true", help="also print one JSON line per measurement")
    parser.add_argument("--child", nargs=3, metavar=("VENDOR", "CONFIG", "TRACED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2] == "traced")
        return 0
    counts = [int(c) for c in args.counts.split(",")]
    vendors = args.vendors.split(",")
    env = {
        **os.environ,
        # our own budget for the unlimited sandbox plan: the figure is our cost, not Freshservice's limit
        "PSABRIDGE_CONNECTIONS__GLOBEX_FS__RATE_BUDGET__REQUESTS": "100000",
        "PSABRIDGE_CONNECTIONS__GLOBEX_FS__RATE_BUDGET__PER": "60",
        "PSABRIDGE_CONNECTIONS__GLOBEX_FS__RATE_BUDGET__VENDOR_LIMITS": "false",  # nor the plan's sub-limits
    }
    rows = []
    print(
        f"{'vendor':<13}{'tickets':>9}{'seconds':>9}{'tickets/s':>11}{'req/ticket':>12}{'peak RSS':>10}"
        f"{'heap peak':>11}{'heap end':>10}"
    )
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="psabridge-bench-") as tmp:
            proc, config = serve(count, Path(tmp))
            try:
                for vendor in vendors:
                    row: dict[str, float] = {}
                    for mode in ("timed", "traced"):  # tracemalloc slows a run: time one, trace another
                        out = subprocess.run(
                            [sys.executable, __file__, "--child", vendor, str(config), mode],
                            cwd=ROOT,
                            env=env,
                            capture_output=True,
                            text=True,
                            check=True,
                        )
                        result = json.loads(out.stdout.strip().splitlines()[-1])
                        if mode == "timed":
                            row = result
                        else:
                            row["heap_peak_mib"], row["heap_end_mib"] = result["heap_peak_mib"], result["heap_end_mib"]
                    row["count"] = count
                    rows.append(row)
                    if row["records"] != count:
                        print(f"  ! {vendor}: {row['records']} records, expected {count} (each exactly once)")
                    rate = row["records"] / row["seconds"] if row["seconds"] else float("inf")
                    print(
                        f"{vendor:<13}{count:>9}{row['seconds']:>9.1f}{rate:>11.0f}"
                        f"{row['requests'] / max(1, row['records']):>12.4f}"
                        f"{row['peak_rss_mib']:>8.0f}Mi{row['heap_peak_mib']:>9.1f}Mi{row['heap_end_mib']:>8.1f}Mi",
                        flush=True,
                    )
                    if args.json:
                        print(json.dumps(row))
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    print("\nvendor limits (what a real backfill is bounded by):")
    for vendor in vendors:
        print(f"  {vendor:<13}{VENDOR_CEILING[vendor]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
