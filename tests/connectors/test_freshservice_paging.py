"""Freshservice pages by creation time: a ticket changed on a page already read must come in the next run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psabridge.connectors.freshservice import FreshserviceConnector
from psabridge.connectors.http import HttpRuntime
from psabridge_sandbox.clock import SystemClock
from psabridge_sandbox.credentials import FS_API_KEY, FS_WEBHOOK_SECRET
from psabridge_sandbox.freshservice import FreshserviceSimulator
from psabridge_sandbox.registry import SandboxContext, default_anchor, service
from psabridge_sandbox.world import build_world

from .contract.harness import connection_settings, ticket_ids
from .serving import serve


def test_without_overlap_the_watermark_stops_where_the_run_began(namespace: str) -> None:
    # Given a backfill over real HTTP that takes seconds, while tickets on every page are changed between pages
    clock = SystemClock()
    context = SandboxContext(
        service=service("freshservice"), world=build_world(0), anchor=default_anchor(clock), tickets=200, clock=clock
    )
    fs = FreshserviceSimulator(context, plan="unlimited")
    with serve(fs.simulator) as root:
        settings = connection_settings(
            name="globex-fs", system="freshservice", base_url=root, tenant="globex",
            secrets={"api_key": FS_API_KEY, "webhook_secret": FS_WEBHOOK_SECRET},
            overlap=timedelta(0), page_size=50, rate_budget={"vendor_limits": False},
        )  # fmt: skip
        connector = FreshserviceConnector(settings, runtime=HttpRuntime(namespace=namespace))
        fs.simulator.faults.update({"churn_touch": 8, "latency_ms": [1100, 1100]})
        started = datetime.now(UTC)

        # When the backfill runs, and then an incremental run from its watermark (no overlap window at all)
        _, watermark, first = ticket_ids(iter(connector.iter_changes(None)), connector)
        fs.simulator.faults.update({"profile": "none"})
        final = {str(row.id): row.updated for row in fs.tickets.rows()}
        _, _, second = ticket_ids(iter(connector.iter_changes(watermark)), connector)
        connector.close()
    fs.simulator.close()

    # Then the watermark is no later than the first page, and every change reached one run or the other ...
    assert watermark is not None and watermark <= started + timedelta(seconds=1)
    newest: dict[str, datetime] = {}
    for record in first + second:
        key, updated = connector.external_id_of(record), connector.updated_at_of(record)
        assert updated is not None
        newest[key] = max(updated, newest.get(key, updated))
    assert sorted(i for i, updated in final.items() if newest.get(i) != updated) == []
    # ... including changes to tickets the backfill had already passed (what a watermark at the newest time seen
    # would have lost: those changes are older than changes seen on later pages).
    first_seen = {connector.external_id_of(r): connector.updated_at_of(r) for r in first}
    newest_seen = max(u for u in first_seen.values() if u is not None)
    assert [i for i, updated in final.items() if first_seen[i] != updated and updated < newest_seen]
