from __future__ import annotations

import json
from collections import Counter

import pytest

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.faults import PROFILES, Decision, FaultInjector, FaultProfile

from .conftest import ANCHOR, AsgiClient
from .toyvendor import KEY, ToyVendor

AUTH = {"x-toy-key": KEY}


def test_the_named_profiles() -> None:
    assert set(PROFILES) == {"none", "flaky", "throttled", "slow", "malformed", "churn", "webhooks", "chaos"}
    assert PROFILES["none"] == FaultProfile(name="none")
    with pytest.raises(ValueError, match="known: none, flaky"):
        FaultInjector("bogus")


def test_faults_are_deterministic_under_a_seed() -> None:
    def run(seed: int) -> list[Decision]:
        injector = FaultInjector("chaos", seed=seed, clock=FakeClock(ANCHOR))
        return [injector.decide("GET", "/x") for _ in range(300)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    names = Counter(d.name for d in run(7))
    assert names["error"] > 0 and names["latency"] > 0


def test_a_share_of_5xx_rendered_by_the_vendor() -> None:
    toy = ToyVendor(faults="none")
    client = AsgiClient(toy.simulator)
    toy.simulator.faults.update({"error_rate": 1.0, "error_statuses": [503]})
    response = client.get("/items", headers=AUTH)
    assert response.status_code == 503
    assert response.json() == {"fault": {"text": "Service Unavailable", "code": "E"}}
    assert client.get("/_sandbox/requests").json()["requests"][0]["fault"] == "error"
    toy.simulator.faults.set("flaky")
    statuses = Counter(client.get("/items", headers=AUTH).status_code for _ in range(60))
    assert statuses[200] > 30 and sum(n for s, n in statuses.items() if s >= 500) > 0


def test_429_storms_carry_retry_after_and_end(clock: FakeClock) -> None:
    injector = FaultInjector(FaultProfile(storm_rate=1.0, storm_seconds=10), clock=clock)
    assert injector.decide("GET", "/x").throttle == 10
    clock.advance(4)
    assert injector.decide("GET", "/x").throttle == 6  # still the same storm: wait what is left
    injector.update({"storm_rate": 0.0})
    assert injector.decide("GET", "/x").throttle is None

    toy = ToyVendor(clock=clock)
    toy.simulator.faults.update({"storm_rate": 1.0, "storm_seconds": 3})
    response = AsgiClient(toy.simulator).get("/items", headers=AUTH)
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert response.json()["fault"]["text"] == "Too Many Requests"


def test_timeouts_hold_the_request_then_answer_504() -> None:
    toy = ToyVendor()
    toy.simulator.faults.update({"timeout_rate": 1.0, "timeout_seconds": 0.05})
    client = AsgiClient(toy.simulator)
    response = client.get("/items", headers=AUTH)
    assert response.status_code == 504
    recorded = client.get("/_sandbox/requests").json()["requests"][0]
    assert recorded["fault"] == "timeout" and recorded["duration_ms"] >= 50


def test_latency_delays_but_answers() -> None:
    toy = ToyVendor()
    toy.simulator.faults.update({"latency_ms": [30, 30]})
    client = AsgiClient(toy.simulator)
    assert client.get("/items", headers=AUTH).status_code == 200
    recorded = client.get("/_sandbox/requests").json()["requests"][0]
    assert recorded["fault"] == "latency" and recorded["duration_ms"] >= 30


def test_malformed_bodies_are_cut_short_with_a_matching_length() -> None:
    toy = ToyVendor(faults="malformed")
    toy.simulator.faults.update({"malformed_rate": 1.0})
    client = AsgiClient(toy.simulator)
    response = client.get("/items", headers=AUTH)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    error = client.get("/items/999", headers=AUTH)  # only 2xx bodies are cut
    assert error.status_code == 404 and error.json()["fault"]["code"] == "NOTFOUND"


def test_faults_change_while_running_through_the_control_plane() -> None:
    client = AsgiClient(ToyVendor().simulator)
    assert client.get("/_sandbox/faults").json()["name"] == "none"
    assert client.put("/_sandbox/faults", json={"profile": "throttled"}).json()["storm_rate"] == 0.05
    changed = client.post("/_sandbox/faults", json={"error_rate": 1.0, "paths": ["/items/"]}).json()
    assert changed["name"] == "throttled+custom" and changed["storm_rate"] == 0.05
    client.put("/_sandbox/faults", json={"storm_rate": 0})
    assert client.get("/items", headers=AUTH).status_code == 200  # outside the faulted paths
    assert client.get("/items/1", headers=AUTH).status_code >= 500
    bad = client.put("/_sandbox/faults", json={"error_rate": 2})
    assert bad.status_code == 400 and "error_rate" in bad.json()["error"]
    unknown = client.put("/_sandbox/faults", json={"profile": "bogus"})
    assert unknown.status_code == 400 and "known: none" in unknown.json()["error"]
    assert client.put("/_sandbox/faults", content=b"[1]").status_code == 400
    assert client.put("/_sandbox/faults", json={"profile": "none"}).json()["name"] == "none"


def _page_through(client: AsgiClient, clock: FakeClock) -> list[int]:
    seen: list[int] = []
    offset = 0
    for _ in range(50):
        clock.advance(1)  # time passes between pages; churned records get a later modification time
        page = client.get(f"/items?offset={offset}&limit=10", headers=AUTH).json()["items"]
        seen.extend(item["id"] for item in page)
        offset += len(page)
        if len(page) < 10:  # a short page is the last one, as clients conclude
            return seen
    raise AssertionError("paging did not end")


def test_paging_is_exact_when_nothing_changes(clock: FakeClock) -> None:
    toy = ToyVendor(clock=clock, items=35)
    seen = _page_through(AsgiClient(toy.simulator), clock)
    assert sorted(seen) == list(range(1, 36))


def test_records_changing_while_paging_show_the_real_anomalies(clock: FakeClock) -> None:
    toy = ToyVendor(clock=clock, items=35, faults="churn", seed=3)
    seen = _page_through(AsgiClient(toy.simulator), clock)
    counts = Counter(seen)
    duplicates = [i for i, n in counts.items() if n > 1]
    assert duplicates, "a record modified mid-paging moves to the end of an updated-ordered list and shows twice"
    assert len(toy.items) > 35  # records were also created while paging
    assert any(row.version > 0 for row in toy.items)
