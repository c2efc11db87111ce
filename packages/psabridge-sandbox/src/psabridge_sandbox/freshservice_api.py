"""The Freshservice API v2 routes of the simulator: request validation, paging and the answers' envelopes.

Validation messages and codes follow Freshworks' shapes (FSSPEC ``BadRequest``/``FieldError``, fixture
``badRequest.js`` for the include message); the exact wording of the other messages is [UNCONFIRMED], modelled on
the same family of APIs (Freshdesk). See freshservice.py for the behaviour and its sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.core import Simulator, principal_of
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.freshservice_http import READONLY_PRINCIPAL, ValidationFailed, field_error
from psabridge_sandbox.freshservice_records import (
    INTEGRATION_AGENT_ID,
    LEVEL_NAMES,
    PRIORITY_NAMES,
    SLA_HOURS,
    SOURCE_NAMES,
    STATUS_NAMES,
    TICKET_TYPES,
    WORKSPACE_ID,
    Directory,
    conversation_record,
    fs_time,
    html_to_text,
    parse_fs_time,
    time_entry_record,
)
from psabridge_sandbox.table import Row, Table

__all__ = ["FreshserviceAccount", "FreshserviceApi"]

MAX_PER_PAGE = 100
DEFAULT_WINDOW = timedelta(days=30)
DEFAULT_PER_PAGE = 30
LIST_PARAMS = frozenset(
    {"filter", "email", "requester_id", "updated_since", "include", "order_type", "page", "per_page"}
    | {"workspace_id", "type"}
)
LIST_INCLUDES = ("stats", "requester", "requested_for")
SHOW_INCLUDES = (
    "tags",
    "conversations",
    "requester",
    "stats",
    "problem",
    "assets",
    "change",
    "related_tickets",
    "requested_for",
    "department",
    "feedback",
)
FILTERS = ("new_and_my_open", "watching", "spam", "deleted")
CUSTOM_FIELDS = ("affected_site", "msp_reference")
_CODES: dict[str, Mapping[int, str]] = {
    "status": STATUS_NAMES,
    "priority": PRIORITY_NAMES,
    "urgency": LEVEL_NAMES,
    "impact": LEVEL_NAMES,
    "source": SOURCE_NAMES,
}
_REFERENCES = {
    "requester_id": ("requesters", "contact", False),
    "requested_for_id": ("requesters", "contact", False),
    "responder_id": ("agents", "agent", True),
    "group_id": ("groups", "group", True),
    "department_id": ("departments", "department", True),
}
_TEXTS = {"subject": False, "description": False, "type": False, "category": True, "sub_category": True}
_TEXTS |= {"item_category": True, "email": False, "name": False, "phone": False}
_HHMM = re.compile(r"^(\d{1,3}):([0-5]\d)$")


def _type_name(value: Any) -> str:
    return {bool: "Boolean", int: "Integer", float: "Number", str: "String", list: "Array", dict: "Object"}.get(
        type(value), "Null"
    )


def _mismatch(field: str, value: Any, expected: str) -> dict[str, str]:
    message = f"Value set is of type {_type_name(value)}.It should be a/an {expected}"
    return field_error(field, message, "datatype_mismatch")


def _one_of(field: str, choices: Iterable[object]) -> dict[str, str]:
    return field_error(field, f"It should be one of these values: '{','.join(str(c) for c in choices)}'")


def _unexpected(field: str) -> dict[str, str]:
    return field_error(field, "Unexpected/invalid field in request", "invalid_field")


def _missing(field: str) -> dict[str, str]:
    return field_error(field, "It should not be blank as this is a mandatory field", "missing_field")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FreshserviceAccount(Protocol):
    """What the routes need of the simulated account (``FreshserviceSimulator`` has it; freshservice.py)."""

    simulator: Simulator
    directory: Directory
    tickets: Table

    def now(self) -> datetime:
        """The account's clock."""

    def matching(self, key: tuple[Any, ...], keep: Callable[[Row], bool]) -> list[int]:
        """Ids of the tickets ``keep`` accepts, in created order; cached per list query until a ticket changes."""

    def render_ticket(self, row: Row, includes: Iterable[str] = ()) -> dict[str, Any]:
        """A ticket as the API answers it, with the ``include`` extras asked for."""

    def conversations_of(self, ticket_id: int) -> list[dict[str, Any]]:
        """A ticket's conversations, oldest first."""

    def time_entries_of(self, ticket_id: int) -> list[dict[str, Any]]:
        """A ticket's time entries, oldest first."""

    def record_page(self, path: str, query: str, ids: list[int]) -> None:
        """Remember a list page served, for /_sandbox/state."""

    def add_conversation(self, ticket_id: int, make: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """Add a note built by ``make(id)``; the ticket's ``updated_at`` moves and a ``note_added`` webhook goes out."""

    def add_time_entry(self, ticket_id: int, make: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """Add a time entry built by ``make(id)`` (the ticket itself does not change)."""

    def churn_ticket(self) -> dict[str, Any]:
        """A ticket raised by someone else while a client pages (the ``churn`` fault)."""


class FreshserviceApi:
    """Route handlers over one simulated account."""

    def __init__(self, account: FreshserviceAccount) -> None:
        self.account = account

    def mount(self, sim: Simulator) -> None:
        """Add the routes."""
        tickets = "/api/v2/tickets"
        one = tickets + "/{id:int}"
        sim.add_route(tickets, self.list_tickets, methods=["GET"])
        sim.add_route(tickets, self.create_ticket, methods=["POST"])
        sim.add_route(one, self.view_ticket, methods=["GET"])
        sim.add_route(one, self.update_ticket, methods=["PUT"])
        sim.add_route(one, self.delete_ticket, methods=["DELETE"])
        sim.add_route(one + "/notes", self.add_note, methods=["POST"])
        sim.add_route(one + "/conversations", self.list_conversations, methods=["GET"])
        sim.add_route(one + "/time_entries", self.list_time_entries, methods=["GET"])
        sim.add_route(one + "/time_entries", self.add_time_entry, methods=["POST"])
        for path, kind, single in (
            ("/api/v2/agents", "agents", "agent"),
            ("/api/v2/groups", "groups", "group"),
            ("/api/v2/agent_groups", "groups", "group"),
            ("/api/v2/requesters", "requesters", "requester"),
            ("/api/v2/departments", "departments", "department"),
        ):
            sim.add_route(path, self._lister(kind), methods=["GET"])
            sim.add_route(path + "/{id:int}", self._viewer(kind, single), methods=["GET"])
        sim.add_route("/api/v2/ticket_form_fields", self.ticket_form_fields, methods=["GET"])

    # --- tickets -----------------------------------------------------------------------------------------------------

    async def list_tickets(self, request: Request) -> Response:
        """GET /api/v2/tickets."""
        q = request.query_params
        errors = [_unexpected(name) for name in q if name not in LIST_PARAMS]
        includes = self._includes(q, LIST_INCLUDES, errors)
        order = q.get("order_type", "desc")
        if order not in ("asc", "desc"):
            errors.append(_one_of("order_type", ("asc", "desc")))
        filter_ = q.get("filter")
        if filter_ is not None and filter_ not in FILTERS:
            errors.append(_one_of("filter", FILTERS))
        kind = q.get("type")
        if kind is not None and kind not in TICKET_TYPES:
            errors.append(_one_of("type", TICKET_TYPES))
        since: datetime | None = None
        if "updated_since" in q:
            since = parse_fs_time(q["updated_since"])
            if since is None:
                errors.append(field_error("updated_since", "It should be in the 'YYYY-MM-DDTHH:MM:SSZ' format"))
        requester_id = self._int_value(q, "requester_id", errors)
        page, per_page = self._paging(q, errors)
        if errors:
            raise ValidationFailed.of(errors)
        email = q.get("email", "").strip().lower() or None
        if email is not None:
            found = self.account.directory.requester_by_email(email)
            requester_id = found["id"] if found else -1
        # Without updated_since, only tickets created in the last 30 days (FSDOCS #view_all_ticket).
        created_after = self.account.now() - DEFAULT_WINDOW if since is None else None
        me = INTEGRATION_AGENT_ID

        def keep(row: Row) -> bool:
            data = row.data
            if filter_ == "deleted":
                if not data["deleted"]:
                    return False
            elif filter_ == "spam":
                if not data["spam"] or data["deleted"]:
                    return False
            elif data["deleted"] or data["spam"] or filter_ == "watching":
                return False
            if filter_ == "new_and_my_open" and (data["status"] != 2 or data["responder_id"] not in (None, me)):
                return False
            if since is not None and row.updated < since:
                return False
            if created_after is not None and row.created < created_after:
                return False
            if requester_id is not None and data["requester_id"] != requester_id:
                return False
            return kind is None or data["type"] == kind

        key = (filter_, since, created_after, requester_id, kind)
        ids = self.account.matching(key, keep)
        ordered = ids if order == "asc" else ids[::-1]
        start = (page - 1) * per_page
        chunk = ordered[start : start + per_page]
        rows = [self.account.tickets[i] for i in chunk]
        body = {"tickets": [self.account.render_ticket(row, includes) for row in rows]}
        headers = self._link(request, page) if start + per_page < len(ordered) else {}
        self.account.record_page(request.url.path, request.url.query, chunk)
        self.account.simulator.between_pages(self.account.tickets, create=self.account.churn_ticket)
        return JSONResponse(body, headers=headers)

    async def view_ticket(self, request: Request) -> Response:
        """GET /api/v2/tickets/{id}."""
        errors = [_unexpected(name) for name in request.query_params if name not in ("include", "workspace_id")]
        includes = self._includes(request.query_params, SHOW_INCLUDES, errors, spaced=True)
        if errors:
            raise ValidationFailed.of(errors)
        row = self._row(request)
        return JSONResponse({"ticket": self.account.render_ticket(row, includes)})

    async def create_ticket(self, request: Request) -> Response:
        """POST /api/v2/tickets: 201 with the ticket and its Location."""
        self._may_write(request)
        body = await self._body(request)
        errors: list[dict[str, str]] = []
        changes = self._ticket_fields(body, errors)
        for name in ("subject", "description", "status", "priority"):
            if name not in body:
                errors.append(_missing(name))
        if not any(body.get(name) for name in ("requester_id", "email", "phone")):
            message = "Please fill at least 1 of requester_id, phone, email fields"
            errors.append(field_error("requester_id", message, "missing_field"))
        if errors:
            raise ValidationFailed.of(errors)
        account = self.account
        now = account.now()
        requester_id = changes.pop("requester_id", None)
        email, name, phone = (changes.pop(k, None) for k in ("email", "name", "phone"))
        if requester_id is None:
            known = account.directory.requester_by_email(email) if email else None
            requester = known or account.directory.add_requester(email, name, phone, now)
            requester_id = requester["id"]
        requester = account.directory.requesters[requester_id]
        priority = changes["priority"]
        first, resolve = SLA_HOURS[priority]
        data: dict[str, Any] = {
            "source": 2,
            "type": "Incident",
            "urgency": 1,
            "impact": 1,
            "requested_for_id": requester_id,
            "responder_id": None,
            "group_id": None,
            "department_id": next(iter(requester["department_ids"]), None),
            "category": None,
            "sub_category": None,
            "item_category": None,
            "tags": [],
            "custom_fields": dict.fromkeys(CUSTOM_FIELDS),
            "fr_due_by": now + timedelta(hours=first),
            "due_by": now + timedelta(hours=resolve),
            "spam": False,
            "deleted": False,
            "asset_ids": [],
            "stats": {},
            **changes,
            "requester_id": requester_id,
            "description_text": html_to_text(changes["description"]),
        }
        data["custom_fields"] = {**dict.fromkeys(CUSTOM_FIELDS), **data["custom_fields"]}
        row = account.tickets.insert(data)
        location = str(request.url.replace(path=f"/api/v2/tickets/{row.id}", query=""))
        return JSONResponse({"ticket": account.render_ticket(row)}, status_code=201, headers={"Location": location})

    async def update_ticket(self, request: Request) -> Response:
        """PUT /api/v2/tickets/{id}: a partial update; only fields that change move ``updated_at``."""
        self._may_write(request)
        row = self._row(request)
        body = await self._body(request)
        errors: list[dict[str, str]] = []
        changes = self._ticket_fields(body, errors)
        for name in ("email", "name", "phone"):
            if name in changes:
                errors.append(_unexpected(name))
        if errors:
            raise ValidationFailed.of(errors)
        current = row.data
        changes = {k: v for k, v in changes.items() if current.get(k) != v}
        if "custom_fields" in changes:
            changes["custom_fields"] = {**current["custom_fields"], **changes["custom_fields"]}
        if "description" in changes:
            changes["description_text"] = html_to_text(changes["description"])
        if "priority" in changes and not {"due_by", "fr_due_by"} & body.keys():
            first, resolve = SLA_HOURS[changes["priority"]]  # the SLA policy re-targets the ticket
            changes["fr_due_by"] = row.created + timedelta(hours=first)
            changes["due_by"] = row.created + timedelta(hours=resolve)
        if "status" in changes:
            changes["stats"] = _status_stats(current["stats"], current["status"], changes["status"], self.account.now())
        if changes:
            row = self.account.tickets.update(row.id, changes)
        return JSONResponse({"ticket": self.account.render_ticket(row)})

    async def delete_ticket(self, request: Request) -> Response:
        """DELETE /api/v2/tickets/{id}: the ticket goes to the trash (``deleted`` true, only under filter=deleted)."""
        self._may_write(request)
        row = self._row(request)
        if not row.data["deleted"]:
            self.account.tickets.update(row.id, {"deleted": True})
        return Response(status_code=204)

    # --- conversations and time --------------------------------------------------------------------------------------

    async def add_note(self, request: Request) -> Response:
        """POST /api/v2/tickets/{id}/notes: a note, private unless ``private`` is false."""
        self._may_write(request)
        row = self._row(request)
        body = await self._body(request)
        errors = [_unexpected(k) for k in body if k not in ("body", "private", "incoming", "notify_emails", "user_id")]
        text = body.get("body")
        if "body" not in body:
            errors.append(_missing("body"))
        elif not isinstance(text, str):
            errors.append(_mismatch("body", text, "String"))
        for name in ("private", "incoming"):
            if name in body and not isinstance(body[name], bool):
                errors.append(_mismatch(name, body[name], "Boolean"))
        emails = body.get("notify_emails", [])
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
            errors.append(_mismatch("notify_emails", emails, "Array"))
        user_id = body.get("user_id", INTEGRATION_AGENT_ID)
        if not _is_int(user_id) or user_id not in self.account.directory.agents:
            errors.append(field_error("user_id", "There is no agent matching the given user_id"))
        if errors:
            raise ValidationFailed.of(errors)
        now = self.account.now()

        def make(conversation_id: int) -> dict[str, Any]:
            return conversation_record(
                conversation_id,
                int(row.id),
                None,
                body=str(text),
                user_id=int(user_id),
                private=bool(body.get("private", True)),
                incoming=bool(body.get("incoming", False)),
                source=2,
                created=now,
                to_emails=list(emails),
            )

        record = self.account.add_conversation(int(row.id), make)
        return JSONResponse({"conversation": dict(record)}, status_code=201)

    async def list_conversations(self, request: Request) -> Response:
        """GET /api/v2/tickets/{id}/conversations, oldest first, paged."""
        row = self._row(request)
        return self._paged(request, [dict(c) for c in self.account.conversations_of(int(row.id))], "conversations")

    async def list_time_entries(self, request: Request) -> Response:
        """GET /api/v2/tickets/{id}/time_entries, paged."""
        row = self._row(request)
        return self._paged(request, [dict(e) for e in self.account.time_entries_of(int(row.id))], "time_entries")

    async def add_time_entry(self, request: Request) -> Response:
        """POST /api/v2/tickets/{id}/time_entries."""
        self._may_write(request)
        row = self._row(request)
        body = await self._body(request)
        allowed = ("time_spent", "executed_at", "agent_id", "note", "billable", "timer_running", "task_id")
        errors = [_unexpected(k) for k in body if k not in (*allowed, "start_time", "custom_fields")]
        now = self.account.now()
        running = body.get("timer_running", False)
        if not isinstance(running, bool):
            errors.append(_mismatch("timer_running", running, "Boolean"))
        minutes = 0
        spent = body.get("time_spent")
        if spent is None:
            if not running:
                errors.append(_missing("time_spent"))
        elif running:
            errors.append(field_error("time_spent", "It should not be given while the timer is running"))
        elif not isinstance(spent, str) or (found := _HHMM.match(spent)) is None:
            errors.append(field_error("time_spent", "It should be in the 'hh:mm' format"))
        else:
            minutes = int(found.group(1)) * 60 + int(found.group(2))
        executed = now
        if "executed_at" in body:
            parsed = parse_fs_time(body["executed_at"]) if isinstance(body["executed_at"], str) else None
            if parsed is None:
                errors.append(field_error("executed_at", "It should be in the 'YYYY-MM-DDTHH:MM:SSZ' format"))
            elif parsed > now:
                errors.append(field_error("executed_at", "It should be less than or equal to current date_time"))
            else:
                executed = parsed
        agent_id = body.get("agent_id", INTEGRATION_AGENT_ID)
        if not _is_int(agent_id) or agent_id not in self.account.directory.agents:
            errors.append(field_error("agent_id", "There is no agent matching the given agent_id"))
        if body.get("task_id") is not None:
            errors.append(field_error("task_id", "There is no task matching the given task_id"))
        billable = body.get("billable", True)
        if not isinstance(billable, bool):
            errors.append(_mismatch("billable", billable, "Boolean"))
        note = body.get("note", "")
        if not isinstance(note, str):
            errors.append(_mismatch("note", note, "String"))
        if errors:
            raise ValidationFailed.of(errors)

        def make(entry_id: int) -> dict[str, Any]:
            record = time_entry_record(
                entry_id,
                int(row.id),
                minutes=minutes,
                agent_id=int(agent_id),
                note=str(note),
                billable=bool(billable),
                executed_at=executed,
                created=now,
            )
            record["timer_running"] = bool(running)
            return record

        record = self.account.add_time_entry(int(row.id), make)
        return JSONResponse({"time_entry": dict(record)}, status_code=201)

    # --- lookups -----------------------------------------------------------------------------------------------------

    def _lister(self, kind: str) -> Any:
        async def handler(request: Request) -> Response:
            records: dict[int, dict[str, Any]] = getattr(self.account.directory, kind)
            items = list(records.values())
            email = request.query_params.get("email")
            if email is not None:
                field = "email" if kind == "agents" else "primary_email"
                items = [r for r in items if str(r.get(field, "")).lower() == email.strip().lower()]
            return self._paged(request, [dict(r) for r in items], kind, extra=("email", "active", "state"))

        return handler

    def _viewer(self, kind: str, single: str) -> Any:
        async def handler(request: Request) -> Response:
            records: dict[int, dict[str, Any]] = getattr(self.account.directory, kind)
            record = records.get(request.path_params["id"])
            if record is None:
                raise VendorError(404, "Not Found")
            return JSONResponse({single: dict(record)})

        return handler

    async def ticket_form_fields(self, request: Request) -> Response:
        """GET /api/v2/ticket_form_fields: the ticket form, with the choices of its dropdowns."""
        stamp = fs_time(self.account.now() - timedelta(days=400))

        def field(
            position: int, name: str, label: str, kind: str, choices: Mapping[int, str] | Collection[str]
        ) -> dict[str, Any]:
            if isinstance(choices, Mapping):
                listed: list[dict[str, Any]] = [{"id": k, "value": v} for k, v in choices.items()]
            else:
                listed = [{"id": i, "value": v} for i, v in enumerate(choices, start=1)]
            return {
                "id": 21000600000 + position,
                "workspace_id": WORKSPACE_ID,
                "name": name,
                "label": label,
                "description": label,
                "field_type": kind,
                "required": name in ("requester", "subject", "status", "priority"),
                "required_for_closure": False,
                "default_field": not kind.startswith("custom"),
                "choices": listed,
                "nested_fields": [],
                "required_for_agents": name in ("status", "priority"),
                "required_for_customers": False,
                "displayed_to_customers": True,
                "customers_can_edit": False,
                "created_at": stamp,
                "updated_at": stamp,
            }

        fields = [
            field(1, "requester", "Requester", "default_requester", ()),
            field(2, "subject", "Subject", "default_subject", ()),
            field(3, "ticket_type", "Type", "default_ticket_type", TICKET_TYPES),
            field(4, "status", "Status", "default_status", STATUS_NAMES),
            field(5, "priority", "Priority", "default_priority", PRIORITY_NAMES),
            field(6, "urgency", "Urgency", "default_urgency", LEVEL_NAMES),
            field(7, "impact", "Impact", "default_impact", LEVEL_NAMES),
            field(8, "source", "Source", "default_source", SOURCE_NAMES),
            field(9, "group", "Group", "default_group", ()),
            field(10, "responder", "Agent", "default_agent", ()),
            field(11, "department", "Department", "default_department", ()),
            field(12, "category", "Category", "default_category", ()),
            field(13, "description", "Description", "default_description", ()),
            field(14, "affected_site", "Affected site", "custom_text", ()),
            field(15, "msp_reference", "MSP reference", "custom_text", ()),
        ]
        return JSONResponse({"ticket_fields": fields})

    # --- helpers -----------------------------------------------------------------------------------------------------

    def _row(self, request: Request) -> Row:
        row = self.account.tickets.get(request.path_params["id"])
        if row is None:
            raise VendorError(404, "Not Found")
        return row

    @staticmethod
    def _may_write(request: Request) -> None:
        if principal_of(request) == READONLY_PRINCIPAL:
            raise VendorError(403, "You are not authorized to perform this action.", code="access_denied")

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        if "application/json" not in request.headers.get("content-type", "").lower():
            message = "Content-Type header should have application/json"
            raise VendorError(415, message, code="invalid_content_type")
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ValidationFailed.of([field_error("", "Request body has invalid json format", "invalid_json")])
        return body

    @staticmethod
    def _includes(
        q: QueryParams, allowed: tuple[str, ...], errors: list[dict[str, str]], *, spaced: bool = False
    ) -> list[str]:
        if "include" not in q:
            return []
        wanted = [part.strip() for part in q["include"].split(",")]
        if not all(part in allowed for part in wanted):
            joined = (", " if spaced else ",").join(allowed)
            errors.append(field_error("include", f"It should be one of these values: '{joined}'"))
            return []
        return list(dict.fromkeys(wanted))

    @staticmethod
    def _int_value(q: QueryParams, name: str, errors: list[dict[str, str]]) -> int | None:
        raw = q.get(name)
        if raw is None:
            return None
        if not raw.isdigit():
            errors.append(field_error(name, "It should be a/an Positive Integer"))
            return None
        return int(raw)

    @staticmethod
    def _paging(q: QueryParams, errors: list[dict[str, str]]) -> tuple[int, int]:
        values = []
        for name, default, top in (("page", 1, None), ("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)):
            raw = q.get(name, str(default))
            value = int(raw) if raw.isdigit() else 0
            if value < 1 or (top is not None and value > top):
                limit = f" less than or equal to {top}" if top is not None else ""
                errors.append(field_error(name, f"It should be a/an Positive Integer{limit}"))
                value = default
            values.append(value)
        return values[0], values[1]

    def _paged(
        self, request: Request, items: list[dict[str, Any]], key: str, *, extra: tuple[str, ...] = ()
    ) -> Response:
        q = request.query_params
        errors = [_unexpected(name) for name in q if name not in ("page", "per_page", *extra)]
        page, per_page = self._paging(q, errors)
        if errors:
            raise ValidationFailed.of(errors)
        start = (page - 1) * per_page
        headers = self._link(request, page) if start + per_page < len(items) else {}
        return JSONResponse({key: items[start : start + per_page]}, headers=headers)

    @staticmethod
    def _link(request: Request, page: int) -> dict[str, str]:
        return {"Link": f'<{request.url.include_query_params(page=page + 1)}>; rel="next"'}

    def _ticket_fields(self, body: Mapping[str, Any], errors: list[dict[str, str]]) -> dict[str, Any]:
        """Validated ticket fields of a create or update body (errors appended, not raised)."""
        directory = self.account.directory
        changes: dict[str, Any] = {}
        for name, value in body.items():
            if name in _CODES:
                if not _is_int(value):
                    errors.append(_mismatch(name, value, "Integer"))
                elif value not in _CODES[name]:
                    errors.append(_one_of(name, _CODES[name]))
                else:
                    changes[name] = value
            elif name in _REFERENCES:
                table, noun, nullable = _REFERENCES[name]
                if value is None and nullable:
                    changes[name] = None
                elif not _is_int(value):
                    errors.append(_mismatch(name, value, "Integer"))
                elif value not in getattr(directory, table):
                    errors.append(field_error(name, f"There is no {noun} matching the given {name}"))
                else:
                    changes[name] = value
            elif name in _TEXTS:
                if value is None and _TEXTS[name]:
                    changes[name] = None
                elif not isinstance(value, str):
                    errors.append(_mismatch(name, value, "String"))
                elif name == "type" and value not in TICKET_TYPES:
                    errors.append(_one_of(name, TICKET_TYPES))
                elif name == "subject" and not value.strip():
                    errors.append(_missing(name))
                else:
                    changes[name] = value
            elif name in ("due_by", "fr_due_by"):
                parsed = parse_fs_time(value) if isinstance(value, str) else None
                if parsed is None:
                    errors.append(field_error(name, "It should be in the 'YYYY-MM-DDTHH:MM:SSZ' format"))
                else:
                    changes[name] = parsed
            elif name == "tags":
                if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                    errors.append(_mismatch(name, value, "Array"))
                else:
                    changes[name] = list(dict.fromkeys(value))
            elif name == "custom_fields":
                if not isinstance(value, dict):
                    errors.append(_mismatch(name, value, "Object"))
                    continue
                unknown = [k for k in value if k not in CUSTOM_FIELDS]
                errors.extend(_unexpected(k) for k in unknown)
                if not unknown:
                    changes[name] = dict(value)
            elif name in ("workspace_id", "cc_emails"):
                continue  # accepted and ignored: one workspace, no e-mail in the sandbox
            else:
                errors.append(_unexpected(name))
        return changes


def _status_stats(stats: Mapping[str, datetime], old: int, new: int, now: datetime) -> dict[str, datetime]:
    """The stats after a status change: resolved, closed, pending and reopened times."""
    out = dict(stats)
    stamp = now
    out["status_updated_at"] = stamp
    if new in (2, 3) and old in (4, 5):
        out["reopened_at"] = stamp
        out.pop("resolved_at", None)
        out.pop("closed_at", None)
    if new == 3:
        out["pending_since"] = stamp
    else:
        out.pop("pending_since", None)
    if new == 4:
        out["resolved_at"] = stamp
    if new == 5:
        out["closed_at"] = stamp
        out.setdefault("resolved_at", stamp)
    return out
