"""A toy vendor built on the sandbox core, as a vendor simulator would be: routes, native shapes, auth, errors."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.clock import Clock
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.table import Row, Table

KEY = "toy-key"


def toy_errors(error: VendorError) -> Response:
    return JSONResponse({"fault": {"text": error.message, "code": error.code or "E"}}, status_code=error.status)


def toy_auth(request: Request) -> str | None:
    if request.url.path == "/public":
        return None
    if request.headers.get("x-toy-key") != KEY:
        raise VendorError(401, "Bad key", code="AUTH")
    return "toy-user"


def render(row: Row) -> dict[str, Any]:
    return {"id": row.id, **row.data, "updated": row.updated.isoformat(), "version": row.version}


class ToyVendor:
    """Items listed with offset paging ordered by modification time: the combination that breaks under churn."""

    def __init__(self, *, faults: str = "none", clock: Clock | None = None, items: int = 30, seed: int = 0) -> None:
        self.simulator = Simulator(
            "toy", auth=toy_auth, errors=toy_errors, faults=faults, clock=clock, seed=seed, state=self.state
        )
        self.items: Table = self.simulator.table("items")
        for number in range(items):
            self.items.insert({"title": f"item {number}"}, notify=False)
        sim = self.simulator
        sim.add_route("/items", self.list_items, methods=["GET"])
        sim.add_route("/items/{id:int}", self.get_item, methods=["GET"])
        sim.add_route("/items/{id:int}", self.update_item, methods=["PATCH"])
        sim.add_route("/boom", self.boom, methods=["POST"])
        sim.add_route("/public", self.public, methods=["GET"])

    def state(self) -> dict[str, Any]:
        return {"items": [render(r) for r in self.items]}

    async def list_items(self, request: Request) -> Response:
        offset = int(request.query_params.get("offset", 0))
        limit = int(request.query_params.get("limit", 10))
        rows = sorted(self.items.rows(), key=lambda r: (r.updated, r.id))
        page = [render(r) for r in rows[offset : offset + limit]]
        self.simulator.between_pages(self.items, create=lambda: {"title": "new while paging"})
        return JSONResponse({"items": page, "total": len(rows)})

    async def get_item(self, request: Request) -> Response:
        row = self.items.get(request.path_params["id"])
        if row is None:
            raise VendorError(404, "No such item", code="NOTFOUND")
        return JSONResponse(render(row))

    async def update_item(self, request: Request) -> Response:
        if request.path_params["id"] not in self.items:
            raise VendorError(404, "No such item", code="NOTFOUND")
        row = self.items.update(request.path_params["id"], await request.json())
        return JSONResponse(render(row))

    async def boom(self, request: Request) -> Response:
        raise RuntimeError("a bug in the simulator")

    async def public(self, request: Request) -> Response:
        return JSONResponse({"hello": "world"})
