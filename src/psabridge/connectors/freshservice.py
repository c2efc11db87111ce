"""Freshservice (API v2) connector: every Freshservice quirk psabridge knows, over the shared HTTP layer.

Sources use VENDOR-APIS.md's shorthand (section 4): FSSPEC = Freshworks' own Swagger file (vendor-specs), goFS =
theapsgroup/go-freshservice, FSDOCS = api.freshservice.com; pango = askasoft/pango ``sdk/fdk/freshservice``.

- Auth: Basic with the API key as user name and ``X`` as password (goFS ``client.go``; FSDOCS). A 403 means the
  agent's role may not do this: use a full-time agent's key (configuration, not a retry).
- Reading changes: ``GET /api/v2/tickets?updated_since=..&per_page=100&order_type=asc``, following the ``Link``
  header (rel next). 100 is the largest page (more is a 400). Freshservice sorts by ``created_at`` only (its list
  has no ``order_by``: pango comments it out for Freshservice, and the simulator refuses it), so pages are not in
  update order: the watermark stays where the run started until the last page. Sorting by creation, ascending, is
  stable while we read: a ticket updated meanwhile keeps its place (and its new version comes in the next run,
  because the run's watermark is capped at the vendor's clock when the first page was served, from the ``Date``
  header), and tickets raised meanwhile come last. (Descending order would repeat a record for each ticket raised
  while we page; a ticket deleted while we page makes every later page skip one in either order, which only a
  reconcile repairs.) Without ``updated_since`` Freshservice lists only tickets created in the last 30 days, so a
  backfill asks for everything updated since ``backfill_since`` (default 2000-01-01).
- One ticket: ``include=stats,requester,assets`` (+1 credit each on a show call): ``stats`` (resolved_at,
  closed_at, first_responded_at) and ``assets`` go under ``_psa_extra``, the requester stays where Freshservice puts
  it; all conversations (notes and replies, paged) under ``_psa_notes``, time entries under ``_psa_time_entries``.
- Ingest from the page: the list asks for ``include=stats,requester`` (the two a list may embed, +2 credits each
  per page: FSSPEC list-tickets ``include``), so a list record carries every field of the ticket. Conversations
  and assets can only be embedded in a show call (FSSPEC view-ticket ``include``: conversations, requester,
  problem, stats, assets, change, related_tickets) and time entries exist only per ticket: a changed ticket costs
  one show call with ``include=conversations,assets`` (3 credits of the view-ticket sub-limit; it embeds the first
  ten conversations, so a ticket with ten or more lists them all as well) and one time-entries call (no sub-limit),
  overlapped; a ticket whose ``updated_at`` stands keeps its stored conversations, assets and time.
- Writes: PUT with only the fields to change (FSDOCS verbs table: PUT updates; goFS ``Put``); POST to create (201).
  Notes: ``private`` defaults to true, bodies are HTML (FSSPEC ``ticket_note``); there is no resolution note type,
  so a resolution is a private note. Time: ``time_spent`` "hh:mm", ``executed_at`` (FSSPEC ``time_entry``).
  Every note and time entry carries the marker; a created ticket carries it in its description, and
  ``find_by_marker`` scans recently updated tickets for it: the filter API cannot search descriptions and its
  index lags by minutes (VENDOR-APIS.md 4.3), and a custom field would need an admin to create it first.
- Errors: ``{"description": "Validation failed", "errors": [{field, message, code}]}`` or ``{code, message}``
  (FSSPEC ``BadRequest``/``Forbidden``); a 404 has no body. A write refused with ``invalid_value`` on a field we take
  from metadata (group, agent, status ...) refreshes the metadata cache.
- Rate: per-minute limits per plan, shared by every app on the account, counted in credits: an overall limit and
  sub-limits for list tickets, view, create and update ticket, list agents and list requesters (``PLANS``, from
  Freshworks' announcement of the per-minute model, community.freshworks.dev/t/1101, and docs.exalate.com "Rate
  Limit Limitations for Freshservice"; MSP Core follows Growth; no sub-limit exists for conversations or time
  entries). A request costs one credit, plus one per ``include`` on a show call and two per include on a list
  (docs.exalate.com: embedding costs 1 credit on SHOW, 3 on LIST; askasoft/pango ``freshservice/tickets.go``), in
  the overall limit and in its sub-limit alike. The budget counts credits in each window as Freshservice does, a
  second longer (our window starts when we send, theirs when the request arrives); every answer's
  ``X-RateLimit-Total``/``-Remaining`` then tells the account window what other apps used. 429 waits as
  Retry-After says (seconds, or a date: FSSPEC calls it a date-time). Waits of up to a minute happen inside the
  request (see ``retry_policy``).
- Webhooks: Freshservice signs nothing. The Workflow Automator "Trigger Webhook" action posts a body the admin
  designs; psabridge's setup asks for ``{"ticket_id": {{ticket.id}}, "event": "ticket_updated", ...}`` and a custom
  header carrying the shared secret (``X-Psabridge-Secret``, or ``options.webhook_header``), compared in constant
  time. Only the ticket id and the kind of event are read; the ticket is re-fetched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import AfterValidator, BeforeValidator, Field

from psabridge.connectors.auth import BasicAuth, require_secret
from psabridge.connectors.base import EXTRA_EXTRA, EXTRA_NOTES, EXTRA_TIME_ENTRIES, NewTimeEntry, Page, WebhookEvent
from psabridge.connectors.budget import Budget, BudgetLimits, Charge, Window
from psabridge.connectors.http import FailureType, HttpRuntime, Resolution, RetryPolicy, json_or_none
from psabridge.connectors.options import ConnectorOptions
from psabridge.connectors.pagination import LinkHeaderPaginator, PageRequest
from psabridge.connectors.rest import ChangeRun, HttpConnector, counted_pages, numeric_id
from psabridge.connectors.webhook_input import header_value, integer_id, json_body, same_secret
from psabridge.errors import ConfigError, NotFoundError, PermanentError, WebhookVerificationError
from psabridge.markers import find_marker, marker_for, with_marker
from psabridge.model import NoteKind, System
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import Choice, RawRecord, VendorMetadata

__all__ = ["CONNECTOR", "PLANS", "FreshserviceConnector", "FreshserviceOptions", "PlanLimits", "text_to_html"]

VENDOR = "Freshservice"
MAX_PAGE = 100  # Freshservice's largest per_page; more is a 400 (FSDOCS #pagination)
ACCOUNT = "account"
WINDOW_SECONDS = 61  # Freshservice's minute, plus a second: our window starts when we send, theirs on arrival


@dataclass(frozen=True)
class PlanLimits:
    """A plan's per-minute limits in credits: overall, and per sub-limited endpoint (see the module docstring)."""

    overall: int
    list_tickets: int
    ticket: int  # each of view, create and update ticket
    list_users: int  # each of list agents and list requesters

    def budget(self) -> BudgetLimits:
        """The budget of a connection on this plan: the account window and one window per sub-limit."""
        per = WINDOW_SECONDS
        windows = [Window(ACCOUNT, self.overall, per, every=True), Window("list_tickets", self.list_tickets, per)]
        windows += [Window(name, self.ticket, per) for name in ("view_ticket", "create_ticket", "update_ticket")]
        windows += [Window(name, self.list_users, per) for name in ("list_agents", "list_requesters")]
        return BudgetLimits(windows=tuple(windows))


PLANS: dict[str, PlanLimits] = {
    "starter": PlanLimits(100, 40, 50, 40),
    "growth": PlanLimits(200, 70, 80, 70),
    "pro": PlanLimits(400, 120, 140, 120),
    "enterprise": PlanLimits(500, 140, 160, 140),
}
"""Per-minute limits by plan (community.freshworks.dev/t/1101; docs.exalate.com; FSDOCS #rate_limit)."""
_TICKET_PATH = re.compile(r"^/?api/v2/tickets/\d+/?$")
_SUB_LIMITS = {
    ("GET", "tickets"): "list_tickets",
    ("GET", "ticket"): "view_ticket",
    ("POST", "tickets"): "create_ticket",
    ("PUT", "ticket"): "update_ticket",
    ("GET", "api/v2/agents"): "list_agents",
    ("GET", "api/v2/requesters"): "list_requesters",
}
"""(method, what the path names) -> the sub-limit a request counts against, as the plans list them."""
TICKET_INCLUDE = "stats,requester,assets"
LIST_INCLUDE = "stats,requester"
VIEW_INCLUDE = "conversations,assets"
EMBEDDED_CONVERSATIONS = 10
"""A show call embeds at most the first ten conversations (Freshworks' v2 docs of ``include=conversations`` for
Freshdesk, which the simulator follows; [UNCONFIRMED] for Freshservice, hence a ticket with ten is listed in full)."""
WEBHOOK_HEADER = "X-Psabridge-Secret"
BACKFILL_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
MARKER_LOOKBACK = timedelta(days=2)  # how far back find_by_marker looks for a create whose answer was lost
# Fields Freshservice computes or refuses on PUT: never sent, whatever a patch holds.
_READ_ONLY = frozenset(
    {"id", "created_at", "updated_at", "description_text", "deleted", "spam", "is_escalated", "fr_escalated"}
    | {"attachments", "to_emails", "fwd_emails", "reply_cc_emails", "stats", "requester", "assets", "conversations"}
)
# A write refused because a value we took from metadata no longer exists: our cache is stale.
_STALE = re.compile(
    r"\b(status|priority|source|urgency|impact|type|group_id|responder_id|department_id|requester_id)"
    r": [^;]*\[invalid_value\]"
)
_EVENTS: tuple[tuple[str, Literal["created", "note", "deleted"]], ...] = (
    ("creat", "created"),
    ("raise", "created"),
    ("note", "note"),
    ("repl", "note"),
    ("conversation", "note"),
    ("delet", "deleted"),
)


def stamp(when: datetime) -> str:
    """A Freshservice timestamp: UTC, whole seconds (floored), ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """A Freshservice timestamp (``2021-11-22T16:58:45Z``) as aware UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def text_to_html(text: str) -> str:
    """Plain text as a Freshservice HTML body (escaped, line breaks as ``<br>``)."""
    return "<div>" + html.escape(text).replace("\n", "<br>") + "</div>"


Plan = Literal["starter", "growth", "pro", "enterprise"]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _aware(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


class FreshserviceOptions(ConnectorOptions):
    """``connections[].options`` of a Freshservice connection."""

    plan: Annotated[Plan, BeforeValidator(_lower)] = Field(
        default="growth",
        description="the account's plan, whose per-minute API limits psabridge keeps to (MSP Core follows Growth)",
    )
    backfill_since: Annotated[datetime, AfterValidator(_aware)] = Field(
        default=BACKFILL_SINCE,
        description="a backfill lists tickets updated since then (Freshservice lists only 30 days without it)",
    )
    requester_email: str | None = Field(
        default=None, description="requester of tickets psabridge creates when the mirrored ticket names none"
    )
    marker_lookback_hours: float = Field(
        default=MARKER_LOOKBACK.total_seconds() / 3600,
        gt=0,
        description="how far back a create whose answer was lost is looked for by its marker",
    )
    webhook_header: str = Field(
        default=WEBHOOK_HEADER, min_length=1, description="the workflow's custom header carrying the shared secret"
    )


FS_WORKFLOW = """\
Freshservice has no webhook API: create this rule (Admin > Workflow Automator > New Automator > Ticket).
  Name:     psabridge {connection}
  Event:    Ticket is raised; Ticket is updated (any field); Note is added
  Condition: Performed by  is not  agent {agent}
  Action:   Trigger Webhook
    Request type:  POST
    URL:           {url}
    Requires authentication: no; Custom headers: on
      {header}: <this connection's webhook_secret credential>
    Encoding:      JSON     Content: Advanced
    {{"ticket_id": "{{{{ticket.id}}}}", "event": "{{{{triggered_event}}}}"}}
"""
"""The Workflow Automator rule ``webhook_setup`` prints (VENDOR-APIS 4.7: event, Trigger Webhook, custom header)."""


class FreshserviceConnector(HttpConnector):
    """A Freshservice connection (one client's account, or an MSP account whose departments are clients)."""

    system = System.FRESHSERVICE
    options_model = FreshserviceOptions
    options: FreshserviceOptions
    # Limits are per minute, so a full budget or a 429 frees up within a minute: wait for it inside the request. Raising
    # instead would restart a backfill from its first page (pages come by creation time, so the watermark only moves
    # at the end), and with Growth's 70 list calls a minute a backfill of more than 7,000 tickets could never finish.
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(inline_max_wait=65.0, max_elapsed=150.0)
    resolutions: ClassVar[Mapping[int | type[BaseException], Resolution]] = {
        403: Resolution.fail(
            ConfigError, "the API key's agent role does not allow this (use a full-time agent)", FailureType.CONFIG
        ),
    }

    def __init__(self, settings: ConnectionSettings, *, runtime: HttpRuntime | None = None) -> None:
        super().__init__(settings, runtime=runtime)
        self._agent_id: str | None = None  # learned from the first note we write

    @classmethod
    def vendor_budget(cls, options: ConnectorOptions) -> BudgetLimits:
        """The plan's per-minute limits (``options.plan``), in credits."""
        assert isinstance(options, FreshserviceOptions)
        return PLANS[options.plan].budget()

    def auth(self) -> httpx.Auth:
        """Basic ``apikey:X``."""
        return BasicAuth(require_secret(self.settings, "api_key"), "X")

    # -- hooks of the HTTP layer -------------------------------------------------------------------------------------

    def error_message(self, response: httpx.Response) -> str | None:
        """``description`` with each error's field, message and code; or ``message`` and ``code``; or nothing."""
        body = json_or_none(response)
        if not isinstance(body, dict):
            return response.text.strip()[:500] or None
        errors = [e for e in body.get("errors") or () if isinstance(e, dict)]
        if errors:
            parts = [f"{e.get('field') or '(body)'}: {e.get('message')} [{e.get('code')}]" for e in errors]
            return f"{body.get('description') or 'Validation failed'}: " + "; ".join(parts)
        message = body.get("message") or body.get("description")
        if isinstance(message, str) and message:
            return f"{message} [{body['code']}]" if body.get("code") else message
        return None

    def on_response(self, response: httpx.Response, budget: Budget) -> None:
        """Follow ``X-RateLimit-Total``/``-Remaining``: the account's credits this minute, shared with other apps."""
        total = response.headers.get("X-RateLimit-Total", "").strip()
        remaining = response.headers.get("X-RateLimit-Remaining", "").strip()
        if total.isdigit() and remaining.isdigit() and int(total) > 0:
            budget.observe(ACCOUNT, used=max(0, int(total) - int(remaining)), limit=int(total))

    def charge_of(self, request: httpx.Request, path: str) -> Charge:
        """Credits as Freshservice counts them, in the account window and the endpoint's sub-limit."""
        method = request.method.upper()
        target = path.strip("/")
        shape = "tickets" if target == "api/v2/tickets" else "ticket" if _TICKET_PATH.match(path) else target
        window = _SUB_LIMITS.get((method, shape))
        list_tickets = window == "list_tickets"
        includes = [p for p in request.url.params.get("include", "").split(",") if p.strip()] if method == "GET" else []
        credits = 1 + (2 if list_tickets else 1) * len(includes)
        return Charge(credits, (window,) if window else ())

    def endpoint_of(self, path: str) -> str:
        """``tickets``, ``groups`` ...: the first segment after ``/api/v2``."""
        segments = [s for s in path.split("/") if s and s not in ("api", "v2")]
        return segments[0] if segments else "/"

    # -- reading -----------------------------------------------------------------------------------------------------

    def external_id_of(self, record: RawRecord) -> str:
        """The ticket id."""
        return str(record["id"])

    def updated_at_of(self, record: RawRecord) -> datetime | None:
        """``updated_at``."""
        return parse_time(record.get("updated_at"))

    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        """Tickets updated at or after ``since`` minus the overlap (or all), by creation time, 100 a page."""
        start = self.read_from(since)
        params = {
            "updated_since": stamp(start if start is not None else self.options.backfill_since),
            "per_page": self.page_size(MAX_PAGE, MAX_PAGE),
            "order_type": "asc",
            "include": LIST_INCLUDE,
        }
        run = ChangeRun(since=since, external_id=self.external_id_of, updated_at=self.updated_at_of, ordered=False)
        began: datetime | None = None
        request = PageRequest(url="api/v2/tickets", params=params)
        for fetched, requests in counted_pages(self.http.paginate(request, LinkHeaderPaginator(), _tickets)):
            if began is None:
                began = _server_time(fetched.reply.response) or self.runtime.now()
            page = run.page(fetched.records, last=fetched.last, request_count=requests)
            if fetched.last and page.watermark is not None and page.watermark > began:
                # A ticket changed after the first page was served may sit on a page we had already read: the next
                # run must start no later than that moment.
                page = dataclasses.replace(page, watermark=max(began, since) if since is not None else began)
            yield page

    def get_ticket(self, external_id: str) -> RawRecord:
        """The ticket with stats, requester and assets, its conversations and its time entries."""
        ticket_id = numeric_id(external_id, VENDOR)
        data = self.http.request_json("GET", f"api/v2/tickets/{ticket_id}", params={"include": TICKET_INCLUDE}).data
        ticket: RawRecord = dict(_field(data, "ticket"))
        ticket[EXTRA_EXTRA] = {"stats": ticket.pop("stats", None), "assets": ticket.pop("assets", None) or []}
        ticket[EXTRA_NOTES] = self.list_notes(external_id)
        ticket[EXTRA_TIME_ENTRIES] = self._all(f"api/v2/tickets/{ticket_id}/time_entries", "time_entries")
        return ticket

    def list_fields_equal(self, record: RawRecord, previous: RawRecord) -> bool:
        """Every field equal, the list's embedded ``stats`` compared with the stored ``_psa_extra.stats``."""
        fields, stats = _split_stats(record)
        return stats == (previous.get(EXTRA_EXTRA) or {}).get("stats") and super().list_fields_equal(fields, previous)

    def read_full(self, records: list[RawRecord]) -> dict[str, RawRecord]:
        """List records completed per ticket (no bulk read exists): conversations and assets, time; overlapped."""
        tasks = [(kind, record) for record in records for kind in ("view", "time")]
        found = dict(
            zip(((k, self.external_id_of(r)) for k, r in tasks), self.each(self._read_part, tasks), strict=True)
        )
        full: dict[str, RawRecord] = {}
        for record in records:
            external_id = self.external_id_of(record)
            view, time_entries = found["view", external_id], found["time", external_id]
            if view is None or time_entries is None:
                continue  # deleted since the page was listed
            fields, stats = _split_stats(record)
            full[external_id] = {
                **fields,
                EXTRA_EXTRA: {"stats": stats, "assets": view.get("assets") or []},
                EXTRA_NOTES: view[EXTRA_NOTES],
                EXTRA_TIME_ENTRIES: time_entries,
            }
        return full

    def _read_part(self, task: tuple[str, RawRecord]) -> Any:
        """One read of ``read_full``: the show call (assets, conversations) or the time entries (None: gone)."""
        kind, record = task
        external_id = self.external_id_of(record)
        ticket_id = numeric_id(external_id, VENDOR)
        marker = record.get("updated_at")
        try:
            if kind == "time":
                path = f"api/v2/tickets/{ticket_id}/time_entries"
                return self.remembered(("time", external_id, marker), lambda: self._all(path, "time_entries"))
            return self.remembered(("view", external_id, marker), lambda: self._view(external_id))
        except NotFoundError:
            return None

    def _view(self, external_id: str) -> RawRecord:
        """The show call with the conversations and assets embedded; every conversation if it has ten or more."""
        path = f"api/v2/tickets/{numeric_id(external_id, VENDOR)}"
        ticket = _field(self.http.request_json("GET", path, params={"include": VIEW_INCLUDE}).data, "ticket")
        embedded = list(ticket.get("conversations") or [])
        notes = self.list_notes(external_id) if len(embedded) >= EMBEDDED_CONVERSATIONS else _oldest_first(embedded)
        return {"assets": ticket.get("assets"), EXTRA_NOTES: notes}

    def list_notes(self, external_id: str) -> list[RawRecord]:
        """Every conversation (private and public notes, replies), oldest first."""
        return _oldest_first(
            self._all(f"api/v2/tickets/{numeric_id(external_id, VENDOR)}/conversations", "conversations")
        )

    def _all(self, path: str, key: str) -> list[RawRecord]:
        """Every record of a paged list (``per_page=100``, following ``Link``)."""
        request = PageRequest(url=path, params={"per_page": MAX_PAGE})
        found: list[RawRecord] = []
        for page in self.http.paginate(request, LinkHeaderPaginator(), lambda body: _field(body, key)):
            found.extend(dict(r) for r in page.records)
        return found

    # -- metadata ----------------------------------------------------------------------------------------------------

    def load_metadata(self) -> VendorMetadata:
        """Statuses, priorities, sources, urgency, impact, types (ticket form), groups, agents, departments."""
        form = self.http.request_json("GET", "api/v2/ticket_form_fields").data
        choices = {str(f.get("name")): f.get("choices") for f in _field(form, "ticket_fields") if isinstance(f, dict)}
        fields: dict[str, tuple[Choice, ...]] = {}
        for name, form_name, defaults in _DROPDOWNS:
            listed = _choices(choices.get(form_name)) or defaults
            fields[name] = tuple(
                Choice(value=value, label=label, is_closed=name == "status" and value in ("4", "5"))
                for value, label in listed
            )
        fields["group_id"] = tuple(
            Choice(value=str(g["id"]), label=str(g["name"])) for g in self._all("api/v2/groups", "groups")
        )
        fields["responder_id"] = tuple(
            Choice(
                value=str(a["id"]),
                label=" ".join(p for p in (a.get("first_name"), a.get("last_name")) if p) or str(a.get("email")),
                active=bool(a.get("active", True)),
                extra={"email": a.get("email")},
            )
            for a in self._all("api/v2/agents", "agents")
        )
        fields["department_id"] = tuple(
            Choice(value=str(d["id"]), label=str(d["name"])) for d in self._all("api/v2/departments", "departments")
        )
        return VendorMetadata(system=self.system, fields=fields, fetched_at=datetime.now(UTC))

    # -- writing -----------------------------------------------------------------------------------------------------

    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        """PUT only the fields to change; a value refused as unknown refreshes the metadata cache."""
        ticket_id = numeric_id(external_id, VENDOR)
        body = {k: v for k, v in patch.items() if k not in _READ_ONLY and not k.startswith("_psa_")}
        if not body:
            return dict(_field(self.http.request_json("GET", f"api/v2/tickets/{ticket_id}").data, "ticket"))
        return self._write("PUT", f"api/v2/tickets/{ticket_id}", body, "ticket")

    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        """POST a ticket whose description ends with the marker.

        Status Open and priority Low unless given; without a requester, ``options.requester_email`` (mirrors are
        often raised in the name of one contact of the MSP) when set.
        """
        tag = marker_for(_key(marker))
        body = {k: v for k, v in fields.items() if k not in _READ_ONLY and not k.startswith("_psa_")}
        fallback = self.options.requester_email
        if fallback and not any(body.get(k) for k in ("requester_id", "email", "phone")):
            body["email"] = str(fallback)
        description = str(body.get("description") or "")
        if tag not in description:
            body["description"] = f"{description}<div>{html.escape(tag)}</div>"
        body.setdefault("status", 2)
        body.setdefault("priority", 1)
        return self._write("POST", "api/v2/tickets", body, "ticket")

    def find_by_marker(self, marker: str) -> str | None:
        """The ticket, updated within ``options.marker_lookback_hours`` (48), whose description holds the marker."""
        tag = marker_for(_key(marker))
        params = {
            "updated_since": stamp(self.runtime.now() - timedelta(hours=self.options.marker_lookback_hours)),
            "per_page": MAX_PAGE,
            "order_type": "desc",  # newest first: a lost create is among the latest
        }
        request = PageRequest(url="api/v2/tickets", params=params)
        for page in self.http.paginate(request, LinkHeaderPaginator(), _tickets):
            for ticket in page.records:
                if tag in str(ticket.get("description") or "") or tag in str(ticket.get("description_text") or ""):
                    return self.external_id_of(ticket)
        return None

    def add_note(self, external_id: str, text: str, *, kind: NoteKind, marker: str) -> RawRecord:
        """POST a note (private unless public) whose body ends with the marker; once, even if retried."""
        key = _key(marker)
        existing = next((n for n in self.list_notes(external_id) if _has(n.get("body"), key)), None)
        if existing is not None:
            return existing
        body = {"body": text_to_html(with_marker(text, key)), "private": kind is not NoteKind.PUBLIC}
        note = self._write("POST", f"api/v2/tickets/{numeric_id(external_id, VENDOR)}/notes", body, "conversation")
        if note.get("user_id") is not None:
            self._agent_id = str(note["user_id"])
        return note

    def add_time_entry(self, external_id: str, entry: NewTimeEntry, *, marker: str) -> RawRecord:
        """POST "hh:mm" of time whose note ends with the marker; never logged twice."""
        key = _key(marker)
        path = f"api/v2/tickets/{numeric_id(external_id, VENDOR)}/time_entries"
        existing = next((e for e in self._all(path, "time_entries") if _has(e.get("note"), key)), None)
        if existing is not None:
            return existing
        hours, minutes = divmod(max(0, entry.minutes), 60)
        body: dict[str, Any] = {
            "time_spent": f"{hours:02d}:{minutes:02d}",
            "executed_at": stamp(entry.started_at),
            "note": with_marker(entry.note, key),
            **dict(entry.extra),
        }
        if entry.billable is not None:
            body["billable"] = entry.billable
        agent = self._agent(entry.who)
        if agent is not None:
            body["agent_id"] = agent
        return self._write("POST", path, body, "time_entry")

    def _agent(self, who: str | None) -> int | None:
        """An agent id from an id, an e-mail address or a name (None: the API key's own agent logs the time)."""
        if not who:
            return None
        if who.isdigit():
            return int(who)
        wanted = who.strip().casefold()
        for choice in self.metadata().choices("responder_id"):
            if wanted in (choice.label.casefold(), str(choice.extra.get("email") or "").casefold()):
                return int(choice.value)
        return None

    def _write(self, method: str, path: str, body: RawRecord, key: str) -> RawRecord:
        try:
            reply = self.http.request_json(method, path, json=body)
        except PermanentError as exc:
            if exc.status == 400 and _STALE.search(exc.vendor_message or ""):
                self.metadata(refresh=True)
            raise
        return dict(_field(reply.data, key))

    def integration_user(self) -> str | None:
        """``options.integration_user``, else the agent our notes came back as (the API key's agent)."""
        return super().integration_user() or self._agent_id

    # -- webhooks ----------------------------------------------------------------------------------------------------

    def webhook_setup(self, url: str) -> str:
        """The Workflow Automator rule to create (Freshservice has no subscription API: VENDOR-APIS 4.7).

        Events "Ticket is raised" and "Ticket is updated", the agent condition skips our integration agent (its
        feasibility is UNCONFIRMED: our notes are recognised by marker anyway), action Trigger Webhook with the
        shared secret in ``options.webhook_header`` and the body ``parse_webhook`` reads. The secret is never printed.
        """
        agent = self.integration_user() or "<the API key's agent>"
        return FS_WORKFLOW.format(url=url, agent=agent, header=self.options.webhook_header, connection=self.name)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check the shared-secret header in constant time; read only the ticket id and the kind of event."""
        name = self.options.webhook_header.lower()
        given = header_value(headers, name)
        if not given:
            raise WebhookVerificationError(f"the delivery has no {name} header", connection=self.name)
        if not same_secret(given, require_secret(self.settings, "webhook_secret")):
            raise WebhookVerificationError(f"the delivery's {name} header is wrong", connection=self.name)
        try:
            payload = json_body(body)
        except ValueError as exc:
            raise PermanentError("the delivery is not JSON", connection=self.name) from exc
        if isinstance(payload, dict):
            # The workflow's "Simple" content wraps fields in one object (Freshworks' legacy "freshdesk_webhook").
            nested = payload.get("freshdesk_webhook") or payload.get("freshservice_webhook")
            payload = nested if isinstance(nested, dict) else payload
        if not isinstance(payload, dict):
            raise PermanentError("the delivery is not a JSON object", connection=self.name)
        # Placeholders render ids as 123, "123" or the display id "INC-123" / "#SR-123".
        given_id = payload.get("ticket_id", payload.get("id"))
        if isinstance(given_id, str):
            match = re.fullmatch(r"\s*#?(?:[A-Za-z]{1,10}-)?([0-9]+)\s*", given_id)
            given_id = match.group(1) if match else None
        ticket = integer_id(given_id)
        if ticket is None:
            raise PermanentError("the delivery names no ticket_id", connection=self.name)
        what = payload.get("event") or payload.get("triggered_event")
        what = what.lower() if isinstance(what, str) else ""
        event: Literal["created", "updated", "deleted", "note"] = next(
            (kind for word, kind in _EVENTS if word in what), "updated"
        )
        return WebhookEvent(
            external_id=ticket,
            event=event,
            delivery_id=hashlib.sha256(body).hexdigest(),
            occurred_at=parse_time(payload.get("updated_at")),
        )


_SOURCES = (  # codes 1..10, not the Freshdesk list (VENDOR-APIS.md 4.4)
    "Email",
    "Portal",
    "Phone",
    "Chat",
    "Feedback widget",
    "Yammer",
    "AWS Cloudwatch",
    "Pagerduty",
    "Walkup",
    "Slack",
)
_DROPDOWNS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    # (field in tickets, field on the ticket form, the documented defaults: VENDOR-APIS.md 4.4, goFS ticket.go)
    ("status", "status", (("2", "Open"), ("3", "Pending"), ("4", "Resolved"), ("5", "Closed"))),
    ("priority", "priority", (("1", "Low"), ("2", "Medium"), ("3", "High"), ("4", "Urgent"))),
    ("urgency", "urgency", (("1", "Low"), ("2", "Medium"), ("3", "High"))),
    ("impact", "impact", (("1", "Low"), ("2", "Medium"), ("3", "High"))),
    ("source", "source", tuple((str(code), label) for code, label in enumerate(_SOURCES, start=1))),
    ("type", "ticket_type", (("Incident", "Incident"), ("Service Request", "Service Request"))),
)


def _choices(raw: Any) -> tuple[tuple[str, str], ...]:
    """Form-field choices as (value, label): ``[{"id", "value"}]`` (FSSPEC ``field``) or ``{"label": id}``."""
    if isinstance(raw, list):
        pairs = []
        for item in raw:
            if isinstance(item, dict) and "value" in item:
                label = str(item["value"])
                pairs.append((str(item["id"]) if item.get("id") is not None else label, label))
        return tuple(pairs)
    if isinstance(raw, dict):
        return tuple((str(value), str(label)) for label, value in raw.items())
    return ()


def _oldest_first(conversations: list[RawRecord]) -> list[RawRecord]:
    return sorted(conversations, key=lambda n: (str(n.get("created_at") or ""), int(n.get("id") or 0)))


def _split_stats(record: RawRecord) -> tuple[RawRecord, Any]:
    """A list record without the ``stats`` it embeds, and those stats (as get_ticket keeps them apart)."""
    fields = dict(record)
    return fields, fields.pop("stats", None)


def _key(marker: str) -> str:
    """The idempotency key of a marker given either as ``[psabridge:<key>]`` or as the key itself."""
    return find_marker(marker) or marker


def _has(text: Any, key: str) -> bool:
    return isinstance(text, str) and find_marker(html.unescape(text)) == key


def _server_time(response: httpx.Response) -> datetime | None:
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _field(body: Any, key: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise TypeError(f"expected a JSON object with {key!r}")
    return body[key]


def _tickets(body: Any) -> Sequence[Any]:
    found = _field(body, "tickets")
    if not isinstance(found, list):
        raise TypeError("'tickets' is not a list")
    return found


CONNECTOR = FreshserviceConnector
