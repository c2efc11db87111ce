"""The contract suite's Freshservice harness: the simulator's tables, and workflow webhooks as the vendor sends them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import httpx

from psabridge.connectors.freshservice import EMBEDDED_CONVERSATIONS, MAX_PAGE
from psabridge.vendordata import RawRecord
from psabridge_sandbox.clock import SystemClock
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.credentials import FS_API_KEY, FS_WEBHOOK_SECRET
from psabridge_sandbox.freshservice import FreshserviceSimulator
from psabridge_sandbox.freshservice_http import WEBHOOK_SECRET_HEADER
from psabridge_sandbox.registry import SandboxContext, default_anchor, service
from psabridge_sandbox.world import build_world

from .harness import Served, VendorHarness, WebhookDelivery, WebhookVariant, pages_needed


class FreshserviceHarness(VendorHarness):
    """How the contract suite drives the Freshservice simulator (Growth plan, as the sandbox serves it)."""

    system = "freshservice"
    # Growth's view-ticket sub-limit is 80 credits a minute and a ticket's show call costs 3: 40 tickets cross it.
    limited_tickets = 40

    def __init__(self) -> None:
        self._instances: dict[int, FreshserviceSimulator] = {}

    def build_simulator(self, *, tickets: int, seed: int = 0, limits: bool = True) -> Simulator:
        """Built directly, so the harness can reach the instance's tables."""
        clock = SystemClock()
        context = SandboxContext(
            service=service(self.system), world=build_world(seed), anchor=default_anchor(clock), seed=seed,
            tickets=tickets, clock=clock, limits=limits,
        )  # fmt: skip
        instance = FreshserviceSimulator(context, plan="growth" if limits else "unlimited")
        self._instances[id(instance.simulator)] = instance
        return instance.simulator

    def _fs(self, served: Served) -> FreshserviceSimulator:
        return self._instances[id(served.simulator)]

    def tickets(self, served: Served) -> dict[str, datetime]:
        return {str(row.id): row.updated for row in self._fs(served).tickets.rows() if not row.data["deleted"]}

    def change_tickets(self, served: Served, external_ids: Sequence[str]) -> None:
        fs = self._fs(served)
        for external_id in external_ids:
            row = fs.tickets[int(external_id)]
            fs.tickets.update(row.id, {"priority": 1 + row.data["priority"] % 4})

    def stored_ticket(self, served: Served, external_id: str) -> RawRecord:
        fs = self._fs(served)
        return fs.render_ticket(fs.tickets[int(external_id)])

    def note_texts(self, served: Served, external_id: str) -> list[str]:
        return [str(note["body_text"]) for note in self._fs(served).conversations_of(int(external_id))]

    def time_entry_texts(self, served: Served, external_id: str) -> list[str]:
        return [str(entry["note"]) for entry in self._fs(served).time_entries_of(int(external_id))]

    def update_patch(self) -> RawRecord:
        # As mapping.outbound gives it: integer codes, only the fields that change.
        return {"subject": "Printer fixed after driver update", "priority": 4, "status": 3}

    def new_ticket_fields(self) -> RawRecord:
        return {
            "subject": "Mirror: VPN drops every hour",
            "description": "<div>The VPN disconnects every hour since Monday.</div>",
            "email": "cfo@globex.example",
            "status": 2,
            "priority": 3,
            "source": 3,
            "type": "Incident",
        }

    def design_requests(self, served: Served, pages: Sequence[Sequence[str]], read: Collection[str]) -> int:
        """Per page: its list request (stats and requester embedded); per read ticket, as no bulk read exists, one
        show call embedding conversations and assets (all conversations listed too when ten or more) and its time
        entries, 100 a page.
        """
        fs = self._fs(served)
        total = 0
        for page in pages:
            total += 1
            for external_id in (i for i in page if i in read):
                conversations = len(fs.conversations_of(int(external_id)))
                total += 1 + (pages_needed(conversations, MAX_PAGE) if conversations >= EMBEDDED_CONVERSATIONS else 0)
                total += pages_needed(len(fs.time_entries_of(int(external_id))), MAX_PAGE)
        return total

    def webhook(self, served: Served, external_id: str, variant: WebhookVariant) -> WebhookDelivery | None:
        if variant == "stale":
            return None  # a shared secret in a header: nothing signed, no time to judge staleness by
        served.gate.reset()
        served.control.subscribe(served.receiver_url, secret=FS_WEBHOOK_SECRET)
        with httpx.Client(base_url=served.base_url, auth=httpx.BasicAuth(FS_API_KEY, "X"), timeout=10) as client:
            ticket = client.get(f"/api/v2/tickets/{external_id}").raise_for_status().json()["ticket"]
            client.put(
                f"/api/v2/tickets/{external_id}", json={"priority": 1 + ticket["priority"] % 4}
            ).raise_for_status()
        delivery = served.captured_webhooks()[-1]
        if variant == "valid":
            return delivery
        headers = {k: v for k, v in delivery.headers.items() if k.lower() != WEBHOOK_SECRET_HEADER.lower()}
        if variant == "wrong":
            headers[WEBHOOK_SECRET_HEADER] = FS_WEBHOOK_SECRET[:-1] + "x"
        return WebhookDelivery(headers, delivery.body)
