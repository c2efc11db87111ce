"""ConnectWise PSA ticket writes for the simulator: POST, PUT and JSON Patch bodies applied to native tickets.

Validated the way ConnectWise validates them, refused with its error bodies:


- PATCH takes a JSON Patch **array** (``[{"op": "replace", "path": "status", "value": {"id": 123}}]``); the 2015
  spec shows one object, today's API an array (vendor-specs/README.md). ``op`` is add, replace or remove; paths may
  name a reference's member (``status/id``, ``board/name``). A leading ``/`` is accepted.
- references are written as ``{id}`` (or ``{name}``/``{identifier}``) and answered in full; statuses are per board,
  so a status id of another board is refused: ``{"code": "InvalidObject", "message": "ticket object is invalid",
  "errors": [{"code": "NotFound", "message": "Service Status 17 not found for Service Board 21", "resource":
  "ticket", "field": "status/id"}]}`` (the body as ConnectWise sends it, quoted in docs.xyte.io kb-5017).
- ``summary`` is at most 100 characters (``MaxLengthField``, same source); ``severity`` and ``impact`` are
  Low/Medium/High.
- ``initialDescription``, ``initialInternalAnalysis`` and ``initialResolution`` are POST-only: they become notes and
  are never returned (VENDOR-APIS.md 1.4); in a PUT or PATCH they are ignored.
- read-only fields (``id``, ``_info``, ``closedFlag``, dates) are ignored; unknown fields are refused.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request

from psabridge_sandbox.connectwise_records import HREF_BASE, Catalog
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.world import World

__all__ = ["CwError", "TicketWriter", "invalid", "json_body"]

LEVELS = ("Low", "Medium", "High")
POST_ONLY = ("initialDescription", "initialInternalAnalysis", "initialResolution")
READ_ONLY = frozenset(
    {
        "id", "_info", "closedFlag", "closedDate", "closedBy", "dateEntered", "enteredBy", "actualHours", "approved",
        "dateResolved", "dateResplan", "dateResponded", "resolveMinutes", "resPlanMinutes", "respondMinutes",
        "isInSla", "resources", "parentTicketId", "hasChildTicket", "hasMergedChildTicketFlag", "sla", "slaStatus",
        "recordType", "mobileGuid", "respondHours", "resolutionHours", "estimatedExpenseCost", "estimatedTimeCost",
        "location", "department", "escalationLevel", "requestForChangeFlag", "billTime", "billExpenses",
        "billProducts", "siteName", "contactName",
    }
)  # fmt: skip
SCALARS: dict[str, Callable[[Any], bool]] = {
    "summary": lambda v: isinstance(v, str),
    "severity": lambda v: v in LEVELS,
    "impact": lambda v: v in LEVELS,
    "externalXRef": lambda v: v is None or isinstance(v, str),
    "poNumber": lambda v: v is None or isinstance(v, str),
    "requiredDate": lambda v: v is None or isinstance(v, str),
    "budgetHours": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)),
    "contactPhoneNumber": lambda v: v is None or isinstance(v, str),
    "contactEmailAddress": lambda v: v is None or isinstance(v, str),
    "customerUpdatedFlag": lambda v: isinstance(v, bool),
    "allowAllClientsPortalView": lambda v: isinstance(v, bool),
    "automaticEmailContactFlag": lambda v: isinstance(v, bool),
    "automaticEmailResourceFlag": lambda v: isinstance(v, bool),
    "automaticEmailCcFlag": lambda v: isinstance(v, bool),
    "automaticEmailCc": lambda v: v is None or isinstance(v, str),
    "customFields": lambda v: isinstance(v, list),
}
MAX_LENGTH = {"summary": 100, "externalXRef": 100, "poNumber": 50, "contactPhoneNumber": 20}
REFERENCES = ("board", "status", "company", "contact", "priority", "source", "owner", "type", "subType", "item", "team",
              "site", "agreement")  # fmt: skip
FLAGS = ("skipCallback", "processNotifications")  # accepted on any write, never stored
WRITABLE = {name.lower(): name for name in (*SCALARS, *REFERENCES, *FLAGS, *POST_ONLY)}


@dataclasses.dataclass(eq=False)
class CwError(VendorError):
    """A ConnectWise error with its ``errors`` list (``{code, message, resource, field}`` items)."""

    errors: tuple[Mapping[str, str], ...] = ()


async def json_body(request: Request) -> Any:
    """The request's JSON body (None when empty); CwError when it is not JSON."""
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        raise CwError(400, "The request body is not valid JSON", code="InvalidObject") from None


def invalid(code: str, message: str, field: str, resource: str = "ticket", status: int = 400) -> CwError:
    """ConnectWise's validation failure: ``InvalidObject`` with one item in ``errors``."""
    item = {"code": code, "message": message, "resource": resource, "field": field}
    return CwError(status, f"{resource} object is invalid", code="InvalidObject", errors=(item,))


class TicketWriter:
    """Applies POST, PUT and PATCH bodies to native tickets, resolving references against the catalog."""

    def __init__(self, catalog: Catalog, world: World) -> None:
        self.catalog = catalog
        self.contacts = {c.id: c for c in world.contacts}

    # --- the verbs ---------------------------------------------------------------------------------------------------

    def patch(self, current: Mapping[str, Any], operations: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(new record, flags) after a JSON Patch array; CwError when ConnectWise would refuse it."""
        if not isinstance(operations, list):
            raise CwError(400, "The request body must be an array of patch operations", code="InvalidObject")
        values: dict[str, Any] = {}
        removed: list[str] = []
        for operation in operations:
            if not isinstance(operation, dict) or not isinstance(operation.get("path"), str):
                raise CwError(400, "Each patch operation needs op, path and value", code="InvalidObject")
            op = str(operation.get("op", "")).lower()
            if op not in ("add", "replace", "remove"):
                raise invalid("InvalidOperation", f"Unsupported patch operation {operation.get('op')!r}", "op")
            parts = [p for p in operation["path"].split("/") if p]
            if not parts:
                raise invalid("InvalidField", "A patch path is required", "path")
            name = self._field(parts[0])
            if name is None:
                continue  # read-only: ignored
            if op == "remove":
                removed.append(name)
                continue
            value = operation.get("value")
            if len(parts) > 1:  # status/id = 5 is status = {"id": 5}
                value = {parts[1]: value}
            values[name] = value
        record = dict(current)
        for name in removed:
            if name in ("summary", "company", "board", "status"):
                raise invalid("MissingRequiredField", f"The {name} field is required.", name)
            record.pop(name, None)
        return self._apply(record, values, creating=False)

    def put(self, current: Mapping[str, Any], body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(new record, flags) after replacing the writable fields with ``body``'s (absent ones are cleared)."""
        if not isinstance(body, dict):
            raise CwError(400, "The request body must be a ticket object", code="InvalidObject")
        record = {k: v for k, v in current.items() if k in READ_ONLY or k.startswith("_")}
        values = {name: value for key, value in body.items() if (name := self._field(key)) is not None}
        for required in ("summary", "company"):
            if required not in values:
                raise invalid("MissingRequiredField", f"The {required} field is required.", required)
        values.setdefault("board", current.get("board"))
        values.setdefault("status", current.get("status"))
        for name in ("severity", "impact"):
            values.setdefault(name, current.get(name, "Medium"))
        return self._apply(record, values, creating=False)

    def create(self, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(new record, flags) for a POST; the flags hold the initial notes' texts."""
        if not isinstance(body, dict):
            raise CwError(400, "The request body must be a ticket object", code="InvalidObject")
        values = {name: value for key, value in body.items() if (name := self._field(key)) is not None}
        for required in ("summary", "company"):
            if values.get(required) in (None, ""):
                raise invalid("MissingRequiredField", f"The {required} field is required.", required)
        values.setdefault("board", {"id": min(self.catalog.boards)})
        values.setdefault("severity", "Medium")
        values.setdefault("impact", "Medium")
        record: dict[str, Any] = {
            "recordType": "ServiceTicket",
            "allowAllClientsPortalView": False,
            "customerUpdatedFlag": False,
            "automaticEmailContactFlag": False,
            "automaticEmailResourceFlag": False,
            "automaticEmailCcFlag": False,
            "closedFlag": False,
            "approved": True,
            "billTime": "Billable",
            "sla": {"id": 1, "name": "Standard SLA"},
            "isInSla": True,
            "hasChildTicket": False,
            "customFields": [],
            "actualHours": 0.0,
        }
        return self._apply(record, values, creating=True)

    # --- helpers -----------------------------------------------------------------------------------------------------

    def _field(self, key: str) -> str | None:
        if key in READ_ONLY or key.lower() in {k.lower() for k in READ_ONLY}:
            return None
        name = WRITABLE.get(key.lower())
        if name is None:
            raise invalid("InvalidField", f"{key} is not a field of ticket", key)
        return name

    def _apply(
        self, record: dict[str, Any], values: dict[str, Any], *, creating: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        flags: dict[str, Any] = {}
        for name in (*FLAGS, *POST_ONLY):
            if name in values:
                value = values.pop(name)
                if name in POST_ONLY and not creating:
                    continue
                flags[name] = value
        for name, value in values.items():
            if name in SCALARS:
                if not SCALARS[name](value):
                    raise invalid("InvalidValue", f"{value!r} is not a valid value for {name}", name)
                limit = MAX_LENGTH.get(name)
                if limit is not None and isinstance(value, str) and len(value) > limit:
                    raise invalid(
                        "MaxLengthField", f"The field {name} must be a string with a maximum length of {limit}.", name
                    )
                if value is None:
                    record.pop(name, None)
                else:
                    record[name] = value
        if "summary" in values and not str(values["summary"]).strip():
            raise invalid("MissingRequiredField", "The summary field is required.", "summary")
        # References, board first: statuses, types, subtypes and items belong to a board.
        if "company" in values:
            record["company"] = self._company(values["company"])
        if "board" in values:
            old_board = (record.get("board") or {}).get("id")
            record["board"] = self._board(values["board"])
            if "status" not in values and old_board != record["board"]["id"] and record.get("status"):
                values["status"] = {"name": record["status"]["name"]}  # same name on the new board, if it has one
        board_id = record["board"]["id"]
        if "status" in values or creating:
            record["status"] = self._status(board_id, values.get("status"))
            closed = self.catalog.status_of(board_id, record["status"]["id"])
            record["closedFlag"] = bool(closed and closed["closedStatus"])
        if "priority" in values or creating:
            record["priority"] = self._priority(values.get("priority"))
        for name in ("source", "owner", "contact", "type", "subType", "item", "team", "site", "agreement"):
            if name in values:
                value = values[name]
                if value is None:
                    record.pop(name, None)
                    continue
                record[name] = self._reference(name, board_id, value, record)
        return record, flags

    def _company(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid("InvalidValue", 'company must be a reference such as {"id": 250}', "company")
        company = self.catalog.company_by(id=value.get("id"), identifier=value.get("identifier"))
        if company is None:
            wanted = value.get("id", value.get("identifier"))
            raise invalid("NotFound", f"Company {wanted} not found", "company/id")
        return self.catalog.company_ref(company)

    def _board(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid("InvalidValue", 'board must be a reference such as {"id": 1}', "board")
        for board in self.catalog.boards.values():
            if board["id"] == value.get("id") or (
                isinstance(value.get("name"), str) and board["name"].casefold() == value["name"].casefold()
            ):
                return self.catalog.board_ref(board["id"])
        raise invalid("NotFound", f"Service Board {value.get('id', value.get('name'))} not found", "board/id")

    def _status(self, board_id: int, value: Any) -> dict[str, Any]:
        if value is None:
            default = next(s for s in self.catalog.statuses[board_id] if s["defaultFlag"])
            return self.catalog.status_ref(board_id, default)
        if not isinstance(value, dict):
            raise invalid("InvalidValue", 'status must be a reference such as {"id": 101}', "status")
        status: dict[str, Any] | None
        if "id" in value:
            status = self.catalog.status_of(board_id, value["id"])
            if status is None:
                raise invalid(
                    "NotFound", f"Service Status {value['id']} not found for Service Board {board_id}", "status/id"
                )
        else:
            name = str(value.get("name", ""))
            status = self.catalog.status_named(board_id, name)
            if status is None:
                raise invalid(
                    "NotFound", f"Service Status {name} not found for Service Board {board_id}", "status/name"
                )
        return self.catalog.status_ref(board_id, status)

    def _priority(self, value: Any) -> dict[str, Any]:
        if value is None:
            return self.catalog.priority_ref(next(p for p in self.catalog.priorities if p["defaultFlag"]))
        for priority in self.catalog.priorities:
            if isinstance(value, dict) and (
                priority["id"] == value.get("id")
                or (isinstance(value.get("name"), str) and priority["name"].casefold() == value["name"].casefold())
            ):
                return self.catalog.priority_ref(priority)
        wanted = value.get("id", value.get("name")) if isinstance(value, dict) else value
        raise invalid("NotFound", f"Priority {wanted} not found", "priority/id")

    def _reference(self, name: str, board_id: int, value: Any, record: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid("InvalidValue", f'{name} must be a reference such as {{"id": 1}}', name)
        wanted_id = value.get("id")
        wanted_name = value.get("name") if isinstance(value.get("name"), str) else None
        if name == "source":
            for source in self.catalog.sources:
                if source["id"] == wanted_id or (wanted_name and source["name"].casefold() == wanted_name.casefold()):
                    return self.catalog.source_ref(source)
        elif name == "owner":
            member = self.catalog.member_by(id=wanted_id, identifier=value.get("identifier"))
            if member is not None:
                return member
        elif name == "contact":
            contact = self.contacts.get(wanted_id) if isinstance(wanted_id, int) else None
            if contact is not None:
                record.setdefault("contactName", contact.name)
                record.setdefault("contactEmailAddress", contact.email)
                record.setdefault("contactPhoneNumber", contact.phone)
                return {
                    "id": contact.id,
                    "name": contact.name,
                    "_info": {"contact_href": f"{HREF_BASE}/company/contacts/{contact.id}"},
                }
        elif name in ("type", "subType", "item"):
            table = {"type": self.catalog.types, "subType": self.catalog.subtypes, "item": self.catalog.items}[name]
            for (board, label), ref in table.items():
                if board == board_id and (
                    ref["id"] == wanted_id or (wanted_name and label.casefold() == wanted_name.casefold())
                ):
                    return ref
            label = "Type" if name == "type" else "SubType" if name == "subType" else "Item"
            raise invalid(
                "NotFound", f"{label} {wanted_id or wanted_name} not found for Service Board {board_id}", f"{name}/id"
            )
        else:  # team, site, agreement: kept as given (the simulator does not model them further)
            return dict(value)
        raise invalid(
            "NotFound", f"{name} {wanted_id or wanted_name or value.get('identifier')} not found", f"{name}/id"
        )
