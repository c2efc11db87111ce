"""Autotask webhooks end to end: the connector registers them on the simulator, which calls out; the connector reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import httpx
import pytest

from psabridge.connectors.autotask import AutotaskConnector
from psabridge.connectors.http import HttpRuntime
from psabridge_sandbox import credentials as cred
from psabridge_sandbox.autotask import AutotaskSimulator
from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.registry import SandboxContext, service
from psabridge_sandbox.world import build_world

from .conftest import FakeTime
from .contract.harness import connection_settings
from .serving import serve

ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
HEADERS = {"ApiIntegrationCode": cred.AT_INTEGRATION_CODE, "UserName": cred.AT_USERNAME, "Secret": cred.AT_SECRET}
TECHNICIAN = {**HEADERS, "ImpersonationResourceId": "29682903"}


class Receiver:
    """psabridge's webhook endpoint, as far as the simulator can tell: it keeps every callout."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.calls.append(request)
        return httpx.Response(202)


@pytest.fixture
def served(namespace: str) -> Iterator[tuple[AutotaskSimulator, AutotaskConnector, Receiver, httpx.Client]]:
    receiver = Receiver()
    context = SandboxContext(
        service=service("autotask"), world=build_world(0), anchor=ANCHOR, tickets=20, clock=FakeClock(ANCHOR)
    )
    at = AutotaskSimulator(context, webhook_transport=httpx.MockTransport(receiver))
    with ExitStack() as stack:
        stack.callback(at.simulator.close)
        root = stack.enter_context(serve(at.simulator))
        settings = connection_settings(
            name="partner-at",
            system="autotask",
            base_url=root + "/atservicesrest",
            secrets={
                "username": cred.AT_USERNAME,
                "secret": cred.AT_SECRET,
                "integration_code": cred.AT_INTEGRATION_CODE,
                "webhook_secret": cred.AT_WEBHOOK_SECRET,
            },
            options={"threshold_check": False},
        )
        runtime = HttpRuntime(namespace=namespace, now=FakeTime(ANCHOR).now)
        connector = stack.enter_context(AutotaskConnector(settings, runtime=runtime))
        api = stack.enter_context(httpx.Client(base_url=root + "/ATServicesRest/V1.0", timeout=30))
        yield at, connector, receiver, api


def test_registered_webhooks_ignore_our_writes_and_report_a_technicians(
    served: tuple[AutotaskSimulator, AutotaskConnector, Receiver, httpx.Client],
) -> None:
    at, connector, receiver, api = served
    ticket_id = next(int(r.id) for r in at.tickets.rows() if r.data["priority"] != 4)

    made = connector.register_webhooks("http://psabridge.test/webhooks/partner-at")
    connector.update_ticket(str(ticket_id), {"priority": 4})
    api.patch("/Tickets", headers=TECHNICIAN, json={"id": ticket_id, "priority": 1}).raise_for_status()
    note = {"title": "Called", "description": "User confirms", "noteType": 1, "publish": 1}
    api.post(f"/Tickets/{ticket_id}/Notes", headers=TECHNICIAN, json=note).raise_for_status()
    at.simulator.webhooks.flush(10)

    assert made["Ticket"]["ready"] and made["TicketNote"]["ready"]
    events = [connector.parse_webhook(dict(r.headers), r.content) for r in receiver.calls]
    assert [(e.external_id, e.event) for e in events] == [(str(ticket_id), "updated"), (str(ticket_id), "note")]
    assert len({e.delivery_id for e in events}) == 2
    assert all(str(r.url) == "http://psabridge.test/webhooks/partner-at" for r in receiver.calls)
