#!/usr/bin/env python3
"""Redis queue prefetch: how long Dramatiq workers take to drain a queue with the default prefetch and with ours.

Usage: python3 run.py bench sync_prefetch [--redis URL] [--messages N] [--threads T ...] [--job-ms MS ...]
Each run fills a fresh (namespaced) Redis queue with N messages, then times in-process workers (T threads) draining
it, first with Dramatiq's defaults (prefetch twice the threads, consumers idle up to 1000 ms), then with psabridge's
(BrokerOptions.queue_prefetch, idle at most 100 ms). Jobs sleep MS milliseconds, like a vendor call of that length.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import dramatiq

from psabridge.sync.broker import BrokerOptions, build_broker, start_workers


def drain(url: str, messages: int, threads: int, prefetch: int | None, idle_ms: int, job_ms: float) -> float:
    """Seconds the workers need to process ``messages`` messages."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    broker = build_broker(url, lambda job: None, BrokerOptions(namespace=namespace))
    done: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="bench", max_retries=0)
    def job(n: int) -> None:
        if job_ms:
            time.sleep(job_ms / 1000)
        done.append(n)

    for n in range(messages):
        job.send(n)
    started = time.perf_counter()
    worker = start_workers(broker, threads=threads, queue_prefetch=prefetch, idle_timeout_ms=idle_ms)
    while len(done) < messages:
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    worker.stop()
    broker.flush_all()
    broker.close()
    return seconds


def main(argv: list[str]) -> int:
    """Run both settings per job length and print a line per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--job-ms", type=float, nargs="*", default=[0.0, 2.0, 20.0])
    args = parser.parse_args(argv)
    ours = BrokerOptions().queue_prefetch
    settings = [("dramatiq default", None, 1000), ("psabridge", ours, 100)]
    print(f"{args.messages} messages per run")
    print(f"{'threads':>7} {'job ms':>7} {'settings':>18} {'prefetch':>9} {'seconds':>8} {'msg/s':>8}")
    for threads in args.threads:
        for job_ms in args.job_ms:
            for label, prefetch, idle_ms in settings:
                seconds = drain(args.redis, args.messages, threads, prefetch, idle_ms, job_ms)
                shown = prefetch or threads * 2
                rate = args.messages / seconds
                print(f"{threads:7d} {job_ms:7g} {label:>18} {shown:>9} {seconds:8.2f} {rate:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
