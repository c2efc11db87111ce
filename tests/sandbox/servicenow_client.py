"""A plain client of the ServiceNow simulator that follows only the vendor's documentation, for the sandbox tests."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import httpx
import jsonschema

from psabridge_sandbox.clock import Clock
from psabridge_sandbox.credentials import SN_PASSWORD, SN_USERNAME
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.servicenow import ServiceNowSimulator
from psabridge_sandbox.world import World
from tests.sandbox.conftest import ANCHOR, AsgiClient

AUTH = (SN_USERNAME, SN_PASSWORD)
AGENT = ("dana.whitfield", SN_PASSWORD)  # one of the MSP's engineers: an agent account on the client's instance
TABLE = "/api/now/table"
SPEC = json.loads(resources.files("psabridge_sandbox").joinpath("specs/servicenow.json").read_text(encoding="utf-8"))


class Client(AsgiClient):
    """The in-process client, signed in as the integration user unless told otherwise (Basic auth)."""

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", AUTH)
        return super().request(method, url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)


def make(
    world: World,
    clock: Clock,
    *,
    tickets: int = 60,
    faults: str = "none",
    transport: httpx.BaseTransport | None = None,
    **options: Any,
) -> tuple[ServiceNowSimulator, Client]:
    """The simulator over ``tickets`` seed tickets, and an in-process client."""
    context = SandboxContext(
        service=service("servicenow"), world=world, anchor=ANCHOR, tickets=tickets, faults=faults, clock=clock
    )
    sn = ServiceNowSimulator(context, webhook_transport=transport, **options)
    return sn, Client(sn.simulator)


def valid(definition: str, body: Any) -> None:
    """Raise if ``body`` does not match a definition of the extracted schema."""
    jsonschema.validate(body, {"$ref": f"#/definitions/{definition}", "definitions": SPEC["definitions"]})


def list_all(client: Client, table: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every record of a list, following the Link header's ``next`` as the docs suggest; also the requests made."""
    response = client.get(f"{TABLE}/{table}", params=params)
    assert response.status_code == 200, response.text
    records = list(response.json()["result"])
    requests = 1
    while "next" in response.links:
        response = client.get(response.links["next"]["url"])
        assert response.status_code == 200, response.text
        records.extend(response.json()["result"])
        requests += 1
    return records, requests
