from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.core import principal_of
from psabridge_sandbox.table import Table

from .conftest import ANCHOR, AsgiClient
from .toyvendor import KEY, ToyVendor

AUTH = {"x-toy-key": KEY}


@pytest.fixture
def toy() -> ToyVendor:
    return ToyVendor()


@pytest.fixture
def client(toy: ToyVendor) -> AsgiClient:
    return AsgiClient(toy.simulator)


def test_every_vendor_request_is_recorded_with_principal_and_status(client: AsgiClient) -> None:
    assert client.get("/items?limit=2", headers=AUTH).status_code == 200
    assert client.get("/items/999", headers=AUTH).status_code == 404
    assert client.get("/items", headers={"x-toy-key": "wrong"}).status_code == 401
    assert client.get("/public").status_code == 200
    client.get("/_sandbox/state")  # the control plane is not recorded

    body = client.get("/_sandbox/requests").json()
    rows = body["requests"]
    assert body["count"] == 4
    assert [(r["method"], r["path"], r["status"], r["principal"]) for r in rows] == [
        ("GET", "/items", 200, "toy-user"),
        ("GET", "/items/999", 404, "toy-user"),
        ("GET", "/items", 401, None),
        ("GET", "/public", 200, None),
    ]
    assert rows[0]["query"] == "limit=2"
    assert rows[0]["time"].endswith("Z") and rows[0]["duration_ms"] >= 0
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)


def test_recorded_requests_can_be_filtered_and_cleared(client: AsgiClient) -> None:
    client.get("/items", headers=AUTH)
    client.request("PATCH", "/items/1", headers=AUTH, json={"title": "x"})
    client.get("/items/999", headers=AUTH)
    assert client.get("/_sandbox/requests?method=PATCH").json()["count"] == 1
    assert client.get("/_sandbox/requests?path=/items/").json()["count"] == 2
    assert client.get("/_sandbox/requests?status=404").json()["count"] == 1
    assert client.get("/_sandbox/requests?principal=toy-user").json()["count"] == 3
    first = client.get("/_sandbox/requests").json()["requests"][0]["seq"]
    assert client.get(f"/_sandbox/requests?since={first}").json()["count"] == 2
    assert client.get("/_sandbox/requests?status=abc").status_code == 400
    assert client.delete("/_sandbox/requests").json() == {"cleared": 3}
    assert client.get("/_sandbox/requests").json()["count"] == 0


def test_errors_are_rendered_in_the_vendor_shape(client: AsgiClient, toy: ToyVendor) -> None:
    unauthorized = client.get("/items")
    assert unauthorized.json() == {"fault": {"text": "Bad key", "code": "AUTH"}}
    assert client.get("/items/999", headers=AUTH).json() == {"fault": {"text": "No such item", "code": "NOTFOUND"}}
    missing = client.get("/nowhere", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["fault"]["text"] == "Not Found"
    wrong_method = client.delete("/items/1", headers=AUTH)
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]


def test_a_simulator_bug_answers_500_in_vendor_shape_and_is_recorded(client: AsgiClient) -> None:
    response = client.post("/boom", headers=AUTH)
    assert response.status_code == 500
    assert response.json() == {"fault": {"text": "Internal Server Error", "code": "E"}}
    recorded = client.get("/_sandbox/requests").json()["requests"][-1]
    assert recorded["status"] == 500 and "a bug in the simulator" in recorded["error"]


def test_state_shows_what_the_vendor_contributes(client: AsgiClient, toy: ToyVendor) -> None:
    client.request("PATCH", "/items/3", headers=AUTH, json={"title": "renamed"})
    state = client.get("/_sandbox/state").json()
    assert state["service"] == "toy"
    assert next(i for i in state["items"] if i["id"] == 3)["title"] == "renamed"
    index = client.get("/_sandbox").json()
    assert index["service"] == "toy" and index["recorded"] == 1
    assert client.get("/_sandbox/nothing").status_code == 404


def test_table_ids_versions_and_modification_times() -> None:
    clock = FakeClock(ANCHOR)
    table = Table("t", clock=clock, first_id=100)
    events: list[tuple[str, object]] = []
    table.on_change(lambda change, row: events.append((change, row.id)))
    a = table.insert({"x": 1})
    clock.advance(0.4)
    b = table.insert({"x": 2})
    assert (a.id, b.id) == (100, 101)
    assert b.created == a.created  # whole-second resolution, like the vendors' timestamps
    clock.advance(1)
    updated = table.update(100, {"x": 3})
    assert updated.version == 1 and updated.updated > updated.created and updated.data == {"x": 3}
    assert table.touch(100).version == 2
    assert table.ids() == (100, 101)
    table.insert({"x": 4}, id=500, notify=False)
    assert table.next_id() == 501
    assert table.delete(101) is b and table.delete(101) is None
    assert table.ids() == (100, 500) and len(table) == 2
    replaced = table.replace(100, {"y": 1})
    assert table[100] is replaced and replaced.data == {"y": 1} and replaced.version == 3
    assert events == [
        ("created", 100),
        ("created", 101),
        ("updated", 100),
        ("updated", 100),
        ("deleted", 101),
        ("updated", 100),
    ]
    with pytest.raises(KeyError):
        table.insert({}, id=100)
    clock.set(ANCHOR.replace(microsecond=250_000))
    fine = Table("fine", clock=clock, resolution=0)
    assert fine.insert({}).created == clock.now() == ANCHOR.replace(microsecond=250_000)
    assert Table("ms", clock=clock, resolution=0.1).insert({}).created == ANCHOR.replace(microsecond=200_000)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(ANCHOR.replace(tzinfo=None))


def test_routes_see_the_principal_the_auth_hook_returned(client: AsgiClient, toy: ToyVendor) -> None:
    async def whoami(request: Request) -> Response:
        return JSONResponse({"principal": principal_of(request)})

    toy.simulator.add_route("/whoami", whoami, methods=["GET"])
    assert client.get("/whoami", headers=AUTH).json() == {"principal": "toy-user"}
