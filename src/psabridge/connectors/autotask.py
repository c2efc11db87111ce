"""Autotask PSA REST connector: zone discovery, id-cursor queries, PATCH with the id in the body, notes, time, webhooks.

Every Autotask quirk psabridge knows lives here (VENDOR-APIS.md section 2 and its source shorthand):

- The configured base URL is the zone-lookup host; ``GET v1.0/zoneInformation?user=`` (no credentials) names the
  zone that serves the API user's database, and requests go to ``<zone>/V1.0``. The zone is cached; on a 401 it is
  looked up again and the request repeated once if the tenant moved zones (djAT ``api.py``), else the 401 stands.
- Credentials are three headers: ``ApiIntegrationCode``, ``UserName``, ``Secret`` (ATSW; djAT ``get_headers``).
- Lists are ``POST <Entity>/query`` with a Filter; pages follow ``pageDetails.nextPageUrl`` by re-POSTing the query
  (KelvinTegelaar ``Get-AutotaskAPIResource.ps1``), at most 500 records a page. The QueryModel has no sort: pages
  come in id order, so the high-water mark is the newest ``lastActivityDate`` seen, kept by ``ChangeRun``.
- Ingest from the page: a query without ``IncludeFields`` returns every field of the ticket (IncludeFields only
  narrows it: ATDOCS REST_Advanced_Query_Features), so a list record is the ticket as ``GET Tickets/{id}`` answers
  it and no fields are asked for (a mapping may read any field, UDFs too). A page's notes and time entries come
  from ``TicketNotes/query`` and ``TimeEntries/query`` with ``ticketID in [...]``; only tickets whose
  ``lastActivityDate`` moved are read (a note or time entry is activity on the ticket).
- Errors are ``{"errors": ["..."]}``; business-rule refusals are HTTP 500 and permanent, while thread-limit
  refusals (``Itgenatr005``, "thread threshold ... exceeded", n8nAT ``retryHandler.ts``) are retried.
- 10,000 requests per rolling hour per database, shared with every other integration, and 3 requests in flight per
  integration code and endpoint (ATDOCS REST_Thresholds_Limits, ThreadLimiting): our default budget is half the
  hour and 3 concurrent, and the database's own window (``database``) holds what ThresholdInformation says the
  other integrations used, so our traffic never takes the database over its threshold.
- Webhooks: ``X-Hook-Signature: sha1=<base64(HMAC-SHA1(SecretKey, raw body))>`` (autotask_webhooks.py).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import Field

from psabridge.connectors.auth import require_secret
from psabridge.connectors.autotask_webhooks import read_delivery, register, registered
from psabridge.connectors.base import EXTRA_NOTES, EXTRA_TIME_ENTRIES, NewTimeEntry, Page, WebhookEvent
from psabridge.connectors.budget import BudgetLimits, Window
from psabridge.connectors.http import HttpClient, HttpRuntime, Resolution
from psabridge.connectors.options import ConnectorOptions
from psabridge.connectors.pagination import NextUrlInBodyPaginator, PageRequest
from psabridge.connectors.requestcount import counting
from psabridge.connectors.rest import ChangeRun, HttpConnector, chunks, counted_pages
from psabridge.errors import AuthError, NotFoundError, PermanentError
from psabridge.log import get_logger
from psabridge.markers import MARKER_PATTERN
from psabridge.model import NoteKind, System
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import Choice, RawRecord, VendorMetadata

__all__ = ["CONNECTOR", "AutotaskAuth", "AutotaskConnector", "AutotaskOptions"]

log = get_logger("psabridge.connectors.autotask")

T = TypeVar("T")

MAX_RECORDS = 500  # QueryModel.MaxRecords is 1-500 (ATDOCS REST_Basic_Query_Calls)
DATABASE = "database"
DATABASE_THRESHOLD = 10_000  # requests per rolling hour per database (ATDOCS REST_Thresholds_Limits)
STATUS_COMPLETE = "5"  # the system "closed" status (ATPM "tickets Not Complete" filters noteq 5)
EXTERNAL_ID_LENGTH = 50  # Ticket.externalID, where a created ticket's marker goes [UNCONFIRMED length]
# TicketNotes.publish: 1 "All Autotask Users" (client portal), 2 "Internal Only" [UNCONFIRMED labels, VENDOR-APIS 2.5].
PUBLISH = {NoteKind.PUBLIC: 1, NoteKind.INTERNAL: 2}
NOTE_TYPE = 1
RESOLUTION_NOTE = "_psa_resolution"
"""Autotask keeps a ticket's resolution in its ``resolution`` field, not in a note: get_ticket adds it to the notes
as one record flagged with this key, so mapping sees the resolution as a resolution note."""

_THREAD_LIMIT = re.compile(r"itgenatr005|thread\s+threshold.*exceeded|thread limit", re.IGNORECASE | re.DOTALL)
# 500s whose words say the server, not our request, failed: retried like any 5xx.
_SERVER_FAULT = re.compile(
    r"internal server error|an error has occurred|unexpected error|time(d)? ?out|deadlock|service unavailable",
    re.IGNORECASE,
)
# A write refused for a value the vendor does not know: our cached picklists may be stale.
_STALE_VALUE = re.compile(r"picklist|reference value|does not exist|is not active", re.IGNORECASE)


class AutotaskAuth(httpx.Auth):
    """The three credential headers, on every request except the zone lookup (which needs none)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the headers unless this is a zone lookup."""
        if not request.url.path.lower().endswith("/zoneinformation"):
            request.headers.update(self._headers)
        yield request

    def __repr__(self) -> str:
        return f"AutotaskAuth({sorted(self._headers)})"


class AutotaskOptions(ConnectorOptions):
    """``connections[].options`` of an Autotask connection."""

    zone_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="the zone's API root (https://webservicesN.autotask.net/ATServicesRest/): skips the zone lookup",
    )
    integration_user: str | None = Field(
        default=None, description="the API user's resource id (default: looked up once by the user name)"
    )
    time_resource_id: int | None = Field(default=None, description="who logs time when an entry names nobody")
    time_role_id: int | None = Field(default=None, description="the role time is logged in (default: the resource's)")
    note_type: int = Field(default=NOTE_TYPE, description="TicketNotes.noteType of the notes psabridge writes")
    webhook_max_age: float = Field(
        default=900, ge=0, description="seconds after its EventTime a webhook delivery is refused as stale"
    )
    threshold_check: bool = Field(
        default=True, description="read ThresholdInformation before a poll and hold back while the database is busy"
    )


class AutotaskConnector(HttpConnector):
    """One Autotask database (a connection), through its zone (options: ``AutotaskOptions``)."""

    system: ClassVar[System] = System.AUTOTASK
    options_model = AutotaskOptions
    options: AutotaskOptions
    # Half of the database's 10,000 requests per rolling hour: every other integration of the tenant shares the
    # rest; the database window itself counts theirs too (as ThresholdInformation reports them). Three in flight per
    # endpoint and integration code (ATDOCS ThreadLimiting; 2023.1+ integrations).
    budget_defaults: ClassVar[BudgetLimits] = BudgetLimits(
        requests=5000, per=3600, concurrency=3, windows=(Window(DATABASE, DATABASE_THRESHOLD, 3600, every=True),)
    )
    default_headers: ClassVar[Mapping[str, str]] = {"Content-Type": "application/json"}

    def __init__(self, settings: ConnectionSettings, *, runtime: HttpRuntime | None = None) -> None:
        super().__init__(settings, runtime=runtime)
        self._lock = threading.RLock()
        self._zone: str | None = None
        self._api: HttpClient | None = None
        self._integration_user: str | None = None
        self._threshold_checked: float | None = None

    # -- the HTTP layer's hooks ----------------------------------------------------------------------------------------

    def auth(self) -> httpx.Auth:
        """ApiIntegrationCode, UserName and Secret headers (credentials integration_code, username, secret)."""
        return AutotaskAuth(
            {
                "ApiIntegrationCode": require_secret(self.settings, "integration_code"),
                "UserName": require_secret(self.settings, "username"),
                "Secret": require_secret(self.settings, "secret"),
            }
        )

    def classify(self, response: httpx.Response) -> Resolution | None:
        """Thread-limit refusals are transient; other 500s carrying an errors list are business-rule refusals."""
        if response.is_success:
            return None  # (a page of 500 tickets is not parsed twice)
        messages = _errors(response)
        if messages and _THREAD_LIMIT.search(" ".join(messages)):
            return Resolution.retry("Autotask refused the call: thread limit per endpoint reached", refused=True)
        if response.status_code == 500 and messages and not _SERVER_FAULT.search(" ".join(messages)):
            return Resolution.fail(PermanentError, "Autotask refused the request (a business rule)")
        return None

    def error_message(self, response: httpx.Response) -> str | None:
        """The ``errors`` list joined, else the body's text."""
        messages = _errors(response)
        if messages:
            return "; ".join(messages)
        text = response.text.strip()
        return text[:500] or None

    # -- zone ----------------------------------------------------------------------------------------------------------

    def _discover(self) -> str:
        """The zone URL of the API user (``options.zone_url`` skips the lookup)."""
        if self.options.zone_url:
            return self.options.zone_url
        user = require_secret(self.settings, "username")
        answer = self.http.request_json("GET", "v1.0/zoneInformation", params={"user": user}).data
        url = answer.get("url") if isinstance(answer, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise PermanentError(f"the zone lookup gave no zone URL: {answer!r}", connection=self.name)
        return url

    def api(self) -> HttpClient:
        """The client of the API user's zone (``<zone>/V1.0``), discovered on first use."""
        with self._lock:
            if self._api is None:
                self._use_zone(self._discover())
            assert self._api is not None
            return self._api

    def _use_zone(self, zone: str) -> None:
        if self._api is not None:
            self._api.close()
        self._zone = zone
        self._api = self.build_client(base_url=zone.rstrip("/") + "/V1.0")

    def _call(self, work: Callable[[HttpClient], T]) -> T:
        """Run ``work`` against the zone; after a 401, look the zone up again and repeat once if it moved."""
        api = self.api()
        try:
            return work(api)
        except AuthError:
            with self._lock:
                zone = self._discover()
                if zone == self._zone:
                    raise
                self._use_zone(zone)
            return work(self.api())

    # -- reading -------------------------------------------------------------------------------------------------------

    def external_id_of(self, record: RawRecord) -> str:
        """The ticket id."""
        return str(record["id"])

    def updated_at_of(self, record: RawRecord) -> datetime | None:
        """``lastActivityDate`` (UTC, ATDOCS TicketsEntity)."""
        return _parse_time(record.get("lastActivityDate"))

    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        """Tickets with ``lastActivityDate`` at or after ``since`` minus the overlap, 500 a page, oldest id first."""
        start = self.read_from(since)
        condition = (
            {"op": "gte", "field": "lastActivityDate", "value": _format_time(start)}
            if start is not None
            else {"op": "gte", "field": "id", "value": 0}  # Autotask refuses a query without a filter
        )
        body = {"MaxRecords": self.page_size(MAX_RECORDS, MAX_RECORDS), "Filter": [condition]}
        run = ChangeRun(since=since, external_id=self.external_id_of, updated_at=self.updated_at_of, ordered=False)
        request = PageRequest(method="POST", url="Tickets/query", json=body)
        paginator = NextUrlInBodyPaginator(path="pageDetails.nextPageUrl", resend_body=True)
        with counting() as setup:  # the threshold, the zone lookup and the first page count with the first page
            self._check_threshold()
            begun = self.runtime.clock()
            pages = self._call(lambda api: _first(api.paginate(request, paginator, _items)))
        for fetched, requests in counted_pages(pages, before=setup.value):
            page = run.page(fetched.records, last=fetched.last, request_count=requests)
            if fetched.last and run.newest is not None and run.newest != since:
                page = Page(page.records, self._safe_watermark(run.newest, since, begun), page.request_count)
            yield page

    def _safe_watermark(self, newest: datetime, since: datetime | None, begun: float) -> datetime:
        """The newest ``lastActivityDate`` seen, held back by however long the run outlasted the overlap window.

        Pages come in id order: a ticket on an early page that changes while later pages are read carries a time
        after the run began, and may be older than the newest time seen on a later page. The next run starts at the
        watermark minus the overlap, so the watermark is pulled back by the run's length beyond the overlap: then
        it never passes the run's start (newest <= start + elapsed). Durations only: no clock is compared with
        Autotask's.
        """
        elapsed = max(0.0, self.runtime.clock() - begun)
        held = newest - timedelta(seconds=max(0.0, elapsed - self.overlap.total_seconds()))
        return max(held, since) if since is not None else held

    def _check_threshold(self) -> None:
        """Read ThresholdInformation (at most every 5 minutes) into the budget's database window.

        The call itself counts (n8nAT ``rateLimit.ts``). What the database counted beyond our own requests is the
        other integrations' and is held against the window until the next check replaces it (at most an hour, when
        it has left Autotask's window too). From half the threshold Autotask adds latency to every call
        (kb.clouddepot.com, VENDOR-APIS 2.6); we then leave the others their share of what is left.
        """
        if not self.options.threshold_check:
            return
        now = self.runtime.clock()
        if self._threshold_checked is not None and now - self._threshold_checked < 300:
            return
        self._threshold_checked = now
        try:
            info = self._call(_getter("ThresholdInformation"))
        except PermanentError as exc:  # a security level without access to it: poll without the check
            log.warning("autotask.threshold_unavailable", connection=self.name, error=str(exc))
            return
        limit, used = info.get("externalRequestThreshold"), info.get("currentTimeframeRequestCount")
        if not isinstance(limit, int) or not isinstance(used, int) or limit <= 0:
            return
        budget = self.api().budget
        allowed = limit
        if used >= limit // 2:
            share = min(1.0, (budget.limits.requests or limit) / limit)
            allowed = used + int(max(0, limit - used) * share)
        budget.observe(DATABASE, used=used, limit=allowed)

    def get_ticket(self, external_id: str) -> RawRecord:
        """The ticket with its notes (and its resolution as a note) and its time entries under the extras."""
        ticket_id = _ticket_id(external_id, self.name)
        item = self._call(lambda api: api.request_json("GET", f"Tickets/{ticket_id}").data.get("item"))
        if not isinstance(item, dict):
            # Autotask answers {"item": null} with HTTP 200 for a missing (or hidden) ticket (n8nAT).
            raise NotFoundError(f"GET Tickets/{ticket_id}: no such ticket", connection=self.name, status=200)
        notes = self.list_notes(external_id)
        time_entries = self._query("TimeEntries", [{"op": "eq", "field": "ticketID", "value": ticket_id}])
        return _full(item, notes, time_entries)

    def read_full(self, records: list[RawRecord]) -> dict[str, RawRecord]:
        """List records (the whole ticket) completed with the notes and time entries of the page, two queries each.

        ``TicketNotes/query`` and ``TimeEntries/query`` take ``ticketID in [...]`` (ATDOCS REST_Basic_Query_Calls:
        list operators), a page's 500 ids in one POSTed filter, so a page of tickets costs about one request per
        500 notes or entries on top of its list page.
        """
        ids = [_ticket_id(self.external_id_of(record), self.name) for record in records]
        tasks = [(entity, chunk) for chunk in chunks(ids, MAX_RECORDS) for entity in ("TicketNotes", "TimeEntries")]
        found = self.each(
            lambda task: self._query(task[0], [{"op": "in", "field": "ticketID", "value": list(task[1])}]), tasks
        )
        notes: dict[int, list[RawRecord]] = {}
        time_entries: dict[int, list[RawRecord]] = {}
        for (entity, _), rows in zip(tasks, found, strict=True):
            into = notes if entity == "TicketNotes" else time_entries
            for row in rows:
                into.setdefault(int(row.get("ticketID") or 0), []).append(row)
        return {
            self.external_id_of(record): _full(dict(record), _oldest_first(notes.get(ticket_id, [])),
                                               time_entries.get(ticket_id, []))
            for record, ticket_id in zip(records, ids, strict=True)
        }  # fmt: skip

    def list_notes(self, external_id: str) -> list[RawRecord]:
        """The ticket's TicketNotes, oldest first (GET Tickets/{id}/Notes)."""
        ticket_id = _ticket_id(external_id, self.name)

        def fetch(api: HttpClient) -> list[RawRecord]:
            request = PageRequest(method="GET", url=f"Tickets/{ticket_id}/Notes")
            paginator = NextUrlInBodyPaginator(path="pageDetails.nextPageUrl", resend_body=False)
            return [note for page in api.paginate(request, paginator, _items) for note in page.records]

        return _oldest_first(self._call(fetch))

    def _query(self, entity: str, conditions: list[dict[str, Any]], **extra: Any) -> list[RawRecord]:
        """Every record of a query (a POST query is a read, so it may be repeated)."""

        def fetch(api: HttpClient) -> list[RawRecord]:
            body = {"MaxRecords": MAX_RECORDS, "Filter": conditions, **extra}
            request = PageRequest(method="POST", url=f"{entity}/query", json=body)
            paginator = NextUrlInBodyPaginator(path="pageDetails.nextPageUrl", resend_body=True)
            return [record for page in api.paginate(request, paginator, _items) for record in page.records]

        return self._call(fetch)

    # -- metadata ------------------------------------------------------------------------------------------------------

    def load_metadata(self) -> VendorMetadata:
        """Ticket and note picklists, resources, and the contacts of the configured companies."""
        fields: dict[str, tuple[Choice, ...]] = {}
        for entity in ("Tickets", "TicketNotes"):
            info = self._call(_getter(f"{entity}/entityInformation/fields"))
            for field in info.get("fields") or ():
                if field.get("isPickList") and field.get("picklistValues"):
                    fields[field["name"]] = tuple(_choice(field["name"], v) for v in field["picklistValues"])
        resources = self._query("Resources", [{"op": "eq", "field": "isActive", "value": True}])
        fields["assignedResourceID"] = tuple(
            Choice(
                value=str(r["id"]),
                label=_full_name(r),
                extra={k: r[k] for k in ("email", "userName", "defaultServiceDeskRoleID") if r.get(k) is not None},
            )
            for r in resources
        )
        companies = [int(key) for key in self.settings.tenants if key.lstrip("-").isdigit()]
        if companies:
            contacts = self._query(
                "Contacts",
                [{"op": "in", "field": "companyID", "value": companies}, {"op": "eq", "field": "isActive", "value": 1}],
            )
            fields["contactID"] = tuple(
                Choice(value=str(c["id"]), label=_full_name(c), extra=_contact_extra(c)) for c in contacts
            )
        return VendorMetadata(system=self.system, fields=fields, fetched_at=self.runtime.now())

    def integration_user(self) -> str | None:
        """The API user's resource id (``options.integration_user``, else looked up once by user name)."""
        configured = super().integration_user()
        if configured is not None:
            return configured
        with self._lock:
            if self._integration_user is None:
                user = require_secret(self.settings, "username")
                found = self._query("Resources", [{"op": "eq", "field": "userName", "value": user}])
                self._integration_user = str(found[0]["id"]) if found else ""
            return self._integration_user or None

    # -- writing -------------------------------------------------------------------------------------------------------

    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        """POST Tickets with the marker in ``externalID``; returns the created ticket as GET shows it."""
        body = self._with_role({**fields, "externalID": _external_marker(marker)})
        item_id = self._write("POST", "Tickets", body)
        return self._fetch_ticket(item_id)

    def find_by_marker(self, marker: str) -> str | None:
        """The ticket whose ``externalID`` holds the marker."""
        found = self._query(
            "Tickets",
            [{"op": "eq", "field": "externalID", "value": _external_marker(marker)}],
            IncludeFields=["id"],
        )
        return str(found[0]["id"]) if found else None

    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        """PATCH Tickets with the id in the body and only the fields to change; returns the ticket afterwards.

        Sending a whole fetched record back trips unrelated validations (Anteris-Dev/autotask-client#70).
        """
        ticket_id = _ticket_id(external_id, self.name)
        if patch:
            # Setting fields to values is idempotent, so the PATCH may be repeated after a timeout.
            self._write("PATCH", "Tickets", self._with_role({**patch, "id": ticket_id}), idempotent=True)
        return self._fetch_ticket(ticket_id)

    def add_note(self, external_id: str, text: str, *, kind: NoteKind, marker: str) -> RawRecord:
        """A TicketNote under its ticket (``POST /TicketNotes`` is a 404: ATPM; WYRE-AI/autotask-mcp#24).

        A resolution goes where Autotask keeps it, the ticket's ``resolution`` field (appended, with the marker).
        """
        ticket_id = _ticket_id(external_id, self.name)
        description = _marked(text, marker)
        if kind is NoteKind.RESOLUTION:
            current = self._fetch_ticket(ticket_id).get("resolution") or ""
            if marker not in current:
                resolution = f"{current.rstrip()}\n\n{description}" if current.strip() else description
                self._write("PATCH", "Tickets", {"id": ticket_id, "resolution": resolution}, idempotent=True)
            return {"id": f"{ticket_id}-resolution", "ticketID": ticket_id, "description": description,
                    RESOLUTION_NOTE: True}  # fmt: skip
        title = (text.strip().splitlines() or ["psabridge"])[0][:250]
        body = {"ticketID": ticket_id, "title": title, "description": description, "noteType": self.options.note_type,
                "publish": PUBLISH[kind]}  # fmt: skip
        note_id = self._write("POST", f"Tickets/{ticket_id}/Notes", body)
        item = self._call(lambda api: api.request_json("GET", f"TicketNotes/{note_id}").data.get("item"))
        return dict(item) if isinstance(item, dict) else {"id": note_id, **body}

    def add_time_entry(self, external_id: str, entry: NewTimeEntry, *, marker: str) -> RawRecord:
        """POST TimeEntries for the ticket, the marker in summaryNotes."""
        ticket_id = _ticket_id(external_id, self.name)
        resource = str(entry.who or self.options.time_resource_id or self.integration_user() or "")
        if not resource.isdigit():
            raise PermanentError("no resource to log time as (set options.time_resource_id)", connection=self.name)
        role = self.options.time_role_id or self._role_of(resource)
        start = entry.started_at.astimezone(UTC)
        end = start + timedelta(minutes=entry.minutes)
        body: dict[str, Any] = {
            "ticketID": ticket_id,
            "resourceID": int(resource),
            "roleID": role,
            "dateWorked": _format_time(start.replace(hour=0, minute=0, second=0, microsecond=0)),
            "startDateTime": _format_time(start),
            "endDateTime": _format_time(end),
            "hoursWorked": round(entry.minutes / 60, 4),
            "summaryNotes": _marked(entry.note, marker),
            **dict(entry.extra),
        }
        if entry.billable is not None:
            body["isNonBillable"] = not entry.billable
        entry_id = self._write("POST", "TimeEntries", body)
        item = self._call(lambda api: api.request_json("GET", f"TimeEntries/{entry_id}").data.get("item"))
        return dict(item) if isinstance(item, dict) else {"id": entry_id, **body}

    def _write(self, method: str, path: str, body: RawRecord, *, idempotent: bool | None = None) -> int:
        """Send a write; Autotask answers ``{"itemId": n}``. A refused value refreshes the cached metadata."""
        try:
            answer = self._call(lambda api: api.request_json(method, path, json=body, idempotent=idempotent).data)
        except PermanentError as exc:
            if exc.vendor_message and _STALE_VALUE.search(exc.vendor_message) and self._metadata is not None:
                self.metadata(refresh=True)
            raise
        item_id = answer.get("itemId") if isinstance(answer, dict) else None
        if not isinstance(item_id, int):
            raise PermanentError(f"{method} {path}: no itemId in the answer {answer!r}", connection=self.name)
        return item_id

    def _fetch_ticket(self, ticket_id: int) -> RawRecord:
        item = self._call(lambda api: api.request_json("GET", f"Tickets/{ticket_id}").data.get("item"))
        if not isinstance(item, dict):
            raise NotFoundError(f"GET Tickets/{ticket_id}: no such ticket", connection=self.name, status=200)
        return item

    def _with_role(self, body: RawRecord) -> RawRecord:
        """A resource is assigned together with a role (WYRE-AI/msp-claude-plugins#31): add the resource's default."""
        resource = body.get("assignedResourceID")
        if resource is not None and body.get("assignedResourceRoleID") is None:
            role = self._role_of(str(resource))
            if role is not None:
                body = {**body, "assignedResourceRoleID": role}
        return body

    def _role_of(self, resource: str) -> int | None:
        for choice in self.metadata().choices("assignedResourceID"):
            if choice.value == resource and isinstance(choice.extra.get("defaultServiceDeskRoleID"), int):
                return int(choice.extra["defaultServiceDeskRoleID"])
        return None

    # -- webhooks ------------------------------------------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify X-Hook-Signature over the raw body; say which ticket changed (the body is a hint, not data)."""
        return read_delivery(
            headers,
            body,
            secret=require_secret(self.settings, "webhook_secret"),
            now=self.runtime.now(),
            max_age=self.options.webhook_max_age,
            connection=self.name,
        )

    def register_webhooks(self, url: str, *, deactivation_url: str | None = None) -> dict[str, Any]:
        """Create (or update) the ticket and ticket-note webhooks that call ``url``, signed with the webhook secret.

        The integration user is an excluded resource of both, so our own writes send no callout (DESIGN 6.4).
        """
        user = self.integration_user()
        exclude = [int(user)] if user is not None and user.isdigit() else []
        secret = require_secret(self.settings, "webhook_secret")
        return self._call(
            lambda api: register(api, url=url, deactivation_url=deactivation_url or url, secret=secret, exclude=exclude)
        )

    def webhooks(self) -> list[dict[str, Any]]:
        """The ticket and ticket-note webhooks ``register_webhooks`` made, with their fields and excluded resources."""
        return self._call(registered)

    def close(self) -> None:
        """Close the lookup and zone clients."""
        with self._lock:
            if self._api is not None:
                self._api.close()
        super().close()


# --- helpers ----------------------------------------------------------------------------------------------------------


def _oldest_first(notes: list[RawRecord]) -> list[RawRecord]:
    return sorted(notes, key=lambda n: (str(n.get("createDateTime") or ""), int(n.get("id") or 0)))


def _full(item: RawRecord, notes: list[RawRecord], time_entries: list[RawRecord]) -> RawRecord:
    """A ticket with its extras: its notes, then its resolution as one more note, and its time entries."""
    ticket_id = item.get("id")
    resolution = item.get("resolution")
    if isinstance(resolution, str) and resolution.strip():
        notes = [
            *notes,
            {
                "id": f"{ticket_id}-resolution",
                "ticketID": ticket_id,
                "description": resolution,
                "createDateTime": item.get("resolvedDateTime") or item.get("completedDate"),
                "creatorResourceID": item.get("completedByResourceID"),
                RESOLUTION_NOTE: True,
            },
        ]
    item[EXTRA_NOTES] = notes
    item[EXTRA_TIME_ENTRIES] = time_entries
    return item


def _errors(response: httpx.Response) -> list[str] | None:
    """The strings of an ``{"errors": [...]}`` body, or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return None
    return [str(e) for e in errors if str(e).strip()] or None


def _getter(path: str) -> Callable[[HttpClient], Any]:
    """A GET of ``path`` returning the parsed body, for ``_call``."""
    return lambda api: api.request_json("GET", path).data


def _items(body: Any) -> list[Any]:
    return list(body["items"])


def _first(pages: Iterator[T]) -> Iterator[T]:
    """Fetch the first page now (so a 401 surfaces inside ``_call``), then stream the rest."""
    first = next(pages, None)

    def stream() -> Iterator[T]:
        if first is not None:
            yield first
            yield from pages

    return stream()


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _format_time(value: datetime) -> str:
    """UTC with milliseconds and Z, as Autotask writes times (djAT ``sync.py`` sends the same form)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ticket_id(external_id: str, connection: str) -> int:
    if not str(external_id).isdigit():
        raise NotFoundError(f"{external_id!r} is not an Autotask ticket id", connection=connection)
    return int(external_id)


def _marked(text: str, marker: str) -> str:
    return text if marker in text else f"{text.rstrip()}\n\n{marker}" if text.strip() else marker


def _external_marker(marker: str) -> str:
    """The marker as it fits ``externalID``: itself, or a stable digest of it when too long."""
    if len(marker) <= EXTERNAL_ID_LENGTH and MARKER_PATTERN.fullmatch(marker):
        return marker
    return "psabridge:" + hashlib.sha256(marker.encode()).hexdigest()[: EXTERNAL_ID_LENGTH - 10]


def _choice(field: str, value: Mapping[str, Any]) -> Choice:
    parent = value.get("parentValue")
    return Choice(
        value=str(value["value"]),
        label=str(value.get("label", value["value"])),
        active=bool(value.get("isActive", True)),
        scope=str(parent) if parent not in (None, "") else None,
        is_default=bool(value.get("isDefaultValue", False)),
        is_closed=field == "status" and str(value["value"]) == STATUS_COMPLETE,
        extra={"system": True} if value.get("isSystem") else {},
    )


def _full_name(record: Mapping[str, Any]) -> str:
    return " ".join(str(record[k]) for k in ("firstName", "lastName") if record.get(k)) or str(record["id"])


def _contact_extra(record: Mapping[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {"companyID": record.get("companyID")}
    if record.get("emailAddress"):
        extra["email"] = record["emailAddress"]
    return extra


CONNECTOR = AutotaskConnector
