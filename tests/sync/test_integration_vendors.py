"""End to end with Freshservice and Autotask, as test_integration.py does it for ServiceNow and ConnectWise: the
simulators on loopback, `psabridge serve` receiving webhooks and polling on its schedule, a `psabridge worker` on
Redis, PostgreSQL as the store. Mirrors made once, notes and owned fields flowing each way once, no echo loop, and
nothing lost: Autotask's changes arrive by polling alone (its webhooks are entities of its API, not set up here), so
every one of them goes through ingesting the list page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .bridge import Bridge, Vendors, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OWN = {"status": "to", "priority": "from", "notes": "both", "time_entries": "to"}
FS_TO_CW: dict[str, Any] = {
    "name": "globex-fs-to-cw",
    "from": {"connection": "globex-fs", "where": {"queue": "MSP Escalations"}},
    "to": {"connection": "msp-cw", "queue": "Globex Service", "tenant": "globex"},
    "own": OWN,
}
AT_TO_CW: dict[str, Any] = {
    "name": "partner-at-to-cw",
    "from": {"connection": "partner-at", "tenant": "initech", "where": {"queue": "Networking"}},  # it holds several
    "to": {"connection": "msp-cw", "queue": "Service Desk", "tenant": "initech"},
    "own": OWN,
}


@pytest.fixture
def bridge(
    request: pytest.FixtureRequest, tmp_path: Path, vendors: Vendors, postgres_url: str, redis_url: str, namespace: str
) -> Iterator[Bridge]:
    source, link = request.param
    made = Bridge(tmp_path, vendors, database=postgres_url, broker=redis_url, namespace=namespace, poll_every="2s",
                  connections=(source, "msp-cw"), links=(link,))  # fmt: skip
    made.serve()
    made.worker()
    yield made
    made.stop()


def cw_mirrors(vendors: Vendors, title: str) -> list[dict[str, Any]]:
    return vendors.cw_tickets(title)


def the_mirror(vendors: Vendors, title: str) -> str:
    found = wait_for(f"the ConnectWise mirror of {title!r}", lambda: cw_mirrors(vendors, title), timeout=90)
    return str(found[0]["id"])


def settled(bridge: Bridge, vendors: Vendors) -> None:
    """Once nothing is in flight, a further reconcile writes nothing (nothing duplicated, nothing bounced).

    A change carried to the source (a status, a priority) is evaluated there and may still bring the checklist's
    write-backs after the flows waited for, and a first full reconcile drains the evaluations it finds pending; so
    the writes are taken after one full reconcile, and the second must add none.
    """
    bridge.quiesce(timeout=180)
    result = bridge.reconcile("--full")
    assert result.returncode == 0, result.stdout + result.stderr
    writes = bridge.quiesce(timeout=180)
    result = bridge.reconcile("--full")
    assert result.returncode == 0, result.stdout + result.stderr
    assert bridge.quiesce(timeout=180) == writes  # nothing duplicated, nothing bounced
    assert bridge.dead_letters() == []


@pytest.mark.parametrize("bridge", [("globex-fs", FS_TO_CW)], indirect=True)
def test_a_freshservice_ticket_is_mirrored_once_and_notes_and_owned_fields_flow(
    bridge: Bridge, vendors: Vendors
) -> None:
    fs = vendors.fs
    title = "Shared mailbox not syncing"
    fs_id = fs.open_ticket(title)
    cw_id = the_mirror(vendors, title)
    assert vendors.cw_ticket(cw_id)["board"]["name"] == "Globex Service"
    # A note on either side appears once on the other
    fs.note(fs_id, "Happens for the whole finance team")
    wait_for("the client's note in ConnectWise", lambda: any("finance team" in n for n in vendors.cw_notes(cw_id)))
    vendors.cw_note(cw_id, "Rebuilt the mailbox permissions")
    wait_for("the technician's note in Freshservice", lambda: any("permissions" in n for n in fs.notes(fs_id)))
    # Priority belongs to Freshservice, status to ConnectWise
    fs.update(fs_id, priority=4)  # Urgent
    wait_for("ConnectWise P1", lambda: vendors.cw_ticket(cw_id)["priority"]["name"].startswith("Priority 1"))
    vendors.cw_status(cw_id, "Completed")
    wait_for("Freshservice resolved", lambda: fs.ticket(fs_id)["status"] == 4, timeout=90)
    settled(bridge, vendors)
    assert sum("finance team" in n for n in vendors.cw_notes(cw_id)) == 1
    assert sum("permissions" in n for n in fs.notes(fs_id)) == 1
    assert len(cw_mirrors(vendors, title)) == 1


@pytest.mark.parametrize("bridge", [("partner-at", AT_TO_CW)], indirect=True)
def test_an_autotask_ticket_found_by_polling_is_mirrored_once_and_notes_and_owned_fields_flow(
    bridge: Bridge, vendors: Vendors
) -> None:
    at = vendors.at
    titles = [f"Switch port {n} flapping" for n in range(3)]
    ids = [at.open_ticket(title) for title in titles]
    cw_ids = [the_mirror(vendors, title) for title in titles]
    assert vendors.cw_ticket(cw_ids[0])["board"]["name"] == "Service Desk"
    at.note(ids[0], "Port 12 on the core switch shows CRC errors")
    wait_for("the Autotask note in ConnectWise", lambda: any("CRC errors" in n for n in vendors.cw_notes(cw_ids[0])))
    vendors.cw_note(cw_ids[0], "Replaced the patch cable")
    wait_for("the ConnectWise note in Autotask", lambda: any("patch cable" in n for n in at.notes(ids[0])), timeout=90)
    at.update(ids[1], priority=4)  # Critical
    wait_for("ConnectWise P1", lambda: vendors.cw_ticket(cw_ids[1])["priority"]["name"].startswith("Priority 1"))
    vendors.cw_status(cw_ids[2], "In Progress")
    wait_for("Autotask In Progress", lambda: at.ticket(ids[2])["status"] == 8, timeout=90)
    settled(bridge, vendors)
    assert [len(cw_mirrors(vendors, title)) for title in titles] == [1, 1, 1]
    assert sum("CRC errors" in n for n in vendors.cw_notes(cw_ids[0])) == 1
    assert sum("patch cable" in n for n in at.notes(ids[0])) == 1
