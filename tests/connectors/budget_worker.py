"""A worker process for the shared-budget test: sends requests to one connection through the shared HTTP layer.

Run as ``python -m tests.connectors.budget_worker BASE_URL BROKER NAMESPACE WORKER THREADS REQUESTS LIMIT PER
CONCURRENCY``. It builds its client, prints ``ready``, waits for ``go`` on stdin (so every worker starts at once),
sends THREADS x REQUESTS requests, and prints ``done <count>``.
"""

from __future__ import annotations

import sys
import threading

from psabridge.connectors.budget import BudgetLimits
from psabridge.connectors.http import HttpRuntime, RetryPolicy, build_http_client
from psabridge.log import configure_logging
from psabridge.settings import ConnectionSettings


def main(argv: list[str]) -> int:
    configure_logging("warning", "json")  # stdout is the protocol with the test; logs go to stderr
    base_url, broker, namespace, worker = argv[:4]
    threads, requests, limit = (int(v) for v in argv[4:7])
    per = float(argv[7])
    concurrency = int(argv[8])
    settings = ConnectionSettings(
        name="shared-conn",
        system="autotask",
        base_url=base_url,
        rate_budget={"requests": limit, "per": per, "concurrency": concurrency},
    )
    client = build_http_client(
        settings,
        auth=None,
        budget_defaults=BudgetLimits(),
        retry=RetryPolicy(inline_max_wait=60, max_elapsed=120),
        runtime=HttpRuntime(broker_url=broker, namespace=namespace),
    )
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    sent = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(requests):
                client.request("GET", "Tickets/query", headers={"X-Worker": worker})
                sent.append(1)
        except BaseException as exc:  # noqa: BLE001 - reported on stderr below
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    client.close()
    if errors:
        print(f"errors: {errors!r}", file=sys.stderr, flush=True)
        return 1
    print(f"done {len(sent)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
