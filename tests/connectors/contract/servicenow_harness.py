"""The contract suite's ServiceNow harness: the simulated instance's tables, and business-rule notifications."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

import httpx

from psabridge.connectors.servicenow import SYS_IDS_PER_QUERY, ServiceNowConnector
from psabridge.vendordata import RawRecord
from psabridge_sandbox.clock import SystemClock
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.credentials import SN_PASSWORD, SN_WEBHOOK_SECRET
from psabridge_sandbox.registry import SandboxContext, default_anchor, service
from psabridge_sandbox.servicenow import SECRET_HEADER, ServiceNowSimulator
from psabridge_sandbox.world import build_world

from .harness import Served, VendorHarness, WebhookDelivery, WebhookVariant, pages_needed, pages_of

ROWS_PAGE = ServiceNowConnector.rows_page

AGENT = "dana.whitfield"  # one of the MSP's engineers: the business rule notifies their changes, not ours


class ServiceNowHarness(VendorHarness):
    """How the contract suite drives the ServiceNow simulator (Acme's instance)."""

    system = "servicenow"

    def __init__(self) -> None:
        self._instances: dict[int, ServiceNowSimulator] = {}

    def build_simulator(self, *, tickets: int, seed: int = 0, limits: bool = True) -> Simulator:
        """Built directly, so the harness can reach the instance's tables."""
        clock = SystemClock()
        context = SandboxContext(
            service=service(self.system), world=build_world(seed), anchor=default_anchor(clock), seed=seed,
            tickets=tickets, clock=clock, limits=limits,
        )  # fmt: skip
        instance = ServiceNowSimulator(context)
        self._instances[id(instance.simulator)] = instance
        return instance.simulator

    def _sn(self, served: Served) -> ServiceNowSimulator:
        return self._instances[id(served.simulator)]

    def missing_id(self) -> str:
        return "0123456789abcdef0123456789abcdef"

    def tickets(self, served: Served) -> dict[str, datetime]:
        return {str(row.id): row.updated for row in self._sn(served).instance.tables["incident"].rows()}

    def change_tickets(self, served: Served, external_ids: Sequence[str]) -> None:
        instance = self._sn(served).instance
        for external_id in external_ids:
            row = instance.tables["incident"][external_id]
            urgency = "1" if row.data.get("urgency") != "1" else "2"
            instance.update_incident(external_id, {"urgency": urgency, "work_notes": "Checked again."}, AGENT)

    def stored_ticket(self, served: Served, external_id: str) -> RawRecord:
        instance = self._sn(served).instance
        return instance.render("incident", instance.tables["incident"][external_id], base_url=served.root, links=False)

    def note_texts(self, served: Served, external_id: str) -> list[str]:
        instance = self._sn(served).instance
        journal = instance.tables["sys_journal_field"]
        texts = [str(journal[i].data["value"]) for i in instance.journal_of.get(external_id, ())]
        return [*texts, str(self.stored_ticket(served, external_id)["close_notes"])]

    def time_entry_texts(self, served: Served, external_id: str) -> list[str]:
        instance = self._sn(served).instance
        worked = instance.tables["task_time_worked"]
        return [str(worked[i].data.get("comments", "")) for i in instance.time_of.get(external_id, ())]

    def update_patch(self) -> RawRecord:
        # As mapping.outbound gives it: string values, priority through impact and urgency.
        return {"short_description": "Printer fixed after driver update", "state": "2", "impact": "2", "urgency": "1"}

    def new_ticket_fields(self) -> RawRecord:
        return {
            "short_description": "Mirror: VPN drops every hour",
            "description": "The VPN disconnects every hour since Monday.",
            "state": "1",
            "impact": "2",
            "urgency": "2",
            "contact_type": "phone",
            "category": "network",
            "subcategory": "vpn",
        }

    def design_requests(self, served: Served, pages: Sequence[Sequence[str]], read: Collection[str]) -> int:
        """Per page: its list request, and per 150 read incidents (``element_idIN``/``taskIN``) the pages of their
        journal and of their time worked, 1,000 rows a page: nothing per incident.
        """
        instance = self._sn(served).instance
        total = 0
        for page in pages:
            total += 1
            for chunk in pages_of([i for i in page if i in read], SYS_IDS_PER_QUERY):
                total += pages_needed(sum(len(instance.journal_of.get(i, ())) for i in chunk), ROWS_PAGE)
                total += pages_needed(sum(len(instance.time_of.get(i, ())) for i in chunk), ROWS_PAGE)
        return total

    def webhook(self, served: Served, external_id: str, variant: WebhookVariant) -> WebhookDelivery | None:
        served.gate.reset()
        served.control.subscribe(served.receiver_url, secret=SN_WEBHOOK_SECRET)
        with httpx.Client(base_url=served.base_url, auth=(AGENT, SN_PASSWORD), timeout=10) as client:
            client.patch(f"/api/now/table/incident/{external_id}", json={"comments": "Any news?"}).raise_for_status()
        delivery = served.captured_webhooks()[-1]
        if variant == "valid":
            return delivery
        headers = {k: v for k, v in delivery.headers.items() if k.lower() != SECRET_HEADER.lower()}
        if variant == "wrong":
            headers[SECRET_HEADER] = SN_WEBHOOK_SECRET[:-1] + "x"
        if variant == "stale":
            # Nothing is signed: a replay of an old notification carries the right secret and an old change time.
            body = json.loads(delivery.body)
            body["sys_updated_on"] = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
            return WebhookDelivery(delivery.headers, json.dumps(body).encode())
        return WebhookDelivery(headers, delivery.body)
