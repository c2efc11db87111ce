"""ConnectWise PSA record shapes for the simulator: reference data and seed tickets as native records.

Reference data: companies, members, boards, statuses, priorities, sources; seed tickets become native tickets,
service notes and time entries.

Shapes follow the published Service API spec (vendor-specs/connectwise/service.json: Ticket, ServiceNote, Status,
Priority, Source, Board), today's additions seen in pyconnectwise's models (``owner``, ``_info`` timestamps) and the
real sample in PipedreamHQ/pipedream ``components/connectwise_psa/sources/new-ticket-created/test-event.mjs``
(VENDOR-APIS.md 1.4 and 5):

- references are ``{id, name, _info: {<x>_href}}`` (companies and members carry ``identifier``, priorities ``sort``);
- fields without a value are left out of the JSON rather than sent as null, as ConnectWise serialises;
- timestamps live in ``_info`` (``lastUpdated``, ``updatedBy``, ``dateEntered``, ``enteredBy``), as ``...Z`` seconds;
- the body of a ticket is not on it: it is the first note, flagged ``detailDescriptionFlag`` (Discussion);
  internal notes carry ``internalAnalysisFlag``, resolutions ``resolutionFlag``;
- statuses are per board: every board has its own status ids, even where the names are the same.

Hrefs are written against ``HREF_BASE`` and rewritten to the simulator's own address when a response is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psabridge_sandbox.tickets import SeedNote, SeedTicket, SeedTimeEntry
from psabridge_sandbox.vocabulary import Level, NoteKind, Priority, Source, Status
from psabridge_sandbox.world import World

__all__ = [
    "API_MEMBER",
    "API_MEMBER_ID",
    "HREF_BASE",
    "PRIORITY_NAMES",
    "SOURCE_NAMES",
    "STATUS_NAMES",
    "Catalog",
    "stamp",
]

HREF_BASE = "http://connectwise.sandbox.invalid/v4_6_release/apis/3.0"
"""Placeholder API root in stored hrefs; replaced by the address a client used when a response goes out."""

STATUS_NAMES: dict[Status, str] = {
    # ConnectWise's default service-board statuses (psabridge's default mapping, builtin:connectwise, lists them).
    Status.NEW: "New",
    Status.ASSIGNED: "Assigned",
    Status.IN_PROGRESS: "In Progress",
    Status.ON_HOLD: "Waiting Customer",
    Status.RESOLVED: "Completed",
    Status.CLOSED: ">Closed",
    Status.CANCELLED: "Cancelled",
}
_ESCALATION = {
    Status.NEW: "NotResponded",
    Status.ASSIGNED: "Responded",
    Status.IN_PROGRESS: "Responded",
    Status.ON_HOLD: "ResolutionPlan",
    Status.RESOLVED: "Resolved",
    Status.CLOSED: "Resolved",
    Status.CANCELLED: "NoEscalation",
}
_CLOSED_STATUSES = (Status.CLOSED, Status.CANCELLED)

# (id, name, sort, color): ConnectWise's shipped priorities; ids are not 1..n on a real instance either.
PRIORITY_NAMES: dict[Priority, tuple[int, str, int, str]] = {
    Priority.P1: (6, "Priority 1 - Emergency Response", 1, "#FF0000"),
    Priority.P2: (8, "Priority 2 - Quick Response", 3, "#FF8000"),
    Priority.P3: (4, "Priority 3 - Normal Response", 6, "#0000FF"),
    Priority.P4: (3, "Priority 4 - Schedule Maintenance", 8, "#008000"),
}
_EXTRA_PRIORITIES = ((7, "Priority 5 - Next Time", 10, "#808080"), (15, "Do Not Respond", 12, "#C0C0C0"))

SOURCE_NAMES: dict[Source, tuple[int, str]] = {
    Source.PHONE: (2, "Phone"),
    Source.EMAIL: (3, "Email"),
    Source.PORTAL: (4, "Portal"),
    Source.CHAT: (5, "Chat"),
    Source.WALK_IN: (6, "Walk In"),
    Source.MONITORING: (7, "Monitoring"),
    Source.OTHER: (8, "Other"),
}
_LEVEL = {Level.HIGH: "High", Level.MEDIUM: "Medium", Level.LOW: "Low"}
_TYPE_NAMES = {
    "incident": "Incident",
    "service_request": "Service Request",
    "problem": "Problem",
    "change": "Change",
    "alert": "Alert",
}
_SLA_HOURS = {Priority.P1: (1, 4), Priority.P2: (2, 8), Priority.P3: (4, 24), Priority.P4: (8, 72)}

API_MEMBER_ID = 199
API_MEMBER = "psabridge"
"""The API member the sandbox credentials belong to (``createdBy``/``updatedBy`` of our writes)."""


def stamp(when: datetime) -> str:
    """ConnectWise's datetime format: UTC, whole seconds, ``Z``."""
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return when.isoformat()[:19] + "Z"


def _ref(kind: str, path: str, id: int, **fields: Any) -> dict[str, Any]:
    return {"id": id, **fields, "_info": {f"{kind}_href": f"{HREF_BASE}/{path}/{id}"}}


@dataclass
class Catalog:
    """The instance's reference data, built from the seed world, and the seed -> native conversions."""

    world: World
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)  # tenant key -> company record
    boards: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # board id -> statuses
    priorities: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # identifier -> member reference
    types: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)  # (board id, name) -> reference
    subtypes: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    items: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)

    _refs: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict, repr=False)

    def ref(self, kind: str, path: str, id: int, **fields: Any) -> dict[str, Any]:
        """A reference, shared between records (100,000 tickets hold a few thousand distinct ones): never mutate it."""
        key = (kind, path, id, *fields.items())
        found = self._refs.get(key)
        if found is None:
            found = self._refs[key] = _ref(kind, path, id, **fields)
        return found

    def __post_init__(self) -> None:
        for index, tenant in enumerate(self.world.tenants):
            company_id = 250 + index
            self.companies[tenant.key] = {
                "id": company_id,
                "identifier": tenant.identifier,
                "name": tenant.name,
                "sites": {name: 1000 + 10 * index + n for n, name in enumerate(tenant.sites)},
            }
        # Boards: the MSP's tiered boards and the per-client boards psabridge mirrors into (never the clients' own
        # hand-off queues, which live in their ITSMs). Ids 1.. in world order.
        names = [q.name for q in self.world.queues if q.role != "client_handoff"]
        for board_id, name in enumerate(names, start=1):
            self.boards[board_id] = {
                "id": board_id,
                "name": name,
                "locationId": 2,
                "businessUnitId": 10,
                "inactive": False,
                "_info": {"dateEntered": "2019-03-01T00:00:00Z", "updatedBy": "zadmin"},
            }
            statuses = []
            for order, (status, label) in enumerate(STATUS_NAMES.items()):
                statuses.append(
                    {
                        "id": 100 * board_id + order + 1,  # per board: "New" is 101 on board 1, 201 on board 2
                        "name": label,
                        "boardId": board_id,
                        "sortOrder": order,
                        "displayOnBoard": status not in _CLOSED_STATUSES,
                        "inactive": False,
                        "closedStatus": status in _CLOSED_STATUSES,
                        "timeEntryNotAllowed": status in _CLOSED_STATUSES,
                        "defaultFlag": status is Status.NEW,
                        "escalationStatus": _ESCALATION[status],
                    }
                )
            self.statuses[board_id] = statuses
        for number, name, sort, color in sorted([*PRIORITY_NAMES.values(), *_EXTRA_PRIORITIES], key=lambda p: p[2]):
            self.priorities.append(
                {
                    "id": number,
                    "name": name,
                    "color": color,
                    "sortOrder": sort,
                    "defaultFlag": number == PRIORITY_NAMES[Priority.P3][0],
                    "imageLink": f"{HREF_BASE}/service/priorities/{number}/image?lm=2019-03-01T00:00:00Z",
                }
            )
        for number, name in SOURCE_NAMES.values():
            self.sources.append({"id": number, "name": name, "defaultFlag": name == "Phone"})
        self.priority_by_id = {p["id"]: p for p in self.priorities}
        self.source_by_id = {s["id"]: s for s in self.sources}
        for tech in self.world.technicians:
            self.members[tech.identifier] = _ref(
                "member", "system/members", 150 + tech.id, identifier=tech.identifier, name=tech.name
            )
        self.members[API_MEMBER] = _ref(
            "member", "system/members", API_MEMBER_ID, identifier=API_MEMBER, name="psabridge Integration"
        )

    # --- lookups -------------------------------------------------------------------------------------------------

    def board_named(self, name: str) -> dict[str, Any]:
        """The board with this name (KeyError if none)."""
        for board in self.boards.values():
            if board["name"] == name:
                return board
        raise KeyError(name)

    def board_ref(self, board_id: int) -> dict[str, Any]:
        """A board reference."""
        return self.ref("board", "service/boards", board_id, name=self.boards[board_id]["name"])

    def status_ref(self, board_id: int, status: dict[str, Any]) -> dict[str, Any]:
        """A status reference (its href names its board)."""
        return self.ref("status", f"service/boards/{board_id}/statuses", status["id"], name=status["name"])

    def status_of(self, board_id: int, status_id: int) -> dict[str, Any] | None:
        """The status record with this id on this board, or None (ids of other boards do not count)."""
        for status in self.statuses.get(board_id, ()):
            if status["id"] == status_id:
                return status
        return None

    def status_named(self, board_id: int, name: str) -> dict[str, Any] | None:
        """The status with this name (case-insensitive) on this board, or None."""
        for status in self.statuses.get(board_id, ()):
            if status["name"].casefold() == name.casefold():
                return status
        return None

    def priority_ref(self, priority: dict[str, Any]) -> dict[str, Any]:
        """A priority reference: id, name and sort, with its href and image href."""
        key = ("priority", priority["id"])
        found = self._refs.get(key)
        if found is None:
            found = self._refs[key] = self._priority_ref(priority)
        return found

    def _priority_ref(self, priority: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": priority["id"],
            "name": priority["name"],
            "sort": priority["sortOrder"],
            "_info": {
                "priority_href": f"{HREF_BASE}/service/priorities/{priority['id']}",
                "image_href": priority["imageLink"],
            },
        }

    def source_ref(self, source: dict[str, Any]) -> dict[str, Any]:
        """A source reference."""
        return self.ref("source", "service/sources", source["id"], name=source["name"])

    def company_ref(self, company: dict[str, Any]) -> dict[str, Any]:
        """A company reference: id, identifier and name."""
        return self.ref(
            "company", "company/companies", company["id"], identifier=company["identifier"], name=company["name"]
        )

    def company_by(self, *, id: int | None = None, identifier: str | None = None) -> dict[str, Any] | None:
        """The company with this id or identifier (case-insensitive), or None."""
        for company in self.companies.values():
            if company["id"] == id or (
                identifier is not None and company["identifier"].casefold() == identifier.casefold()
            ):
                return company
        return None

    def member_by(self, *, id: int | None = None, identifier: str | None = None) -> dict[str, Any] | None:
        """The member reference with this id or identifier, or None."""
        for member in self.members.values():
            if member["id"] == id or (
                identifier is not None and member["identifier"].casefold() == identifier.casefold()
            ):
                return member
        return None

    def _named_ref(
        self, table: dict[tuple[int, str], dict[str, Any]], kind: str, board_id: int, name: str, base: int
    ) -> dict[str, Any]:
        key = (board_id, name)
        found = table.get(key)
        if found is None:
            number = base + len(table) + 1
            found = table[key] = self.ref(kind, f"service/boards/{board_id}/{kind}s", number, name=name)
        return found

    # --- seed -> native --------------------------------------------------------------------------------------------

    def ticket(self, seed: SeedTicket) -> dict[str, Any]:
        """A seed ticket as ConnectWise stores it (without ``id`` and ``_info``, which the table row holds)."""
        board = self.board_named(seed.queue.name)
        board_id = board["id"]
        status = self.status_named(board_id, STATUS_NAMES[seed.status])
        assert status is not None
        company = self.companies[seed.tenant.key]
        priority = self.priority_by_id[PRIORITY_NAMES[seed.priority][0]]
        source = self.source_by_id[SOURCE_NAMES[seed.source][0]]
        requester = seed.requester
        record: dict[str, Any] = {
            "summary": seed.summary[:100],
            "recordType": "ServiceTicket",
            "board": self.board_ref(board_id),
            "status": self.status_ref(board_id, status),
            "company": self.company_ref(company),
            "site": self.ref(
                "site",
                f"company/companies/{company['id']}/sites",
                company["sites"][requester.site],
                name=requester.site,
            ),
            "siteName": requester.site,
            "contact": self.ref("contact", "company/contacts", requester.id, name=requester.name),
            "contactName": requester.name,
            "contactPhoneNumber": requester.phone,
            "contactEmailAddress": requester.email,
            # Type / Subtype / Item: ConnectWise's three-level categorisation, configured per board.
            "type": self._named_ref(self.types, "type", board_id, _TYPE_NAMES[seed.kind.value], 0),
            "subType": self._named_ref(self.subtypes, "subtype", board_id, seed.category, 1000),
            "item": self._named_ref(self.items, "item", board_id, seed.subcategory, 2000),
            "team": self.ref("team", f"service/boards/{board_id}/teams", 10 + seed.tier, name=f"Tier {seed.tier}"),
            "priority": self.priority_ref(priority),
            "source": self.source_ref(source),
            "severity": _LEVEL[seed.urgency],  # ConnectWise calls urgency "severity"
            "impact": _LEVEL[seed.impact],
            "allowAllClientsPortalView": False,
            "customerUpdatedFlag": any(n.by_requester for n in seed.notes[-1:]),
            "automaticEmailContactFlag": False,
            "automaticEmailResourceFlag": False,
            "automaticEmailCcFlag": False,
            "closedFlag": status["closedStatus"],
            "approved": True,
            "estimatedExpenseCost": 0.0,
            "estimatedTimeCost": 0.0,
            "billTime": "Billable",
            "billExpenses": "Billable",
            "billProducts": "Billable",
            "location": {"id": 2, "name": "Head Office"},
            "department": {"id": 10, "identifier": "Services", "name": "Services"},
            "sla": {"id": 1, "name": "Standard SLA", "_info": {"sla_href": f"{HREF_BASE}/service/SLAs/1"}},
            "requestForChangeFlag": False,
            "escalationLevel": 0,
            "hasChildTicket": False,
            "hasMergedChildTicketFlag": False,
            "customFields": [],
            "_enteredBy": seed.assignee.identifier if seed.assignee else "zadmin",
            "_updatedBy": self._updated_by(seed),
        }
        respond_h, resolve_h = _SLA_HOURS[seed.priority]
        record["respondMinutes"] = 0
        record["resPlanMinutes"] = 0
        record["resolveMinutes"] = 0
        record["respondHours"] = respond_h
        record["resolutionHours"] = resolve_h
        responded = next((n.created_at for n in seed.notes if not n.by_requester), None)
        if responded is not None:
            record["dateResponded"] = stamp(responded)
        if seed.resolved_at is not None:
            record["dateResolved"] = stamp(seed.resolved_at)
        record["isInSla"] = responded is None or (responded - seed.created_at).total_seconds() <= respond_h * 3600
        record["slaStatus"] = "Resolved" if seed.resolved_at else "Respond by" if responded is None else "Resolve by"
        if seed.closed_at is not None:
            record["closedDate"] = stamp(seed.closed_at)
            record["closedBy"] = seed.assignee.identifier if seed.assignee else "zadmin"
        if seed.assignee is not None:
            record["owner"] = self.members[seed.assignee.identifier]
            record["resources"] = seed.assignee.identifier
        record["actualHours"] = round(sum(e.minutes for e in seed.time_entries) / 60, 2)
        return record

    def _updated_by(self, seed: SeedTicket) -> str:
        for note in reversed(seed.notes):
            if not note.by_requester:
                return note.author_ref
        return seed.assignee.identifier if seed.assignee else "zadmin"

    def description_note(self, seed: SeedTicket, note_id: int, ticket_id: int) -> dict[str, Any]:
        """The Discussion note holding the ticket's initial description, as the requester wrote it."""
        requester = seed.requester
        created = stamp(seed.created_at)
        return {
            "id": note_id,
            "ticketId": ticket_id,
            "text": seed.description,
            "detailDescriptionFlag": True,
            "internalAnalysisFlag": False,
            "resolutionFlag": False,
            "issueFlag": False,
            "contact": self.ref("contact", "company/contacts", requester.id, name=requester.name),
            "customerUpdatedFlag": False,
            "processNotifications": False,
            "dateCreated": created,
            "createdBy": requester.email[:15] if seed.source is Source.EMAIL else "Portal",
            "internalFlag": False,
            "externalFlag": True,
            "_info": {"lastUpdated": created, "updatedBy": "zadmin"},
        }

    def note(self, seed: SeedTicket, note: SeedNote, note_id: int, ticket_id: int) -> dict[str, Any]:
        """A seed note as a ServiceNote.

        Internal -> internalAnalysisFlag, resolution -> resolutionFlag, public -> detailDescriptionFlag (ConnectWise's
        "Discussion", which the customer sees).
        """
        created = stamp(note.created_at)
        record: dict[str, Any] = {
            "id": note_id,
            "ticketId": ticket_id,
            "text": note.text,
            "detailDescriptionFlag": note.kind is NoteKind.PUBLIC,
            "internalAnalysisFlag": note.kind is NoteKind.INTERNAL,
            "resolutionFlag": note.kind is NoteKind.RESOLUTION,
            "issueFlag": False,
            "customerUpdatedFlag": note.by_requester,
            "processNotifications": False,
            "dateCreated": created,
            "createdBy": note.author_ref[:15] if not note.by_requester else "Portal",
            "internalFlag": note.kind is NoteKind.INTERNAL,
            "externalFlag": note.kind is not NoteKind.INTERNAL,
            "_info": {"lastUpdated": created, "updatedBy": note.author_ref[:15]},
        }
        if note.by_requester:
            requester = seed.requester
            record["contact"] = self.ref("contact", "company/contacts", requester.id, name=requester.name)
        else:
            member = self.members.get(note.author_ref)
            if member is not None:
                record["member"] = member
        return record

    def notes(self, seed: SeedTicket, first_id: int, ticket_id: int) -> list[dict[str, Any]]:
        """Every note of a seed ticket: the description first, then its timeline."""
        found = [self.description_note(seed, first_id, ticket_id)]
        found.extend(self.note(seed, n, first_id + 1 + i, ticket_id) for i, n in enumerate(seed.notes))
        return found

    def time_entry(
        self, seed: SeedTicket, entry: SeedTimeEntry, entry_id: int, ticket_id: int, summary: str
    ) -> dict[str, Any]:
        """A seed time entry as a TimeEntry charged to the ticket."""
        company = self.companies[seed.tenant.key]
        ended = entry.started_at.timestamp() + entry.minutes * 60
        return self.time_record(
            entry_id=entry_id,
            company=company,
            ticket_id=ticket_id,
            summary=summary,
            member=self.members[entry.technician.identifier],
            started=entry.started_at,
            ended=datetime.fromtimestamp(ended, entry.started_at.tzinfo),
            hours=entry.minutes / 60,
            notes=entry.note,
            billable=entry.billable,
            entered_by=entry.technician.identifier,
        )

    def time_record(
        self,
        *,
        entry_id: int,
        company: dict[str, Any],
        ticket_id: int,
        summary: str,
        member: dict[str, Any],
        started: datetime,
        ended: datetime | None,
        hours: float,
        notes: str,
        billable: bool,
        entered_by: str,
        internal_notes: str | None = None,
    ) -> dict[str, Any]:
        """A TimeEntry record (pyconnectwise TimeEntry model; ``chargeToType`` ServiceTicket)."""
        record: dict[str, Any] = {
            "id": entry_id,
            "company": self.company_ref(company),
            "chargeToId": ticket_id,
            "chargeToType": "ServiceTicket",
            "member": member,
            "locationId": 2,
            "businessUnitId": 10,
            "workType": {"id": 1, "name": "Regular"},
            "workRole": {"id": 3, "name": "Technician"},
            "timeStart": stamp(started),
            "hoursDeduct": 0.0,
            "actualHours": round(hours, 2),
            "billableOption": "Billable" if billable else "DoNotBill",
            "notes": notes,
            "addToDetailDescriptionFlag": False,
            "addToInternalAnalysisFlag": False,
            "addToResolutionFlag": False,
            "emailResourceFlag": False,
            "emailContactFlag": False,
            "emailCcFlag": False,
            "hoursBilled": round(hours, 2) if billable else 0.0,
            "enteredBy": entered_by,
            "dateEntered": stamp(started),
            "ticket": {
                "id": ticket_id,
                "summary": summary,
                "_info": {"ticket_href": f"{HREF_BASE}/service/tickets/{ticket_id}"},
            },
            "status": "Open",
        }
        if ended is not None:
            record["timeEnd"] = stamp(ended)
        if internal_notes:
            record["internalNotes"] = internal_notes
        return record

    def configurations(self, seed: SeedTicket) -> list[dict[str, Any]]:
        """The configurations (assets) attached to a seed ticket."""
        asset = seed.asset
        if asset is None:
            return []
        return [
            {
                "id": asset.id,
                "deviceIdentifier": asset.name,
                "name": asset.name,
                "type": {"id": _CONFIG_TYPES.get(asset.kind, 99), "name": asset.kind.replace("_", " ").title()},
                "serialNumber": asset.serial,
                "modelNumber": asset.model,
                "_info": {"configuration_href": f"{HREF_BASE}/company/configurations/{asset.id}"},
            }
        ]


_CONFIG_TYPES = {
    "laptop": 1,
    "desktop": 2,
    "server": 3,
    "printer": 4,
    "firewall": 5,
    "switch": 6,
    "access_point": 7,
    "vpn_gateway": 8,
    "cloud_service": 9,
}
