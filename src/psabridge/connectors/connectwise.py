"""ConnectWise PSA (Manage) connector: every ConnectWise quirk psabridge knows, over the shared HTTP layer.

Sources use VENDOR-APIS.md's shorthand (section 1): pyCW = HealthITAU/pyconnectwise, CWREST =
covenanttechnologysolutions/connectwise-rest, Nango = NangoHQ/nango ``connectwise-psa-webhook-routing.ts``.

- Auth: Basic ``company+publicKey:privateKey`` plus the per-integration ``clientId`` header (pyCW ``_get_headers``).
- Codebase: the configured base URL may be the site root (``https://api-na.myconnectwise.net``); then, before
  anything else, ``GET /login/companyinfo/{company}`` names the instance's ``Codebase`` (``v4_6_release/``, or a
  pinned release such as ``v2025_1/``) and requests go to ``<site>/<codebase>apis/3.0``, as real clients do (pyCW
  ``_try_get_codebase_from_api``; VENDOR-APIS.md 1.1). A base URL ending in ``/apis/3.0`` pins the codebase.
- Reading changes: ``conditions=_info/lastUpdated >= [..]`` (dates in brackets), ``orderBy=_info/lastUpdated asc, id
  asc`` (no default order is documented), ``pageSize=1000`` (the maximum). ``_info/lastUpdated`` rather than the
  older alias ``lastUpdated``: it is the path of the field in the records themselves, and clients use that path in
  conditions, orderBy and fields alike (e.g. "_info/lastUpdated >= [..] AND _info/lastUpdated < [..]" in public
  connector code; CWREST's JSDoc shows the alias). Pages are read by *seeking*, not by page number: each next page
  asks for ``_info/lastUpdated >= [last second seen]`` again from page 1, so a ticket updated while we read moves
  ahead of us instead of shifting later pages (offset paging would skip one record per update). Records of the
  boundary second come twice and are dropped by the run's de-duplication; only when a whole page shares one second
  does the reader step to the next page number instead. ``Link`` (rel next) says whether more follow (pyCW).
- A ticket's body is not on the ticket: it is the first note flagged ``detailDescriptionFlag`` (VENDOR-APIS.md
  1.4); ``get_ticket`` adds notes, time entries and configurations.
- Ingest from the page: a list record is the whole ticket (the list returns every field unless ``fields`` narrows
  it: CW docs mirror "PSA-Pagination.md"/"fields"; pyCW ``ConnectWiseManageRequestParams``; the simulator and the
  issue's measurements agree), so nothing is re-read by id and no ``fields`` are asked for (a mapping may read any
  field, custom ones too). Time entries of a whole page come from one list, ``chargeToId in (...)`` (the
  per-ticket ``/timeentries`` endpoint itself says to use ``/time/entries?conditions=chargeToId=..``: ai-connor/
  connectwise ``TicketsAPI.md``), a few hundred ids a request so the query string stays under IIS's default 2,048
  characters [UNCONFIRMED for ConnectWise's servers]. Notes and configurations exist only per ticket (no bulk
  endpoint, no child data on the list: ``childConditions`` filters, it does not embed), so they are read per
  ticket, overlapped, and only for tickets whose ``_info.lastUpdated`` moved since the stored copy (adding a note
  or time moves it [UNCONFIRMED: reported by integrators]); a ticket whose other fields changed keeps its stored
  notes and configurations.
- Updates: PATCH with a JSON Patch array of ``replace`` ops, references as ``{"id": ..}`` (pyCW Patch; CWREST); the
  2015 spec's single object is refused today. ``skipCallback`` on our writes keeps our own callbacks from echoing.
- Errors ``{code, message, errors[]}`` (pyCW); 500s whose text says "timeout" are transient (pyCW retries exactly
  those), other ConnectWise 500s repeat and fail; a 400 naming the clientId is configuration; Cloudflare's 429
  (pyconnectwise PR #41) waits as Retry-After says.
- Callbacks: ``x-content-signature`` = base64(HMAC-SHA256(key = SHA256(signing key), raw body)), the key fetched
  from the payload's ``Metadata.key_url`` only on the configured scheme, host and port and the documented key path,
  without our credentials, cached by key id and under a fetch budget of its own (connectwise_callbacks.py).
- Rate: ConnectWise publishes no limit (CW docs mirror, VENDOR-APIS.md 1.6): a polite default budget, configurable.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from psabridge.connectors.auth import BasicAuth, HeaderAuth, MultiAuth, require_secret
from psabridge.connectors.base import (
    EXTRA_DESCRIPTION,
    EXTRA_EXTRA,
    EXTRA_NOTES,
    EXTRA_TIME_ENTRIES,
    NewTimeEntry,
    Page,
    WebhookEvent,
)
from psabridge.connectors.budget import BudgetLimits
from psabridge.connectors.connectwise_callbacks import (
    DEFAULT_FETCHES_PER_MINUTE,
    CallbackKeys,
    given_signature,
    key_target,
    signature,
)
from psabridge.connectors.http import FailureType, HttpClient, HttpRuntime, Resolution, json_or_none
from psabridge.connectors.options import ConnectorOptions
from psabridge.connectors.pagination import BasePaginator, PageNumberPaginator, PageRequest
from psabridge.connectors.requestcount import counting
from psabridge.connectors.rest import ChangeRun, HttpConnector, chunks, counted_pages, numeric_id
from psabridge.connectors.webhook_input import delivery_token, integer_id, json_body
from psabridge.errors import ConfigError, NotFoundError, PermanentError, WebhookVerificationError
from psabridge.model import NoteKind, System
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import Choice, RawRecord, VendorMetadata

__all__ = ["CONNECTOR", "ConnectWiseConnector", "ConnectWiseOptions", "SeekPaginator", "signature"]

VENDOR = "ConnectWise"
API_PATH = "apis/3.0"
COMPANY_INFO = "login/companyinfo/{company}"
MAX_PAGE = 1000  # ConnectWise's largest pageSize (CWREST typedef; CW docs mirror PSA-Pagination.md)
IDS_PER_CONDITION = 150  # ids in one "chargeToId in (...)": about 1,500 characters of the query string
TICKET_ORDER = "_info/lastUpdated asc, id asc"
_NOTE_FLAGS: dict[NoteKind, str] = {
    NoteKind.PUBLIC: "detailDescriptionFlag",  # "Discussion": what the customer sees
    NoteKind.INTERNAL: "internalAnalysisFlag",
    NoteKind.RESOLUTION: "resolutionFlag",
}
_ACTIONS: dict[str, Literal["created", "updated", "deleted"]] = {
    "added": "created",
    "updated": "updated",
    "deleted": "deleted",
}
# A write refused because a board, status, priority ... we sent no longer exists: our metadata is stale.
_STALE = re.compile(r"\bnot found\b.*\((board|status|priority|source|owner|type|subType|item|team)(/\w+)?\)", re.I)


def stamp(when: datetime) -> str:
    """A ConnectWise date literal: UTC, whole seconds (floored), ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """A ConnectWise timestamp (``2022-07-02T04:20:41Z``) as aware UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def quoted(value: str) -> str:
    """A string literal for ``conditions``: double quotes, with quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SeekPaginator(BasePaginator):
    """Pages by seeking on ``_info/lastUpdated`` (see the module docstring): stable while tickets change.

    Args:
        base: the run's own conditions (None: every ticket).
        size: records per page.
    """

    def __init__(self, base: str | None, size: int) -> None:
        super().__init__()
        self.base = base
        self.size = size
        self.second: datetime | None = None  # the second the next request seeks from
        self.page = 1

    def _conditions(self) -> str | None:
        if self.second is None:
            return self.base
        seek = f"_info/lastUpdated >= [{stamp(self.second)}]"
        return f"({self.base}) and {seek}" if self.base else seek

    def init_request(self, request: PageRequest) -> None:
        """The first page: the run's conditions, page 1."""
        self.second, self.page = None, 1
        self.update_request(request)

    def update_state(self, response: httpx.Response, records: Sequence[Any], body: Any = None) -> None:
        """Seek past the last record's second; a page all within one second steps to the next page number."""
        if "link" in response.headers:
            self._has_next = bool(records) and "next" in response.links
        else:  # without a Link header, a full page may have a successor
            self._has_next = len(records) >= self.size
        if not records:
            return
        last = parse_time((records[-1].get("_info") or {}).get("lastUpdated"))
        if last is None:
            raise PermanentError("a ticket came without _info.lastUpdated; cannot page by it")
        last = last.replace(microsecond=0)
        if self.second is not None and last <= self.second:
            self.page += 1  # more than a page of tickets share this second: step through them by number
        else:
            self.second, self.page = last, 1

    def update_request(self, request: PageRequest) -> None:
        """Set the seek conditions and page number."""
        conditions = self._conditions()
        if conditions:
            request.params["conditions"] = conditions
        request.params["page"] = self.page


class ConnectWiseOptions(ConnectorOptions):
    """``connections[].options`` of a ConnectWise PSA connection."""

    skip_callback: bool = Field(
        default=True,
        description="send skipCallback on our writes, so ConnectWise does not call us back about our own changes",
    )
    callback_key_fetches_per_minute: int = Field(
        default=DEFAULT_FETCHES_PER_MINUTE,
        ge=1,
        description="callback signing keys fetched a minute at most, apart from the rate budget (forged callbacks "
        "naming unknown key ids cost ConnectWise no more than this)",
    )


class ConnectWiseConnector(HttpConnector):
    """A ConnectWise PSA connection (an MSP's own PSA: one instance, every client's tickets)."""

    system = System.CONNECTWISE
    options_model = ConnectWiseOptions
    options: ConnectWiseOptions
    # No published limit; Cloudflare throttles bursts. 15 requests/s on average and 4 in flight per endpoint leave
    # room for the MSP's other integrations; rate_budget in the settings overrides it.
    budget_defaults: ClassVar[BudgetLimits] = BudgetLimits(requests=900, per=60, concurrency=4)
    resolutions: ClassVar[Mapping[int | type[BaseException], Resolution]] = {
        403: Resolution.fail(ConfigError, "the API member's security role does not allow this", FailureType.CONFIG),
    }

    def __init__(self, settings: ConnectionSettings, *, runtime: HttpRuntime | None = None) -> None:
        self._api: HttpClient | None = None
        self._api_lock = threading.Lock()
        super().__init__(settings, runtime=runtime)
        self._keys: CallbackKeys | None = None
        self._keys_lock = threading.Lock()

    # -- the codebase ------------------------------------------------------------------------------------------------

    @property
    def http(self) -> HttpClient:
        """The client of the API root: the configured one, or ``<site>/<codebase>apis/3.0`` once discovered."""
        if self._api is None:
            with self._api_lock:
                if self._api is None:
                    self._api = self.build_client(base_url=self._discover())
        return self._api

    @http.setter
    def http(self, client: HttpClient) -> None:
        # The base class builds a client on the configured base URL: the API root itself, or the site root that
        # the codebase is looked up at.
        self._site = client
        if urlsplit(client.base_url).path.rstrip("/").endswith("/" + API_PATH):
            self._api = client

    def _discover(self) -> str:
        """``<site>/<codebase>apis/3.0`` from the company info (the site root serves it, no credentials needed)."""
        company = require_secret(self.settings, "company")
        try:
            info = self._site.request_json("GET", COMPANY_INFO.format(company=company)).data
        except NotFoundError as exc:
            raise ConfigError(
                f"ConnectWise at {self._site.base_url} knows no company {company!r} (credentials.company)",
                connection=self.name,
            ) from exc
        codebase = info.get("Codebase") if isinstance(info, dict) else None
        if not isinstance(codebase, str) or not re.fullmatch(r"[\w.-]+/?", codebase):
            raise PermanentError(f"the company info names no Codebase: {str(info)[:200]}", connection=self.name)
        return f"{self._site.base_url}/{codebase.strip('/')}/{API_PATH}"

    def auth(self) -> httpx.Auth:
        """Basic ``company+publicKey:privateKey`` and the ``clientId`` header."""
        company = require_secret(self.settings, "company")
        public = require_secret(self.settings, "public_key")
        return MultiAuth(
            BasicAuth(f"{company}+{public}", require_secret(self.settings, "private_key")),
            HeaderAuth.from_secrets(self.settings, {"clientId": "client_id"}),
        )

    # -- hooks of the HTTP layer -------------------------------------------------------------------------------------

    def classify(self, response: httpx.Response) -> Resolution | None:
        """500 "timeout" retries, other ConnectWise 500s fail; a 400 about the clientId is configuration."""
        if response.status_code == 500:
            body = json_or_none(response)
            text = response.text.lower()
            if "timeout" in text or "timed out" in text:
                return Resolution.retry("ConnectWise timed out (500)")
            if isinstance(body, dict) and "code" in body:
                return Resolution.fail(PermanentError, "ConnectWise failed on this request (500)", FailureType.SYSTEM)
        if response.status_code == 400 and "clientid" in response.text.lower():
            return Resolution.fail(
                ConfigError, "ConnectWise refused the clientId (credentials.client_id)", FailureType.CONFIG
            )
        return None

    def error_message(self, response: httpx.Response) -> str | None:
        """``message`` plus each ``errors[]`` item's message and field; Cloudflare's page title for HTML."""
        body = json_or_none(response)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            parts = [
                f"{item.get('message')} ({item.get('field')})" if item.get("field") else str(item.get("message"))
                for item in body.get("errors") or ()
                if isinstance(item, dict) and item.get("message")
            ]
            return str(body["message"]) + (": " + "; ".join(parts) if parts else "")
        title = re.search(r"<title>(.*?)</title>", response.text, re.I | re.S)
        if title:
            return title.group(1).strip()
        return response.text.strip()[:500] or None

    # -- reading -----------------------------------------------------------------------------------------------------

    def external_id_of(self, record: RawRecord) -> str:
        """The ticket id."""
        return str(record["id"])

    def updated_at_of(self, record: RawRecord) -> datetime | None:
        """``_info.lastUpdated``."""
        return parse_time((record.get("_info") or {}).get("lastUpdated"))

    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        """Tickets changed at or after ``since`` minus the overlap, oldest first, 1000 a page."""
        start = self.read_from(since)
        base = f"_info/lastUpdated >= [{stamp(start)}]" if start is not None else None
        size = self.page_size(MAX_PAGE, MAX_PAGE)
        run = ChangeRun(since=since, external_id=self.external_id_of, updated_at=self.updated_at_of, ordered=True)
        request = PageRequest(url="service/tickets", params={"orderBy": TICKET_ORDER, "pageSize": size})
        with counting() as setup:
            pages = self.http.paginate(request, SeekPaginator(base, size), _records)  # (finds the codebase)
        for page, requests in counted_pages(pages, before=setup.value):
            yield run.page(page.records, last=page.last, request_count=requests)

    def get_ticket(self, external_id: str) -> RawRecord:
        """The ticket plus notes, its description (the first Discussion note), time entries and configurations."""
        ticket_id = numeric_id(external_id, VENDOR)
        ticket: RawRecord = dict(self.http.request_json("GET", f"service/tickets/{ticket_id}").data)
        time_entries = self._all(
            "time/entries", {"conditions": f'chargeToType = "ServiceTicket" and chargeToId = {ticket_id}'}
        )
        return _full(ticket, self.list_notes(external_id), time_entries, self._configurations(ticket_id))

    def _configurations(self, ticket_id: int) -> list[RawRecord]:
        return list(self.http.request_json("GET", f"service/tickets/{ticket_id}/configurations").data or [])

    def read_full(self, records: list[RawRecord]) -> dict[str, RawRecord]:
        """List records completed with time entries in bulk and notes and configurations per ticket, overlapped."""
        ids = [numeric_id(self.external_id_of(record), VENDOR) for record in records]
        tasks: list[tuple[str, Any]] = [("time", chunk) for chunk in chunks(ids, IDS_PER_CONDITION)]
        tasks += [(kind, record) for record in records for kind in ("notes", "configurations")]
        done = self.each(self._read_part, tasks)
        time_entries: dict[int, list[RawRecord]] = {}
        per_ticket: dict[tuple[str, str], list[RawRecord] | None] = {}
        for (kind, item), found in zip(tasks, done, strict=True):
            if kind == "time":
                for entry in found or ():
                    time_entries.setdefault(int(entry.get("chargeToId") or 0), []).append(entry)
            else:
                per_ticket[kind, self.external_id_of(item)] = found
        full: dict[str, RawRecord] = {}
        for record, ticket_id in zip(records, ids, strict=True):
            external_id = self.external_id_of(record)
            notes, configurations = per_ticket["notes", external_id], per_ticket["configurations", external_id]
            if notes is None or configurations is None:
                continue  # deleted since the page was listed
            full[external_id] = _full(dict(record), notes, time_entries.get(ticket_id, []), configurations)
        return full

    def _read_part(self, task: tuple[str, Any]) -> list[RawRecord] | None:
        """One read of ``read_full``: a chunk of time entries, or one ticket's notes or configurations (None: gone)."""
        kind, item = task
        if kind == "time":
            listed = ", ".join(str(ticket_id) for ticket_id in item)
            return self._all(
                "time/entries", {"conditions": f'chargeToType = "ServiceTicket" and chargeToId in ({listed})'}
            )
        external_id = self.external_id_of(item)
        marker = (item.get("_info") or {}).get("lastUpdated")
        try:
            if kind == "notes":
                return self.remembered(("notes", external_id, marker), lambda: self.list_notes(external_id))
            ticket_id = numeric_id(external_id, VENDOR)
            return self.remembered(("configurations", external_id, marker), lambda: self._configurations(ticket_id))
        except NotFoundError:
            return None

    def list_notes(self, external_id: str) -> list[RawRecord]:
        """Every note of the ticket, oldest first."""
        return self._all(f"service/tickets/{numeric_id(external_id, VENDOR)}/notes", {})

    def _all(self, path: str, params: Mapping[str, Any]) -> list[RawRecord]:
        """Every record of a list endpoint, ordered by id (default pageSize is only 25, so ask for the most)."""
        request = PageRequest(url=path, params={"orderBy": "id asc", **params})
        paginator = PageNumberPaginator(size=MAX_PAGE, size_param="pageSize", link_rel="next")
        found: list[RawRecord] = []
        for page in self.http.paginate(request, paginator, _records):
            found.extend(page.records)
        return found

    # -- metadata ----------------------------------------------------------------------------------------------------

    def load_metadata(self) -> VendorMetadata:
        """Boards; statuses, types, subtypes and items per board (scope = board name); priorities, sources, members."""
        boards = self._all("service/boards", {})
        fields: dict[str, list[Choice]] = {"board": [], "status": [], "type": [], "subType": [], "item": []}
        for board in boards:
            name = str(board["name"])
            fields["board"].append(Choice(value=str(board["id"]), label=name, active=not board.get("inactive")))
            for status in self._all(f"service/boards/{board['id']}/statuses", {}):
                fields["status"].append(
                    Choice(
                        value=str(status["id"]),
                        label=str(status["name"]),
                        scope=name,
                        active=not status.get("inactive"),
                        is_default=bool(status.get("defaultFlag")),
                        is_closed=bool(status.get("closedStatus")),
                    )
                )
            for field, path in (("type", "types"), ("subType", "subtypes"), ("item", "items")):
                for item in self._all(f"service/boards/{board['id']}/{path}", {}):
                    fields[field].append(
                        Choice(value=str(item["id"]), label=str(item["name"]), scope=name,
                               active=not item.get("inactive"))
                    )  # fmt: skip
        fields["priority"] = [
            Choice(value=str(p["id"]), label=str(p["name"]), is_default=bool(p.get("defaultFlag")),
                   extra={"sort": p.get("sortOrder")})
            for p in self._all("service/priorities", {})
        ]  # fmt: skip
        fields["source"] = [
            Choice(value=str(s["id"]), label=str(s["name"]), is_default=bool(s.get("defaultFlag")))
            for s in self._all("service/sources", {})
        ]
        fields["owner"] = [
            Choice(value=str(m["id"]), label=str(m.get("name") or m["identifier"]),
                   active=not m.get("inactiveFlag"), extra={"identifier": m["identifier"]})
            for m in self._all("system/members", {})
        ]  # fmt: skip
        return VendorMetadata(
            system=self.system, fields={k: tuple(v) for k, v in fields.items()}, fetched_at=datetime.now(UTC)
        )

    # -- writing -----------------------------------------------------------------------------------------------------

    @property
    def _skip_callback(self) -> bool:
        return self.options.skip_callback

    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        """PATCH a JSON Patch array (replace; remove for None); a stale board/status/priority refreshes metadata."""
        operations = [
            {"op": "remove", "path": key} if value is None else {"op": "replace", "path": key, "value": value}
            for key, value in patch.items()
        ]
        if self._skip_callback:
            operations.append({"op": "replace", "path": "skipCallback", "value": True})
        try:
            # Setting fields to values is idempotent, so the PATCH may be retried like a GET.
            reply = self.http.request_json(
                "PATCH", f"service/tickets/{numeric_id(external_id, VENDOR)}", json=operations, idempotent=True
            )
        except PermanentError as exc:
            if exc.status == 400 and _STALE.search(exc.vendor_message or ""):
                self.metadata(refresh=True)
            raise
        return dict(reply.data)

    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        """POST a ticket whose ``externalXRef`` holds the marker (and whose description ends with it)."""
        body = {**fields, "externalXRef": marker}
        description = body.get("initialDescription")
        if isinstance(description, str) and marker not in description:
            body["initialDescription"] = f"{description.rstrip()}\n\n{marker}"
        if self._skip_callback:
            body["skipCallback"] = True
        return dict(self.http.request_json("POST", "service/tickets", json=body).data)

    def find_by_marker(self, marker: str) -> str | None:
        """The ticket whose ``externalXRef`` is the marker."""
        params = {"conditions": f"externalXRef = {quoted(marker)}", "orderBy": "id asc", "pageSize": 1, "fields": "id"}
        found = self.http.request_json("GET", "service/tickets", params=params).data
        return self.external_id_of(found[0]) if found else None

    def add_note(self, external_id: str, text: str, *, kind: NoteKind, marker: str) -> RawRecord:
        """POST a note flagged Discussion, Internal or Resolution, ending with the marker (once, even if retried)."""
        path = f"service/tickets/{numeric_id(external_id, VENDOR)}/notes"
        body = {"text": f"{text.rstrip()}\n\n{marker}", _NOTE_FLAGS[kind]: True, "processNotifications": False}
        existing = self._written(path, body, "text", marker, (_NOTE_FLAGS[kind],))
        if existing is not None:
            return existing
        return dict(self.http.request_json("POST", path, json=body).data)

    def add_time_entry(self, external_id: str, entry: NewTimeEntry, *, marker: str) -> RawRecord:
        """POST a time entry charged to the ticket, its notes ending with the marker (never billed twice)."""
        ticket_id = numeric_id(external_id, VENDOR)
        started = entry.started_at
        body: dict[str, Any] = {
            "chargeToId": ticket_id,
            "chargeToType": "ServiceTicket",
            "timeStart": stamp(started),
            "timeEnd": stamp(started + timedelta(minutes=entry.minutes)),
            "actualHours": round(entry.minutes / 60, 2),
            "notes": f"{entry.note.rstrip()}\n\n{marker}",
            **dict(entry.extra),
        }
        if entry.who:
            body["member"] = {"identifier": entry.who}
        if entry.billable is not None:
            body["billableOption"] = "Billable" if entry.billable else "DoNotBill"
        charged = f'chargeToType = "ServiceTicket" and chargeToId = {ticket_id}'
        existing = self._written("time/entries", body, "notes", marker, ("timeStart",), charged)
        if existing is not None:
            return existing
        return dict(self.http.request_json("POST", "time/entries", json=body).data)

    def _written(
        self,
        path: str,
        body: Mapping[str, Any],
        field: str,
        marker: str,
        same: Sequence[str],
        conditions: str | None = None,
    ) -> RawRecord | None:
        """The record an earlier attempt of this very write made (a POST whose answer was lost), if any.

        Candidates carry the marker in ``field``; it is the same write when ``field`` and the ``same`` fields equal
        ours (a marker naming a link rather than one action is on many notes).
        """
        where = f"{field} contains {quoted(marker)}"
        params = {"conditions": f"{conditions} and {where}" if conditions else where, "pageSize": MAX_PAGE}
        for found in self.http.request_json("GET", path, params=params).data or ():
            if found.get(field) == body[field] and all(found.get(name) == body[name] for name in same):
                return dict(found)
        return None

    # -- webhooks ----------------------------------------------------------------------------------------------------

    def register_webhooks(self, url: str) -> dict[str, dict[str, Any]]:
        """Create or update (PUT by id) this connection's ticket callback: type Ticket, level Owner (every ticket).

        Found again by its description ``psabridge <connection>``. ``isSelfSuppressedFlag`` asks ConnectWise not
        to call back about changes our API member makes (VENDOR-APIS 1.7, pyCW ``CallbackEntry``; its semantics
        are UNCONFIRMED, so our writes also send ``skipCallback``).
        """
        body = {
            "url": url,
            "objectId": 1,  # level Owner: the whole company's tickets (ConnectWise "PSA Callbacks")
            "type": "Ticket",
            "level": "Owner",
            "description": self._callback_description,
            "inactiveFlag": False,
            "isSoapCallbackFlag": False,
            "isSelfSuppressedFlag": True,
        }
        existing = self._callback()
        if existing is None:
            made = dict(self.http.request_json("POST", "system/callbacks", json=body).data)
            change = "created"
        else:
            same = all(existing.get(k) == v for k, v in body.items())
            made = existing if same else dict(
                self.http.request_json("PUT", f"system/callbacks/{existing['id']}", json=body, idempotent=True).data
            )  # fmt: skip
            change = "unchanged" if same else "updated"
        return {"callback": {**_callback_view(made), "change": change}}

    def webhooks(self) -> list[dict[str, Any]]:
        """The connection's ticket callback as ConnectWise lists it (none registered: empty)."""
        found = self._callback()
        return [] if found is None else [_callback_view(found)]

    @property
    def _callback_description(self) -> str:
        return f"psabridge {self.name}"[:100]

    def _callback(self) -> RawRecord | None:
        wanted = self._callback_description
        return next((c for c in self._all("system/callbacks", {}) if c.get("description") == wanted), None)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify ``x-content-signature`` with the key ``Metadata.key_url`` names (connectwise_callbacks.py).

        Nothing is fetched before the signature header is well formed and the key URL is the configured origin's key
        path; a key ConnectWise has already given us is used from the cache.
        """
        given = given_signature(headers, self.name)
        try:
            payload = json_body(body)
        except ValueError as exc:
            raise WebhookVerificationError("the callback is not JSON", connection=self.name) from exc
        meta = payload.get("Metadata") if isinstance(payload, dict) else None
        if not isinstance(meta, dict) or "key_url" not in meta:
            raise WebhookVerificationError("the callback names no Metadata.key_url", connection=self.name)
        keys = self._callback_keys()
        keys.verify(body, given, key_target(meta["key_url"], keys.origin, self.name))
        kind, ticket = payload.get("Type"), integer_id(payload.get("ID"))
        if not isinstance(kind, str) or kind.lower() != "ticket" or ticket is None:
            raise PermanentError(f"not a ticket callback (Type {str(kind)[:40]!r})", connection=self.name)
        action = payload.get("Action")
        return WebhookEvent(
            external_id=ticket,
            event=_ACTIONS.get(action.lower() if isinstance(action, str) else "", "updated"),
            delivery_id=delivery_token(payload.get("MessageId")) or hashlib.sha256(body).hexdigest(),
        )

    def _callback_keys(self) -> CallbackKeys:
        """The connection's callback keys, set up on the first callback (workers that only poll never need them)."""
        with self._keys_lock:
            if self._keys is None:
                self._keys = CallbackKeys(
                    self.settings, self.runtime, fetches_per_minute=self.options.callback_key_fetches_per_minute
                )
            return self._keys

    def close(self) -> None:
        """Close the site and API clients (discovering nothing) and the key-fetching client."""
        self._site.close()
        if self._api is not None and self._api is not self._site:
            self._api.close()
        with self._keys_lock:
            keys, self._keys = self._keys, None
        if keys is not None:
            keys.close()


def _full(
    ticket: RawRecord, notes: list[RawRecord], time_entries: list[RawRecord], configurations: list[RawRecord]
) -> RawRecord:
    """A ticket with its extras: notes, the description (the first Discussion note), time and configurations."""
    described = [n for n in notes if n.get("detailDescriptionFlag")]
    ticket[EXTRA_NOTES] = notes
    ticket[EXTRA_DESCRIPTION] = described[0].get("text") if described else None
    ticket[EXTRA_TIME_ENTRIES] = time_entries
    ticket[EXTRA_EXTRA] = {"configurations": configurations}
    return ticket


def _records(body: Any) -> list[Any]:
    if not isinstance(body, list):
        raise TypeError(f"expected a JSON array, got {type(body).__name__}")
    return body


CONNECTOR = ConnectWiseConnector


def _callback_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """What ``webhooks list`` shows of a callback."""
    return {
        "name": "ticket callback",
        "id": record.get("id"),
        "url": record.get("url"),
        "active": not record.get("inactiveFlag", False),
        "level": record.get("level"),
        "self_suppressed": record.get("isSelfSuppressedFlag"),
    }
