"""The Autotask harness of the contract suite: tables read directly, webhooks signed as Autotask signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

import httpx

from psabridge.connectors.autotask import MAX_RECORDS
from psabridge.vendordata import RawRecord
from psabridge_sandbox.autotask import AutotaskSimulator
from psabridge_sandbox.autotask_webhooks import dotnet_json
from psabridge_sandbox.clock import SystemClock
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.credentials import AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME, AT_WEBHOOK_SECRET
from psabridge_sandbox.registry import SandboxContext, default_anchor, service
from psabridge_sandbox.world import build_world

from .harness import Served, VendorHarness, WebhookDelivery, WebhookVariant, pages_needed, pages_of

HEADERS = {"ApiIntegrationCode": AT_INTEGRATION_CODE, "UserName": AT_USERNAME, "Secret": AT_SECRET}


class AutotaskHarness(VendorHarness):
    """How the contract suite drives the Autotask simulator."""

    system = "autotask"
    setup_requests = 2  # the zone lookup and ThresholdInformation

    def __init__(self) -> None:
        self._vendors: dict[int, AutotaskSimulator] = {}

    def build_simulator(self, *, tickets: int, seed: int = 0, limits: bool = True) -> Simulator:
        clock = SystemClock()
        context = SandboxContext(
            service=service("autotask"),
            world=build_world(seed),
            anchor=default_anchor(clock),
            seed=seed,
            tickets=tickets,
            clock=clock,
            limits=limits,
        )
        at = AutotaskSimulator(context)
        self._vendors[id(at.simulator)] = at
        return at.simulator

    def at(self, served: Served) -> AutotaskSimulator:
        return self._vendors[id(served.simulator)]

    def tickets(self, served: Served) -> dict[str, datetime]:
        return {str(row.id): row.updated for row in self.at(served).tickets.rows()}

    def change_tickets(self, served: Served, external_ids: Sequence[str]) -> None:
        # A technician works the tickets through the API (as a technician: the API user's changes are ours).
        with httpx.Client(base_url=served.root + "/ATServicesRest/V1.0", timeout=30) as client:
            technician = {**HEADERS, "ImpersonationResourceId": "29682903"}
            for external_id in external_ids:
                priority = 3 if self.at(served).tickets[int(external_id)].data["priority"] != 3 else 2
                body = {"id": int(external_id), "priority": priority}
                client.patch("/Tickets", headers=technician, json=body).raise_for_status()

    def stored_ticket(self, served: Served, external_id: str) -> RawRecord:
        at = self.at(served)
        return at.render_ticket(at.tickets[int(external_id)])

    def note_texts(self, served: Served, external_id: str) -> list[str]:
        at = self.at(served)
        return [str(at.notes[i].data["description"]) for i in at.notes_of.get(int(external_id), [])]

    def time_entry_texts(self, served: Served, external_id: str) -> list[str]:
        at = self.at(served)
        return [str(at.time_entries[i].data["summaryNotes"]) for i in at.entries_of.get(int(external_id), [])]

    def update_patch(self) -> RawRecord:
        return {"priority": 4, "status": 8}

    def new_ticket_fields(self) -> RawRecord:
        return {"companyID": 1001, "title": "Mirror: printer offline", "status": 1, "priority": 2, "queueID": 29683482}

    def missing_id(self) -> str:
        return "987654321"

    def design_requests(self, served: Served, pages: Sequence[Sequence[str]], read: Collection[str]) -> int:
        """Per page: its list request, and for the read tickets (all of a page in one ``ticketID in`` filter) the
        pages of their notes and of their time entries, 500 records a page: nothing per ticket.
        """
        at = self.at(served)
        total = 0
        for page in pages:
            ids = [int(i) for i in page if i in read]
            total += 1
            for chunk in pages_of(ids, MAX_RECORDS):
                total += pages_needed(sum(len(at.notes_of.get(i, ())) for i in chunk), MAX_RECORDS)
                total += pages_needed(sum(len(at.entries_of.get(i, ())) for i in chunk), MAX_RECORDS)
        return total

    def webhook(self, served: Served, external_id: str, variant: WebhookVariant) -> WebhookDelivery | None:
        if variant == "valid":  # a real callout of the simulator, signed with the webhook secret
            served.control.subscribe(served.receiver_url, secret=AT_WEBHOOK_SECRET)
            self.change_tickets(served, [external_id])
            return served.captured_webhooks()[-1]
        sent = datetime.now(UTC) - (timedelta(hours=2) if variant == "stale" else timedelta(0))
        payload = {
            "Action": "Update",
            "Guid": "9f2d1c0e-5b7a-4c1e-8f0a-3d2b1a0c9e8f",
            "EntityType": "Ticket",
            "Id": int(external_id),
            "Fields": {"Priority": 4},
            "EventTime": sent.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "SequenceNumber": 7,
            "PersonID": 29682903,
        }
        body = dotnet_json(payload).encode("ascii")
        secret = b"not-the-secret" if variant == "wrong" else AT_WEBHOOK_SECRET.encode()
        signature = "sha1=" + base64.b64encode(hmac.new(secret, body, hashlib.sha1).digest()).decode()
        headers = {"Content-Type": "application/json"}
        if variant != "missing":
            headers["X-Hook-Signature"] = signature
        return WebhookDelivery(headers, body)
