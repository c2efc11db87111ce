"""Autotask PSA REST simulator: zone discovery, Tickets, TicketNotes, TimeEntries, picklists, limits and webhooks.

One partner database (a co-managed Autotask: companies 0, 1001 Initech and 1002 Umbrella Health) seeded from the
sandbox's SeedTickets. What it reproduces, with sources (VENDOR-APIS.md section 2 and its shorthand):

- zone lookup without auth, ``GET /atservicesrest/v1.0/zoneInformation?user=``, an unknown user answered with HTTP
  500 and a JSON error (djAT ``get_zone_info``); the zone URL points back at this simulator (``/ATServicesRest/``);
  paths match in any letter case, as IIS does;
- ``ApiIntegrationCode``, ``UserName`` and ``Secret`` headers (names in any case); anything wrong is a 401; an
  ``ImpersonationResourceId`` header makes changes as that resource (ATSW; djAT ``get_headers``);
- ``POST|GET /V1.0/<Entity>/query`` with ``{"items", "pageDetails"}`` and an id cursor in ``nextPageUrl`` that the
  client re-POSTs the query to (autotask_query.py); ``/query/count`` gives ``{"queryCount": n}``;
- ``GET /Tickets/{id}`` gives ``{"item": ...}`` and ``{"item": null}`` when missing (n8nAT); ``POST /Tickets`` gives
  ``{"itemId": n}``; ``PATCH /Tickets`` takes the id in the body and changes only the fields sent;
  notes are created only under ``/Tickets/{id}/Notes`` (``POST /TicketNotes`` is 404: ATPM; WYRE-AI/autotask-mcp#24);
- every error is ``{"errors": ["..."]}``; business-rule failures are HTTP 500 (Anteris-Dev/autotask-client#60);
- 10,000 requests per rolling hour per database, with latency added from 50 % and 75 % of it and a refusal at 100 %
  (ATDOCS REST_Thresholds_Limits; kb.clouddepot.com "Understanding Autotask API Limits"), reported by
  ``/ThresholdInformation``; at most 3 requests in flight per integration code and endpoint (ATDOCS ThreadLimiting),
  refused as described in ``THREAD_LIMIT_MESSAGE``;
- TicketWebhooks and TicketNoteWebhooks (autotask_webhooks.py).

All times are UTC (ATDOCS TicketsEntity).
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.autotask_data import (
    API_RESOURCE_ID,
    FIRST_NOTE_ID,
    FIRST_TICKET_ID,
    FIRST_TIME_ENTRY_ID,
    NOTE_FIELDS,
    NOTE_PICKLISTS,
    TICKET_FIELDS,
    TICKET_PICKLISTS,
    TIME_ENTRY_FIELDS,
    WEBHOOK_FIELD_IDS,
    Directory,
    PickValue,
    authors,
    build_directory,
    field_info,
    render,
    resource_of,
    seed_records,
)
from psabridge_sandbox.autotask_query import (
    Cursor,
    Entity,
    Query,
    compile_filter,
    parse_query,
    retained,
    select_page,
)
from psabridge_sandbox.autotask_webhooks import RETRY_DELAYS, WebhookRegistry, signer
from psabridge_sandbox.autotask_writes import TicketWriter
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.credentials import AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.ratelimit import RateLimit
from psabridge_sandbox.registry import SandboxContext, register
from psabridge_sandbox.table import Row, Table
from psabridge_sandbox.tickets import SeedTicket

__all__ = ["THREAD_LIMIT_MESSAGE", "AutotaskSimulator", "build"]

REQUESTS_PER_HOUR = 10_000
THREADS_PER_ENDPOINT = 3
LATENCY_STEPS: tuple[tuple[float, float], ...] = ((0.75, 1.0), (0.5, 0.5))
"""(share of the hourly threshold used, seconds added to each call): about 0.5 s from 50 %, 1 s from 75 %."""
THREAD_LIMIT_MESSAGE = (
    "Itgenatr005: Thread Threshold Exceeded - The Autotask API thread threshold of 3 threads has been exceeded."
)
"""How a call past the thread limit is refused. [UNCONFIRMED] The words are those clients quote (n8nAT PR #107 and
``retryHandler.ts``, which matches ``Itgenatr005`` and "thread threshold ... exceeded" because the refusal "may arrive
with a non-429 status"); the status is our choice: HTTP 500, like Autotask's other refusals, with no Retry-After."""
THRESHOLD_MESSAGE = (
    "API request threshold of {limit} requests per 60 minutes exceeded for this database. "
    "API access is blocked until usage falls below the threshold."
)
"""[UNCONFIRMED wording and status] A call past the hourly threshold: HTTP 429 with Retry-After (when usage falls)."""
ZONE_NAME = "Sandbox Zone"
_EXEMPT = ("zoneinformation", "versioninformation")  # answered without credentials, thread limits or counting


def autotask_error(error: VendorError) -> Response:
    """Every Autotask error body: ``{"errors": ["message", ...]}``, a list of strings."""
    return JSONResponse({"errors": [error.message]}, status_code=error.status)


class AutotaskSimulator:
    """The simulator and its data. Tests build it directly to reach the tables; ``build`` registers it."""

    def __init__(
        self,
        context: SandboxContext,
        *,
        requests_per_hour: int = REQUESTS_PER_HOUR,
        threads: int = THREADS_PER_ENDPOINT,
        latency_scale: float = 1.0,
        webhook_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.context = context
        self.latency_scale = latency_scale
        self.simulator = sim = Simulator(
            context.service.name,
            auth=self.authenticate,
            errors=autotask_error,
            faults=context.faults,
            seed=context.seed,
            clock=context.clock,
            state=self.state,
            signer=signer,
            webhook_retry_delays=RETRY_DELAYS,
            webhook_transport=webhook_transport,
        )
        self.pages_served = 0
        self.directory: Directory = build_directory(context.world, context.service.tenants, context.anchor)
        # Autotask keeps milliseconds (lastActivityDate "2026-11-20T15:02:11.483Z").
        self.tickets: Table = sim.table("tickets", resolution=0.001)
        self.notes: Table = sim.table("notes", resolution=0.001)
        self.time_entries: Table = sim.table("time_entries", resolution=0.001)
        self.notes_of: dict[int, list[int]] = {}
        self.entries_of: dict[int, list[int]] = {}
        self.webhooks = WebhookRegistry(sim.webhooks, seed=context.seed)
        self.writer = TicketWriter(self)
        self._seed()
        hourly = context.limit(requests_per_hour)
        self.threshold: RateLimit = sim.rate_limit(
            hourly,
            3600,
            key=lambda request, principal: "database" if principal else None,
            message=THRESHOLD_MESSAGE.format(limit=hourly),
        )
        if context.limits:
            sim.concurrency_limit(threads, key=self._thread_key, status=500, message=THREAD_LIMIT_MESSAGE)
        self.entities = self._entities()
        self._routes()

    # --- seeding -----------------------------------------------------------------------------------------------------

    def _seed(self) -> None:
        # Hundreds of thousands of small dicts and no reference cycles: the cyclic collector would only walk the
        # growing heap again and again, so it rests while we load (as tickets.generate_tickets does).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._load(self.context.seed_tickets())
        finally:
            if collecting:
                gc.enable()

    def _load(self, seeds: Sequence[SeedTicket]) -> None:
        people = authors(self.context.world)
        per_day: dict[str, int] = {}
        note_id, entry_id = FIRST_NOTE_ID, FIRST_TIME_ENTRY_ID
        for seed in seeds:
            day = seed.created_at.strftime("%Y%m%d")
            per_day[day] = per_day.get(day, 0) + 1
            ticket_id = FIRST_TICKET_ID + seed.number
            records = seed_records(seed, ticket_id, f"T{day}.{per_day[day]:04d}", people)
            self.tickets.insert(
                records.ticket, id=ticket_id, created=records.created, updated=records.updated, notify=False
            )
            for note in records.notes:
                note_id += 1
                stamp = note["createDateTime"]
                self.notes.insert(note, id=note_id, created=stamp, updated=stamp, notify=False)
                self.notes_of.setdefault(ticket_id, []).append(note_id)
            for entry in records.time_entries:
                entry_id += 1
                stamp = entry["lastModifiedDateTime"]
                self.time_entries.insert(entry, id=entry_id, created=stamp, updated=stamp, notify=False)
                self.entries_of.setdefault(ticket_id, []).append(entry_id)

    # --- auth, limits, pacing ----------------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> str | None:
        """The API user's headers; zone and version lookups need none."""
        if _segment(request.url.path, -1).casefold() in _EXEMPT:
            return None
        headers = request.headers  # Starlette headers ignore case, as IIS does
        if (
            headers.get("username", "").casefold() != AT_USERNAME.casefold()
            or headers.get("secret") != AT_SECRET
            or headers.get("apiintegrationcode") != AT_INTEGRATION_CODE
        ):
            raise VendorError(401, "Authorization has been denied for this request.")
        return AT_USERNAME

    def actor(self, request: Request) -> int:
        """The resource a change is made as: the API user, or the one named by ImpersonationResourceId."""
        value = request.headers.get("impersonationresourceid")
        if value is None:
            return API_RESOURCE_ID
        if not value.isdigit() or int(value) not in self.directory.resources:
            raise VendorError(500, f"ImpersonationResourceId {value} is not an active resource.")
        return int(value)

    def _thread_key(self, request: Request, principal: str | None) -> str | None:
        # Threads count per tracking identifier (the integration code) and object endpoint (ATDOCS ThreadLimiting).
        if principal is None:
            return None
        return f"{request.headers.get('apiintegrationcode')}:{_endpoint(request.url.path)}"

    def usage(self) -> int:
        """Requests counted against the database in the current rolling hour."""
        return self.threshold.usage("database").used

    def added_latency(self) -> float:
        """Seconds added to a call at the current usage (0 below half the threshold)."""
        share = self.usage() / self.threshold.window.limit
        return next((seconds for floor, seconds in LATENCY_STEPS if share >= floor), 0.0) * self.latency_scale

    def _route(self, path: str, handler: Callable[[Request], Awaitable[Response]], methods: Sequence[str]) -> None:
        async def paced(request: Request) -> Response:
            delay = self.added_latency() if request.scope.get("state", {}).get("principal") else 0.0
            if delay:
                await asyncio.sleep(delay)
            return await handler(request)

        self.simulator.add_route(path, paced, methods, case_sensitive=False)

    # --- entities ----------------------------------------------------------------------------------------------------

    def _entities(self) -> dict[str, tuple[Entity, Table, Callable[[Row], dict[str, Any]]]]:
        directory = self.directory

        def table_row(fields: Sequence[str], updated: str | None) -> Callable[[Row, str], Any]:
            def get(row: Row, name: str) -> Any:
                if name == "id":
                    return row.id
                if name == updated:
                    return row.updated
                return row.data.get(name)

            return get

        def rows_of(records: Mapping[int, dict[str, Any]]) -> Table:
            table = Table("directory", clock=self.context.clock)
            for record_id, record in records.items():
                table.insert(record, id=record_id, notify=False)
            return table

        def plain(row: Row) -> dict[str, Any]:
            return render({**row.data, "id": row.id}, list(row.data))

        return {
            "Tickets": (
                Entity("Ticket", TICKET_FIELDS, table_row(TICKET_FIELDS, "lastActivityDate"), self._udfs),
                self.tickets,
                self.render_ticket,
            ),
            "TicketNotes": (
                Entity("TicketNote", NOTE_FIELDS, table_row(NOTE_FIELDS, "lastActivityDate")),
                self.notes,
                self.render_note,
            ),
            "TimeEntries": (
                Entity("TimeEntry", TIME_ENTRY_FIELDS, table_row(TIME_ENTRY_FIELDS, "lastModifiedDateTime")),
                self.time_entries,
                self.render_time_entry,
            ),
            "Resources": (_directory_entity("Resource", directory.resources), rows_of(directory.resources), plain),
            "Contacts": (_directory_entity("Contact", directory.contacts), rows_of(directory.contacts), plain),
            "Companies": (_directory_entity("Company", directory.companies), rows_of(directory.companies), plain),
        }

    @staticmethod
    def _udfs(row: Row) -> Sequence[Mapping[str, Any]]:
        return list(row.data.get("userDefinedFields") or ())

    def render_ticket(self, row: Row) -> dict[str, Any]:
        """A ticket as the API returns it."""
        return render({**row.data, "id": row.id, "lastActivityDate": row.updated}, TICKET_FIELDS)

    def render_note(self, row: Row) -> dict[str, Any]:
        """A ticket note as the API returns it."""
        return render({**row.data, "id": row.id, "lastActivityDate": row.updated}, NOTE_FIELDS)

    def render_time_entry(self, row: Row) -> dict[str, Any]:
        """A time entry as the API returns it."""
        return render({**row.data, "id": row.id, "lastModifiedDateTime": row.updated}, TIME_ENTRY_FIELDS)

    # --- routes ------------------------------------------------------------------------------------------------------

    def _routes(self) -> None:
        api = "/ATServicesRest/V1.0"
        self._route("/atservicesrest/v1.0/zoneInformation", self.zone_information, ["GET"])
        self._route("/atservicesrest/versionInformation", self.version_information, ["GET"])
        self._route(f"{api}/ThresholdInformation", self.threshold_information, ["GET"])
        for name in self.entities:
            self._route(f"{api}/{name}/query", self._query(name), ["GET", "POST"])
            self._route(f"{api}/{name}/query/next", self._query(name, follow=True), ["GET", "POST"])
            self._route(f"{api}/{name}/query/count", self._count(name), ["GET", "POST"])
            self._route(f"{api}/{name}/{{id:int}}", self._by_id(name), ["GET"])
        self._route(f"{api}/Tickets/entityInformation/fields", self.ticket_fields, ["GET"])
        self._route(f"{api}/Tickets/entityInformation/userDefinedFields", self.ticket_udfs, ["GET"])
        self._route(f"{api}/TicketNotes/entityInformation/fields", self.note_fields, ["GET"])
        self._route(f"{api}/Tickets", self.writer.create, ["POST"])
        self._route(f"{api}/Tickets", self.writer.update, ["PATCH", "PUT"])
        self._route(f"{api}/Tickets/{{parentId:int}}/Notes", self.ticket_notes, ["GET"])
        self._route(f"{api}/Tickets/{{parentId:int}}/Notes/{{id:int}}", self.ticket_note, ["GET"])
        self._route(f"{api}/Tickets/{{parentId:int}}/Notes", self.writer.add_note, ["POST"])
        self._route(f"{api}/TimeEntries", self.writer.add_time_entry, ["POST"])
        for entity in ("Ticket", "TicketNote"):
            self._webhook_routes(entity)

    async def zone_information(self, request: Request) -> Response:
        """GET zoneInformation?user=: where the API user's database lives."""
        user = request.query_params.get("user", "")
        if user.casefold() != AT_USERNAME.casefold():
            raise VendorError(500, f"Zone information could not be determined for user '{user}'.")
        root = _root(request)
        return JSONResponse({"zoneName": ZONE_NAME, "url": f"{root}/ATServicesRest/", "webUrl": f"{root}/", "ci": 1})

    async def version_information(self, request: Request) -> Response:
        """GET versionInformation."""
        return JSONResponse({"apiVersions": ["1.0"]})

    async def threshold_information(self, request: Request) -> Response:
        """GET ThresholdInformation: the hourly threshold and what the database used of it (this call included)."""
        return JSONResponse(
            {
                "externalRequestThreshold": self.threshold.window.limit,
                "requestThresholdTimeframe": 60,
                "currentTimeframeRequestCount": self.usage(),
            }
        )

    # --- queries -----------------------------------------------------------------------------------------------------

    async def _read_query(self, request: Request, *, follow: bool) -> tuple[Query, bool]:
        """The QueryModel of a request: the POSTed body, or the ``search`` parameter of a GET."""
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                raise VendorError(500, "The request body is not valid JSON.") from None
            return parse_query(body), False
        search = request.query_params.get("search")
        if search is None:
            if follow:  # a POSTed query's next page must be POSTed again (clients report a 405 for GET)
                raise VendorError(405, "The requested resource does not support http method 'GET'.")
            raise VendorError(500, "A query must contain at least one filter.")
        try:
            return parse_query(json.loads(search)), True
        except ValueError:
            raise VendorError(500, "The search parameter is not valid JSON.") from None

    def _query(self, name: str, *, follow: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            query, by_get = await self._read_query(request, follow=follow)
            cursor: Cursor | None = None
            if follow:
                if "paging" not in request.query_params:
                    raise VendorError(500, "The paging parameter is required.")
                cursor = Cursor.decode(request.query_params["paging"])
            body = self._page(request, name, query, cursor, by_get)
            self.pages_served += 1
            if name == "Tickets":  # churn faults: records change while the client pages
                self.simulator.between_pages(
                    self.tickets, change=self.writer.churn_change, create=self.writer.churn_create
                )
            return JSONResponse(body)

        return handler

    def _page(self, request: Request, name: str, query: Query, cursor: Cursor | None, by_get: bool) -> dict[str, Any]:
        """One page of a query: ``{"items": [...], "pageDetails": {...}}``."""
        entity, table, show = self.entities[name]
        size = cursor.page_size if cursor else query.max_records
        matches = compile_filter(query.filters, entity)
        ids = self._candidates(name, query, table)
        rows, next_id = select_page(ids, table.get, cursor.next_id if cursor else None, size, matches)
        items = [show(row) for row in rows]
        if query.include_fields:
            fields = {entity.field(f) for f in query.include_fields}
            items = [{k: v for k, v in item.items() if k in fields} for item in items]
            if "id" not in fields:
                next_id = None  # the cursor is made of ids: without them the API loses its place (ATDOCS)
        previous = cursor.previous_ids if cursor else ()
        prev_url = next_url = None
        if previous:
            prev_url = self._page_url(request, name, Cursor(size, previous[:-1], previous[-1]), query, by_get)
        if next_id is not None:
            first = int(rows[0].id) if rows else None
            next_url = self._page_url(request, name, Cursor(size, retained(previous, first), next_id), query, by_get)
        details = {"count": len(items), "requestCount": size, "prevPageUrl": prev_url, "nextPageUrl": next_url}
        return {"items": items, "pageDetails": details}

    def _candidates(self, name: str, query: Query, table: Table) -> Sequence[int]:
        """Every id in order, or only the notes or time entries of the tickets a top-level ``ticketID`` filter names.

        (An index only: the filter itself is still evaluated on every candidate.)
        """
        index = {"TicketNotes": self.notes_of, "TimeEntries": self.entries_of}.get(name)
        if index is not None:
            for spec in query.filters:
                keyed = {str(k).casefold(): v for k, v in spec.items()}
                if str(keyed.get("field", "")).casefold() != "ticketid":
                    continue
                op, value = str(keyed.get("op", "")).casefold(), keyed.get("value")
                values: list[Any] | None = [value] if op == "eq" else value if isinstance(value, list) else None
                if op in ("eq", "in") and values is not None and all(str(v).isdigit() for v in values):
                    return sorted({row_id for v in values for row_id in index.get(int(str(v)), ())})
        return table.ids()  # type: ignore[return-value]

    def _page_url(self, request: Request, name: str, cursor: Cursor, query: Query, by_get: bool) -> str:
        url = f"{_root(request)}/ATServicesRest/V1.0/{name}/query/next?paging={cursor.encode()}"
        if by_get:
            url += "&search=" + quote(json.dumps(query.body, separators=(",", ":")), safe="")
        return url

    def _count(self, name: str) -> Callable[[Request], Awaitable[Response]]:
        entity, table, _ = self.entities[name]

        async def handler(request: Request) -> Response:
            query, _ = await self._read_query(request, follow=False)
            matches = compile_filter(query.filters, entity)
            count = sum(1 for row_id in self._candidates(name, query, table) if (r := table.get(row_id)) and matches(r))
            return JSONResponse({"queryCount": count})

        return handler

    def _by_id(self, name: str) -> Callable[[Request], Awaitable[Response]]:
        _, table, show = self.entities[name]

        async def handler(request: Request) -> Response:
            row = table.get(request.path_params["id"])
            return JSONResponse({"item": show(row) if row is not None else None})

        return handler

    async def ticket_notes(self, request: Request) -> Response:
        """GET /Tickets/{parentId}/Notes: the ticket's notes (a child collection, paged like a query)."""
        ids = self.notes_of.get(request.path_params["parentId"], [])
        items = [self.render_note(self.notes[i]) for i in ids[:500]]
        details = {"count": len(items), "requestCount": 500, "prevPageUrl": None, "nextPageUrl": None}
        return JSONResponse({"items": items, "pageDetails": details})

    async def ticket_note(self, request: Request) -> Response:
        """GET /Tickets/{parentId}/Notes/{id}: one note of the ticket (``{"item": null}`` if it is not one)."""
        row = self.notes.get(request.path_params["id"])
        if row is None or row.data.get("ticketID") != request.path_params["parentId"]:
            return JSONResponse({"item": None})
        return JSONResponse({"item": self.render_note(row)})

    # --- entityInformation -------------------------------------------------------------------------------------------

    async def ticket_fields(self, request: Request) -> Response:
        """GET /Tickets/entityInformation/fields, with the picklists (queues are a picklist of queueID)."""
        return JSONResponse({"fields": field_info("Ticket", TICKET_FIELDS, TICKET_PICKLISTS)})

    async def ticket_udfs(self, request: Request) -> Response:
        """GET /Tickets/entityInformation/userDefinedFields."""
        udf = {"name": "ExternalRef", "label": "External reference", "type": "string", "isRequired": False}
        return JSONResponse({"fields": [udf]})

    async def note_fields(self, request: Request) -> Response:
        """GET /TicketNotes/entityInformation/fields (noteType and publish picklists)."""
        return JSONResponse({"fields": field_info("TicketNote", NOTE_FIELDS, NOTE_PICKLISTS)})

    # --- webhooks ----------------------------------------------------------------------------------------------------

    def _webhook_routes(self, entity: str) -> None:
        base = f"/ATServicesRest/V1.0/{entity}Webhooks"
        registry = self.webhooks

        async def create(request: Request) -> Response:
            hook = registry.create(entity, await _json_object(request), owner=self.actor(request))
            return JSONResponse({"itemId": hook.id})

        async def update(request: Request) -> Response:
            return JSONResponse({"itemId": registry.update(entity, await _json_object(request)).id})

        async def get(request: Request) -> Response:
            hook = registry.hooks.get(request.path_params["id"])
            return JSONResponse({"item": hook.render() if hook is not None and hook.entity == entity else None})

        async def delete(request: Request) -> Response:
            registry.delete(entity, request.path_params["id"])
            return JSONResponse({"itemId": request.path_params["id"]})

        async def fields(request: Request) -> Response:
            hook = registry.get(entity, request.path_params["parentId"])
            if request.method == "POST":
                return JSONResponse({"itemId": registry.add_field(entity, hook.id, await _json_object(request))})
            return _items(list(hook.fields.values()))

        async def excluded(request: Request) -> Response:
            hook = registry.get(entity, request.path_params["parentId"])
            if request.method == "POST":
                body = await _json_object(request)
                return JSONResponse({"itemId": registry.exclude(entity, hook.id, body, self.directory.resources)})
            return _items(list(hook.excluded.values()))

        async def query(request: Request) -> Response:
            # GET ?search= or POST: {"filter": [...]} like every entity's query (ATDOCS REST_Basic_query_calls); the
            # sandbox reads "eq" on a top-level property (e.g. name) and "exist"; the secret key is never shown.
            if request.method == "POST":
                spec: Any = await _json_object(request)
            else:
                try:
                    spec = json.loads(request.query_params.get("search") or "{}")
                except ValueError as exc:
                    raise VendorError(500, "search is not JSON") from exc
            wanted = [f for f in (spec.get("filter") or []) if isinstance(f, dict) and f.get("op") == "eq"]
            found = [hook.render() for hook in registry.hooks.values() if hook.entity == entity]
            for cond in wanted:
                name = str(cond.get("field", ""))
                found = [h for h in found if str(h.get(name[:1].lower() + name[1:])) == str(cond.get("value"))]
            return _items(found)

        async def field_ids(request: Request) -> Response:
            # n8nAT reads the webhook-supported fields from the fieldID picklist of <Entity>WebhookFields.
            values = [PickValue(number, name) for name, number in WEBHOOK_FIELD_IDS[entity].items()]
            picklist = [v.as_json(i) for i, v in enumerate(values, start=1)]
            info = {"name": "fieldID", "dataType": "integer", "isPickList": True, "picklistValues": picklist}
            return JSONResponse({"fields": [info]})

        self._route(base, create, ["POST"])
        self._route(base, update, ["PATCH"])
        self._route(f"{base}/query", query, ["GET", "POST"])
        self._route(f"{base}/{{id:int}}", get, ["GET"])
        self._route(f"{base}/{{id:int}}", delete, ["DELETE"])
        self._route(f"{base}/{{parentId:int}}/Fields", fields, ["GET", "POST"])
        self._route(f"{base}/{{parentId:int}}/ExcludedResources", excluded, ["GET", "POST"])
        self._route(f"/ATServicesRest/V1.0/{entity}WebhookFields/entityInformation/fields", field_ids, ["GET"])

    def emit(self, entity: str, action: str, row: Row, changed: Sequence[str] | None, actor: int) -> None:
        """Call out a change to the webhooks that want it."""
        record = self.render_ticket(row) if entity == "Ticket" else self.render_note(row)
        self.webhooks.emit(entity, action, int(row.id), record, changed, actor, self.context.clock.now())

    # --- control plane -----------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Tickets, notes, time entries, webhooks, usage and pages served, for /_sandbox/state."""
        return {
            "tickets": [self.render_ticket(r) for r in self.tickets.rows()],
            "notes": [self.render_note(r) for r in self.notes.rows()],
            "time_entries": [self.render_time_entry(r) for r in self.time_entries.rows()],
            "webhooks": self.webhooks.as_state(),
            "threshold": {"limit": self.threshold.window.limit, "used": self.usage()},
            "pages_served": self.pages_served,
        }

    def now(self) -> datetime:
        """The simulator's clock."""
        return self.context.clock.now()

    def technician(self, number: int) -> int:
        """The resource id of seed technician ``number`` (1-based)."""
        return resource_of(number)


def _directory_entity(name: str, records: Mapping[int, Mapping[str, Any]]) -> Entity:
    fields = sorted({key for record in records.values() for key in record} | {"id"})

    def get(row: Row, field: str) -> Any:
        return row.id if field == "id" else row.data.get(field)

    return Entity(name, fields, get)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise VendorError(500, "The request body must be a JSON object.")
    return body


def _items(items: list[dict[str, Any]]) -> Response:
    details = {"count": len(items), "requestCount": 500, "prevPageUrl": None, "nextPageUrl": None}
    return JSONResponse({"items": items, "pageDetails": details})


def _root(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _segment(path: str, index: int) -> str:
    parts = [p for p in path.split("/") if p]
    return parts[index] if parts else ""


def _endpoint(path: str) -> str:
    """The object endpoint of a path (``/ATServicesRest/V1.0/Tickets/5/Notes`` -> ``tickets``)."""
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        if part.casefold() == "v1.0" and index + 1 < len(parts):
            return parts[index + 1].casefold()
    return "/"


@register("autotask")
def build(context: SandboxContext) -> Simulator:
    """The Autotask PSA simulator."""
    return AutotaskSimulator(context).simulator
