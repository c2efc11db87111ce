"""Against the four vendor simulators over real HTTP: a backfill stores every ticket once, and a second full reconcile
of an unchanged vendor costs its list pages only (counted in the simulator's recorded requests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from psabridge.settings import Settings, load_settings
from psabridge.store import upgrade
from psabridge.store.models import TicketRow
from psabridge.sync.context import SyncContext, build_context
from psabridge.sync.poll import poll_connection
from psabridge.sync.reconcile import reconcile
from psabridge_sandbox.configout import write_config
from psabridge_sandbox.runner import SandboxRunner

from .conftest import RecordingQueue

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VENDORS = {"connectwise": "msp-cw", "autotask": "partner-at", "servicenow": "acme-snow", "freshservice": "globex-fs"}
LISTS = {  # each vendor's list request, which is all a comparison may cost
    "connectwise": ("GET", "/v4_6_release/apis/3.0/service/tickets"),
    "autotask": ("POST", "/ATServicesRest/V1.0/Tickets/query"),
    "servicenow": ("GET", "/api/now/table/incident"),
    "freshservice": ("GET", "/api/v2/tickets"),
}
TICKETS = 25


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxRunner]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN", "unlimited")
        runner = SandboxRunner(port_base=0, tickets=TICKETS)
        runner.start()
    try:
        yield runner
    finally:
        runner.stop()


def settings_for(sandbox: SandboxRunner, folder: Path) -> Settings:
    config = write_config(folder / "psabridge.yaml", sandbox.infos, world=sandbox.world, host="127.0.0.1")
    settings = load_settings(config)
    settings.database = f"sqlite:///{folder / 'bridge.db'}"
    settings.links = []
    for connection in settings.connections:
        connection.backfill_since = None
    upgrade(settings.database)
    return settings


def recorded(sandbox: SandboxRunner, vendor: str, since: int) -> list[dict[str, object]]:
    root = sandbox.infos[vendor].url
    found = httpx.get(f"{root}/_sandbox/requests", params={"since": since}, timeout=30).json()["requests"]
    return list(found)


def last_seq(sandbox: SandboxRunner, vendor: str) -> int:
    return max((int(str(r["seq"])) for r in recorded(sandbox, vendor, 0)), default=0)


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_a_second_full_reconcile_of_an_unchanged_vendor_costs_its_list_pages(
    vendor: str, sandbox: SandboxRunner, tmp_path: Path
) -> None:
    name = VENDORS[vendor]
    ctx: SyncContext = build_context(settings_for(sandbox, tmp_path), RecordingQueue())
    try:
        polled = poll_connection(ctx, name)
        with ctx.db.session() as s:
            stored = s.scalar(sa.select(sa.func.count()).where(TicketRow.connection == name))
        assert stored == TICKETS and polled.counts["created"] == TICKETS and polled.counts.get("failed", 0) == 0
        before = last_seq(sandbox, vendor)
        report = reconcile(ctx, connections=[name], full=True)
        counts = report.connections[name]
        stored_again = counts.created + counts.updated
        assert (counts.seen, counts.unchanged, stored_again, counts.failed) == (TICKETS, TICKETS, 0, 0)
        made = {(str(r["method"]), str(r["path"])) for r in recorded(sandbox, vendor, before)}
        assert made == {LISTS[vendor]}, made
    finally:
        ctx.close()
