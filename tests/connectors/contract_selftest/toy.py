"""A toy vendor: simulator (sandbox core), connector (HttpConnector) and contract harness, in the vendors' shapes.

It exists to prove the contract suite and the shared layer work end to end before the real vendors arrive, and to
show a vendor engineer the three pieces at their smallest. Quirks: an API key header, page-number paging ordered
by id with a Link header, ``updated_since`` filtering, errors as ``{"fault": {"text", "code"}}``, and webhooks
signed ``X-Toy-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge.connectors.auth import HeaderAuth, require_secret
from psabridge.connectors.base import NewTimeEntry, Page, WebhookEvent
from psabridge.connectors.budget import BudgetLimits, Charge, Window
from psabridge.connectors.http import HttpRuntime
from psabridge.connectors.pagination import PageNumberPaginator, PageRequest
from psabridge.connectors.rest import ChangeRun, HttpConnector
from psabridge.errors import PermanentError, WebhookVerificationError
from psabridge.model import NoteKind, System
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import Choice, RawRecord, VendorMetadata
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.dispatcher import Subscription
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.table import Row

from ..contract.harness import Served, VendorHarness, WebhookDelivery, WebhookVariant, connection_settings

API_KEY = "toy-api-key"
WEBHOOK_SECRET = "toy-webhook-secret"
KEY_HEADER = "X-Toy-Key"
SIGNATURE_HEADER = "X-Toy-Signature"
MAX_PAGE = 100
SIGNATURE_WINDOW = 300  # seconds a signed delivery stays acceptable
VIEW_LIMIT, VIEW_WINDOW = 10, 2.0  # reads of one ticket per window (a sub-limit, as Freshservice has)
_ONE_TICKET = re.compile(r"^/?(api/)?tickets/\d+$")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the simulator ----------------------------------------------------------------------------------------------------


def toy_errors(error: VendorError) -> Response:
    return JSONResponse({"fault": {"text": error.message, "code": error.code or "ERROR"}}, status_code=error.status)


def toy_auth(request: Request) -> str:
    if request.headers.get(KEY_HEADER) != API_KEY:
        raise VendorError(401, "Invalid API key", code="AUTH")
    return "integration"


def _one_ticket_read(request: Request, principal: str | None) -> str | None:
    return "view" if request.method == "GET" and _ONE_TICKET.match(request.url.path) else None


class ToyVendor:
    """Tickets, notes and time entries in sandbox tables, behind the toy API at ``/api``."""

    def __init__(self, *, tickets: int, seed: int = 0, limits: bool = True) -> None:
        self.simulator = Simulator(
            "toy", auth=toy_auth, errors=toy_errors, seed=seed, state=self.state, signer=self._sign
        )
        sim = self.simulator
        if limits:
            sim.rate_limit(VIEW_LIMIT, VIEW_WINDOW, key=_one_ticket_read)
        self.tickets = sim.table("tickets")
        self.notes = sim.table("notes")
        self.time_entries = sim.table("time_entries")
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
        for number in range(tickets):
            when = start + timedelta(minutes=number)
            data = {"title": f"Ticket {number + 1}", "status": "open", "external_ref": None}
            self.tickets.insert(data, created=when, updated=when, notify=False)
        self.tickets.on_change(self._changed)
        sim.add_route("/api/tickets", self.list_tickets, ["GET"])
        sim.add_route("/api/tickets", self.create_ticket, ["POST"])
        sim.add_route("/api/tickets/{id:int}", self.get_ticket, ["GET"])
        sim.add_route("/api/tickets/{id:int}", self.update_ticket, ["PATCH"])
        sim.add_route("/api/tickets/{id:int}/notes", self.list_notes, ["GET"])
        sim.add_route("/api/tickets/{id:int}/notes", self.add_note, ["POST"])
        sim.add_route("/api/tickets/{id:int}/time_entries", self.add_time_entry, ["POST"])

    @staticmethod
    def render(row: Row) -> dict[str, Any]:
        return {"id": row.id, **row.data, "created_at": iso(row.created), "updated_at": iso(row.updated)}

    def state(self) -> dict[str, Any]:
        return {
            "tickets": len(self.tickets),
            "notes": [self.render(r) for r in self.notes],
            "time_entries": [self.render(r) for r in self.time_entries],
        }

    def _sign(self, body: bytes, subscription: Subscription) -> Mapping[str, str]:
        return {SIGNATURE_HEADER: sign(subscription.secret, body, int(time.time()))}

    def _changed(self, change: str, row: Row) -> None:
        self.simulator.webhooks.emit(f"ticket.{change}", {"event": change, "ticket_id": row.id})

    def _ticket(self, request: Request) -> Row:
        row = self.tickets.get(request.path_params["id"])
        if row is None:
            raise VendorError(404, f"Ticket {request.path_params['id']} not found", code="NOT_FOUND")
        return row

    async def list_tickets(self, request: Request) -> Response:
        query = request.query_params
        since = datetime.fromisoformat(query["updated_since"]) if "updated_since" in query else None
        ref = query.get("external_ref")
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", 30))
        if per_page > MAX_PAGE:
            raise VendorError(400, f"per_page must be at most {MAX_PAGE}", code="INVALID")
        rows = [
            r
            for r in self.tickets.rows()
            if (since is None or r.updated >= since) and (ref is None or r.data.get("external_ref") == ref)
        ]
        chunk = rows[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(rows):
            headers["Link"] = f'<{request.url.include_query_params(page=page + 1)}>; rel="next"'
        self.simulator.between_pages(
            self.tickets, create=lambda: {"title": "Created while paging", "status": "open", "external_ref": None}
        )
        return JSONResponse({"tickets": [self.render(r) for r in chunk]}, headers=headers)

    async def get_ticket(self, request: Request) -> Response:
        return JSONResponse({"ticket": self.render(self._ticket(request))})

    async def update_ticket(self, request: Request) -> Response:
        row = self._ticket(request)
        changes = await request.json()
        unknown = sorted(set(changes) - {"title", "status"})
        if unknown:
            raise VendorError(400, f"Unknown field(s): {', '.join(unknown)}", code="INVALID")
        return JSONResponse({"ticket": self.render(self.tickets.update(row.id, changes))})

    async def create_ticket(self, request: Request) -> Response:
        data = await request.json()
        row = self.tickets.insert({"status": "open", "external_ref": None, **data})
        return JSONResponse({"ticket": self.render(row)}, status_code=201)

    async def list_notes(self, request: Request) -> Response:
        row = self._ticket(request)
        return JSONResponse({"notes": [self.render(n) for n in self.notes if n.data["ticket_id"] == row.id]})

    async def add_note(self, request: Request) -> Response:
        row = self._ticket(request)
        note = self.notes.insert({"ticket_id": row.id, **(await request.json())})
        self.tickets.touch(row.id)
        return JSONResponse({"note": self.render(note)}, status_code=201)

    async def add_time_entry(self, request: Request) -> Response:
        row = self._ticket(request)
        entry = self.time_entries.insert({"ticket_id": row.id, **(await request.json())})
        return JSONResponse({"time_entry": self.render(entry)}, status_code=201)


# --- the connector ----------------------------------------------------------------------------------------------------


class ToyConnector(HttpConnector):
    """The toy vendor's connector: declarations, the vendor's error shape, and the verbs."""

    system = System.FRESHSERVICE  # ConnectionSettings admits only the four vendors; the toy borrows a value
    budget_defaults = BudgetLimits(
        requests=3000, per=60, concurrency=4, windows=(Window("view", VIEW_LIMIT, VIEW_WINDOW + 0.1),)
    )

    def charge_of(self, request: httpx.Request, path: str) -> Charge:
        return Charge(1, ("view",)) if request.method == "GET" and _ONE_TICKET.match(path) else Charge()

    def auth(self) -> httpx.Auth:
        return HeaderAuth.from_secrets(self.settings, {KEY_HEADER: "api_key"})

    def error_message(self, response: httpx.Response) -> str | None:
        try:
            fault = response.json().get("fault") or {}
        except (ValueError, AttributeError):
            return response.text or None
        return str(fault.get("text")) if fault.get("text") else None

    def external_id_of(self, record: RawRecord) -> str:
        return str(record["id"])

    def updated_at_of(self, record: RawRecord) -> datetime | None:
        return datetime.fromisoformat(record["updated_at"])

    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        start = self.read_from(since)
        run = ChangeRun(since=since, external_id=self.external_id_of, updated_at=self.updated_at_of, ordered=False)
        request = PageRequest(url="tickets", params={"updated_since": iso(start)} if start else {})
        paginator = PageNumberPaginator(size=self.page_size(MAX_PAGE, MAX_PAGE), size_param="per_page", link_rel="next")
        for page in self.http.paginate(request, paginator, lambda body: body["tickets"]):
            yield run.page(page.records, last=page.last)

    def get_ticket(self, external_id: str) -> RawRecord:
        ticket: RawRecord = self.http.request_json("GET", f"tickets/{external_id}").data["ticket"]
        ticket["_psa_notes"] = self.list_notes(external_id)
        return ticket

    def list_notes(self, external_id: str) -> list[RawRecord]:
        return list(self.http.request_json("GET", f"tickets/{external_id}/notes").data["notes"])

    def load_metadata(self) -> VendorMetadata:
        statuses = tuple(
            Choice(value=v, label=v.replace("_", " ").title()) for v in ("open", "in_progress", "resolved")
        )
        return VendorMetadata(system=self.system, fields={"status": statuses})

    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        body = {**fields, "external_ref": marker}
        return dict(self.http.request_json("POST", "tickets", json=body).data["ticket"])

    def find_by_marker(self, marker: str) -> str | None:
        found = self.http.request_json("GET", "tickets", params={"external_ref": marker}).data["tickets"]
        return self.external_id_of(found[0]) if found else None

    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        # Setting fields to values is idempotent, so a PATCH here may be retried like a GET.
        reply = self.http.request_json("PATCH", f"tickets/{external_id}", json=patch, idempotent=True)
        return dict(reply.data["ticket"])

    def add_note(self, external_id: str, text: str, *, kind: NoteKind, marker: str) -> RawRecord:
        body = {"body": f"{text}\n\n{marker}", "private": kind is not NoteKind.PUBLIC}
        return dict(self.http.request_json("POST", f"tickets/{external_id}/notes", json=body).data["note"])

    def add_time_entry(self, external_id: str, entry: NewTimeEntry, *, marker: str) -> RawRecord:
        body = {"minutes": entry.minutes, "note": f"{entry.note}\n\n{marker}", "started_at": iso(entry.started_at)}
        return dict(self.http.request_json("POST", f"tickets/{external_id}/time_entries", json=body).data["time_entry"])

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        header = lowered.get(SIGNATURE_HEADER.lower())
        if not header:
            raise WebhookVerificationError("no signature header", connection=self.name)
        try:
            parts = dict(item.split("=", 1) for item in header.split(","))
            timestamp = int(parts["t"])
            given = parts["v1"]
        except (KeyError, ValueError) as exc:
            raise WebhookVerificationError("malformed signature header", connection=self.name) from exc
        expected = sign(require_secret(self.settings, "webhook_secret"), body, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, given):
            raise WebhookVerificationError("wrong signature", connection=self.name)
        if abs(time.time() - timestamp) > SIGNATURE_WINDOW:
            raise WebhookVerificationError("stale delivery", connection=self.name)
        try:
            payload = json.loads(body)
            kind = payload.get("event")
            event: Literal["created", "updated", "deleted"] = (
                "created" if kind == "created" else "deleted" if kind == "deleted" else "updated"
            )
            return WebhookEvent(str(payload["ticket_id"]), event, delivery_id=hashlib.sha256(body).hexdigest())
        except (ValueError, KeyError, AttributeError) as exc:
            raise PermanentError("not a toy webhook delivery", connection=self.name) from exc


# --- the harness ------------------------------------------------------------------------------------------------------


class ToyHarness(VendorHarness):
    """How the contract suite drives the toy vendor."""

    system = "toy"
    limited_tickets = 15  # 15 reads of one ticket: more than its window holds

    def __init__(self) -> None:
        self._vendors: dict[int, ToyVendor] = {}

    @property
    def base_path(self) -> str:
        return "/api"

    def _toy(self, served: Served) -> ToyVendor:
        return self._vendors[id(served.simulator)]

    def build_simulator(self, *, tickets: int, seed: int = 0, limits: bool = True) -> Simulator:
        vendor = ToyVendor(tickets=tickets, seed=seed, limits=limits)
        self._vendors[id(vendor.simulator)] = vendor
        return vendor.simulator

    def settings(self, base_url: str, *, wrong_credentials: bool = False) -> ConnectionSettings:
        secrets = {"api_key": "wrong-key" if wrong_credentials else API_KEY, "webhook_secret": WEBHOOK_SECRET}
        return connection_settings(name="toy-conn", system="freshservice", base_url=base_url, secrets=secrets)

    def connector(self, settings: ConnectionSettings, *, namespace: str) -> ToyConnector:
        return ToyConnector(settings, runtime=HttpRuntime(namespace=namespace))

    def tickets(self, served: Served) -> dict[str, datetime]:
        return {str(row.id): row.updated for row in self._toy(served).tickets.rows()}

    def change_tickets(self, served: Served, external_ids: Sequence[str]) -> None:
        for external_id in external_ids:
            self._toy(served).tickets.update(int(external_id), {"status": "in_progress"})

    def stored_ticket(self, served: Served, external_id: str) -> RawRecord:
        return ToyVendor.render(self._toy(served).tickets[int(external_id)])

    def note_texts(self, served: Served, external_id: str) -> list[str]:
        return [n["body"] for n in served.control.state()["notes"] if n["ticket_id"] == int(external_id)]

    def time_entry_texts(self, served: Served, external_id: str) -> list[str]:
        return [t["note"] for t in served.control.state()["time_entries"] if t["ticket_id"] == int(external_id)]

    def update_patch(self) -> RawRecord:
        return {"status": "resolved", "title": "Printer fixed"}

    def new_ticket_fields(self) -> RawRecord:
        return {"title": "Mirrored: VPN down for the whole office", "status": "open"}

    def design_requests(self, served: Served, pages: Sequence[Sequence[str]], read: Collection[str]) -> int:
        """Per page its list request; per read ticket the default completion's read by id: the ticket, its notes."""
        return sum(1 + 2 * sum(1 for i in page if i in read) for page in pages)

    def webhook(self, served: Served, external_id: str, variant: WebhookVariant) -> WebhookDelivery | None:
        # A real delivery, sent by the simulator to the gate's receiver, then spoiled as the variant asks.
        served.control.subscribe(served.receiver_url, secret=WEBHOOK_SECRET)
        self.change_tickets(served, [external_id])
        delivery = next(
            d for d in served.captured_webhooks() if json.loads(d.body).get("ticket_id") == int(external_id)
        )
        headers = {k: v for k, v in delivery.headers.items() if k.lower() != SIGNATURE_HEADER.lower()}
        if variant == "valid":
            return delivery
        if variant == "missing":
            return WebhookDelivery(headers, delivery.body)
        if variant == "wrong":
            return WebhookDelivery(
                {**headers, SIGNATURE_HEADER: sign("not-the-secret", delivery.body, int(time.time()))}, delivery.body
            )
        stale = sign(WEBHOOK_SECRET, delivery.body, int(time.time()) - 3600)
        return WebhookDelivery({**headers, SIGNATURE_HEADER: stale}, delivery.body)
