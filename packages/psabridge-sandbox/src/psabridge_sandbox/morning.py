"""The demo's morning at an MSP's help desk: its people at the four simulated vendors, and what the pagers heard.

People act through the vendors' REST APIs with the desks of ``desk.py`` (a person, never psabridge's integration
user), one desk per vendor and client; this adds what the morning needs besides: tickets for any client, time
logged before a close, ConnectWise statuses, and the control plane: webhook receivers, the pages PagerDuty and
Opsgenie hold, the chat channel's posts and the writes every vendor recorded. Nothing here imports psabridge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from psabridge_sandbox.autotask_data import COMPANY_IDS, QUEUES, resource_of
from psabridge_sandbox.credentials import FS_WEBHOOK_SECRET, SN_WEBHOOK_SECRET
from psabridge_sandbox.desk import AutotaskDesk, ConnectWiseDesk, Desk, FreshserviceDesk, Level, ServiceNowDesk
from psabridge_sandbox.people import WRITES
from psabridge_sandbox.runner import SandboxRunner

__all__ = ["CW_CALLBACK_KEY", "Morning", "Page", "Story"]

CW_CALLBACK_KEY = "cw-callback-signing-key"  # what the sandbox's ConnectWise signs its callbacks with, per receiver
_AT_TECHNICIAN = resource_of(1)


@dataclass(frozen=True)
class Story:
    """A ticket of the morning: its vendor, its id there and the number people say."""

    system: str
    ticket_id: str
    number: str


@dataclass(frozen=True)
class Page:
    """A page at PagerDuty (by dedup key) or Opsgenie (by alias)."""

    service: str
    key: str
    status: str  # PagerDuty: triggered, resolved; Opsgenie: open, closed

    @property
    def resolved(self) -> bool:
        """The page was resolved (PagerDuty) or closed (Opsgenie)."""
        return self.status in ("resolved", "closed")


class Morning:
    """The people at every vendor, for every client, and the sandbox's control plane.

    Args:
        runner: the running sandbox.
    """

    def __init__(self, runner: SandboxRunner) -> None:
        self.runner = runner
        self._desks: dict[tuple[str, str], Desk] = {}

    def close(self) -> None:
        """Release every desk's HTTP client."""
        for desk in self._desks.values():
            desk.close()

    def desk(self, system: str, tenant: str) -> Desk:
        """The desk of ``system`` working for client ``tenant`` (ServiceNow and Freshservice are one client's)."""
        tenant = tenant or ("acme" if system == "connectwise" else "initech")  # any client: the ticket has its own
        if system == "autotask" and tenant not in COMPANY_IDS:
            tenant = "initech"  # Globex's tickets reach Autotask only as mirrors: nobody opens one there
        key = (system, tenant if system in ("connectwise", "autotask") else "")
        if key not in self._desks:
            info = self.runner.infos[system]
            desks: dict[str, Any] = {
                "connectwise": lambda: ConnectWiseDesk(info, company=self.runner.world.tenant(tenant).identifier),
                "autotask": lambda: AutotaskDesk(info, tenant=tenant),
                "servicenow": lambda: ServiceNowDesk(info),
                "freshservice": lambda: FreshserviceDesk(info),
            }
            self._desks[key] = desks[system]()
        return self._desks[key]

    # --- what people do --------------------------------------------------------------------------------------------

    def open(
        self, system: str, tenant: str, summary: str, description: str, *, priority: Level, queue: str = "Service Desk"
    ) -> Story:
        """Open a ticket for ``tenant`` in ``queue`` at ``priority``."""
        desk = self.desk(system, tenant)
        ticket_id = desk.open(summary, description, priority=priority, queue=queue)
        number = f"#{ticket_id}"
        if isinstance(desk, ServiceNowDesk):
            number = str(desk.ticket(ticket_id)["number"])
        elif isinstance(desk, AutotaskDesk):
            number = str(desk.ticket(ticket_id)["ticketNumber"])
        return Story(system, ticket_id, number)

    def note(self, story: Story, text: str, tenant: str = "") -> None:
        """Add an internal note, as the vendor's person does."""
        self.desk(story.system, tenant).note(story.ticket_id, text)

    def escalate(self, story: Story, queue: str, text: str, tenant: str = "") -> None:
        """Hand the ticket to ``queue`` with a note, as a Tier 1 agent escalates."""
        desk = self.desk(story.system, tenant)
        desk.escalate(story.ticket_id, queue)
        desk.note(story.ticket_id, text)

    def resolve(self, story: Story, resolution: str, *, minutes: int = 0, tenant: str = "") -> None:
        """Log ``minutes`` of work first (ConnectWise and Autotask time entries; none when 0), then resolve."""
        desk = self.desk(story.system, tenant)
        if minutes and isinstance(desk, ConnectWiseDesk):
            body = {"chargeToId": int(story.ticket_id), "chargeToType": "ServiceTicket",
                    "timeStart": "2026-01-01T09:00:00Z", "actualHours": round(minutes / 60, 2),
                    "notes": "Worked on the ticket."}  # fmt: skip
            desk.http.post("/time/entries", json=body).raise_for_status()
        elif minutes and isinstance(desk, AutotaskDesk):
            body = {"ticketID": int(story.ticket_id), "resourceID": _AT_TECHNICIAN,
                    "dateWorked": "2026-01-01T00:00:00Z", "hoursWorked": round(minutes / 60, 2),
                    "summaryNotes": "Worked on the ticket."}  # fmt: skip
            desk.http.post("TimeEntries", json=body).raise_for_status()
        desk.resolve(story.ticket_id, resolution)

    def set_status(self, story: Story, name: str, tenant: str = "") -> None:
        """Set a ConnectWise ticket's status by name (the MSP's technicians work in ConnectWise)."""
        patch = [{"op": "replace", "path": "status", "value": {"name": name}}]
        self._cw(tenant).http.patch(f"/service/tickets/{story.ticket_id}", json=patch).raise_for_status()

    def cw_tickets(self, summary: str) -> list[dict[str, Any]]:
        """ConnectWise service tickets whose summary is exactly ``summary``."""
        params = {"conditions": f'summary = "{summary}"', "pageSize": "1000"}
        return list(self._cw("").http.get("/service/tickets", params=params).raise_for_status().json())

    def _cw(self, tenant: str) -> ConnectWiseDesk:
        desk = self.desk("connectwise", tenant or "acme")
        assert isinstance(desk, ConnectWiseDesk)
        return desk

    def find(self, system: str, summary: str, tenant: str = "") -> list[Story]:
        """Tickets whose summary is exactly ``summary`` (ConnectWise: where the demo's mirrors land)."""
        if system != "connectwise":
            raise ValueError(f"finding tickets by summary is not built for {system}")
        return [Story(system, str(t["id"]), f"#{t['id']}") for t in self.cw_tickets(summary)]

    def adopt(self, system: str, ticket_id: str, tenant: str = "") -> Story:
        """A ticket someone else made (psabridge's mirror), as people refer to it."""
        number = f"#{ticket_id}"
        if system == "autotask":
            number = str(self.ticket(Story(system, ticket_id, number), tenant)["ticketNumber"])
        elif system == "servicenow":
            number = str(self.ticket(Story(system, ticket_id, number), tenant)["number"])
        return Story(system, ticket_id, number)

    def queue_of(self, story: Story, tenant: str = "") -> str:
        """The name of the ConnectWise board or Autotask queue the ticket is in."""
        raw = self.ticket(story, tenant)
        if story.system == "connectwise":
            return str(raw["board"]["name"])
        if story.system == "autotask":
            return next((name for name, number in QUEUES.items() if number == raw["queueID"]), str(raw["queueID"]))
        raise ValueError(f"the queue of a {story.system} ticket is not built (the morning routes in the MSP's PSAs)")

    def is_resolved(self, story: Story, tenant: str = "") -> bool:
        """The ticket is resolved or closed in its vendor."""
        raw = self.ticket(story, tenant)
        if story.system == "servicenow":
            return str(raw["state"]) in ("6", "7")  # Resolved, Closed
        if story.system == "connectwise":
            return bool(raw.get("closedFlag")) or str(raw["status"]["name"]) in ("Completed", ">Closed")
        if story.system == "autotask":
            return int(raw["status"]) == 5  # Complete
        return int(raw["status"]) in (4, 5)  # Resolved, Closed

    def internal_notes(self, story: Story, tenant: str = "") -> list[str]:
        """The ticket's internal notes, in the vendor's internal form."""
        return self.desk(story.system, tenant).internal_notes(story.ticket_id)

    def ticket(self, story: Story, tenant: str = "") -> dict[str, Any]:
        """The ticket as its vendor's API returns it."""
        desk = self.desk(story.system, tenant)
        assert isinstance(desk, ConnectWiseDesk | AutotaskDesk | ServiceNowDesk | FreshserviceDesk)
        return desk.ticket(story.ticket_id)

    # --- the control plane -----------------------------------------------------------------------------------------

    def _roots(self, *systems: str) -> list[str]:
        return [self.runner.infos[s].url for s in systems]

    def send_webhooks_to(self, receiver: str, connections: dict[str, str]) -> list[str]:
        """Register ``<receiver>/webhooks/<connection>`` where the sandbox sets webhooks up; the systems registered.

        Autotask's webhooks are entities of its API that a client registers itself; without them its changes are
        found by polling.
        """
        registered = []
        for system, secret in (
            ("servicenow", SN_WEBHOOK_SECRET),
            ("connectwise", CW_CALLBACK_KEY),
            ("freshservice", FS_WEBHOOK_SECRET),
        ):
            connection = connections.get(system)
            if connection is None:
                continue
            body = {"url": f"{receiver}/webhooks/{connection}", "secret": secret}
            root = self.runner.infos[system].url
            httpx.post(f"{root}/_sandbox/webhooks", json=body, timeout=10).raise_for_status()
            registered.append(system)
        return registered

    def flush_webhooks(self) -> None:
        """Wait until every simulator has sent the webhooks it queued."""
        for root in self._roots("servicenow", "connectwise", "freshservice"):
            httpx.post(f"{root}/_sandbox/webhooks/flush", timeout=20)

    def webhooks_delivered(self) -> int:
        """Webhook deliveries the simulators made that were answered 2xx."""
        total = 0
        for root in self._roots("servicenow", "connectwise", "freshservice"):
            found = httpx.get(f"{root}/_sandbox/webhooks", timeout=10).json()["deliveries"]
            total += sum(1 for d in found if 200 <= int(d.get("status") or 0) < 300)
        return total

    def vendor_writes(self) -> int:
        """Writes every vendor recorded (people's and psabridge's; Autotask's queries are POSTs that read)."""
        total = 0
        for info in self.runner.infos.values():
            if info.running:
                recorded = httpx.get(f"{info.url}/_sandbox/requests", timeout=10).json()["requests"]
                total += sum(1 for r in recorded if r["method"] in WRITES and not r["path"].endswith("/query"))
        return total

    def pages(self) -> list[Page]:
        """Every PagerDuty incident and Opsgenie alert."""
        pd = self.runner.simulators["pagerduty"].state()["incidents"]
        og = self.runner.simulators["opsgenie"].state()["alerts"]
        return [
            *(Page("pagerduty", str(i["dedup_key"]), str(i["status"])) for i in pd),
            *(Page("opsgenie", str(a["alias"]), str(a["status"])) for a in og),
        ]

    def channel_posts(self) -> list[str]:
        """The texts the chat channel received."""
        return [str(m.get("text", "")) for m in self.runner.simulators["chat"].state()["messages"]]
