"""The help-desk checklist cases, opened in each simulated vendor through its REST API as a person would.

A ``Desk`` is one vendor's front desk: a person (never psabridge's integration user) opens tickets, adds internal
notes, resolves and escalates them in the vendor's own wire values, and reads back the internal notes in the
vendor's internal-note form (ConnectWise ``internalAnalysisFlag``, Autotask ``publish`` 2 "Internal Only",
ServiceNow ``work_notes`` journal entries, Freshservice ``private`` conversations). ``CaseBook`` builds the four
cases the checklist's end-to-end tests and the demo share, each as the final state a person leaves before the
bridge looks (a ticket opened and worked between two polls)::

    with SandboxRunner(port_base=0, tickets=0) as sandbox:
        book = CaseBook(sandbox.infos)
        opened = book.password_reset("servicenow", tag="a1b2")   # Opened(system, ticket_id, summary, case)
        book.desk("servicenow").internal_notes(opened.ticket_id)

The cases: ``password_reset`` (credential work, no identity verification recorded), ``outage_wrong_priority`` (the
whole office down, logged as the lowest priority; ServiceNow through impact 3 and urgency 3, as priority is derived
there), ``weak_resolve`` (resolved with "Rebooted and it worked") and ``bare_escalation`` (moved to the Networking
tier-2 queue with a bare "please assist"). Nothing here imports psabridge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from psabridge_sandbox.autotask_data import COMPANY_IDS, QUEUES, resource_of
from psabridge_sandbox.connectwise import API_ROOT
from psabridge_sandbox.credentials import (
    AT_INTEGRATION_CODE,
    AT_SECRET,
    AT_USERNAME,
    CW_CLIENT_ID,
    CW_COMPANY,
    CW_PRIVATE_KEY,
    CW_PUBLIC_KEY,
    FS_API_KEY,
    SN_PASSWORD,
)
from psabridge_sandbox.freshservice_records import AGENT_BASE
from psabridge_sandbox.runner import ServiceInfo

__all__ = [
    "CASES",
    "SYSTEMS",
    "AutotaskDesk",
    "CaseBook",
    "CaseName",
    "ConnectWiseDesk",
    "Desk",
    "FreshserviceDesk",
    "Opened",
    "ServiceNowDesk",
]

SYSTEMS = ("connectwise", "autotask", "servicenow", "freshservice")
CaseName = Literal["password_reset", "outage_wrong_priority", "weak_resolve", "bare_escalation"]
CASES: tuple[CaseName, ...] = ("password_reset", "outage_wrong_priority", "weak_resolve", "bare_escalation")
Level = Literal["P1", "P2", "P3", "P4"]

_SN_AGENT = "dana.whitfield"  # a person at the client's ServiceNow (people.AGENT)
_FS_AGENT = AGENT_BASE + 1  # seed agent 1 of Freshservice
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Opened:
    """A case as a person left it: the vendor, the ticket's id in it, its summary and which case it is."""

    system: str
    ticket_id: str
    summary: str
    case: CaseName


class Desk(Protocol):
    """One vendor's front desk, as a person works it through the vendor's REST API."""

    system: str

    def open(self, summary: str, description: str, *, priority: Level, queue: str = "Service Desk") -> str:
        """Open a ticket; its id."""
        ...

    def note(self, ticket_id: str, text: str) -> None:
        """Add an internal note, as a technician does."""
        ...

    def resolve(self, ticket_id: str, resolution: str) -> None:
        """Resolve the ticket with ``resolution`` where the vendor keeps a resolution."""
        ...

    def escalate(self, ticket_id: str, queue: str) -> None:
        """Move the ticket to ``queue`` (a board, queue or group)."""
        ...

    def internal_notes(self, ticket_id: str) -> list[str]:
        """The texts of the ticket's internal notes, in the vendor's internal form, oldest first."""
        ...

    def all_notes(self, ticket_id: str) -> list[str]:
        """The texts of all the ticket's notes, internal and public (the requester sees the public ones)."""
        ...

    def close(self) -> None:
        """Release the HTTP client."""
        ...


class ConnectWiseDesk:
    """A technician at the MSP's ConnectWise PSA (the member behind the sandbox's API member keys)."""

    system = "connectwise"
    _PRIORITIES: Mapping[str, str] = {
        "P1": "Priority 1 - Emergency Response",
        "P2": "Priority 2 - Quick Response",
        "P3": "Priority 3 - Normal Response",
        "P4": "Priority 4 - Schedule Maintenance",
    }

    def __init__(self, info: ServiceInfo, *, company: str = "AcmeDental") -> None:
        auth = httpx.BasicAuth(f"{CW_COMPANY}+{CW_PUBLIC_KEY}", CW_PRIVATE_KEY)
        self.http = httpx.Client(base_url=info.url + API_ROOT, auth=auth, headers={"clientId": CW_CLIENT_ID},
                                 timeout=10)  # fmt: skip
        self.company = company

    def open(self, summary: str, description: str, *, priority: Level, queue: str = "Service Desk") -> str:
        body = {"summary": summary, "initialDescription": description, "board": {"name": queue},
                "company": {"identifier": self.company}, "priority": {"name": self._PRIORITIES[priority]}}  # fmt: skip
        return str(self.http.post("/service/tickets", json=body).raise_for_status().json()["id"])

    def note(self, ticket_id: str, text: str) -> None:
        body = {"text": text, "internalAnalysisFlag": True, "detailDescriptionFlag": False}
        self.http.post(f"/service/tickets/{ticket_id}/notes", json=body).raise_for_status()

    def resolve(self, ticket_id: str, resolution: str) -> None:
        body = {"text": resolution, "resolutionFlag": True, "detailDescriptionFlag": False}
        self.http.post(f"/service/tickets/{ticket_id}/notes", json=body).raise_for_status()
        self._patch(ticket_id, "status", {"name": "Completed"})

    def escalate(self, ticket_id: str, queue: str) -> None:
        self._patch(ticket_id, "board", {"name": queue})

    def _patch(self, ticket_id: str, path: str, value: Any) -> None:
        patch = [{"op": "replace", "path": path, "value": value}]
        self.http.patch(f"/service/tickets/{ticket_id}", json=patch).raise_for_status()

    def internal_notes(self, ticket_id: str) -> list[str]:
        return [str(n.get("text", "")) for n in self._notes(ticket_id) if n.get("internalAnalysisFlag")]

    def all_notes(self, ticket_id: str) -> list[str]:
        return [str(n.get("text", "")) for n in self._notes(ticket_id)]

    def _notes(self, ticket_id: str) -> list[dict[str, Any]]:
        notes = self.http.get(f"/service/tickets/{ticket_id}/notes", params={"pageSize": "1000"}).raise_for_status()
        return list(notes.json())

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """The ticket as the API returns it."""
        return dict(self.http.get(f"/service/tickets/{ticket_id}").raise_for_status().json())

    def close(self) -> None:
        self.http.close()


class AutotaskDesk:
    """A technician at the partner's Autotask: every change is made as their resource (ImpersonationResourceId)."""

    system = "autotask"
    INTERNAL_ONLY = 2  # TicketNotes.publish 2 "Internal Only" (autotask_data.PUBLISH)
    _PRIORITIES: Mapping[str, int] = {"P1": 4, "P2": 1, "P3": 2, "P4": 3}  # Critical, High, Medium, Low
    _COMPLETE = 5

    def __init__(self, info: ServiceInfo, *, tenant: str = "initech", technician: int = 1) -> None:
        zone = httpx.get(f"{info.base_url}/v1.0/zoneInformation", params={"user": AT_USERNAME}, timeout=10)
        headers = {"ApiIntegrationCode": AT_INTEGRATION_CODE, "UserName": AT_USERNAME, "Secret": AT_SECRET,
                   "ImpersonationResourceId": str(resource_of(technician))}  # fmt: skip
        root = zone.raise_for_status().json()["url"].rstrip("/")
        self.http = httpx.Client(base_url=root + "/V1.0/", headers=headers, timeout=10)
        self.company = COMPANY_IDS[tenant]

    def open(self, summary: str, description: str, *, priority: Level, queue: str = "Service Desk") -> str:
        body = {"companyID": self.company, "title": summary, "description": description, "status": 1,
                "priority": self._PRIORITIES[priority], "queueID": QUEUES[queue]}  # fmt: skip
        return str(self.http.post("Tickets", json=body).raise_for_status().json()["itemId"])

    def note(self, ticket_id: str, text: str) -> None:
        body = {"title": "Note", "description": text, "noteType": 1, "publish": self.INTERNAL_ONLY}
        self.http.post(f"Tickets/{ticket_id}/Notes", json=body).raise_for_status()

    def resolve(self, ticket_id: str, resolution: str) -> None:
        self._update(ticket_id, resolution=resolution, status=self._COMPLETE)

    def escalate(self, ticket_id: str, queue: str) -> None:
        self._update(ticket_id, queueID=QUEUES[queue])

    def _update(self, ticket_id: str, **fields: Any) -> None:
        self.http.patch("Tickets", json={"id": int(ticket_id), **fields}).raise_for_status()

    def internal_notes(self, ticket_id: str) -> list[str]:
        return [str(n.get("description", "")) for n in self._notes(ticket_id) if n.get("publish") == self.INTERNAL_ONLY]

    def all_notes(self, ticket_id: str) -> list[str]:
        return [str(n.get("description", "")) for n in self._notes(ticket_id)]

    def _notes(self, ticket_id: str) -> list[dict[str, Any]]:
        return list(self.http.get(f"Tickets/{ticket_id}/Notes").raise_for_status().json()["items"])

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """The ticket as the API returns it."""
        return dict(self.http.get(f"Tickets/{ticket_id}").raise_for_status().json()["item"])

    def close(self) -> None:
        self.http.close()


class ServiceNowDesk:
    """An agent at the client's ServiceNow (dana.whitfield, not the integration user)."""

    system = "servicenow"
    # impact x urgency -> priority (ServiceNow's default Priority Lookup Rules): the priority itself is derived.
    _LEVELS: Mapping[str, tuple[str, str]] = {"P1": ("1", "1"), "P2": ("1", "2"), "P3": ("2", "2"), "P4": ("3", "3")}

    def __init__(self, info: ServiceInfo) -> None:
        self.http = httpx.Client(base_url=info.base_url, auth=(_SN_AGENT, SN_PASSWORD), timeout=10)
        self._groups: dict[str, str] = {}

    def group(self, name: str) -> str:
        """The sys_id of the assignment group ``name``."""
        if name not in self._groups:
            found = self.http.get("/api/now/table/sys_user_group", params={"sysparm_query": f"name={name}"})
            self._groups[name] = str(found.raise_for_status().json()["result"][0]["sys_id"])
        return self._groups[name]

    def open(self, summary: str, description: str, *, priority: Level, queue: str = "Service Desk") -> str:
        impact, urgency = self._LEVELS[priority]
        body = {"short_description": summary, "description": description, "assignment_group": self.group(queue),
                "impact": impact, "urgency": urgency}  # fmt: skip
        return str(self.http.post("/api/now/table/incident", json=body).raise_for_status().json()["result"]["sys_id"])

    def note(self, ticket_id: str, text: str) -> None:
        self._update(ticket_id, work_notes=text)

    def resolve(self, ticket_id: str, resolution: str) -> None:
        self._update(ticket_id, state="6", close_code="Solved (Permanently)", close_notes=resolution)

    def escalate(self, ticket_id: str, queue: str) -> None:
        self._update(ticket_id, assignment_group=self.group(queue))

    def _update(self, ticket_id: str, **fields: str) -> None:
        self.http.patch(f"/api/now/table/incident/{ticket_id}", json=fields).raise_for_status()

    def internal_notes(self, ticket_id: str) -> list[str]:
        return [str(r["value"]) for r in self._journal(ticket_id) if r.get("element") == "work_notes"]

    def all_notes(self, ticket_id: str) -> list[str]:
        """Work notes and comments (the journal)."""
        return [str(r["value"]) for r in self._journal(ticket_id)]

    def _journal(self, ticket_id: str) -> list[dict[str, Any]]:
        query = {"sysparm_query": f"element_id={ticket_id}^ORDERBYsys_created_on", "sysparm_limit": "1000"}
        return list(self.http.get("/api/now/table/sys_journal_field", params=query).raise_for_status().json()["result"])

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """The incident as the table API returns it."""
        return dict(self.http.get(f"/api/now/table/incident/{ticket_id}").raise_for_status().json()["result"])

    def close(self) -> None:
        self.http.close()


class FreshserviceDesk:
    """An agent at the client's Freshservice (a seed agent, not the one behind the API key)."""

    system = "freshservice"
    _PRIORITIES: Mapping[str, int] = {"P1": 4, "P2": 3, "P3": 2, "P4": 1}  # Urgent, High, Medium, Low
    _RESOLVED = 4

    def __init__(self, info: ServiceInfo, *, requester: str = "mary.okafor@globex.example") -> None:
        self.http = httpx.Client(base_url=f"{info.base_url}/api/v2/", auth=(FS_API_KEY, "X"), timeout=10)
        self.requester = requester
        self._groups: dict[str, int] = {}

    def group(self, name: str) -> int:
        """The id of the agent group ``name``."""
        if not self._groups:
            groups = self.http.get("groups").raise_for_status().json()["groups"]
            self._groups = {str(g["name"]): int(g["id"]) for g in groups}
        return self._groups[name]

    def open(self, summary: str, description: str, *, priority: Level, queue: str = "Service Desk") -> str:
        body = {"subject": summary, "description": f"<p>{description}</p>", "status": 2, "email": self.requester,
                "priority": self._PRIORITIES[priority], "group_id": self.group(queue)}  # fmt: skip
        return str(self.http.post("tickets", json=body).raise_for_status().json()["ticket"]["id"])

    def note(self, ticket_id: str, text: str) -> None:
        body = {"body": f"<p>{text}</p>", "private": True, "user_id": _FS_AGENT}
        self.http.post(f"tickets/{ticket_id}/notes", json=body).raise_for_status()

    def resolve(self, ticket_id: str, resolution: str) -> None:
        # Freshservice's API has no resolution field: the agent writes the resolution as a private note.
        self.note(ticket_id, resolution)
        self.http.put(f"tickets/{ticket_id}", json={"status": self._RESOLVED}).raise_for_status()

    def escalate(self, ticket_id: str, queue: str) -> None:
        self.http.put(f"tickets/{ticket_id}", json={"group_id": self.group(queue)}).raise_for_status()

    def tag(self, ticket_id: str, *tags: str) -> None:
        """Set the ticket's tags (Freshservice tickets carry a list of tags; the other vendors' tickets have none)."""
        self.http.put(f"tickets/{ticket_id}", json={"tags": list(tags)}).raise_for_status()

    def internal_notes(self, ticket_id: str) -> list[str]:
        return [_text(c) for c in self._conversations(ticket_id) if c.get("private")]

    def all_notes(self, ticket_id: str) -> list[str]:
        return [_text(c) for c in self._conversations(ticket_id)]

    def _conversations(self, ticket_id: str) -> list[dict[str, Any]]:
        found = self.http.get(f"tickets/{ticket_id}/conversations").raise_for_status().json()["conversations"]
        return list(found)

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """The ticket as the API returns it."""
        return dict(self.http.get(f"tickets/{ticket_id}").raise_for_status().json()["ticket"])

    def close(self) -> None:
        self.http.close()


class CaseBook:
    """The four checklist cases, in any of the four vendors (``infos``: the runner's services, by name)."""

    def __init__(self, infos: Mapping[str, ServiceInfo]) -> None:
        self._desks: dict[str, Desk] = {
            "connectwise": ConnectWiseDesk(infos["connectwise"]),
            "autotask": AutotaskDesk(infos["autotask"]),
            "servicenow": ServiceNowDesk(infos["servicenow"]),
            "freshservice": FreshserviceDesk(infos["freshservice"]),
        }

    def desk(self, system: str) -> Desk:
        """The desk of ``system`` (connectwise, autotask, servicenow, freshservice)."""
        return self._desks[system]

    def close(self) -> None:
        """Release every desk's HTTP client."""
        for desk in self._desks.values():
            desk.close()

    def open_case(self, case: CaseName, system: str, *, tag: str = "", queue: str = "Service Desk") -> Opened:
        """Open ``case`` in ``system``; ``tag`` makes its summary unique, ``queue`` is where it is opened."""
        build = getattr(self, case)
        opened: Opened = build(system, tag=tag, queue=queue)
        return opened

    def password_reset(self, system: str, *, tag: str = "", queue: str = "Service Desk") -> Opened:
        """Checklist step 1: a password reset asked for by phone, nobody verified the caller."""
        summary = _unique("Password reset - locked out of my account", tag)
        text = ("I forgot my password and now I am locked out of my account since this morning when I tried to log in. "
                "Please reset my password so I can work, it is only me. Call me back on my mobile.")  # fmt: skip
        ticket_id = self.desk(system).open(summary, text, priority="P2", queue=queue)
        return Opened(system, ticket_id, summary, "password_reset")

    def outage_wrong_priority(self, system: str, *, tag: str = "", queue: str = "Service Desk") -> Opened:
        """Checklist step 3: the whole office cannot send email, logged at the lowest priority."""
        summary = _unique("Email down for the whole office", tag)
        text = ("None of us can send or receive email since about 8:15 when Outlook started showing Disconnected. "
                "All users at the Midtown Clinic are affected, every time we try to send.")  # fmt: skip
        ticket_id = self.desk(system).open(summary, text, priority="P4", queue=queue)
        return Opened(system, ticket_id, summary, "outage_wrong_priority")

    def weak_resolve(self, system: str, *, tag: str = "", queue: str = "Service Desk") -> Opened:
        """Checklist step 12: resolved with a "Rebooted and it worked" note."""
        summary = _unique("Outlook keeps freezing when opening attachments", tag)
        text = ("Outlook freezes for me every time I open a PDF attachment since yesterday's update, only my laptop. "
                "I have to kill it in Task Manager.")  # fmt: skip
        desk = self.desk(system)
        ticket_id = desk.open(summary, text, priority="P3", queue=queue)
        desk.resolve(ticket_id, "Rebooted and it worked.")
        return Opened(system, ticket_id, summary, "weak_resolve")

    def bare_escalation(self, system: str, *, tag: str = "", queue: str = "Service Desk") -> Opened:
        """Checklist step 9: moved to the Networking tier-2 queue with nothing but "please assist"."""
        summary = _unique("Shared drive keeps disconnecting", tag)
        text = ("The S: drive keeps disconnecting for me since Monday when I save files, I have to remap it. "
                "Only my laptop.")  # fmt: skip
        desk = self.desk(system)
        ticket_id = desk.open(summary, text, priority="P3", queue=queue)
        desk.escalate(ticket_id, "Networking")
        desk.note(ticket_id, "Please assist.")
        return Opened(system, ticket_id, summary, "bare_escalation")


def _text(conversation: Mapping[str, Any]) -> str:
    return str(conversation.get("body_text") or _TAGS.sub(" ", str(conversation.get("body", ""))))


def _unique(summary: str, tag: str) -> str:
    return f"{summary} [{tag}]" if tag else summary
