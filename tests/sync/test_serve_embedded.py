"""`psabridge serve` on the one-machine default (embedded broker, SQLite) against the simulators: it mirrors, and a
crash that loses every queued message loses no work once it starts again."""

from __future__ import annotations

from pathlib import Path

import pytest

from .bridge import Bridge, Vendors, wait_for

pytestmark = pytest.mark.slow


def test_serve_embedded_mirrors_and_a_crash_loses_nothing(tmp_path: Path, vendors: Vendors, namespace: str) -> None:
    bridge = Bridge(tmp_path, vendors, database=f"sqlite:///{tmp_path / 'bridge.db'}", broker="embedded",
                    namespace=namespace)  # fmt: skip
    try:
        bridge.serve()
        vendors.faults(latency_ms=[50, 150])
        titles = [f"Monitor {n} flickers" for n in range(6)]
        ids = [vendors.open_incident(title) for title in titles]
        wait_for("the first mirror", lambda: any(lk.state == "created" for lk in bridge.links()))
        bridge.kill("serve")  # the in-memory queue dies with it, mid-run
        bridge.serve()  # recovery on start finds it in the store
        for sys_id in ids:
            bridge.mirror_of(sys_id)
        bridge.settle(timeout=120)
        assert [len(vendors.cw_tickets(title)) for title in titles] == [1] * len(titles)
        assert bridge.dead_letters() == []
    finally:
        bridge.stop()
