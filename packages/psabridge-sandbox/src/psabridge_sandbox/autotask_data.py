"""Autotask sandbox data: the partner's picklists, companies, resources and contacts, and seed tickets as records.

Field names and types follow the published REST description (TicketModel, TicketNoteModel, TimeEntryModel in
specs/autotask.json). Picklist values are tenant-specific integers (VENDOR-APIS.md 2.4): the ones below are the
out-of-the-box values we believe in (status 1 New and 5 Complete are system values; ticketType 1-5 per n8nAT
``helpers/ticket-type.ts``) plus a few a real partner would have added (status 21 Cancelled, the queues). Records
hold datetimes as aware ``datetime`` objects; ``render`` writes them as Autotask does, UTC with milliseconds and Z.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psabridge_sandbox.credentials import AT_USERNAME
from psabridge_sandbox.scenarios import TEMPLATES
from psabridge_sandbox.tickets import SeedNote, SeedTicket, SeedTimeEntry
from psabridge_sandbox.vocabulary import Kind, NoteKind, Priority, Source, Status
from psabridge_sandbox.world import World

__all__ = [
    "API_RESOURCE_ID",
    "COMPANY_IDS",
    "NOTE_FIELDS",
    "READ_ONLY",
    "TICKET_FIELDS",
    "TIME_ENTRY_FIELDS",
    "Directory",
    "PickValue",
    "Picklist",
    "SeedRecords",
    "authors",
    "build_directory",
    "field_info",
    "format_time",
    "render",
    "seed_records",
]

# --- the record shapes (property order of the published description) -----------------------------------------------

TICKET_FIELDS: tuple[str, ...] = (
    "id", "apiVendorID", "assignedResourceID", "assignedResourceRoleID", "billingCodeID", "changeApprovalBoard",
    "changeApprovalStatus", "changeApprovalType", "changeInfoField1", "changeInfoField2", "changeInfoField3",
    "changeInfoField4", "changeInfoField5", "companyID", "companyLocationID", "completedByResourceID", "completedDate",
    "configurationItemID", "contactID", "contractID", "contractServiceBundleID", "contractServiceID", "createDate",
    "createdByContactID", "creatorResourceID", "creatorType", "currentServiceThermometerRating", "description",
    "dueDateTime", "estimatedHours", "externalID", "firstResponseAssignedResourceID", "firstResponseDateTime",
    "firstResponseDueDateTime", "firstResponseInitiatingResourceID", "hoursToBeScheduled",
    "impersonatorCreatorResourceID", "isAssignedToComanaged", "issueType", "isVisibleToComanaged", "lastActivityDate",
    "lastActivityPersonType", "lastActivityResourceID", "lastCustomerNotificationDateTime",
    "lastCustomerVisibleActivityDateTime", "lastTrackedModificationDateTime", "monitorID", "monitorTypeID",
    "opportunityID", "organizationalLevelAssociationID", "previousServiceThermometerRating", "priority",
    "problemTicketId", "projectID", "purchaseOrderNumber", "queueID", "resolution", "resolutionPlanDateTime",
    "resolutionPlanDueDateTime", "resolvedDateTime", "resolvedDueDateTime", "rmaStatus", "rmaType", "rmmAlertID",
    "serviceLevelAgreementHasBeenMet", "serviceLevelAgreementID", "serviceLevelAgreementPausedNextEventHours",
    "serviceThermometerTemperature", "source", "status", "subIssueType", "ticketCategory", "ticketNumber",
    "ticketType", "title", "userDefinedFields",
)  # fmt: skip
NOTE_FIELDS: tuple[str, ...] = (
    "id", "createDateTime", "createdByContactID", "creatorResourceID", "description", "impersonatorCreatorResourceID",
    "impersonatorUpdaterResourceID", "lastActivityDate", "noteType", "publish", "ticketID", "title",
)  # fmt: skip
TIME_ENTRY_FIELDS: tuple[str, ...] = (
    "id", "billingApprovalDateTime", "billingApprovalLevelMostRecent", "billingApprovalResourceID", "billingCodeID",
    "contractID", "contractServiceBundleID", "contractServiceID", "createDateTime", "creatorUserID", "dateWorked",
    "endDateTime", "hoursToBill", "hoursWorked", "impersonatorCreatorResourceID", "impersonatorUpdaterResourceID",
    "internalBillingCodeID", "internalNotes", "isInternalNotesVisibleToComanaged", "isNonBillable",
    "lastModifiedDateTime", "lastModifiedUserID", "offsetHours", "resourceID", "roleID", "showOnInvoice",
    "startDateTime", "summaryNotes", "taskID", "ticketID", "timeEntryType",
)  # fmt: skip

DATETIME_FIELDS = frozenset(
    {
        "completedDate", "createDate", "dueDateTime", "firstResponseDateTime", "firstResponseDueDateTime",
        "lastActivityDate", "lastCustomerNotificationDateTime", "lastCustomerVisibleActivityDateTime",
        "lastTrackedModificationDateTime", "resolutionPlanDateTime", "resolutionPlanDueDateTime", "resolvedDateTime",
        "resolvedDueDateTime", "createDateTime", "billingApprovalDateTime", "dateWorked", "endDateTime",
        "lastModifiedDateTime", "startDateTime", "lastModifiedDate", "hireDate",
    }
)  # fmt: skip
STRING_FIELDS = frozenset(
    {
        "changeInfoField1", "changeInfoField2", "changeInfoField3", "changeInfoField4", "changeInfoField5",
        "description", "externalID", "purchaseOrderNumber", "resolution", "rmmAlertID", "ticketNumber", "title",
        "internalNotes", "summaryNotes", "userName", "email", "firstName", "lastName", "emailAddress", "phone",
        "companyName", "companyNumber",
    }
)  # fmt: skip
BOOLEAN_FIELDS = frozenset(
    {
        "isAssignedToComanaged", "isVisibleToComanaged", "serviceLevelAgreementHasBeenMet", "isNonBillable",
        "isInternalNotesVisibleToComanaged", "showOnInvoice", "isActive",
    }
)  # fmt: skip
DOUBLE_FIELDS = frozenset(
    {
        "estimatedHours", "hoursToBeScheduled", "serviceLevelAgreementPausedNextEventHours", "hoursToBill",
        "hoursWorked", "offsetHours",
    }
)  # fmt: skip


def format_time(value: datetime) -> str:
    """An Autotask REST datetime: UTC, milliseconds, ``Z`` (``2026-11-20T14:57:50.000Z``)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render(data: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A record as the API returns it: every field of the model, in order, unset ones null, datetimes as text."""
    out: dict[str, Any] = {}
    for name in fields:
        value = data.get(name)
        if isinstance(value, datetime):
            value = format_time(value)
        elif name == "userDefinedFields":
            value = [dict(udf) for udf in value or ()]
        out[name] = value
    return out


# --- picklists ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PickValue:
    """One picklist entry (PickListValue in the published description: value and parentValue are strings there)."""

    value: int
    label: str
    default: bool = False
    system: bool = False
    active: bool = True
    parent: int | None = None

    def as_json(self, sort: int) -> dict[str, Any]:
        """The entry as ``entityInformation/fields`` lists it."""
        return {
            "value": str(self.value),
            "label": self.label,
            "isDefaultValue": self.default,
            "sortOrder": sort,
            "parentValue": "" if self.parent is None else str(self.parent),
            "isActive": self.active,
            "isSystem": self.system,
        }


@dataclass(frozen=True)
class Picklist:
    """A picklist field: its entries and, for a child picklist, the field its ``parent`` values refer to."""

    values: tuple[PickValue, ...]
    parent_field: str | None = None

    def has(self, value: int, parent: int | None = None) -> bool:
        """Whether ``value`` is an active entry (under ``parent``, for a child picklist)."""
        return any(
            v.value == value and v.active and (self.parent_field is None or parent is None or v.parent == parent)
            for v in self.values
        )

    def label(self, value: int) -> str | None:
        """The label of a value."""
        return next((v.label for v in self.values if v.value == value), None)


def _plain(*entries: tuple[int, str], default: int | None = None, system: Iterable[int] = ()) -> Picklist:
    fixed = set(system)
    return Picklist(tuple(PickValue(v, label, v == default, v in fixed) for v, label in entries))


STATUS = _plain(
    (1, "New"),
    (5, "Complete"),
    (7, "Waiting Customer"),
    (8, "In Progress"),
    (9, "Waiting Materials"),
    (10, "Scheduled"),
    (11, "Escalate"),
    (12, "Waiting Vendor"),
    (13, "Waiting Approval"),
    (21, "Cancelled"),  # added by the partner: Autotask ships no cancelled status
    default=1,
    system=(1, 5),
)
STATUS_COMPLETE = 5
PRIORITY = _plain((1, "High"), (2, "Medium"), (3, "Low"), (4, "Critical"), default=2)
SOURCE = _plain(
    (-2, "Insourced"),
    (-1, "Client Portal"),
    (1, "Other"),
    (2, "Phone"),
    (3, "Voice Mail"),
    (4, "Email"),
    (6, "Chat"),
    (8, "In Person"),
    (11, "Monitoring Alert"),
    default=2,
    system=(-2, -1),
)
TICKET_TYPE = _plain(
    (1, "Service Request"), (2, "Incident"), (3, "Problem"), (4, "Change Request"), (5, "Alert"), default=1
)
TICKET_CATEGORY = _plain((2, "AEM Alert"), (3, "Standard"), default=3)
CREATOR_TYPE = _plain((1, "Resource"), (2, "Contact"), system=(1, 2))
QUEUES: dict[str, int] = {
    "Service Desk": 29683482,
    "Networking": 29683490,
    "Messaging/M365": 29683491,
    "Infrastructure": 29683492,
    "Security": 29683493,
}
QUEUE = Picklist(tuple(PickValue(queue_id, name, name == "Service Desk") for name, queue_id in QUEUES.items()))
SLA = _plain((1, "Gold 24x7"), (2, "Silver 12x5"), (3, "Bronze 8x5"))
SLA_OF_TIER = {"gold": 1, "silver": 2, "bronze": 3}
# TicketNotes: noteType and publish [UNCONFIRMED labels, VENDOR-APIS.md 2.5; sample bodies use 1/1].
NOTE_TYPE = _plain((1, "Task Summary"), (2, "Task Detail"), (3, "Task Notes"), (13, "Workflow Rule Action Note"))
PUBLISH = _plain((1, "All Autotask Users"), (2, "Internal Only"), (3, "Internal & Co-Managed"), default=1)
PUBLISH_OF = {NoteKind.PUBLIC: 1, NoteKind.INTERNAL: 2}


def _issue_types() -> tuple[Picklist, Picklist]:
    """Issue types and their sub-issue types (a child picklist of issueType), from the scenario categories."""
    categories = sorted({(t.category, t.subcategory) for t in TEMPLATES})
    issues: dict[str, int] = {}
    subs: list[PickValue] = []
    for category, subcategory in categories:
        parent = issues.setdefault(category, 10 + len(issues))
        subs.append(PickValue(200 + len(subs), subcategory, parent=parent))
    return Picklist(tuple(PickValue(v, label) for label, v in issues.items())), Picklist(tuple(subs), "issueType")


ISSUE_TYPE, SUB_ISSUE_TYPE = _issue_types()
TICKET_PICKLISTS: dict[str, Picklist] = {
    "status": STATUS,
    "priority": PRIORITY,
    "queueID": QUEUE,
    "source": SOURCE,
    "ticketType": TICKET_TYPE,
    "ticketCategory": TICKET_CATEGORY,
    "issueType": ISSUE_TYPE,
    "subIssueType": SUB_ISSUE_TYPE,
    "serviceLevelAgreementID": SLA,
    "creatorType": CREATOR_TYPE,
}
NOTE_PICKLISTS: dict[str, Picklist] = {"noteType": NOTE_TYPE, "publish": PUBLISH}

_STATUS_OF = {
    Status.NEW: 1,
    Status.ASSIGNED: 10,
    Status.IN_PROGRESS: 8,
    Status.ON_HOLD: 7,
    Status.RESOLVED: 5,  # no resolved status of its own: Complete
    Status.CLOSED: 5,
    Status.CANCELLED: 21,
}
_PRIORITY_OF = {Priority.P1: 4, Priority.P2: 1, Priority.P3: 2, Priority.P4: 3}
_SOURCE_OF = {
    Source.PHONE: 2,
    Source.EMAIL: 4,
    Source.PORTAL: -1,
    Source.CHAT: 6,
    Source.WALK_IN: 8,
    Source.MONITORING: 11,
    Source.OTHER: 1,
}
_TYPE_OF = {Kind.SERVICE_REQUEST: 1, Kind.INCIDENT: 2, Kind.PROBLEM: 3, Kind.CHANGE: 4, Kind.ALERT: 5}
_ISSUE_OF = {v.label: v.value for v in ISSUE_TYPE.values}
_SUB_OF = {(ISSUE_TYPE.label(v.parent or 0), v.label): v.value for v in SUB_ISSUE_TYPE.values}
# Response and resolution targets per priority, in hours (the partner's SLA; the checklist's matrix).
_RESPOND_HOURS = {Priority.P1: 1, Priority.P2: 2, Priority.P3: 4, Priority.P4: 8}
_RESOLVE_HOURS = {Priority.P1: 4, Priority.P2: 8, Priority.P3: 24, Priority.P4: 72}


# --- companies, resources, contacts ---------------------------------------------------------------------------------

OWNER_COMPANY_ID = 0
COMPANY_IDS: dict[str, int] = {"initech": 1001, "umbrella": 1002}
"""Tenant key -> Autotask company id (config/psabridge.yaml maps 0 and 1001 to initech, 1002 to umbrella)."""
LINKED_COMPANY_IDS: dict[str, int] = {"globex": 1003}
"""Clients the partner serves whose tickets start in another system (Globex's Freshservice): a company with no seed
tickets, for a link that mirrors them into Autotask (the chaos run maps 1003 to globex)."""
API_RESOURCE_ID = 29682999
"""The resource behind the API user: every change made through the API is made as it (or as the impersonated one)."""
ROLES: dict[int, tuple[int, str]] = {1: (29683394, "Help Desk"), 2: (29683395, "Engineer"), 3: (29683396, "Architect")}
BILLING_CODE_ID = 29682801  # "Remote Support" work type
_RESOURCE_BASE = 29682900
_CONTACT_BASE = 30682900
_CI_BASE = 7000


@dataclass
class Directory:
    """Companies, resources (technicians and the API user) and contacts, as the Autotask entities list them."""

    companies: dict[int, dict[str, Any]] = field(default_factory=dict)
    resources: dict[int, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)


def build_directory(world: World, tenants: Sequence[str], anchor: datetime) -> Directory:
    """The partner's companies (0 is the owner company), its resources and its clients' contacts."""
    since = anchor - timedelta(days=365)
    directory = Directory()
    directory.companies[OWNER_COMPANY_ID] = _company(OWNER_COMPANY_ID, "Initech IT (co-managed)", "0", 2, since)
    for key in tenants:
        tenant = world.tenant(key)
        company_id = COMPANY_IDS[key]
        directory.companies[company_id] = _company(company_id, tenant.name, tenant.identifier, 1, since)
        for contact in world.contacts_of(key):
            contact_id = _CONTACT_BASE + contact.id
            directory.contacts[contact_id] = {
                "id": contact_id,
                "companyID": company_id,
                "firstName": contact.first_name,
                "lastName": contact.last_name,
                "emailAddress": contact.email,
                "phone": contact.phone,
                "title": contact.title,
                "isActive": 1,
                "createDate": since,
                "lastActivityDate": since,
            }
    for key, company_id in LINKED_COMPANY_IDS.items():
        tenant = world.tenant(key)
        directory.companies[company_id] = _company(company_id, tenant.name, tenant.identifier, 1, since)
    for tech in world.technicians:
        resource_id = _RESOURCE_BASE + tech.id
        role = ROLES[tech.tier][0]
        directory.resources[resource_id] = _resource(resource_id, tech.first_name, tech.last_name, tech.email, 1, role)
    directory.resources[API_RESOURCE_ID] = _resource(API_RESOURCE_ID, "psabridge", "API", AT_USERNAME, 2, ROLES[1][0])
    return directory


def _company(company_id: int, name: str, number: str, company_type: int, since: datetime) -> dict[str, Any]:
    # companyType 1 Customer, 2 Lead ... the owner company is its own type in Autotask; 2 stands in for it here.
    return {
        "id": company_id,
        "companyName": name,
        "companyNumber": number,
        "companyType": company_type,
        "isActive": True,
        "createDate": since,
        "lastActivityDate": since,
    }


def _resource(resource_id: int, first: str, last: str, email: str, license_type: int, role: int) -> dict[str, Any]:
    return {
        "id": resource_id,
        "firstName": first,
        "lastName": last,
        "email": email,
        "userName": email,
        "isActive": True,
        "licenseType": license_type,  # 2: API user (API-only license)
        "defaultServiceDeskRoleID": role,
        "resourceType": "Employee",
        "userType": 1,
    }


def resource_of(technician_id: int) -> int:
    """The resource id of a seed-world technician."""
    return _RESOURCE_BASE + technician_id


# --- seed tickets -> records ----------------------------------------------------------------------------------------

FIRST_TICKET_ID = 350000
FIRST_NOTE_ID = 880000
FIRST_TIME_ENTRY_ID = 55000


@dataclass
class SeedRecords:
    """One seed ticket as Autotask records: the ticket, its notes and its time entries (ids not yet given)."""

    ticket: dict[str, Any]
    notes: list[dict[str, Any]]
    time_entries: list[dict[str, Any]]
    created: datetime
    updated: datetime


def authors(world: World) -> dict[str, int]:
    """Technician identifier (how seed notes name their author) -> resource id."""
    return {tech.identifier: resource_of(tech.id) for tech in world.technicians}


def seed_records(seed: SeedTicket, ticket_id: int, number: str, authors: Mapping[str, int]) -> SeedRecords:
    """The Autotask records of one seed ticket (``number`` is its ``T20261120.0001`` ticket number)."""
    company_id = COMPANY_IDS[seed.tenant.key]
    contact_id = _CONTACT_BASE + seed.requester.id
    assignee = resource_of(seed.assignee.id) if seed.assignee else None
    created = seed.created_at
    respond_due = created + timedelta(hours=_RESPOND_HOURS[seed.priority])
    resolve_due = created + timedelta(hours=_RESOLVE_HOURS[seed.priority])
    status = _STATUS_OF[seed.status]
    first_public = next((n.created_at for n in seed.notes if n.kind is NoteKind.PUBLIC and not n.by_requester), None)
    resolution = next((n for n in seed.notes if n.kind is NoteKind.RESOLUTION), None)
    done_at = seed.closed_at or seed.resolved_at if status in (STATUS_COMPLETE, 21) else None
    worker = assignee or resource_of(1)
    ticket: dict[str, Any] = {
        "id": ticket_id,
        "ticketNumber": number,
        "title": seed.summary,
        "description": seed.description,
        "status": status,
        "priority": _PRIORITY_OF[seed.priority],
        "queueID": QUEUES.get(seed.queue.name, QUEUES["Service Desk"]),
        "companyID": company_id,
        "contactID": contact_id,
        "assignedResourceID": assignee,
        "assignedResourceRoleID": ROLES[seed.tier][0] if assignee else None,
        "configurationItemID": _CI_BASE + seed.asset.id if seed.asset else None,
        "issueType": _ISSUE_OF[seed.category],
        "subIssueType": _SUB_OF[seed.category, seed.subcategory],
        "ticketCategory": 3,
        "ticketType": _TYPE_OF[seed.kind],
        "source": _SOURCE_OF[seed.source],
        "createDate": created,
        "creatorType": 2 if seed.source in (Source.EMAIL, Source.PORTAL) else 1,
        "createdByContactID": contact_id if seed.source in (Source.EMAIL, Source.PORTAL) else None,
        "creatorResourceID": None if seed.source in (Source.EMAIL, Source.PORTAL) else resource_of(1),
        "dueDateTime": resolve_due,
        "firstResponseDueDateTime": respond_due,
        "firstResponseDateTime": first_public,
        "resolvedDueDateTime": resolve_due,
        "resolutionPlanDueDateTime": created + (resolve_due - created) / 2,
        "resolvedDateTime": seed.resolved_at,
        "completedDate": done_at,
        "completedByResourceID": worker if done_at else None,
        "resolution": resolution.text if resolution else None,
        "serviceLevelAgreementID": SLA_OF_TIER.get(seed.tenant.contract_tier),
        "serviceLevelAgreementHasBeenMet": (seed.resolved_at <= resolve_due if seed.resolved_at is not None else None),
        "lastActivityPersonType": 1,
        "lastActivityResourceID": worker,
        "lastTrackedModificationDateTime": seed.updated_at,
        "isVisibleToComanaged": True,
        "isAssignedToComanaged": False,
        "userDefinedFields": [{"name": "ExternalRef", "value": None}],
    }
    notes = [_note(ticket_id, n, contact_id, authors) for n in seed.notes if n.kind is not NoteKind.RESOLUTION]
    entries = [_time_entry(ticket_id, e) for e in seed.time_entries]
    return SeedRecords(ticket, notes, entries, created, seed.updated_at)


def _note(ticket_id: int, note: SeedNote, contact_id: int, authors: Mapping[str, int]) -> dict[str, Any]:
    title = note.text.splitlines()[0][:60] if note.text else "Note"
    return {
        "ticketID": ticket_id,
        "title": title,
        "description": note.text,
        "noteType": 1,
        "publish": PUBLISH_OF.get(note.kind, 2),
        "createDateTime": note.created_at,
        "lastActivityDate": note.created_at,
        "creatorResourceID": None if note.by_requester else authors.get(note.author_ref),
        "createdByContactID": contact_id if note.by_requester else None,
    }


def _time_entry(ticket_id: int, entry: SeedTimeEntry) -> dict[str, Any]:
    start = entry.started_at
    end = start + timedelta(minutes=entry.minutes)
    hours = round(entry.minutes / 60, 2)
    tier = entry.technician.tier
    return {
        "ticketID": ticket_id,
        "resourceID": resource_of(entry.technician.id),
        "roleID": ROLES[tier][0],
        "billingCodeID": BILLING_CODE_ID,
        "dateWorked": datetime(start.year, start.month, start.day, tzinfo=UTC),
        "startDateTime": start,
        "endDateTime": end,
        "hoursWorked": hours,
        "hoursToBill": hours if entry.billable else 0.0,
        "offsetHours": 0.0,
        "summaryNotes": entry.note,
        "internalNotes": "",
        "isNonBillable": not entry.billable,
        "showOnInvoice": entry.billable,
        "timeEntryType": 2,
        "createDateTime": end,
        "lastModifiedDateTime": end,
    }


# --- entityInformation/fields ---------------------------------------------------------------------------------------

_REFERENCES = {
    "companyID": "Company",
    "companyLocationID": "CompanyLocation",
    "contactID": "Contact",
    "createdByContactID": "Contact",
    "assignedResourceID": "Resource",
    "creatorResourceID": "Resource",
    "completedByResourceID": "Resource",
    "lastActivityResourceID": "Resource",
    "firstResponseAssignedResourceID": "Resource",
    "firstResponseInitiatingResourceID": "Resource",
    "impersonatorCreatorResourceID": "Resource",
    "impersonatorUpdaterResourceID": "Resource",
    "resourceID": "Resource",
    "assignedResourceRoleID": "Role",
    "roleID": "Role",
    "configurationItemID": "ConfigurationItem",
    "contractID": "Contract",
    "projectID": "Project",
    "problemTicketId": "Ticket",
    "ticketID": "Ticket",
    "billingCodeID": "BillingCode",
    "opportunityID": "Opportunity",
}
READ_ONLY = frozenset(
    {
        "id", "ticketNumber", "createDate", "creatorResourceID", "creatorType", "createdByContactID",
        "lastActivityDate", "lastActivityPersonType", "lastActivityResourceID", "lastTrackedModificationDateTime",
        "completedByResourceID", "firstResponseDateTime", "resolvedDateTime", "resolutionPlanDateTime",
        "serviceLevelAgreementHasBeenMet", "impersonatorCreatorResourceID", "createDateTime",
        "lastModifiedDateTime", "lastCustomerNotificationDateTime", "lastCustomerVisibleActivityDateTime",
    }
)  # fmt: skip
_REQUIRED = {
    "Ticket": frozenset({"companyID", "title", "status", "priority"}),
    "TicketNote": frozenset({"ticketID", "title", "description", "noteType", "publish"}),
}
# Fields a webhook can subscribe to (isSupportedWebhookField), numbered as the FieldID of TicketWebhookFields.
_TICKET_WEBHOOK_FIELDS = (
    "ticketNumber", "title", "status", "priority", "queueID", "assignedResourceID", "companyID", "contactID",
    "description", "issueType", "subIssueType", "ticketType", "source", "dueDateTime", "completedDate", "resolution",
    "configurationItemID", "externalID",
)  # fmt: skip
_NOTE_WEBHOOK_FIELDS = ("ticketID", "title", "description", "noteType", "publish", "creatorResourceID")
WEBHOOK_FIELD_IDS: dict[str, dict[str, int]] = {
    "Ticket": {name: number for number, name in enumerate(_TICKET_WEBHOOK_FIELDS, start=1)},
    "TicketNote": {name: number for number, name in enumerate(_NOTE_WEBHOOK_FIELDS, start=1)},
}


def data_type(name: str) -> str:
    """The ``dataType`` entityInformation gives a field."""
    if name == "id":
        return "long"
    if name in DATETIME_FIELDS:
        return "datetime"
    if name in STRING_FIELDS:
        return "string"
    if name in BOOLEAN_FIELDS:
        return "boolean"
    if name in DOUBLE_FIELDS:
        return "double"
    return "integer"


def field_info(entity: str, fields: Sequence[str], picklists: Mapping[str, Picklist]) -> list[dict[str, Any]]:
    """``GET /<Entity>/entityInformation/fields``: FieldInformationModel per field (UDFs are listed elsewhere)."""
    out: list[dict[str, Any]] = []
    webhook = WEBHOOK_FIELD_IDS.get(entity, {})
    for name in fields:
        if name == "userDefinedFields":
            continue
        picklist = picklists.get(name)
        kind = data_type(name)
        out.append(
            {
                "name": name,
                "dataType": kind,
                "length": 8000 if name in ("description", "resolution") else 255 if kind == "string" else 0,
                "isRequired": name in _REQUIRED.get(entity, frozenset()),
                "isReadOnly": name in READ_ONLY,
                "isQueryable": True,
                "isReference": name in _REFERENCES,
                "referenceEntityType": _REFERENCES.get(name, ""),
                "isPickList": picklist is not None,
                "picklistValues": (
                    [v.as_json(i) for i, v in enumerate(picklist.values, start=1)] if picklist is not None else None
                ),
                "picklistParentValueField": picklist.parent_field or "" if picklist is not None else "",
                "isSupportedWebhookField": name in webhook,
            }
        )
    return out
