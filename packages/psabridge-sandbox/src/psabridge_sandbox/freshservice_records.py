"""Freshservice records for the simulator: the seed world as agents, groups, requesters, departments, assets, tickets.

Shapes follow Freshworks' own API description (vendor-specs/freshservice/freshservice-v2.0.1.swagger.yml,
definitions ``ticket``, ``conversation``, ``time_entry``, ``agent``, ``requester``, ``department``) and the SDK test
fixtures of GitHub freshworks/freshworks-api-sdk (``test/freshservice/responses/ticket/*.js``): integer ids
(int64, agents and requesters numbered like 21000322177), integer codes, blank fields ``null``, times like
``2021-11-22T16:58:45Z``. Codes (VENDOR-APIS.md 4.4, go-freshservice ``ticket.go``): status 2 Open, 3 Pending,
4 Resolved, 5 Closed; priority 1 Low .. 4 Urgent; impact and urgency 1 Low .. 3 High; source 1 Email, 2 Portal,
3 Phone, 4 Chat, 5 Feedback widget, 6 Yammer, 7 AWS Cloudwatch, 8 Pagerduty, 9 Walkup, 10 Slack. Conversation
``source`` 0 email, 2 note (spec ``conversation.source``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from psabridge_sandbox.tickets import SeedNote, SeedTicket, SeedTimeEntry
from psabridge_sandbox.vocabulary import Kind, Level, NoteKind, Priority, Source, Status
from psabridge_sandbox.world import Asset, Contact, Queue, Technician, Tenant, World

__all__ = [
    "AGENT_BASE",
    "INTEGRATION_AGENT_ID",
    "LEVEL_NAMES",
    "PRIORITY_NAMES",
    "SLA_HOURS",
    "SOURCE_NAMES",
    "STATUS_NAMES",
    "TICKET_TYPES",
    "WORKSPACE_ID",
    "Directory",
    "conversation_record",
    "fs_time",
    "html_to_text",
    "parse_fs_time",
    "seed_conversations",
    "seed_ticket_data",
    "seed_time_entries",
    "text_to_html",
    "time_entry_record",
]

WORKSPACE_ID = 2  # the IT workspace of an account with workspaces (ids of the SDK fixtures)
AGENT_BASE = 21000322000
REQUESTER_BASE = 21000418000
GROUP_BASE = 21000188000
DEPARTMENT_BASE = 21000094000
ASSET_BASE = 21000500000
CONVERSATION_BASE = 21004700000
TIME_ENTRY_BASE = 21000077000
CONVERSATIONS_PER_SEED = 10  # seed tickets have at most 7 notes: ids CONVERSATION_BASE + number * 10 + i
TIME_ENTRIES_PER_SEED = 4  # and at most 3 time entries
INTEGRATION_AGENT_ID = AGENT_BASE + 900
"""The agent the sandbox API key belongs to: every API write is made as this agent (``user_id`` of our notes)."""

STATUS_NAMES = {2: "Open", 3: "Pending", 4: "Resolved", 5: "Closed"}
PRIORITY_NAMES = {1: "Low", 2: "Medium", 3: "High", 4: "Urgent"}
LEVEL_NAMES = {1: "Low", 2: "Medium", 3: "High"}
SOURCE_NAMES = {
    1: "Email",
    2: "Portal",
    3: "Phone",
    4: "Chat",
    5: "Feedback widget",
    6: "Yammer",
    7: "AWS Cloudwatch",
    8: "Pagerduty",
    9: "Walkup",
    10: "Slack",
}
TICKET_TYPES = ("Incident", "Service Request")

# Freshservice has one open status for new, assigned and worked tickets; there is no "cancelled" (custom statuses
# would need an admin), so a cancelled seed ticket is closed.
_STATUS = {
    Status.NEW: 2,
    Status.ASSIGNED: 2,
    Status.IN_PROGRESS: 2,
    Status.ON_HOLD: 3,
    Status.RESOLVED: 4,
    Status.CLOSED: 5,
    Status.CANCELLED: 5,
}
_PRIORITY = {Priority.P1: 4, Priority.P2: 3, Priority.P3: 2, Priority.P4: 1}
_LEVEL = {Level.HIGH: 3, Level.MEDIUM: 2, Level.LOW: 1}
# Monitoring alerts arrive through the PagerDuty integration (source 8); "other" through the portal.
_SOURCE = {
    Source.EMAIL: 1,
    Source.PORTAL: 2,
    Source.PHONE: 3,
    Source.CHAT: 4,
    Source.WALK_IN: 9,
    Source.MONITORING: 8,
    Source.OTHER: 2,
}
_SERVICE_REQUEST = Kind.SERVICE_REQUEST  # problems, changes and alerts live as incidents here
_PUBLIC = NoteKind.PUBLIC
# The code of each enum member, keyed by identity: enum members hash in Python code, and 100,000 tickets take six
# lookups each (members are singletons, so their ids are stable).
_CODE = {id(member): code for table in (_STATUS, _PRIORITY, _LEVEL, _SOURCE) for member, code in table.items()}
SLA_HOURS = {4: (0.5, 4.0), 3: (1.0, 8.0), 2: (4.0, 24.0), 1: (8.0, 72.0)}
"""Hours to first response and to resolution by priority code (the SLA policy an admin would set up)."""
_SLA_DELTAS = {code: (timedelta(hours=first), timedelta(hours=resolve)) for code, (first, resolve) in SLA_HOURS.items()}
_ASSET_TYPES = {
    "laptop": 21000302011,
    "desktop": 21000302012,
    "server": 21000302013,
    "printer": 21000302014,
    "firewall": 21000302015,
    "switch": 21000302016,
    "access_point": 21000302017,
    "vpn_gateway": 21000302018,
    "cloud_service": 21000302019,
}
_DIRECTORY_EPOCH = timedelta(days=400)  # agents, groups and requesters were set up this long before the anchor


def fs_time(value: datetime) -> str:
    """Freshservice's timestamp format: UTC to the second, ``2021-11-22T16:58:45Z``."""
    return value.astimezone(UTC).isoformat()[:19] + "Z"  # isoformat is several times faster than strftime


def parse_fs_time(text: str) -> datetime | None:
    """A timestamp as clients send it (``...Z``, an offset, or a date); None if it is not one."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def text_to_html(text: str) -> str:
    """Plain text as the HTML body Freshservice stores (the editor wraps it in a ``div``)."""
    return "<div>" + html.escape(text, quote=False).replace("\n", "<br>") + "</div>"


class _Text(HTMLParser):
    _BREAKS = frozenset({"br", "div", "p", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(body: str) -> str:
    """The ``*_text`` twin Freshservice derives from an HTML body: tags dropped, one line per block."""
    if "<" not in body and "&" not in body:
        return body.strip()
    parser = _Text()
    parser.feed(body)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


@dataclass
class Directory:
    """Reference data of the account: who and what tickets point at, by id."""

    agents: dict[int, dict[str, Any]]
    groups: dict[int, dict[str, Any]]
    requesters: dict[int, dict[str, Any]]
    departments: dict[int, dict[str, Any]]
    assets: dict[int, dict[str, Any]]  # by display_id
    group_of_queue: dict[str, int]
    department_of_tenant: dict[str, int]
    agent_of_identifier: dict[str, int]
    support_email: str

    @classmethod
    def build(cls, world: World, tenants: tuple[str, ...], anchor: datetime) -> Directory:
        """The account's reference data.

        Agents are the MSP's technicians plus the integration agent; groups the queues the account holds; requesters,
        departments and assets those of the tenants served.
        """
        stamp = fs_time(anchor - _DIRECTORY_EPOCH)
        served = tuple(world.tenant(key) for key in tenants) or world.tenants
        queues = [q for q in world.queues if q.role == "tiered" or (q.role == "client_handoff" and q.tenant in tenants)]
        groups = {GROUP_BASE + i + 1: _group(GROUP_BASE + i + 1, q, stamp) for i, q in enumerate(queues)}
        group_of_queue = {g["name"]: gid for gid, g in groups.items()}
        agents: dict[int, dict[str, Any]] = {}
        for tech in world.technicians:
            member_of = [gid for gid, g in groups.items() if _works_in(tech, g["_queue"])]
            agents[AGENT_BASE + tech.id] = _agent(AGENT_BASE + tech.id, tech, member_of, stamp)
        agents[INTEGRATION_AGENT_ID] = _integration_agent(stamp)
        for gid, group in groups.items():
            group["members"] = [aid for aid, a in agents.items() if gid in a["member_of"]]
            del group["_queue"]
        departments: dict[int, dict[str, Any]] = {}
        department_of_tenant: dict[str, int] = {}
        requesters: dict[int, dict[str, Any]] = {}
        assets: dict[int, dict[str, Any]] = {}
        for index, tenant in enumerate(served, start=1):
            dept_id = DEPARTMENT_BASE + index
            departments[dept_id] = _department(dept_id, tenant, stamp)
            department_of_tenant[tenant.key] = dept_id
            for contact in world.contacts_of(tenant.key):
                requesters[REQUESTER_BASE + contact.id] = _requester(contact, dept_id, stamp)
            for asset in world.assets_of(tenant.key):
                assets[asset.id] = _asset(asset, dept_id, stamp)
        return cls(
            agents=agents,
            groups=groups,
            requesters=requesters,
            departments=departments,
            assets=assets,
            group_of_queue=group_of_queue,
            department_of_tenant=department_of_tenant,
            agent_of_identifier={tech.identifier: AGENT_BASE + tech.id for tech in world.technicians},
            support_email=f"support@{served[0].domain}",
        )

    def requester_by_email(self, email: str) -> dict[str, Any] | None:
        """The requester with this primary e-mail address (case-insensitive)."""
        wanted = email.strip().lower()
        for requester in self.requesters.values():
            if str(requester["primary_email"]).lower() == wanted:
                return requester
        return None

    def add_requester(self, email: str | None, name: str | None, phone: str | None, now: datetime) -> dict[str, Any]:
        """A requester created on the fly for a ticket raised for an unknown e-mail or phone, as Freshservice does."""
        first, _, last = (name or (email or "").split("@")[0] or str(phone)).partition(" ")
        record_id = max(self.requesters, default=REQUESTER_BASE) + 1
        address = email.lower() if email else None
        record = _requester_record(record_id, first, last or None, None, address, phone, [], now, now)
        self.requesters[record_id] = record
        return record

    def embedded_requester(self, requester_id: int | None) -> dict[str, Any] | None:
        """``include=requester``: "the requester's email, id, mobile, name, and phone" (spec, list-tickets)."""
        record = self.requesters.get(requester_id) if requester_id is not None else None
        if record is None:
            return None
        name = " ".join(p for p in (record["first_name"], record["last_name"]) if p)
        return {
            "email": record["primary_email"],
            "id": record["id"],
            "mobile": record["mobile_phone_number"],
            "name": name,
            "phone": record["work_phone_number"],
        }


def _works_in(tech: Technician, queue: Queue) -> bool:
    if queue.role == "client_handoff":
        return True  # every MSP engineer may pick up the client's escalations
    if queue.tier == 1:
        return tech.tier == 1
    return tech.tier > 1 and queue.topic in tech.topics


def _group(group_id: int, queue: Queue, stamp: str) -> dict[str, Any]:
    return {
        "id": group_id,
        "name": queue.name,
        "description": f"Tier {queue.tier} {queue.topic} queue" if queue.role == "tiered" else "Escalations to the MSP",
        "escalate_to": None,
        "unassigned_for": None,
        "business_hours_id": None,
        "group_leaders": [],
        "members": [],
        "observers": [],
        "restricted": False,
        "approval_required": False,
        "auto_ticket_assign": False,
        "created_at": stamp,
        "updated_at": stamp,
        "_queue": queue,
    }


def _agent(agent_id: int, tech: Technician, member_of: list[int], stamp: str) -> dict[str, Any]:
    return {
        "id": agent_id,
        "first_name": tech.first_name,
        "last_name": tech.last_name,
        "occasional": False,
        "active": True,
        "job_title": f"Tier {tech.tier} Engineer",
        "email": tech.email,
        "work_phone_number": None,
        "mobile_phone_number": None,
        "department_ids": [],
        "reporting_manager_id": None,
        "time_zone": "Berlin",
        "language": "en",
        "location_id": None,
        "scoreboard_level_id": 1,
        "member_of": member_of,
        "observer_of": [],
        "role_ids": [],
        "has_logged_in": True,
        "last_login_at": stamp,
        "custom_fields": {},
        "created_at": stamp,
        "updated_at": stamp,
    }


def _integration_agent(stamp: str) -> dict[str, Any]:
    return {
        **_agent(INTEGRATION_AGENT_ID, Technician(900, "psabridge", "psabridge", "Integration", "", 1, ()), [], stamp),
        "email": "psabridge@msp.example",
        "job_title": "API integration",
    }


def _department(dept_id: int, tenant: Tenant, stamp: str) -> dict[str, Any]:
    return {
        "id": dept_id,
        "name": tenant.name,
        "description": f"{tenant.name} ({tenant.contract_tier} contract)",
        "head_user_id": None,
        "prime_user_id": None,
        "domains": [tenant.domain],
        "custom_fields": {},
        "created_at": stamp,
        "updated_at": stamp,
    }


def _requester(contact: Contact, dept_id: int, stamp: str) -> dict[str, Any]:
    return _requester_record(
        REQUESTER_BASE + contact.id,
        contact.first_name,
        contact.last_name,
        contact.title,
        contact.email,
        contact.phone,
        [dept_id],
        stamp,
        stamp,
    )


def _requester_record(
    record_id: int,
    first: str,
    last: str | None,
    title: str | None,
    email: str | None,
    phone: str | None,
    departments: list[int],
    created: str | datetime,
    updated: str | datetime,
) -> dict[str, Any]:
    return {
        "id": record_id,
        "first_name": first,
        "last_name": last,
        "job_title": title,
        "primary_email": email,
        "secondary_emails": [],
        "work_phone_number": phone,
        "mobile_phone_number": None,
        "department_ids": departments,
        "can_see_all_tickets_from_associated_departments": False,
        "reporting_manager_id": None,
        "address": None,
        "time_zone": "Berlin",
        "language": "en",
        "location_id": None,
        "background_information": None,
        "custom_fields": {},
        "active": True,
        "has_logged_in": False,
        "created_at": created if isinstance(created, str) else fs_time(created),
        "updated_at": updated if isinstance(updated, str) else fs_time(updated),
    }


def _asset(asset: Asset, dept_id: int, stamp: str) -> dict[str, Any]:
    return {
        "id": ASSET_BASE + asset.id,
        "display_id": asset.id,
        "name": asset.name,
        "description": asset.model,
        "asset_type_id": _ASSET_TYPES.get(asset.kind),
        "asset_tag": asset.serial,
        "impact": "low",
        "usage_type": "permanent",
        "user_id": REQUESTER_BASE + asset.owner if asset.owner is not None else None,
        "department_id": dept_id,
        "agent_id": None,
        "group_id": None,
        "created_at": stamp,
        "updated_at": stamp,
    }


# --- tickets -------------------------------------------------------------------------------------------------------


def seed_ticket_data(seed: SeedTicket, directory: Directory) -> dict[str, Any]:
    """The stored fields of a seed ticket, with its stats.

    Times are kept as datetimes and formatted when rendered; ``description`` is None while it is the plain text
    wrapped as the editor would wrap it. Both keep loading 100,000 tickets fast.
    """
    priority = _CODE[id(seed.priority)]
    first_due, resolve_due = _SLA_DELTAS[priority]
    agent_public = [n.created_at for n in seed.notes if n.kind is _PUBLIC and not n.by_requester]
    from_requester = [n.created_at for n in seed.notes if n.by_requester]
    status = _CODE[id(seed.status)]
    stats: dict[str, datetime] = {}
    if agent_public:
        stats["first_responded_at"] = agent_public[0]
        stats["agent_responded_at"] = agent_public[-1]
    if from_requester:
        stats["requester_responded_at"] = from_requester[-1]
    if seed.resolved_at is not None:
        stats["resolved_at"] = seed.resolved_at
    if seed.closed_at is not None:
        stats["closed_at"] = seed.closed_at
        stats.setdefault("resolved_at", seed.closed_at)
    if status == 3:
        stats["pending_since"] = seed.updated_at
    if status != 2:
        stats["status_updated_at"] = seed.closed_at or seed.resolved_at or seed.updated_at
    requester_id = REQUESTER_BASE + seed.requester.id
    tags = ["vip"] if seed.requester.vip else []
    return {
        "subject": seed.summary,
        "description": None,
        "description_text": seed.description,
        "status": status,
        "priority": priority,
        "urgency": _CODE[id(seed.urgency)],
        "impact": _CODE[id(seed.impact)],
        "source": _CODE[id(seed.source)],
        "type": "Service Request" if seed.kind is _SERVICE_REQUEST else "Incident",
        "requester_id": requester_id,
        "requested_for_id": requester_id,
        "responder_id": AGENT_BASE + seed.assignee.id if seed.assignee is not None else None,
        "group_id": directory.group_of_queue.get(seed.queue.name, directory.group_of_queue["Service Desk"]),
        "department_id": directory.department_of_tenant.get(seed.tenant.key),
        "category": seed.category,
        "sub_category": seed.subcategory,
        "item_category": None,
        "tags": tags,
        "custom_fields": {"affected_site": seed.requester.site, "msp_reference": None},
        "fr_due_by": seed.created_at + first_due,
        "due_by": seed.created_at + resolve_due,
        "spam": False,
        "deleted": False,
        "asset_ids": [seed.asset.id] if seed.asset is not None else [],
        "stats": stats,
    }


def seed_conversations(seed: SeedTicket, ticket_id: int, directory: Directory) -> list[dict[str, Any]]:
    """The seed ticket's notes as conversations: private notes, agents' replies and the requester's replies."""
    return [
        _seed_conversation(
            note, CONVERSATION_BASE + seed.number * CONVERSATIONS_PER_SEED + i, ticket_id, seed, directory
        )
        for i, note in enumerate(seed.notes)
    ]


def _seed_conversation(
    note: SeedNote, conversation_id: int, ticket_id: int, seed: SeedTicket, directory: Directory
) -> dict[str, Any]:
    requester = seed.requester
    if note.by_requester:  # a reply by e-mail from the requester
        return conversation_record(
            conversation_id,
            ticket_id,
            note.text,
            user_id=REQUESTER_BASE + requester.id,
            private=False,
            incoming=True,
            source=0,
            created=note.created_at,
            from_email=requester.email,
            to_emails=[directory.support_email],
        )
    agent = directory.agent_of_identifier.get(note.author_ref, INTEGRATION_AGENT_ID)
    if note.kind is NoteKind.PUBLIC:  # an agent's reply, e-mailed to the requester
        return conversation_record(
            conversation_id,
            ticket_id,
            note.text,
            user_id=agent,
            private=False,
            incoming=False,
            source=0,
            created=note.created_at,
            from_email=directory.support_email,
            to_emails=[requester.email],
            support_email=directory.support_email,
        )
    # Internal notes and resolutions: Freshservice has no resolution note type, so both are private notes.
    return conversation_record(
        conversation_id,
        ticket_id,
        note.text,
        user_id=agent,
        private=True,
        incoming=False,
        source=2,
        created=note.created_at,
    )


def conversation_record(
    conversation_id: int,
    ticket_id: int,
    text: str | None,
    *,
    user_id: int,
    private: bool,
    incoming: bool,
    source: int,
    created: datetime,
    body: str | None = None,
    from_email: str | None = None,
    to_emails: list[str] | None = None,
    support_email: str | None = None,
) -> dict[str, Any]:
    """One conversation (note or reply) as ``GET /tickets/{id}/conversations`` lists it."""
    html_body = body if body is not None else text_to_html(text or "")
    return {
        "id": conversation_id,
        "user_id": user_id,
        "from_email": from_email,
        "cc_emails": [],
        "bcc_emails": [],
        "to_emails": to_emails or [],
        "body": html_body,
        "body_text": html_to_text(html_body) if text is None else text,
        "ticket_id": ticket_id,
        "created_at": fs_time(created),
        "updated_at": fs_time(created),
        "incoming": incoming,
        "private": private,
        "source": source,
        "support_email": support_email,
        "attachments": [],
    }


def seed_time_entries(seed: SeedTicket, ticket_id: int) -> list[dict[str, Any]]:
    """The seed ticket's logged time, as ``GET /tickets/{id}/time_entries`` lists it."""
    return [
        _seed_time_entry(entry, TIME_ENTRY_BASE + seed.number * TIME_ENTRIES_PER_SEED + i, ticket_id)
        for i, entry in enumerate(seed.time_entries)
    ]


def _seed_time_entry(entry: SeedTimeEntry, entry_id: int, ticket_id: int) -> dict[str, Any]:
    logged = entry.started_at + timedelta(minutes=entry.minutes)
    return time_entry_record(
        entry_id,
        ticket_id,
        minutes=entry.minutes,
        agent_id=AGENT_BASE + entry.technician.id,
        note=entry.note,
        billable=entry.billable,
        executed_at=entry.started_at,
        created=logged,
    )


def time_entry_record(
    entry_id: int,
    ticket_id: int,
    *,
    minutes: int,
    agent_id: int,
    note: str,
    billable: bool,
    executed_at: datetime,
    created: datetime,
) -> dict[str, Any]:
    """One time entry; ``time_spent`` is "hh:mm" (spec ``time_entry``, fixture ``timeEntry200.js``)."""
    return {
        "id": entry_id,
        "task_id": None,
        "parent_id": ticket_id,
        "parent_type": "Ticket",
        "start_time": fs_time(executed_at),
        "time_spent": f"{minutes // 60:02d}:{minutes % 60:02d}",
        "timer_running": False,
        "billable": billable,
        "agent_id": agent_id,
        "note": note,
        "executed_at": fs_time(executed_at),
        "custom_fields": {},
        "created_at": fs_time(created),
        "updated_at": fs_time(created),
    }
