"""The people at the simulated vendors: a client's agent in ServiceNow and the MSP's technicians in ConnectWise.

They act through the vendors' REST APIs with their own credentials (never psabridge's integration user), so what
they do looks to psabridge exactly like a person's change. The demo and the end-to-end tests drive the sandbox
through this class and inspect it through the control plane (``/_sandbox``).
"""

from __future__ import annotations

from typing import Any

import httpx

from psabridge_sandbox.connectwise import API_ROOT
from psabridge_sandbox.credentials import CW_CLIENT_ID, CW_COMPANY, CW_PRIVATE_KEY, CW_PUBLIC_KEY, SN_PASSWORD
from psabridge_sandbox.runner import ServiceInfo

__all__ = ["AGENT", "WRITES", "People"]

AGENT = "dana.whitfield"  # a person at the client's ServiceNow (not our integration user)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


class People:
    """The client's ServiceNow agent and the MSP's ConnectWise technicians, over the simulators' APIs.

    Args:
        servicenow: where the ServiceNow simulator listens.
        connectwise: where the ConnectWise simulator listens.
    """

    def __init__(self, servicenow: ServiceInfo, connectwise: ServiceInfo) -> None:
        self.sn_root = servicenow.url
        self.cw_root = connectwise.url
        self.sn = httpx.Client(base_url=servicenow.base_url, auth=(AGENT, SN_PASSWORD), timeout=10)
        auth = httpx.BasicAuth(f"{CW_COMPANY}+{CW_PUBLIC_KEY}", CW_PRIVATE_KEY)
        # (a connection is configured with the site root and looks the codebase up; the people know it)
        self.cw = httpx.Client(
            base_url=connectwise.url + API_ROOT, auth=auth, headers={"clientId": CW_CLIENT_ID}, timeout=10
        )
        self.cw_human_writes = 0

    def close(self) -> None:
        """Release the HTTP clients."""
        self.sn.close()
        self.cw.close()

    def writes(self) -> dict[str, list[dict[str, Any]]]:
        """Every write each simulator recorded (people's and psabridge's), by vendor."""
        found = {}
        for name, root in (("servicenow", self.sn_root), ("connectwise", self.cw_root)):
            recorded = httpx.get(f"{root}/_sandbox/requests", timeout=10).json()["requests"]
            found[name] = [r for r in recorded if r["method"] in WRITES]
        return found

    # --- ServiceNow, as the client's people ------------------------------------------------------------------------

    def group(self, name: str) -> str:
        """The sys_id of the assignment group ``name``."""
        found = self.sn.get("/api/now/table/sys_user_group", params={"sysparm_query": f"name={name}"})
        return str(found.raise_for_status().json()["result"][0]["sys_id"])

    def open_incident(self, title: str, *, impact: str = "2", urgency: str = "2", group: str = "MSP Support") -> str:
        """Open an incident for ``group``; its sys_id."""
        body = {
            "short_description": title,
            "description": f"{title}: reported by phone.",
            "assignment_group": self.group(group),
            "impact": impact,
            "urgency": urgency,
        }
        return str(self.sn.post("/api/now/table/incident", json=body).raise_for_status().json()["result"]["sys_id"])

    def sn_update(self, sys_id: str, **fields: str) -> None:
        """PATCH the incident (``work_notes=...`` adds a work note)."""
        self.sn.patch(f"/api/now/table/incident/{sys_id}", json=fields).raise_for_status()

    def incident(self, sys_id: str) -> dict[str, Any]:
        """The incident as the table API returns it."""
        return dict(self.sn.get(f"/api/now/table/incident/{sys_id}").raise_for_status().json()["result"])

    def sn_notes(self, sys_id: str) -> list[str]:
        """The texts of the incident's journal entries (work notes and comments)."""
        query = {"sysparm_query": f"element_id={sys_id}", "sysparm_limit": "1000"}
        rows = self.sn.get("/api/now/table/sys_journal_field", params=query).raise_for_status().json()["result"]
        return [str(r["value"]) for r in rows]

    # --- ConnectWise, as the MSP's technicians ---------------------------------------------------------------------

    def cw_tickets(self, summary: str) -> list[dict[str, Any]]:
        """Service tickets whose summary is exactly ``summary``."""
        params = {"conditions": f'summary = "{summary}"', "pageSize": "1000"}
        return list(self.cw.get("/service/tickets", params=params).raise_for_status().json())

    def cw_ticket(self, ticket_id: str) -> dict[str, Any]:
        """One service ticket."""
        return dict(self.cw.get(f"/service/tickets/{ticket_id}").raise_for_status().json())

    def cw_notes(self, ticket_id: str) -> list[str]:
        """The texts of the ticket's notes."""
        notes = self.cw.get(f"/service/tickets/{ticket_id}/notes", params={"pageSize": "1000"}).raise_for_status()
        return [str(n.get("text", "")) for n in notes.json()]

    def cw_note(self, ticket_id: str, text: str) -> None:
        """Add an internal note, as a technician does."""
        self.cw_human_writes += 1
        body = {"text": text, "internalAnalysisFlag": True, "detailDescriptionFlag": False}
        self.cw.post(f"/service/tickets/{ticket_id}/notes", json=body).raise_for_status()

    def cw_status(self, ticket_id: str, name: str) -> None:
        """Set the ticket's status by name (JSON Patch)."""
        self.cw_human_writes += 1
        patch = [{"op": "replace", "path": "status", "value": {"name": name}}]
        self.cw.patch(f"/service/tickets/{ticket_id}", json=patch).raise_for_status()
