"""A plain client of the Autotask simulator that follows only the vendor's documentation, for the sandbox tests."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import httpx
import jsonschema

from psabridge_sandbox.autotask import AutotaskSimulator
from psabridge_sandbox.clock import Clock
from psabridge_sandbox.credentials import AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.world import World
from tests.sandbox.conftest import ANCHOR, AsgiClient

HEADERS = {"ApiIntegrationCode": AT_INTEGRATION_CODE, "UserName": AT_USERNAME, "Secret": AT_SECRET}
API = "/ATServicesRest/V1.0"
ALL = {"filter": [{"op": "gte", "field": "id", "value": 0}]}
SPEC = json.loads(resources.files("psabridge_sandbox").joinpath("specs/autotask.json").read_text(encoding="utf-8"))


def make(
    world: World,
    clock: Clock,
    *,
    tickets: int = 60,
    faults: str = "none",
    transport: httpx.BaseTransport | None = None,
    limits: bool = True,
    **options: Any,
) -> tuple[AutotaskSimulator, AsgiClient]:
    """The simulator over ``tickets`` seed tickets, and an in-process client."""
    context = SandboxContext(
        service=service("autotask"),
        world=world,
        anchor=ANCHOR,
        tickets=tickets,
        faults=faults,
        clock=clock,
        limits=limits,
    )
    at = AutotaskSimulator(context, webhook_transport=transport, **options)
    return at, AsgiClient(at.simulator)


def valid(definition: str, body: Any) -> None:
    """Raise if ``body`` does not match a definition of the extracted spec."""
    jsonschema.validate(body, {"$ref": f"#/definitions/{definition}", "definitions": SPEC["definitions"]})


def query_all(client: AsgiClient, entity: str, query: dict[str, Any], *, method: str = "POST") -> list[dict[str, Any]]:
    """Every record of a query, following nextPageUrl as the docs say (re-POST the query, or GET the link)."""
    if method == "POST":
        page = client.post(f"{API}/{entity}/query", headers=HEADERS, json=query).json()
    else:
        page = client.get(f"{API}/{entity}/query", headers=HEADERS, params={"search": json.dumps(query)}).json()
    items = list(page["items"])
    while page["pageDetails"]["nextPageUrl"]:
        url = page["pageDetails"]["nextPageUrl"]
        response = (
            client.post(url, headers=HEADERS, json=query) if method == "POST" else client.get(url, headers=HEADERS)
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
    return items
