"""A plain Freshservice API client for the simulator tests: Basic apikey:X, the Link header, nothing from psabridge."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema

import psabridge_sandbox
from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.credentials import FS_API_KEY
from psabridge_sandbox.freshservice import FreshserviceSimulator
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.world import World

from .conftest import ANCHOR, AsgiClient

AUTH = httpx.BasicAuth(FS_API_KEY, "X")  # the API key as user name, any password: "X" by convention
EVERYTHING = "2000-01-01T00:00:00Z"  # an updated_since before any ticket: the 30-day default window is off


def account(
    world: World,
    clock: FakeClock,
    *,
    tickets: int = 60,
    plan: str = "unlimited",
    faults: str = "none",
    transport: httpx.BaseTransport | None = None,
) -> FreshserviceSimulator:
    """A simulated Freshservice account seeded like globex-fs."""
    context = SandboxContext(
        service=service("freshservice"), world=world, anchor=ANCHOR, tickets=tickets, faults=faults, clock=clock
    )
    return FreshserviceSimulator(context, plan=plan, webhook_transport=transport)


class Api:
    """The account's API as a documented client uses it."""

    def __init__(self, fs: FreshserviceSimulator, auth: httpx.Auth | None = AUTH) -> None:
        self.client = AsgiClient(fs.simulator)
        self.auth = auth

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", self.auth)
        return self.client.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def pages(self, path: str, params: dict[str, Any], between: Any = None) -> list[list[dict[str, Any]]]:
        """Every page of a list, following ``Link: <...>; rel="next"`` until it is absent."""
        found: list[list[dict[str, Any]]] = []
        url: str | None = path
        query: dict[str, Any] | None = params
        while url is not None:
            response = self.get(url, params=query)
            assert response.status_code == 200, response.text
            found.append(next(iter(response.json().values())))
            url, query = response.links.get("next", {}).get("url"), None
            if between is not None and url is not None:
                between(found)
        return found


@cache
def _spec() -> dict[str, Any]:
    path = Path(psabridge_sandbox.__file__).parent / "specs" / "freshservice.json"
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


def check(definition: str, body: Any) -> None:
    """Validate a body against a definition of the extracted Freshworks spec."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": _spec()["definitions"]}
    jsonschema.validate(body, schema, cls=jsonschema.Draft7Validator)
