"""The contract suite's ConnectWise PSA harness: the simulator's tables, and callbacks as ConnectWise sends them."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

import httpx

from psabridge.connectors.connectwise import IDS_PER_CONDITION, MAX_PAGE
from psabridge.vendordata import RawRecord
from psabridge_sandbox.clock import SystemClock
from psabridge_sandbox.connectwise import API_ROOT, ConnectWiseSimulator
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.registry import SandboxContext, default_anchor, service
from psabridge_sandbox.world import build_world

from .harness import Served, VendorHarness, WebhookDelivery, WebhookVariant, pages_needed, pages_of


class ConnectWiseHarness(VendorHarness):
    """How the contract suite drives the ConnectWise simulator."""

    system = "connectwise"
    setup_requests = 1  # the codebase, from /login/companyinfo/{company}

    def __init__(self) -> None:
        self._instances: dict[int, ConnectWiseSimulator] = {}

    def build_simulator(self, *, tickets: int, seed: int = 0, limits: bool = True) -> Simulator:
        """Built directly, so the harness can reach the instance's tables."""
        clock = SystemClock()
        context = SandboxContext(
            service=service(self.system), world=build_world(seed), anchor=default_anchor(clock), seed=seed,
            tickets=tickets, clock=clock, limits=limits,
        )  # fmt: skip
        instance = ConnectWiseSimulator(context)
        self._instances[id(instance.simulator)] = instance
        return instance.simulator

    def _cw(self, served: Served) -> ConnectWiseSimulator:
        return self._instances[id(served.simulator)]

    def tickets(self, served: Served) -> dict[str, datetime]:
        return {str(row.id): row.updated for row in self._cw(served).tickets.rows()}

    def change_tickets(self, served: Served, external_ids: Sequence[str]) -> None:
        cw = self._cw(served)
        for external_id in external_ids:
            row = cw.tickets[int(external_id)]
            cw.tickets.update(row.id, {"customerUpdatedFlag": not row.data.get("customerUpdatedFlag", False)})

    def stored_ticket(self, served: Served, external_id: str) -> RawRecord:
        cw = self._cw(served)
        return cw.render(cw.tickets[int(external_id)], base="")

    def note_texts(self, served: Served, external_id: str) -> list[str]:
        return [str(note["text"]) for note in self._cw(served).notes_of(int(external_id))]

    def time_entry_texts(self, served: Served, external_id: str) -> list[str]:
        return [str(entry.get("notes", "")) for entry in self._cw(served).time_of(int(external_id))]

    def patch_landed(self, served: Served, external_id: str, patch: RawRecord) -> bool:
        stored = self.stored_ticket(served, external_id)
        return stored["summary"] == patch["summary"] and stored["priority"]["id"] == patch["priority"]["id"]

    def update_patch(self) -> RawRecord:
        # As mapping.outbound gives it: scalars as they are, references as {id}.
        return {"summary": "Printer fixed after driver update", "priority": {"id": 8}, "severity": "High"}

    def new_ticket_fields(self) -> RawRecord:
        return {
            "summary": "Mirror: VPN drops every hour",
            "company": {"identifier": "AcmeDental"},
            "board": {"name": "Acme Service"},
            "status": {"name": "New"},
            "priority": {"id": 8},
            "initialDescription": "The VPN disconnects every hour since Monday.",
        }

    def design_requests(self, served: Served, pages: Sequence[Sequence[str]], read: Collection[str]) -> int:
        """Per page: its list request, time entries by ``chargeToId in`` (150 ids a request, 1,000 entries a page),
        and per read ticket its notes (1,000 a page) and its configurations: ConnectWise has no bulk read of those.
        """
        cw = self._cw(served)
        total = 0
        for page in pages:
            ids = [i for i in page if i in read]
            total += 1
            for chunk in pages_of(ids, IDS_PER_CONDITION):
                total += pages_needed(sum(len(cw.time_of(int(i))) for i in chunk), MAX_PAGE)
            total += sum(pages_needed(len(cw.notes_of(int(i))), MAX_PAGE) + 1 for i in ids)
        return total

    def webhook(self, served: Served, external_id: str, variant: WebhookVariant) -> WebhookDelivery | None:
        if variant == "stale":
            return None  # ConnectWise callbacks carry no delivery time to judge staleness by
        served.gate.reset()
        credentials = served.settings().secrets
        auth = httpx.BasicAuth(
            f"{credentials.get('company')}+{credentials.get('public_key')}", str(credentials.get("private_key"))
        )
        headers = {"clientId": str(credentials.get("client_id"))}
        with httpx.Client(base_url=served.root + API_ROOT, auth=auth, headers=headers, timeout=10) as client:
            client.post(
                "/system/callbacks",
                json={"url": served.receiver_url, "type": "Ticket", "level": "Owner", "description": "contract"},
            ).raise_for_status()
            client.patch(
                f"/service/tickets/{external_id}",
                json=[{"op": "replace", "path": "customerUpdatedFlag", "value": True}],
            ).raise_for_status()
        delivery = served.captured_webhooks()[-1]
        if variant == "valid":
            return delivery
        headers_out = {k: v for k, v in delivery.headers.items() if k.lower() != "x-content-signature"}
        if variant == "wrong":
            body = cast(dict[str, Any], json.loads(delivery.body))
            body["ID"] = int(external_id) + 1  # the signature no longer covers what the body says
            tampered = json.dumps(body, separators=(",", ":")).encode()
            return WebhookDelivery({**headers_out, "x-content-signature": delivery.headers["x-content-signature"]},
                                   tampered)  # fmt: skip
        return WebhookDelivery(headers_out, delivery.body)
