"""Autotask writes: create and update tickets, add notes and time entries, with the API's validation and side effects.

Bodies are read as ASP.NET binds them: property names in any case, unknown and read-only properties ignored.
Business-rule failures answer HTTP 500 with ``{"errors": [...]}`` (Anteris-Dev/autotask-client#60; djAT
``_prepare_error_response``). Create needs companyID, title, status, priority and a queue or a due date; a resource
is assigned together with its role (WYRE-AI/msp-claude-plugins#31). Setting status 5 (Complete) stamps completedDate;
every write moves the ticket's lastActivityDate and names who made it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.autotask_data import (
    BILLING_CODE_ID,
    COMPANY_IDS,
    NOTE_FIELDS,
    NOTE_PICKLISTS,
    READ_ONLY,
    ROLES,
    STATUS_COMPLETE,
    TICKET_FIELDS,
    TICKET_PICKLISTS,
    TIME_ENTRY_FIELDS,
    Directory,
    data_type,
)
from psabridge_sandbox.autotask_query import parse_time
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.table import Row, Table

__all__ = ["AutotaskInstance", "TicketWriter"]

_MAX_LENGTH = {"title": 255, "description": 8000, "resolution": 32000, "summaryNotes": 8000, "externalID": 50}
_CHURN_ACTOR_TECH = 1


class AutotaskInstance(Protocol):
    """What the write endpoints need of the simulated instance (``AutotaskSimulator`` has it; autotask.py)."""

    directory: Directory
    tickets: Table
    notes: Table
    time_entries: Table
    notes_of: dict[int, list[int]]
    entries_of: dict[int, list[int]]

    def actor(self, request: Request) -> int:
        """The resource id a request acts as."""

    def emit(self, entity: str, action: str, row: Row, changed: Sequence[str] | None, actor: int) -> None:
        """Queue the webhook deliveries of a change."""

    def now(self) -> datetime:
        """The simulator's clock."""

    def technician(self, number: int) -> int:
        """The resource id of the seed world's technician ``number``."""


class TicketWriter:
    """The write endpoints of one simulator."""

    def __init__(self, at: AutotaskInstance) -> None:
        self.at = at
        self.per_day: dict[str, int] = {}
        self._churn_actor: int | None = None
        at.tickets.on_change(self._on_churn)

    # --- tickets -----------------------------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        """POST /Tickets -> ``{"itemId": n}``."""
        actor = self.at.actor(request)
        fields = self._fields(await _body(request), TICKET_FIELDS, "Ticket")
        fields.pop("id", None)
        for name in ("companyID", "title", "status", "priority"):
            if fields.get(name) in (None, ""):
                raise VendorError(500, f"Missing Required Field: {name}")
        if fields.get("queueID") is None and fields.get("dueDateTime") is None:
            raise VendorError(500, "A ticket needs a queueID or a dueDateTime.")
        self._check_ticket(fields, None)
        now = self.at.now()
        record: dict[str, Any] = {
            "ticketCategory": 3,
            "ticketType": 1,
            "userDefinedFields": [{"name": "ExternalRef", "value": None}],
            **fields,
            "ticketNumber": self.number(now),
            "createDate": now,
            "creatorResourceID": actor,
            "creatorType": 1,
            "lastActivityPersonType": 1,
            "lastActivityResourceID": actor,
            "lastTrackedModificationDateTime": now,
        }
        if record["status"] == STATUS_COMPLETE:
            record.update(completedDate=now, completedByResourceID=actor)
        record["userDefinedFields"] = _merge_udfs([{"name": "ExternalRef", "value": None}], fields)
        row = self.at.tickets.insert(record, created=now, updated=now, notify=False)
        self.at.emit("Ticket", "Create", row, None, actor)
        return JSONResponse({"itemId": row.id})

    async def update(self, request: Request) -> Response:
        """PATCH /Tickets (only the fields sent) or PUT /Tickets (every writable field) with the id in the body."""
        actor = self.at.actor(request)
        body = await _body(request)
        fields = self._fields(body, TICKET_FIELDS, "Ticket")
        ticket_id = fields.pop("id", None)
        if not isinstance(ticket_id, int):
            raise VendorError(500, "The id of the Ticket to update is required in the body.")
        row = self.at.tickets.get(ticket_id)
        if row is None:
            raise VendorError(404, f"Ticket {ticket_id} was not found.")
        if request.method == "PUT":
            writable = [n for n in TICKET_FIELDS if n not in READ_ONLY and n not in ("id", "userDefinedFields")]
            fields = {name: fields.get(name) for name in writable} | (
                {"userDefinedFields": fields["userDefinedFields"]} if "userDefinedFields" in fields else {}
            )
            for name in ("companyID", "title", "status", "priority"):
                if fields.get(name) in (None, ""):
                    raise VendorError(500, f"Missing Required Field: {name}")
        self._check_ticket(fields, row)
        now = self.at.now()
        changes = dict(fields)
        if "userDefinedFields" in changes:
            changes["userDefinedFields"] = _merge_udfs(row.data.get("userDefinedFields") or [], fields)
        if changes.get("assignedResourceID", row.data.get("assignedResourceID")) is None:
            changes.setdefault("assignedResourceRoleID", None)
        old_status = row.data.get("status")
        new_status = changes.get("status", old_status)
        if new_status == STATUS_COMPLETE and old_status != STATUS_COMPLETE:
            changes.update(completedDate=now, completedByResourceID=actor)
        elif new_status != STATUS_COMPLETE and old_status == STATUS_COMPLETE:
            changes.update(completedDate=None, completedByResourceID=None)
        changed = [name for name, value in changes.items() if row.data.get(name) != value]
        changes.update(lastActivityPersonType=1, lastActivityResourceID=actor)
        if changed:
            changes["lastTrackedModificationDateTime"] = now
        self.at.tickets.update(ticket_id, changes, notify=False)
        if changed:
            self.at.emit("Ticket", "Update", row, changed, actor)
        return JSONResponse({"itemId": ticket_id})

    def _check_ticket(self, fields: Mapping[str, Any], row: Row | None) -> None:
        """The API's validation of ticket values (HTTP 500 with the reason, as Autotask answers)."""
        current = row.data if row is not None else {}
        for name, picklist in TICKET_PICKLISTS.items():
            value = fields.get(name)
            if value is None or name not in fields:
                continue
            parent = fields.get("issueType", current.get("issueType")) if picklist.parent_field else None
            if not picklist.has(value, parent):
                raise VendorError(500, f"Value {value} does not exist in the picklist for field {name}.")
        company = fields.get("companyID", current.get("companyID"))
        if "companyID" in fields and company not in self.at.directory.companies:
            raise VendorError(500, f"Reference value on field: companyID of type: Company does not exist: {company}")
        contact = fields.get("contactID")
        if contact is not None:
            record = self.at.directory.contacts.get(contact)
            if record is None or record["companyID"] != company:
                raise VendorError(500, f"Contact {contact} does not belong to company {company}.")
        if "assignedResourceID" in fields or "assignedResourceRoleID" in fields:
            resource = fields.get("assignedResourceID", current.get("assignedResourceID"))
            role = fields.get("assignedResourceRoleID", current.get("assignedResourceRoleID"))
            if resource is not None and resource not in self.at.directory.resources:
                raise VendorError(500, f"Reference value on field: assignedResourceID does not exist: {resource}")
            if resource is not None and role is None:
                raise VendorError(
                    500,
                    "When assigning a resource to a ticket, both assignedResourceID and assignedResourceRoleID "
                    "are required.",
                )
            if role is not None and role not in {r for r, _ in ROLES.values()}:
                raise VendorError(500, f"Reference value on field: assignedResourceRoleID does not exist: {role}")

    def number(self, when: datetime) -> str:
        """The next ticket number of the day: ``T20261120.0042``."""
        day = when.strftime("%Y%m%d")
        if day not in self.per_day:
            prefix = f"T{day}."
            self.per_day[day] = sum(
                1 for r in self.at.tickets.rows() if str(r.data.get("ticketNumber")).startswith(prefix)
            )
        self.per_day[day] += 1
        return f"T{day}.{self.per_day[day]:04d}"

    # --- notes and time ----------------------------------------------------------------------------------------------

    async def add_note(self, request: Request) -> Response:
        """POST /Tickets/{parentId}/Notes -> ``{"itemId": n}`` (the only way to create a note)."""
        actor = self.at.actor(request)
        parent = request.path_params["parentId"]
        if parent not in self.at.tickets:
            raise VendorError(404, f"Ticket {parent} was not found.")
        fields = self._fields(await _body(request), NOTE_FIELDS, "TicketNote")
        if fields.get("ticketID", parent) != parent:
            raise VendorError(500, f"The ticketID {fields['ticketID']} does not match the parent ticket {parent}.")
        for name in ("title", "description", "noteType", "publish"):
            if fields.get(name) in (None, ""):
                raise VendorError(500, f"Missing Required Field: {name}")
        for name, picklist in NOTE_PICKLISTS.items():
            if not picklist.has(fields[name]):
                raise VendorError(500, f"Value {fields[name]} does not exist in the picklist for field {name}.")
        now = self.at.now()
        note = {
            **{k: v for k, v in fields.items() if k not in ("id",)},
            "ticketID": parent,
            "createDateTime": now,
            "creatorResourceID": actor,
            "createdByContactID": None,
        }
        row = self.at.notes.insert(note, created=now, updated=now, notify=False)
        self.at.notes_of.setdefault(parent, []).append(int(row.id))
        self._touch(parent, actor)
        self.at.emit("TicketNote", "Create", row, None, actor)
        return JSONResponse({"itemId": row.id})

    async def add_time_entry(self, request: Request) -> Response:
        """POST /TimeEntries -> ``{"itemId": n}``."""
        actor = self.at.actor(request)
        fields = self._fields(await _body(request), TIME_ENTRY_FIELDS, "TimeEntry")
        ticket = fields.get("ticketID")
        if ticket is None:
            raise VendorError(500, "Missing Required Field: ticketID (or taskID)")
        if ticket not in self.at.tickets:
            raise VendorError(500, f"Reference value on field: ticketID of type: Ticket does not exist: {ticket}")
        for name in ("resourceID", "roleID", "dateWorked", "summaryNotes"):
            if fields.get(name) in (None, ""):
                raise VendorError(500, f"Missing Required Field: {name}")
        if fields["resourceID"] not in self.at.directory.resources:
            raise VendorError(500, f"Reference value on field: resourceID does not exist: {fields['resourceID']}")
        start, end = fields.get("startDateTime"), fields.get("endDateTime")
        if start is not None and end is not None:
            if end <= start:
                raise VendorError(500, "The endDateTime must be after the startDateTime.")
            fields.setdefault("hoursWorked", round((end - start).total_seconds() / 3600, 2))
        hours = fields.get("hoursWorked")
        if not isinstance(hours, float | int) or not 0 < hours <= 24:
            raise VendorError(500, "hoursWorked must be greater than 0 and at most 24.")
        now = self.at.now()
        entry = {
            "billingCodeID": BILLING_CODE_ID,
            "isNonBillable": False,
            "timeEntryType": 2,
            **fields,
            "hoursToBill": 0.0 if fields.get("isNonBillable") else hours,
            "createDateTime": now,
            "creatorUserID": actor,
            "lastModifiedUserID": actor,
        }
        row = self.at.time_entries.insert(entry, created=now, updated=now, notify=False)
        self.at.entries_of.setdefault(ticket, []).append(int(row.id))
        self._touch(ticket, actor)
        return JSONResponse({"itemId": row.id})

    def _touch(self, ticket_id: int, actor: int) -> None:
        # A note or time entry is activity on the ticket: its lastActivityDate moves (no field a webhook watches).
        self.at.tickets.update(ticket_id, {"lastActivityPersonType": 1, "lastActivityResourceID": actor}, notify=False)

    # --- churn: a technician works tickets while a client pages -------------------------------------------------------

    def churn_change(self, row: Row) -> dict[str, Any]:
        """A technician saves the ticket: its lastActivityDate moves, nothing a webhook watches changes."""
        self._churn_actor = self.at.technician(_CHURN_ACTOR_TECH)
        return {"lastActivityPersonType": 1, "lastActivityResourceID": self._churn_actor}

    def churn_create(self) -> dict[str, Any]:
        """A new ticket logged by the service desk while a client pages."""
        now = self.at.now()
        self._churn_actor = actor = self.at.technician(_CHURN_ACTOR_TECH)
        return {
            "ticketNumber": self.number(now),
            "title": "Phone call: user cannot print",
            "description": "Logged by the service desk while the integration was paging.",
            "status": 1,
            "priority": 2,
            "queueID": 29683482,
            "companyID": COMPANY_IDS["initech"],
            "ticketType": 2,
            "ticketCategory": 3,
            "source": 2,
            "createDate": now,
            "creatorType": 1,
            "creatorResourceID": actor,
            "lastActivityPersonType": 1,
            "lastActivityResourceID": actor,
            "userDefinedFields": [{"name": "ExternalRef", "value": None}],
        }

    def _on_churn(self, change: str, row: Row) -> None:
        # Only churn writes notify the table's listeners (the API's own writes pass notify=False and emit themselves).
        actor = self._churn_actor or self.at.technician(_CHURN_ACTOR_TECH)
        if change == "created":
            self.at.emit("Ticket", "Create", row, None, actor)

    # --- bodies ------------------------------------------------------------------------------------------------------

    def _fields(self, body: Mapping[str, Any], known: Sequence[str], entity: str) -> dict[str, Any]:
        """The body's known, writable fields in canonical spelling and type (unknown and read-only ones ignored)."""
        by_fold = {name.casefold(): name for name in known}
        out: dict[str, Any] = {}
        for key, value in body.items():
            name = by_fold.get(str(key).casefold())
            if name is None or (name in READ_ONLY and name != "id"):
                continue
            out[name] = _typed(entity, name, value)
        return out


def _typed(entity: str, name: str, value: Any) -> Any:
    if value is None or name == "userDefinedFields":
        return value
    kind = data_type(name)
    try:
        if kind == "datetime":
            return parse_time(value)
        if kind in ("integer", "long"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "double":
            return float(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise ValueError
            return value
        text = str(value)
    except (TypeError, ValueError):
        raise VendorError(500, f"The value {value!r} is not valid for {entity} field {name}.") from None
    if len(text) > _MAX_LENGTH.get(name, 8000):
        raise VendorError(500, f"The value of {name} is longer than {_MAX_LENGTH.get(name, 8000)} characters.")
    return text


def _merge_udfs(current: Sequence[Mapping[str, Any]], fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    merged = {str(u["name"]): u.get("value") for u in current}
    given = fields.get("userDefinedFields")
    if given is None:
        return [{"name": k, "value": v} for k, v in merged.items()]
    if not isinstance(given, list) or not all(isinstance(u, dict) and "name" in u for u in given):
        raise VendorError(500, "userDefinedFields must be a list of {name, value} objects.")
    for udf in given:
        if udf["name"] not in merged:
            raise VendorError(500, f"The user-defined field {udf['name']!r} does not exist.")
        merged[udf["name"]] = None if udf.get("value") is None else str(udf["value"])
    return [{"name": k, "value": v} for k, v in merged.items()]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise VendorError(500, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise VendorError(500, "The request body must be a JSON object.")
    return body
