"""The people of an MSP's help desk at the four simulated vendors, for the demo's morning.

Each acts through its vendor's REST API with a person's credentials or identity (never as psabridge's own writes:
no marker, a person's author), and the control plane tells what the pagers and the chat channel received.

Vendor wire formats live here, as in the simulators: ServiceNow impact/urgency and journal fields, ConnectWise
references by name and note flags, Autotask picklist integers, Freshservice codes and HTML bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from psabridge_sandbox.autotask_data import COMPANY_IDS, resource_of
from psabridge_sandbox.credentials import (
    AT_INTEGRATION_CODE,
    AT_SECRET,
    AT_USERNAME,
    FS_API_KEY,
    FS_WEBHOOK_SECRET,
    SN_WEBHOOK_SECRET,
)
from psabridge_sandbox.freshservice_records import AGENT_BASE
from psabridge_sandbox.people import WRITES, People
from psabridge_sandbox.runner import SandboxRunner

__all__ = ["CW_CALLBACK_KEY", "Desk", "Opened", "Page"]

CW_CALLBACK_KEY = "cw-callback-signing-key"  # what the sandbox's ConnectWise signs its callbacks with, per receiver

Vendor = Literal["servicenow", "connectwise", "autotask", "freshservice"]

# Priorities in each vendor's own terms, by the help desk's P1..P4.
_SN_IMPACT_URGENCY = {"P1": ("1", "1"), "P2": ("1", "2"), "P3": ("2", "2"), "P4": ("3", "3")}
_CW_PRIORITY = {
    "P1": "Priority 1 - Emergency Response",
    "P2": "Priority 2 - Quick Response",
    "P3": "Priority 3 - Normal Response",
    "P4": "Priority 4 - Schedule Maintenance",
}
_AT_PRIORITY = {"P1": 4, "P2": 1, "P3": 2, "P4": 3}  # Critical, High, Medium, Low
_FS_PRIORITY = {"P1": 4, "P2": 3, "P3": 2, "P4": 1}  # Urgent, High, Medium, Low
_AT_QUEUES = {"Service Desk": 29683482, "Networking": 29683490}
_AT_COMPLETE = 5
_AT_TECHNICIAN = resource_of(1)
_FS_AGENT = AGENT_BASE + 1


@dataclass(frozen=True)
class Opened:
    """A ticket a person opened: where, its vendor id and the number people say."""

    vendor: Vendor
    external_id: str
    number: str


@dataclass(frozen=True)
class Page:
    """A page at PagerDuty or Opsgenie, by its dedup key or alias."""

    service: str
    key: str
    status: str  # PagerDuty: triggered, resolved; Opsgenie: open, closed

    @property
    def resolved(self) -> bool:
        """The page was resolved (PagerDuty) or closed (Opsgenie)."""
        return self.status in ("resolved", "closed")


class Desk(People):
    """The client's ServiceNow agent, the MSP's ConnectWise and Autotask technicians and Globex's Freshservice agent.

    Args:
        runner: the running sandbox.
    """

    def __init__(self, runner: SandboxRunner) -> None:
        super().__init__(runner.infos["servicenow"], runner.infos["connectwise"])
        self.runner = runner
        self.at_root = runner.infos["autotask"].url
        self.fs_root = runner.infos["freshservice"].url
        at_base = runner.infos["autotask"].base_url
        zone = httpx.get(f"{at_base}/v1.0/zoneInformation", params={"user": AT_USERNAME}, timeout=10)
        headers = {
            "ApiIntegrationCode": AT_INTEGRATION_CODE,
            "UserName": AT_USERNAME,
            "Secret": AT_SECRET,
            "ImpersonationResourceId": str(_AT_TECHNICIAN),  # the change is the technician's, not the API user's
        }
        self.at = httpx.Client(
            base_url=zone.raise_for_status().json()["url"].rstrip("/") + "/V1.0/", headers=headers, timeout=10
        )
        fs_base = runner.infos["freshservice"].base_url
        self.fs = httpx.Client(base_url=f"{fs_base}/api/v2/", auth=(FS_API_KEY, "X"), timeout=10)

    def close(self) -> None:
        """Release the HTTP clients."""
        super().close()
        self.at.close()
        self.fs.close()

    # --- the control plane --------------------------------------------------------------------------------------

    def send_webhooks_to(self, receiver: str, connections: dict[Vendor, str]) -> list[str]:
        """Register ``receiver`` (``<receiver>/webhooks/<connection>``) where the sandbox sets webhooks up; the vendors.

        Autotask's webhooks are entities of its API that a client registers itself; without them its changes are
        found by polling, as here.
        """
        registered = []
        for vendor, root, secret in (
            ("servicenow", self.sn_root, SN_WEBHOOK_SECRET),
            ("connectwise", self.cw_root, CW_CALLBACK_KEY),
            ("freshservice", self.fs_root, FS_WEBHOOK_SECRET),
        ):
            connection = connections.get(vendor)  # type: ignore[call-overload]
            if connection is None:
                continue
            body = {"url": f"{receiver}/webhooks/{connection}", "secret": secret}
            httpx.post(f"{root}/_sandbox/webhooks", json=body, timeout=10).raise_for_status()
            registered.append(vendor)
        return registered

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every simulator has sent the webhooks it queued."""
        for root in (self.sn_root, self.cw_root, self.fs_root):
            httpx.post(f"{root}/_sandbox/webhooks/flush", params={"timeout": timeout}, timeout=timeout + 5)

    def webhooks_delivered(self) -> int:
        """Webhook deliveries the simulators made (answered 2xx)."""
        total = 0
        for root in (self.sn_root, self.cw_root, self.fs_root):
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

    # --- one interface over the four vendors -------------------------------------------------------------------

    def open(
        self,
        vendor: Vendor,
        *,
        tenant: str,
        summary: str,
        description: str,
        priority: str,
        queue: str = "Service Desk",
        requester: str | None = None,
    ) -> Opened:
        """Open a ticket as the vendor's person would, for ``tenant`` in ``queue`` at ``priority`` (P1..P4)."""
        if vendor == "servicenow":
            impact, urgency = _SN_IMPACT_URGENCY[priority]
            body = {
                "short_description": summary,
                "description": description,
                "assignment_group": self.group(queue),
                "impact": impact,
                "urgency": urgency,
                "contact_type": "phone",
            }
            made = self.sn.post("/api/now/table/incident", json=body).raise_for_status().json()["result"]
            return Opened(vendor, str(made["sys_id"]), str(made["number"]))
        if vendor == "connectwise":
            identifier = self.runner.world.tenant(tenant).identifier
            body = {
                "summary": summary,
                "initialDescription": description,
                "company": {"identifier": identifier},
                "board": {"name": queue},
                "priority": {"name": _CW_PRIORITY[priority]},
                "source": {"name": "Phone"},
            }
            made = self.cw.post("/service/tickets", json=body).raise_for_status().json()
            return Opened(vendor, str(made["id"]), f"#{made['id']}")
        if vendor == "autotask":
            body = {
                "companyID": COMPANY_IDS[tenant],
                "title": summary,
                "description": description,
                "status": 1,
                "priority": _AT_PRIORITY[priority],
                "queueID": _AT_QUEUES[queue],
            }
            item = int(self.at.post("Tickets", json=body).raise_for_status().json()["itemId"])
            number = self.at.get(f"Tickets/{item}").raise_for_status().json()["item"]["ticketNumber"]
            return Opened(vendor, str(item), str(number))
        body = {
            "subject": summary,
            "description": f"<p>{description}</p>",
            "status": 2,
            "priority": _FS_PRIORITY[priority],
            "email": requester or f"helpdesk@{self.runner.world.tenant(tenant).domain}",
            "group_id": self.fs_group(queue),
        }
        made = self.fs.post("tickets", json=body).raise_for_status().json()["ticket"]
        return Opened(vendor, str(made["id"]), f"#{made['id']}")

    def note(self, ticket: Opened, text: str) -> None:
        """Add an internal note, as the vendor's person does."""
        if ticket.vendor == "servicenow":
            self.sn_update(ticket.external_id, work_notes=text)
        elif ticket.vendor == "connectwise":
            self.cw_note(ticket.external_id, text)
        elif ticket.vendor == "autotask":
            body = {"title": "Note", "description": text, "noteType": 1, "publish": 2}
            self.at.post(f"Tickets/{ticket.external_id}/Notes", json=body).raise_for_status()
        else:
            body = {"body": f"<p>{text}</p>", "private": True, "user_id": _FS_AGENT}
            self.fs.post(f"tickets/{ticket.external_id}/notes", json=body).raise_for_status()

    def escalate(self, ticket: Opened, queue: str, text: str) -> None:
        """Hand the ticket to ``queue`` (a group or board) with a note, as a Tier 1 agent escalates."""
        if ticket.vendor == "freshservice":
            self.fs.put(f"tickets/{ticket.external_id}", json={"group_id": self.fs_group(queue)}).raise_for_status()
        elif ticket.vendor == "servicenow":
            self.sn_update(ticket.external_id, assignment_group=self.group(queue))
        elif ticket.vendor == "autotask":
            body = {"id": int(ticket.external_id), "queueID": _AT_QUEUES[queue]}
            self.at.patch("Tickets", json=body).raise_for_status()
        else:
            patch = [{"op": "replace", "path": "board", "value": {"name": queue}}]
            self.cw.patch(f"/service/tickets/{ticket.external_id}", json=patch).raise_for_status()
        self.note(ticket, text)

    def resolve(self, ticket: Opened, resolution: str, *, minutes: int = 0) -> None:
        """Log ``minutes`` of work (none when 0), then resolve the ticket with ``resolution`` as its resolution note."""
        if ticket.vendor == "servicenow":
            if minutes:
                self.sn_update(ticket.external_id, time_worked=f"1970-01-01 00:{minutes:02d}:00")
            self.sn_update(ticket.external_id, state="6", close_code="Solution provided", close_notes=resolution)
        elif ticket.vendor == "connectwise":
            if minutes:
                body = {"chargeToId": int(ticket.external_id), "chargeToType": "ServiceTicket",
                        "timeStart": "2026-01-01T09:00:00Z", "actualHours": round(minutes / 60, 2),
                        "notes": "Worked on the ticket."}  # fmt: skip
                self.cw.post("/time/entries", json=body).raise_for_status()
            note = {"text": resolution, "resolutionFlag": True, "internalAnalysisFlag": False,
                    "detailDescriptionFlag": False}  # fmt: skip
            self.cw.post(f"/service/tickets/{ticket.external_id}/notes", json=note).raise_for_status()
            self.cw_status(ticket.external_id, ">Closed")
        elif ticket.vendor == "autotask":
            if minutes:
                body = {"ticketID": int(ticket.external_id), "resourceID": _AT_TECHNICIAN,
                        "dateWorked": "2026-01-01T00:00:00Z", "hoursWorked": round(minutes / 60, 2),
                        "summaryNotes": "Worked on the ticket."}  # fmt: skip
                self.at.post("TimeEntries", json=body).raise_for_status()
            body = {"id": int(ticket.external_id), "status": _AT_COMPLETE, "resolution": resolution}
            self.at.patch("Tickets", json=body).raise_for_status()
        else:
            self.fs.put(f"tickets/{ticket.external_id}", json={"status": 4}).raise_for_status()
            self.note(ticket, resolution)

    def status(self, ticket: Opened, name: str) -> None:
        """Set a ConnectWise ticket's status by name (the MSP's technicians work in ConnectWise)."""
        self.cw_status(ticket.external_id, name)

    def notes(self, ticket: Opened) -> list[str]:
        """The texts of the ticket's notes (ServiceNow: its journal)."""
        if ticket.vendor == "servicenow":
            return self.sn_notes(ticket.external_id)
        if ticket.vendor == "connectwise":
            return self.cw_notes(ticket.external_id)
        if ticket.vendor == "autotask":
            items = self.at.get(f"Tickets/{ticket.external_id}/Notes").raise_for_status().json()["items"]
            return [str(n.get("description", "")) for n in items]
        found = self.fs.get(f"tickets/{ticket.external_id}/conversations").raise_for_status().json()["conversations"]
        return [str(c.get("body_text") or c.get("body", "")) for c in found]

    def ticket(self, ticket: Opened) -> dict[str, Any]:
        """The ticket as its vendor's API returns it."""
        if ticket.vendor == "servicenow":
            return self.incident(ticket.external_id)
        if ticket.vendor == "connectwise":
            return self.cw_ticket(ticket.external_id)
        if ticket.vendor == "autotask":
            return dict(self.at.get(f"Tickets/{ticket.external_id}").raise_for_status().json()["item"])
        return dict(self.fs.get(f"tickets/{ticket.external_id}").raise_for_status().json()["ticket"])

    def fs_group(self, name: str) -> int:
        """The id of Freshservice group ``name``."""
        groups = self.fs.get("groups").raise_for_status().json()["groups"]
        return int(next(g["id"] for g in groups if g["name"] == name))
