"""ConnectWise PSA (Manage) REST API simulator under ``/v4_6_release/apis/3.0``, with its auth, errors and quirks.

Service tickets, notes, time entries, boards, statuses, types, priorities, sources, members and callbacks.

Sources (VENDOR-APIS.md section 1 shorthand; the published 2015 Service API spec in vendor-specs/connectwise):

- Auth: ``Authorization: Basic base64("company+publicKey:privateKey")`` plus a ``clientId`` header (pyCW
  ``_get_headers``). Bad credentials: 401 (pyCW). Without ``clientId`` ConnectWise answers 400 with "clientId" in
  the error (mspvectis.com/docs/connectwise) [UNCONFIRMED body; we send our usual error shape].
- Errors: ``{"code", "message", "errors": [{"code", "message", "resource", "field"}]}`` (pyCW ErrorResponseMessage,
  spec ``Error``); 401 code ``UserNotAuthenticated`` (christaylorcodes/ConnectWiseManageAPI#18), 403 ``Security``
  "You do not have security permission to perform this action." (docs.xyte.io kb-5017).
- Rate limits: ConnectWise publishes no number; cloud instances sit behind Cloudflare, which answers 429 with a
  Retry-After header and its own HTML page, not ConnectWise's JSON (pyconnectwise PR #41). The simulator enforces
  ``CLOUDFLARE_LIMIT`` requests per minute per API key [UNCONFIRMED figure].
- 500s: ConnectWise answers database timeouts with 500 and a message saying "timeout" (pyCW retries exactly those);
  the fault injector's 500s look like that. 502/503/504 come from Cloudflare, as HTML.
- Lists: ``conditions``, ``orderBy``, ``page``/``pageSize`` (default 25, max 1000), ``fields``, ``Link`` header;
  ``/count`` answers ``{"count": n}`` (connectwise_conditions.py, connectwise_query.py). A list record is the whole
  record, as a GET by id answers it (``fields`` only narrows it). Time entries of many tickets come from one list:
  ``chargeToType = "ServiceTicket" and chargeToId in (1, 2, ...)``; notes and configurations exist only under
  their ticket (``/service/tickets/{id}/notes``, ``/configurations``: no bulk read).
- Codebase discovery: ``GET /login/companyinfo/{company}`` at the site root, without credentials, answers the
  instance's ``Codebase`` (``v4_6_release/``), which clients put before ``apis/3.0`` (pyCW
  ``_try_get_codebase_from_api`` reads ``Codebase``; the other fields are [UNCONFIRMED] as observed in the wild).
- Writes: POST creates (201), PATCH takes a JSON Patch array, PUT replaces (connectwise_writes.py). Adding a note or
  a time entry moves the ticket's ``_info/lastUpdated`` and fires its callback [UNCONFIRMED: observed behaviour
  reported by integrators, not documented].
- Callbacks (``/system/callbacks``): see connectwise_callbacks.py. A write with ``skipCallback: true`` fires none
  (pyCW Ticket model).
"""

from __future__ import annotations

import base64
import gc
import hmac
import json
import random
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.connectwise_callbacks import KEY_PATH, CallbackHub
from psabridge_sandbox.connectwise_conditions import ConditionError, compile_conditions, parse_datetime
from psabridge_sandbox.connectwise_query import Paging, dict_getter, link_header, order, paging, project
from psabridge_sandbox.connectwise_records import API_MEMBER, HREF_BASE, Catalog, stamp
from psabridge_sandbox.connectwise_writes import CwError, TicketWriter, invalid, json_body
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.credentials import CW_CLIENT_ID, CW_COMPANY, CW_PRIVATE_KEY, CW_PUBLIC_KEY
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.registry import SandboxContext, register
from psabridge_sandbox.table import Change, Row
from psabridge_sandbox.tickets import SeedTicket

__all__ = ["API_ROOT", "CLOUDFLARE_LIMIT", "ConnectWiseSimulator", "build"]

API_ROOT = "/v4_6_release/apis/3.0"
CLOUDFLARE_LIMIT = 1200
"""Requests per minute per API key before the simulated Cloudflare answers 429 [UNCONFIRMED: no published figure]."""

_CLOUDFLARE_PAGE = (
    "<!DOCTYPE html><html><head><title>{title} | api-na.myconnectwise.net | Cloudflare</title></head>"
    "<body><h1>{title}</h1><p>{text}</p></body></html>"
)


def render_error(error: VendorError) -> Response:
    """ConnectWise's JSON error body; Cloudflare's HTML for 429 and gateway errors."""
    if error.status == 429:
        page = _CLOUDFLARE_PAGE.format(title="Error 1015", text="You are being rate limited.")
        return Response(page, status_code=429, media_type="text/html")
    if error.status in (502, 503, 504):
        page = _CLOUDFLARE_PAGE.format(title=f"Error {error.status}", text=error.message)
        return Response(page, status_code=error.status, media_type="text/html")
    message = error.message
    code = error.code
    if error.status == 500 and message == "Internal Server Error":
        # How ConnectWise reports a database timeout; clients retry 500s that say "timeout" (pyCW).
        code = code or "UnexpectedError"
        message = "An unexpected error occurred: Execution Timeout Expired. The timeout period elapsed."
    errors = [dict(item) for item in error.errors] if isinstance(error, CwError) else []
    return JSONResponse(
        {"code": code or _CODES.get(error.status, "Error"), "message": message, "errors": errors},
        status_code=error.status,
    )


_CODES = {400: "InvalidObject", 401: "UserNotAuthenticated", 403: "Security", 404: "NotFound", 405: "MethodNotAllowed",
          409: "Conflict", 500: "UnexpectedError"}  # fmt: skip

_TICKET_KNOWN = frozenset(
    {
        "id", "summary", "recordtype", "board", "status", "company", "site", "sitename", "contact", "contactname",
        "contactphonenumber", "contactemailaddress", "type", "subtype", "item", "team", "owner", "priority", "source",
        "severity", "impact", "externalxref", "ponumber", "requireddate", "budgethours", "closedflag", "closeddate",
        "closedby", "customerupdatedflag", "dateresolved", "dateresponded", "isinsla", "resources", "parentticketid",
        "sla", "actualhours", "_info", "lastupdated", "dateentered", "enteredby", "updatedby", "customfields",
        "agreement", "haschildticket", "approved",
    }
)  # fmt: skip
_NOTE_KNOWN = frozenset(
    {"id", "ticketid", "text", "detaildescriptionflag", "internalanalysisflag", "resolutionflag", "issueflag",
     "member", "contact", "customerupdatedflag", "processnotifications", "datecreated", "createdby", "internalflag",
     "externalflag", "_info"}
)  # fmt: skip
_TIME_KNOWN = frozenset(
    {"id", "company", "chargetoid", "chargetotype", "member", "timestart", "timeend", "actualhours", "billableoption",
     "notes", "internalnotes", "worktype", "workrole", "enteredby", "dateentered", "ticket", "status", "_info",
     "hoursbilled", "hoursdeduct"}
)  # fmt: skip
_CHARGE_TO = re.compile(r"\bchargeToId\s*=\s*(\d+)\b", re.IGNORECASE)
_CHARGE_TO_ANY = re.compile(r"\bchargeToId\s+in\s*\(\s*(\d+(?:\s*,\s*\d+)*)\s*\)", re.IGNORECASE)
COMPANY_INFO = "/login/companyinfo/{company}"
CODEBASE = API_ROOT.strip("/").partition("/")[0] + "/"  # "v4_6_release/": the stable alias (VENDOR-APIS.md 1.1)


class ConnectWiseSimulator:
    """One ConnectWise instance: the MSP's service boards with every client's tickets."""

    def __init__(self, context: SandboxContext, *, webhook_transport: httpx.BaseTransport | None = None) -> None:
        self.catalog = Catalog(context.world)
        self.writer = TicketWriter(self.catalog, context.world)
        self.rng = random.Random(f"psabridge-connectwise:{context.seed}")
        self.lock = threading.RLock()
        self.api_root = API_ROOT
        self.simulator = Simulator(
            context.service.name,
            auth=self.authenticate,
            errors=render_error,
            faults=context.faults,
            seed=context.seed,
            clock=context.clock,
            state=self.state,
            signer=lambda body, subscription: self.callbacks.signer(body, subscription),
            webhook_transport=webhook_transport,
        )
        sim = self.simulator
        sim.rate_limit(context.limit(CLOUDFLARE_LIMIT), 60, message="You are being rate limited.")
        self.tickets = sim.table("tickets", first_id=1001)
        self._seeds: dict[int, SeedTicket] = {}
        self._note_base: dict[int, int] = {}
        self._time_base: dict[int, int] = {}
        self._notes: dict[int, list[dict[str, Any]]] = {}
        self._time: dict[int, list[dict[str, Any]]] = {}
        self._next_note = 1
        self._next_time = 1
        seeds = context.seed_tickets()
        collecting = gc.isenabled()
        gc.disable()  # as in tickets.generate_tickets: no cycles here, so the collector would only rescan the heap
        try:
            self._load(seeds)
        finally:
            if collecting:
                gc.enable()
        self.tickets.on_change(self._on_change)
        self._generation = 0
        self._sorted: OrderedDict[tuple[Any, ...], list[Row]] = OrderedDict()
        self._pages: deque[dict[str, Any]] = deque(maxlen=1000)
        self.callbacks = CallbackHub(self)

        def route(path: str, endpoint: Callable[[Request], Any], *methods: str) -> None:
            sim.add_route(API_ROOT + path, endpoint, methods=list(methods))

        route("/service/tickets", self.list_tickets, "GET")
        route("/service/tickets", self.create_ticket, "POST")
        route("/service/tickets/count", self.count_tickets, "GET")
        route("/service/tickets/{id:int}", self.get_ticket, "GET")
        route("/service/tickets/{id:int}", self.patch_ticket, "PATCH")
        route("/service/tickets/{id:int}", self.put_ticket, "PUT")
        route("/service/tickets/{id:int}/notes", self.list_notes, "GET")
        route("/service/tickets/{id:int}/notes", self.add_note, "POST")
        route("/service/tickets/{id:int}/notes/count", self.count_notes, "GET")
        route("/service/tickets/{id:int}/notes/{note:int}", self.get_note, "GET")
        route("/service/tickets/{id:int}/configurations", self.list_configurations, "GET")
        route("/time/entries", self.list_time, "GET")
        route("/time/entries", self.add_time, "POST")
        route("/time/entries/count", self.count_time, "GET")
        route("/service/boards", self.list_boards, "GET")
        route("/service/boards/{id:int}/statuses", self.list_statuses, "GET")
        route("/service/boards/{id:int}/types", self.list_types, "GET")
        route("/service/boards/{id:int}/subtypes", self.list_subtypes, "GET")
        route("/service/boards/{id:int}/items", self.list_items, "GET")
        route("/service/priorities", self.list_priorities, "GET")
        route("/service/sources", self.list_sources, "GET")
        route("/system/members", self.list_members, "GET")
        route("/system/callbacks", self.callbacks.list, "GET")
        route("/system/callbacks", self.callbacks.add, "POST")
        route("/system/callbacks/{id:int}", self.callbacks.get, "GET")
        route("/system/callbacks/{id:int}", self.callbacks.delete, "DELETE")
        route("/system/callbacks/{id:int}", self.callbacks.replace, "PUT")
        sim.add_route(KEY_PATH, self.callbacks.signing_key, methods=["GET"])
        sim.add_route(COMPANY_INFO, self.company_info, methods=["GET"], case_sensitive=False)

    def _load(self, seeds: list[SeedTicket]) -> None:
        """Seed tickets -> native tickets; notes and time entries get their ids now and their records on first use."""
        for seed in seeds:
            row = self.tickets.insert(
                self.catalog.ticket(seed), created=seed.created_at, updated=seed.updated_at, notify=False
            )
            assert isinstance(row.id, int)
            self._seeds[row.id] = seed
            self._note_base[row.id] = self._next_note
            self._next_note += 1 + len(seed.notes)
            self._time_base[row.id] = self._next_time
            self._next_time += len(seed.time_entries)

    # --- auth, state ---------------------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> str | None:
        """Basic ``company+publicKey:privateKey`` plus ``clientId``; the signing key and company info need neither."""
        if request.url.path == KEY_PATH or request.url.path.lower().startswith("/login/companyinfo/"):
            return None
        if not request.headers.get("clientid"):
            raise VendorError(
                400,
                "clientId header is required: register one at https://developer.connectwise.com/ClientID",
                code="InvalidClientId",
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user = password = ""
        company, _, public = user.partition("+")
        ok = (
            scheme.lower() == "basic"
            and company.casefold() == CW_COMPANY.casefold()
            and hmac.compare_digest(public, CW_PUBLIC_KEY)
            and hmac.compare_digest(password, CW_PRIVATE_KEY)
        )
        if not ok:
            raise VendorError(401, "Authentication failed: check the company, public key and private key.")
        if request.headers["clientid"] != CW_CLIENT_ID:
            raise VendorError(400, "clientId is not a registered integration", code="InvalidClientId")
        return f"{company}+{public}"

    async def company_info(self, request: Request) -> Response:
        """GET /login/companyinfo/{company}: where the company's API lives (its codebase), asked before anything."""
        company = request.path_params["company"]
        if company.casefold() != CW_COMPANY.casefold():
            raise VendorError(404, f"Company {company} not found", code="NotFound")  # [UNCONFIRMED answer]
        return JSONResponse(
            {
                "CompanyName": CW_COMPANY,
                "Codebase": CODEBASE,
                "VersionCode": "v2025.1",
                "VersionNumber": "v4.6.2025.1",
                "CompanyID": CW_COMPANY,
                "IsCloud": True,
                "SiteUrl": request.url.netloc,
            }
        )

    def state(self) -> dict[str, Any]:
        """Tickets, the notes and time entries read or written so far, pages served and callbacks."""
        with self.lock:
            return {
                "tickets": [self.render(row, base=HREF_BASE) for row in self.tickets.rows()],
                "notes": {str(k): list(v) for k, v in self._notes.items()},
                "time_entries": {str(k): list(v) for k, v in self._time.items()},
                "pages": list(self._pages),
                "callbacks": self.callbacks.records(),
            }

    # --- rendering -----------------------------------------------------------------------------------------------

    def render(self, row: Row, *, base: str) -> dict[str, Any]:
        """A ticket as the API answers it (``_info`` from the row's times)."""
        data = row.data
        record: dict[str, Any] = {"id": row.id}
        record.update((k, v) for k, v in data.items() if k[0] != "_")
        record["_info"] = {
            "lastUpdated": stamp(row.updated),
            "updatedBy": data.get("_updatedBy", API_MEMBER),
            "dateEntered": stamp(row.created),
            "enteredBy": data.get("_enteredBy", API_MEMBER),
            "notes_href": f"{base}/service/tickets/{row.id}/notes",
            "timeentries_href": f"{base}/service/tickets/{row.id}/timeentries",
            "configurations_href": f"{base}/service/tickets/{row.id}/configurations",
        }
        return record

    def json_response(
        self, request: Request, body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """JSON with stored hrefs pointed at the address the client used."""
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        text = text.replace(HREF_BASE, _base(request))
        return Response(text, status_code=status, media_type="application/json", headers=dict(headers or {}))

    # --- tickets -------------------------------------------------------------------------------------------------

    def _ticket_get(self, row: Any, path: tuple[str, ...]) -> Any:
        head = path[0]
        if head not in _TICKET_KNOWN:
            raise ConditionError(f"unknown field {'/'.join(path)!r}")
        if head == "id":
            return row.id
        if head == "_info" and len(path) > 1:
            head = path[1]
        elif head == "_info":
            return None
        if head == "lastupdated":
            return row.updated
        if head == "dateentered":
            return row.created
        if head in ("updatedby", "enteredby"):
            return row.data.get("_updatedBy" if head == "updatedby" else "_enteredBy")
        return dict_getter(_TICKET_KNOWN)(row.data, path)

    def _matching(self, request: Request) -> list[Row]:
        """Tickets matching ``conditions`` in ``orderBy`` order (cached until a ticket changes)."""
        conditions = request.query_params.get("conditions")
        order_by = request.query_params.get("orderBy")
        key = (conditions, order_by, self._generation)
        with self.lock:
            found = self._sorted.get(key)
            if found is not None:
                self._sorted.move_to_end(key)
                return found
        test = compile_conditions(conditions, self._ticket_get)
        rows = self.tickets.rows()
        selected = [row for row in rows if test(row)] if test is not None else rows
        selected = order(selected, order_by, self._ticket_get)
        with self.lock:
            if key[2] == self._generation:
                self._sorted[key] = selected
                while len(self._sorted) > 8:
                    self._sorted.popitem(last=False)
        return selected

    async def list_tickets(self, request: Request) -> Response:
        """GET /service/tickets."""
        page, rows, total = self._page(request, self._matching)
        body = [project(self.render(row, base=HREF_BASE), request.query_params.get("fields")) for row in rows]
        self._pages.append(
            {
                "path": "/service/tickets",
                "query": request.url.query,
                "page": page.page,
                "pageSize": page.size,
                "returned": len(body),
                "total": total,
            }
        )
        response = self.json_response(request, body, headers=_links(request, page, total))
        self.simulator.between_pages(self.tickets, change=self._churn_change, create=self._churn_create)
        return response

    def _page(self, request: Request, select: Callable[[Request], list[Any]]) -> tuple[Paging, list[Any], int]:
        try:
            page = paging(request)
            everything = select(request)
        except ConditionError as exc:
            raise CwError(400, str(exc), code="InvalidObject") from None
        return page, list(page.slice(everything)), len(everything)

    async def count_tickets(self, request: Request) -> Response:
        """GET /service/tickets/count."""
        try:
            return self.json_response(request, {"count": len(self._matching(request))})
        except ConditionError as exc:
            raise CwError(400, str(exc), code="InvalidObject") from None

    def _row(self, request: Request) -> Row:
        row = self.tickets.get(request.path_params["id"])
        if row is None:
            raise VendorError(404, f"Ticket recId {request.path_params['id']} not found", code="NotFound")
        return row

    async def get_ticket(self, request: Request) -> Response:
        """GET /service/tickets/{id}."""
        record = self.render(self._row(request), base=HREF_BASE)
        return self.json_response(request, project(record, request.query_params.get("fields")))

    async def patch_ticket(self, request: Request) -> Response:
        """PATCH /service/tickets/{id} with a JSON Patch array."""
        row = self._row(request)
        record, flags = self.writer.patch(row.data, await json_body(request))
        return self._save(request, row, record, flags)

    async def put_ticket(self, request: Request) -> Response:
        """PUT /service/tickets/{id}: the whole ticket."""
        row = self._row(request)
        record, flags = self.writer.put(row.data, await json_body(request))
        return self._save(request, row, record, flags)

    def _save(self, request: Request, row: Row, record: dict[str, Any], flags: Mapping[str, Any]) -> Response:
        record["_updatedBy"] = API_MEMBER
        if record.get("closedFlag") and not row.data.get("closedFlag"):
            record["closedDate"] = stamp(self.tickets.stamp())
            record["closedBy"] = API_MEMBER
        elif not record.get("closedFlag"):
            record.pop("closedDate", None)
            record.pop("closedBy", None)
        updated = self.tickets.replace(row.id, record, notify=False)
        self._changed("updated", updated, skip=bool(flags.get("skipCallback")))
        return self.json_response(request, self.render(updated, base=HREF_BASE))

    async def create_ticket(self, request: Request) -> Response:
        """POST /service/tickets: initialDescription and friends become notes (never returned)."""
        record, flags = self.writer.create(await json_body(request))
        record["_enteredBy"] = record["_updatedBy"] = API_MEMBER
        row = self.tickets.insert(record, notify=False)
        assert isinstance(row.id, int)
        with self.lock:
            notes = self._notes[row.id] = []
        for name, flag in (("initialDescription", "detailDescriptionFlag"),
                           ("initialInternalAnalysis", "internalAnalysisFlag"),
                           ("initialResolution", "resolutionFlag")):  # fmt: skip
            text = flags.get(name)
            if isinstance(text, str) and text.strip():
                notes.append(self._new_note(row.id, {"text": text, flag: True}))
        self._changed("created", row, skip=bool(flags.get("skipCallback")))
        return self.json_response(request, self.render(row, base=HREF_BASE), status=201)

    def _churn_change(self, row: Row) -> dict[str, Any]:
        return {"_updatedBy": "dwhitfield", "customerUpdatedFlag": not row.data.get("customerUpdatedFlag", False)}

    def _churn_create(self) -> dict[str, Any]:
        ids = self.tickets.ids()
        template = self.tickets[ids[int(self.rng.random() * len(ids))]].data
        # A person's new ticket, shaped like an existing one but without the integration's externalXRef: a copy of
        # a mirror's marker would be a second mirror of the same source to every client that looks markers up.
        fresh = {k: v for k, v in template.items() if k != "externalXRef"}
        return {**fresh, "summary": f"New while paging: {template['summary']}"[:100], "_updatedBy": "zadmin"}

    # --- changes -----------------------------------------------------------------------------------------------

    def _on_change(self, change: Change, row: Row) -> None:
        """A change made outside the API (the churn faults): bump the list cache and call back."""
        self._changed(change, row, skip=False, by_api=False)

    def _changed(self, change: Change, row: Row, *, skip: bool, by_api: bool = True) -> None:
        with self.lock:
            self._generation += 1
            self._sorted.clear()
        if not skip:
            self.callbacks.emit(change, row, by_api=by_api)

    # --- notes -------------------------------------------------------------------------------------------------------

    def notes_of(self, ticket_id: int) -> list[dict[str, Any]]:
        """A ticket's notes, made from its seed on first use."""
        with self.lock:
            found = self._notes.get(ticket_id)
            if found is None:
                seed = self._seeds.get(ticket_id)
                found = self._notes[ticket_id] = (
                    self.catalog.notes(seed, self._note_base[ticket_id], ticket_id) if seed else []
                )
            return found

    def _new_note(self, ticket_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            note_id = self._next_note
            self._next_note += 1
        now = stamp(self.tickets.stamp())
        note: dict[str, Any] = {
            "id": note_id,
            "ticketId": ticket_id,
            "text": body["text"],
            "detailDescriptionFlag": bool(body.get("detailDescriptionFlag", False)),
            "internalAnalysisFlag": bool(body.get("internalAnalysisFlag", False)),
            "resolutionFlag": bool(body.get("resolutionFlag", False)),
            "issueFlag": bool(body.get("issueFlag", False)),
            "member": self.catalog.members[API_MEMBER],
            "customerUpdatedFlag": bool(body.get("customerUpdatedFlag", False)),
            "processNotifications": bool(body.get("processNotifications", False)),
            "dateCreated": now,
            "createdBy": API_MEMBER,
            "internalFlag": bool(body.get("internalAnalysisFlag", False)),
            "externalFlag": not body.get("internalAnalysisFlag", False),
            "_info": {"lastUpdated": now, "updatedBy": API_MEMBER},
        }
        member = body.get("member")
        if isinstance(member, dict):
            found = self.catalog.member_by(id=member.get("id"), identifier=member.get("identifier"))
            if found is None:
                raise invalid(
                    "NotFound",
                    f"Member {member.get('id', member.get('identifier'))} not found",
                    "member/id",
                    resource="serviceNote",
                )
            note["member"] = found
        return note

    async def list_notes(self, request: Request) -> Response:
        """GET /service/tickets/{id}/notes."""
        row = self._row(request)
        assert isinstance(row.id, int)
        return self.list_response(request, self.notes_of(row.id), _NOTE_KNOWN)

    async def count_notes(self, request: Request) -> Response:
        """GET /service/tickets/{id}/notes/count."""
        row = self._row(request)
        assert isinstance(row.id, int)
        return self._count(request, self.notes_of(row.id), _NOTE_KNOWN)

    async def get_note(self, request: Request) -> Response:
        """GET /service/tickets/{id}/notes/{noteId}."""
        row = self._row(request)
        assert isinstance(row.id, int)
        for note in self.notes_of(row.id):
            if note["id"] == request.path_params["note"]:
                return self.json_response(request, note)
        raise VendorError(404, f"ServiceNote recId {request.path_params['note']} not found", code="NotFound")

    async def add_note(self, request: Request) -> Response:
        """POST /service/tickets/{id}/notes: text plus at least one of the three flags."""
        row = self._row(request)
        assert isinstance(row.id, int)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise CwError(400, "The request body must be a note object", code="InvalidObject")
        if not isinstance(body.get("text"), str) or not body["text"].strip():
            raise invalid("MissingRequiredField", "The text field is required.", "text", resource="serviceNote")
        if not any(body.get(f) is True for f in ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")):
            # A note must be Discussion, Internal or Resolution [UNCONFIRMED message].
            raise invalid(
                "InvalidValue",
                "One of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true.",
                "detailDescriptionFlag",
                resource="serviceNote",
            )
        note = self._new_note(row.id, body)
        self.notes_of(row.id).append(note)
        self._touch(row)
        return self.json_response(request, note, status=201)

    def _touch(self, row: Row) -> None:
        touched = self.tickets.update(row.id, {"_updatedBy": API_MEMBER}, notify=False)
        self._changed("updated", touched, skip=False)

    async def list_configurations(self, request: Request) -> Response:
        """GET /service/tickets/{id}/configurations."""
        row = self._row(request)
        assert isinstance(row.id, int)
        seed = self._seeds.get(row.id)
        return self.json_response(request, self.catalog.configurations(seed) if seed else [])

    # --- time entries ------------------------------------------------------------------------------------------------

    def time_of(self, ticket_id: int) -> list[dict[str, Any]]:
        """A ticket's time entries, made from its seed on first use."""
        with self.lock:
            found = self._time.get(ticket_id)
            if found is None:
                seed = self._seeds.get(ticket_id)
                base = self._time_base.get(ticket_id, 0)
                summary = self.tickets[ticket_id].data["summary"]
                found = self._time[ticket_id] = (
                    [
                        self.catalog.time_entry(seed, entry, base + i, ticket_id, summary)
                        for i, entry in enumerate(seed.time_entries)
                    ]
                    if seed
                    else []
                )
            return found

    def _all_time(self, request: Request) -> list[dict[str, Any]]:
        """The time entries a query may match: those of the tickets its conditions name, else every ticket's."""
        conditions = request.query_params.get("conditions") or ""
        if " or " not in conditions.lower():
            many = _CHARGE_TO_ANY.search(conditions)
            single = _CHARGE_TO.search(conditions)
            named = [int(n) for n in many.group(1).split(",")] if many else [int(single.group(1))] if single else None
            if named is not None:
                return [entry for ticket_id in named if ticket_id in self.tickets for entry in self.time_of(ticket_id)]
        found: list[dict[str, Any]] = []
        for ticket_id in self.tickets.ids():
            assert isinstance(ticket_id, int)
            found.extend(self.time_of(ticket_id))
        return found

    async def list_time(self, request: Request) -> Response:
        """GET /time/entries."""
        return self.list_response(request, self._all_time(request), _TIME_KNOWN)

    async def count_time(self, request: Request) -> Response:
        """GET /time/entries/count."""
        return self._count(request, self._all_time(request), _TIME_KNOWN)

    async def add_time(self, request: Request) -> Response:
        """POST /time/entries charged to a ticket (chargeToId, chargeToType ServiceTicket, timeStart)."""
        body = await json_body(request)
        if not isinstance(body, dict):
            raise CwError(400, "The request body must be a time entry object", code="InvalidObject")
        if body.get("chargeToType", "ServiceTicket") != "ServiceTicket":
            raise invalid(
                "InvalidValue", "the sandbox charges time to ServiceTicket only", "chargeToType", resource="timeEntry"
            )
        charge_to = body.get("chargeToId")
        row = self.tickets.get(charge_to) if isinstance(charge_to, int) else None
        if row is None:
            raise invalid(
                "NotFound", f"ServiceTicket {body.get('chargeToId')} not found", "chargeToId", resource="timeEntry"
            )
        assert isinstance(row.id, int)
        try:
            started = parse_datetime(str(body["timeStart"]))
            ended = parse_datetime(str(body["timeEnd"])) if body.get("timeEnd") else None
        except KeyError:
            raise invalid(
                "MissingRequiredField", "The timeStart field is required.", "timeStart", resource="timeEntry"
            ) from None
        except ValueError:
            raise invalid(
                "InvalidValue", "timeStart and timeEnd must be dates", "timeStart", resource="timeEntry"
            ) from None
        hours = body.get("actualHours")
        if hours is None and ended is not None:
            hours = (ended - started).total_seconds() / 3600
        if not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0:
            raise invalid(
                "InvalidValue",
                "actualHours (or timeEnd after timeStart) is required",
                "actualHours",
                resource="timeEntry",
            )
        member = self.catalog.members[API_MEMBER]
        if isinstance(body.get("member"), dict):
            wanted = body["member"]
            found = self.catalog.member_by(id=wanted.get("id"), identifier=wanted.get("identifier"))
            if found is None:
                raise invalid(
                    "NotFound",
                    f"Member {wanted.get('id', wanted.get('identifier'))} not found",
                    "member/id",
                    resource="timeEntry",
                )
            member = found
        company = self.catalog.company_by(id=row.data["company"]["id"]) or next(iter(self.catalog.companies.values()))
        with self.lock:
            entry_id = max(self._next_time, 1)
            self._next_time = entry_id + 1
        record = self.catalog.time_record(
            entry_id=entry_id,
            company=company,
            ticket_id=row.id,
            summary=row.data["summary"],
            member=member,
            started=started,
            ended=ended,
            hours=float(hours),
            notes=str(body.get("notes", "")),
            billable=body.get("billableOption", "Billable") == "Billable",
            entered_by=API_MEMBER,
            internal_notes=body.get("internalNotes") if isinstance(body.get("internalNotes"), str) else None,
        )
        record["billableOption"] = body.get("billableOption", "Billable")
        record["dateEntered"] = stamp(self.tickets.stamp())
        record["_info"] = {"lastUpdated": record["dateEntered"], "updatedBy": API_MEMBER}
        self.time_of(row.id).append(record)
        self._touch(row)
        return self.json_response(request, record, status=201)

    # --- metadata ------------------------------------------------------------------------------------------------

    def list_response(self, request: Request, records: list[dict[str, Any]], known: frozenset[str]) -> Response:
        getter = dict_getter(known)

        def select(request: Request) -> list[Any]:
            test = compile_conditions(request.query_params.get("conditions"), getter)
            chosen = [r for r in records if test(r)] if test is not None else records
            return order(chosen, request.query_params.get("orderBy"), getter)

        page, items, total = self._page(request, select)
        fields = request.query_params.get("fields")
        return self.json_response(
            request, [project(item, fields) for item in items], headers=_links(request, page, total)
        )

    def _count(self, request: Request, records: list[dict[str, Any]], known: frozenset[str]) -> Response:
        try:
            test = compile_conditions(request.query_params.get("conditions"), dict_getter(known))
            return self.json_response(request, {"count": sum(1 for r in records if test is None or test(r))})
        except ConditionError as exc:
            raise CwError(400, str(exc), code="InvalidObject") from None

    def _board_id(self, request: Request) -> int:
        board_id: int = request.path_params["id"]
        if board_id not in self.catalog.boards:
            raise VendorError(404, f"Service Board recId {board_id} not found", code="NotFound")
        return board_id

    async def list_boards(self, request: Request) -> Response:
        """GET /service/boards."""
        return self.list_response(request, list(self.catalog.boards.values()), _known(self.catalog.boards.values()))

    async def list_statuses(self, request: Request) -> Response:
        """GET /service/boards/{id}/statuses."""
        statuses = self.catalog.statuses[self._board_id(request)]
        return self.list_response(request, statuses, _known(statuses))

    def _board_refs(self, request: Request, table: Mapping[tuple[int, str], dict[str, Any]]) -> Response:
        board_id = self._board_id(request)
        records = [{"id": ref["id"], "name": name, "inactive": False, "boardId": board_id}
                   for (board, name), ref in table.items() if board == board_id]  # fmt: skip
        return self.list_response(request, records, frozenset({"id", "name", "inactive", "boardid"}))

    async def list_types(self, request: Request) -> Response:
        """GET /service/boards/{id}/types."""
        return self._board_refs(request, self.catalog.types)

    async def list_subtypes(self, request: Request) -> Response:
        """GET /service/boards/{id}/subtypes."""
        return self._board_refs(request, self.catalog.subtypes)

    async def list_items(self, request: Request) -> Response:
        """GET /service/boards/{id}/items."""
        return self._board_refs(request, self.catalog.items)

    async def list_priorities(self, request: Request) -> Response:
        """GET /service/priorities."""
        return self.list_response(request, self.catalog.priorities, _known(self.catalog.priorities))

    async def list_sources(self, request: Request) -> Response:
        """GET /service/sources."""
        return self.list_response(request, self.catalog.sources, _known(self.catalog.sources))

    async def list_members(self, request: Request) -> Response:
        """GET /system/members (id, identifier, name)."""
        members = [{"id": m["id"], "identifier": m["identifier"], "name": m["name"], "inactiveFlag": False}
                   for m in self.catalog.members.values()]  # fmt: skip
        return self.list_response(request, members, _known(members))


def _known(records: Any) -> frozenset[str]:
    return frozenset(key.lower() for record in records for key in record)


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{API_ROOT}"


def _links(request: Request, page: Paging, total: int) -> dict[str, str]:
    value = link_header(request, page, total)
    return {"Link": value} if value else {}


@register("connectwise")
def build(context: SandboxContext) -> Simulator:
    """The ConnectWise PSA simulator."""
    return ConnectWiseSimulator(context).simulator
