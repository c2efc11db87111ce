"""ServiceNow (Table API, incident) connector: every ServiceNow quirk psabridge knows, over the shared HTTP layer.

Sources use VENDOR-APIS.md's shorthand (section 3): pysnow = rbw/pysnow, SNANS = ansible-collections/servicenow.itsm;
"docs" = docs.servicenow.com "Table API" pages; KB0534905 = "Table API FAQs".

- Auth: Basic with an integration user (VENDOR-APIS 3.2). The user must be in GMT: with display values off every
  datetime is UTC, and literal datetimes in queries are read in the user's timezone [UNCONFIRMED, VENDOR-APIS 3.3].
- Reading changes: ``sysparm_query=sys_updated_on>=<watermark - overlap>^ORDERBYsys_updated_on^ORDERBYsys_id`` and seek
  paging on that key (servicenow_paging.py: offsets lose records that change underneath, pysnow#104). Page size 1,000
  (``page_size`` up to 10,000): the default sysparm_limit of 10,000 returns multi-megabyte pages that hit the REST
  transaction time quota ("Transaction cancelled: maximum execution time exceeded") and come back truncated
  (FIELD-LESSONS: insomniacc/PSSnow#67); 1,000 keeps a page to ~2 MB and 100 requests per 100,000 incidents.
  ``sysparm_exclude_reference_link=true`` everywhere: references come as bare sys_ids (the mapping reads both shapes)
  and pages shrink by a third.
- One ticket: the incident plus its journal (``sys_journal_field`` rows, element work_notes/comments: the fields
  themselves read back "", VENDOR-APIS 3.4-3.5) and its time (``task_time_worked`` rows) under ``_psa_notes`` and
  ``_psa_time_entries``. close_notes is a plain field, not a journal: it is added to ``_psa_notes`` as a row with
  ``element: close_notes`` so the resolution reaches the canonical notes.
- Ingest from the page: the list returns every field of the incident unless ``sysparm_fields`` narrows it (docs
  "Table API - GET /now/table/{tableName}"), so a list record is the incident as a GET by id answers it and no
  fields are asked for (the mapping reads the instance's own ``u_`` fields too). The journal and time of a whole page
  come in bulk, ``element_idIN<sys_ids>`` and ``taskIN<sys_ids>`` (encoded-query ``IN``: docs "Encoded query
  strings"), 150 sys_ids a request so the request line stays well under Tomcat's 8 KB (KB0826932). Only incidents
  whose ``sys_updated_on``/``sys_mod_count`` moved are read: a journal entry is a write to the incident, so it
  moves both.
- Writes: PATCH by sys_id (SNANS; PUT is also partial in practice, pysnow). ``priority`` is derived from impact x
  urgency and never written (the mapping sends impact and urgency). ServiceNow stores unknown choice values silently,
  so choices in a write are checked against the metadata first (refreshed once when a value is unknown). Notes are
  writes to work_notes (internal) or comments (public); a resolution sets close_notes and, if empty, close_code.
  Time is a ``task_time_worked`` row (task, user, time_worked as ``1970-01-01 HH:MM:SS``, comments): public
  integrations POST it so [UNCONFIRMED: whether an instance rolls it up into task.time_worked]. Every note, time row
  and created incident carries our marker (created incidents in ``correlation_id``), and is looked up by it before
  it is written, so a retried write does not repeat.
- Errors ``{"error": {"message", "detail"}, "status": "failure"}`` (pysnow ResponseError): the message and detail are
  kept; 403 is an ACL (configuration) unless it says data policy or business rule (this request). No fixed global
  limit: admins define hourly rate-limit rules (429 + Retry-After, X-RateLimit-* headers), so the budget is the
  connection's ``rate_budget`` with a conservative default.
- Notifications: no native webhooks; a business rule POSTs ``{table, sys_id, number, operation, sys_updated_on,
  sys_updated_by, sys_mod_count}`` with a shared secret in a header (``X-Webhook-Secret`` by default, option
  ``webhook_secret_header``; VENDOR-APIS 3.7), compared in constant time. Its condition skips the integration user's
  own changes (the echo guard); ingest also knows our user (``integration_user``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field

from psabridge.connectors.auth import BasicAuth
from psabridge.connectors.base import EXTRA_NOTES, EXTRA_TIME_ENTRIES, NewTimeEntry, Page, WebhookEvent
from psabridge.connectors.budget import Budget, BudgetLimits
from psabridge.connectors.http import FailureType, HttpRuntime, Resolution
from psabridge.connectors.options import ConnectorOptions
from psabridge.connectors.pagination import OffsetPaginator, PageRequest
from psabridge.connectors.rest import ChangeRun, HttpConnector, chunks, counted_pages
from psabridge.connectors.servicenow_paging import (
    SYS_ID,
    SeekPaginator,
    format_datetime,
    format_duration,
    parse_datetime,
)
from psabridge.connectors.webhook_input import header_value, integer_id, json_body, same_secret
from psabridge.errors import (
    ConfigError,
    MappingError,
    NotFoundError,
    PermanentError,
    WebhookVerificationError,
)
from psabridge.log import get_logger
from psabridge.model import NoteKind, System
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import Choice, RawRecord, VendorMetadata

__all__ = ["CONNECTOR", "ServiceNowConnector", "ServiceNowOptions"]

log = get_logger("psabridge.connectors.servicenow")

INCIDENT = "api/now/table/incident"
JOURNAL = "api/now/table/sys_journal_field"
TIME_WORKED = "api/now/table/task_time_worked"
CHOICES = "api/now/table/sys_choice"
GROUPS = "api/now/table/sys_user_group"
USERS = "api/now/table/sys_user"
CIS = "api/now/table/cmdb_ci"

READ = {"sysparm_exclude_reference_link": "true"}
"""Every read and write answers with bare sys_ids in references."""
CHOICE_FIELDS = ("state", "impact", "urgency", "priority", "contact_type", "category", "subcategory", "close_code")
CHOICE_FIELDS_MORE = ("hold_reason",)
CLOSED_STATES = frozenset({"6", "7", "8"})  # Resolved, Closed, Canceled (VENDOR-APIS 3.4)
NOTE_ELEMENTS = {NoteKind.INTERNAL: "work_notes", NoteKind.PUBLIC: "comments"}
OPERATIONS: dict[str, Literal["created", "updated", "deleted"]] = {
    "insert": "created",
    "update": "updated",
    "delete": "deleted",
}
_CONFIG_403 = ("User Not Authorized", "Failed API level ACL Validation", "ACL Exception")
_JOURNAL_ELEMENTS = "elementINwork_notes,comments"
SYS_IDS_PER_QUERY = 150  # 150 x 33 characters: about 5 KB of a request line Tomcat caps at 8 KB


SN_BUSINESS_RULE = """\
ServiceNow has no webhook API: create this business rule (System Definition > Business Rules > New).
  Name:        psabridge {connection}
  Table:       Incident [incident]
  Advanced:    checked
  When:        async (after)      Insert: checked   Update: checked   Delete: checked
  Condition:   gs.getUserName() != '{user}'
  Script:
(function executeRule(current, previous) {{
    var r = new sn_ws.RESTMessageV2();
    r.setEndpoint('{url}');
    r.setHttpMethod('post');
    r.setRequestHeader('Content-Type', 'application/json');
    r.setRequestHeader('{header}', gs.getProperty('psabridge.webhook_secret'));
    r.setRequestBody(JSON.stringify({{
        table: 'incident', sys_id: current.getUniqueValue(),
        operation: current.operation(), sys_updated_on: current.getValue('sys_updated_on'),
        sys_mod_count: current.getValue('sys_mod_count')
    }}));
    r.executeAsync();
}})(current, previous);
Then create the system property psabridge.webhook_secret (type password2) holding this connection's
webhook_secret credential.
"""
"""The business rule ``webhook_setup`` prints (VENDOR-APIS 3.7: after/async rule, RESTMessageV2, the user guard)."""


class ServiceNowOptions(ConnectorOptions):
    """``connections[].options`` of a ServiceNow connection."""

    integration_user: str | None = Field(
        default=None, description="the user name our writes show in sys_updated_by (default: the username credential)"
    )
    webhook_secret_header: str = Field(
        default="X-Webhook-Secret", min_length=1, description="the header the business rule puts the shared secret in"
    )
    webhook_max_age_seconds: float = Field(
        default=900, ge=0, description="notifications about older changes are refused as replays (0: no check)"
    )
    resolution_close_code: str = Field(
        default="Solution provided", min_length=1, description="close_code set with a resolution note when empty"
    )
    metadata_max_rows: int = Field(
        default=20_000, gt=0, description="users and configuration items loaded for lookups, at most"
    )


class ServiceNowConnector(HttpConnector):
    """One client's ServiceNow instance (incidents), over the Table API (options: ``ServiceNowOptions``)."""

    system = System.SERVICENOW
    options_model = ServiceNowOptions
    options: ServiceNowOptions
    # No global limit exists: each instance's admins set hourly rules (VENDOR-APIS 3.6; port-labs/ocean PR#3266 met
    # 500/hour). 10,000 requests/hour (~3/s) and 4 in flight keep well clear of the inbound REST semaphores.
    budget_defaults: ClassVar[BudgetLimits] = BudgetLimits(requests=10_000, per=3600.0, concurrency=4)
    default_overlap_seconds: ClassVar[float] = 300.0
    page_default: ClassVar[int] = 1_000
    page_maximum: ClassVar[int] = 10_000
    rows_page: ClassVar[int] = 1_000

    def __init__(self, settings: ConnectionSettings, *, runtime: HttpRuntime | None = None) -> None:
        super().__init__(settings, runtime=runtime)
        self._warned_limit = False

    def auth(self) -> httpx.Auth:
        """Basic auth with the integration user."""
        return BasicAuth.from_secrets(self.settings, "username", "password")

    # -- hooks of the HTTP layer -----------------------------------------------------------------------------------

    def error_message(self, response: httpx.Response) -> str | None:
        """``error.message`` and ``error.detail`` of the Table API's error body."""
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message") or "").strip()
            detail = str(error.get("detail") or "").strip()
            if message or detail:
                return f"{message}: {detail}" if message and detail and detail not in message else message or detail
        text = response.text.strip()
        return text[:500] if text else None

    def classify(self, response: httpx.Response) -> Resolution | None:
        """403 means an ACL (fix the integration user's roles) unless a data policy or business rule refused."""
        if response.status_code != 403:
            return None
        said = self.error_message(response) or ""
        if any(part in said for part in _CONFIG_403):
            return Resolution.fail(PermanentError, "the integration user's roles do not allow this", FailureType.CONFIG)
        return Resolution.fail(PermanentError, "ServiceNow refused the write (data policy, business rule or ACL)")

    def on_response(self, response: httpx.Response, budget: Budget) -> None:
        """Warn once when the instance's rate-limit rule is stricter than our budget (it answers 429 otherwise)."""
        limit = response.headers.get("X-RateLimit-Limit")
        ours = budget.limits.requests
        if self._warned_limit or limit is None or not limit.isdigit() or ours is None:
            return
        if int(limit) < ours * 3600 / budget.limits.per:
            self._warned_limit = True
            log.warning(
                "servicenow.rate_limit_rule",
                connection=self.name,
                rule=response.headers.get("X-RateLimit-Rule"),
                per_hour=int(limit),
                budget=ours,
                hint="set rate_budget.requests below the instance's rule",
            )

    # -- reading ---------------------------------------------------------------------------------------------------

    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        """Incidents updated at or after ``since`` minus the overlap, oldest first, a page at a time (seek paging).

        Seek paging never repeats a (sys_updated_on, sys_id) key within a run, and ChangeRun drops a record seen with
        the same sys_updated_on; a record returned again is a newer version. Two updates within one second (one
        sys_updated_on, two sys_mod_counts) come once: the next run re-reads that second (``>=`` and the overlap).
        """
        run = ChangeRun(since=since, external_id=self.external_id_of, updated_at=self.updated_at_of, ordered=True)
        paginator = SeekPaginator(
            limit=self.page_size(self.page_default, self.page_maximum), since=self.read_from(since)
        )
        request = PageRequest(url=INCIDENT, params=dict(READ))
        for fetched, requests in counted_pages(self.http.paginate(request, paginator, _results)):
            yield run.page(fetched.records, last=fetched.last, request_count=requests)

    def get_ticket(self, external_id: str) -> RawRecord:
        """The incident with its journal and time worked (``_psa_notes``, ``_psa_time_entries``)."""
        sys_id = self._sys_id(external_id)
        record = self._incident(sys_id)
        record[EXTRA_NOTES] = self._journal(sys_id) + _close_notes(record)
        record[EXTRA_TIME_ENTRIES] = self._rows(TIME_WORKED, f"task={sys_id}^ORDERBYsys_created_on^ORDERBYsys_id")
        return record

    def reuse_extras(self, record: RawRecord, previous: RawRecord) -> RawRecord | None:
        """The list record with the stored journal and time while sys_updated_on and sys_mod_count stand."""
        if any(not record.get(k) or record.get(k) != previous.get(k) for k in ("sys_updated_on", "sys_mod_count")):
            return None
        journal = [n for n in previous.get(EXTRA_NOTES) or () if n.get("element") != "close_notes"]
        return {
            **record,
            EXTRA_NOTES: journal + _close_notes(record),
            EXTRA_TIME_ENTRIES: list(previous.get(EXTRA_TIME_ENTRIES) or ()),
        }

    def read_full(self, records: list[RawRecord]) -> dict[str, RawRecord]:
        """List records (the whole incident) completed with the page's journal and time, read in bulk."""
        ids = [self._sys_id(self.external_id_of(record)) for record in records]
        tasks = [(table, chunk) for chunk in chunks(ids, SYS_IDS_PER_QUERY) for table in (JOURNAL, TIME_WORKED)]
        found = self.each(self._bulk_rows, tasks)
        journal: dict[str, list[RawRecord]] = {}
        worked: dict[str, list[RawRecord]] = {}
        for (table, _), rows in zip(tasks, found, strict=True):
            into, key = (journal, "element_id") if table == JOURNAL else (worked, "task")
            for row in rows:
                into.setdefault(_reference(row.get(key)), []).append(row)
        return {
            sys_id: {
                **record,
                EXTRA_NOTES: journal.get(sys_id, []) + _close_notes(record),
                EXTRA_TIME_ENTRIES: worked.get(sys_id, []),
            }
            for record, sys_id in zip(records, ids, strict=True)
        }

    def _bulk_rows(self, task: tuple[str, Sequence[str]]) -> list[RawRecord]:
        """The journal (work notes, comments) or time rows of many incidents, oldest first (as per incident)."""
        table, sys_ids = task
        listed = ",".join(sys_ids)
        if table == JOURNAL:
            return self._rows(JOURNAL, f"element_idIN{listed}^{_JOURNAL_ELEMENTS}^ORDERBYsys_created_on^ORDERBYsys_id")
        return self._rows(TIME_WORKED, f"taskIN{listed}^ORDERBYsys_created_on^ORDERBYsys_id")

    def list_notes(self, external_id: str) -> list[RawRecord]:
        """Journal entries (work notes and comments) oldest first, then the resolution notes if any."""
        sys_id = self._sys_id(external_id)
        incident = self._incident(sys_id, fields="sys_id,close_notes,resolved_at,resolved_by,sys_updated_on")
        return self._journal(sys_id) + _close_notes(incident)

    def external_id_of(self, record: RawRecord) -> str:
        """The incident's sys_id."""
        return str(record["sys_id"])

    def updated_at_of(self, record: RawRecord) -> datetime | None:
        """``sys_updated_on`` (UTC)."""
        return parse_datetime(record.get("sys_updated_on"))

    # -- writing ---------------------------------------------------------------------------------------------------

    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        """POST an incident carrying ``marker`` in correlation_id, unless one with the marker exists already."""
        existing = self.find_by_marker(marker)
        if existing is not None:
            return self._incident(existing)
        body = self._writable(fields)
        body.update(correlation_id=marker, correlation_display="psabridge")
        reply = self.http.request_json("POST", INCIDENT, params=READ, json=body)
        return _result(reply.data)

    def find_by_marker(self, marker: str) -> str | None:
        """The incident whose correlation_id is ``marker``."""
        _plain(marker)
        found = self._rows(INCIDENT, f"correlation_id={marker}^ORDERBYsys_created_on", fields="sys_id", limit=1)
        return str(found[0]["sys_id"]) if found else None

    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        """PATCH the incident's fields (priority is derived: impact and urgency are written instead)."""
        sys_id = self._sys_id(external_id)
        body = self._writable(patch)
        journal = any(name in body for name in ("work_notes", "comments"))
        reply = self.http.request_json("PATCH", f"{INCIDENT}/{sys_id}", params=READ, json=body, idempotent=not journal)
        return _result(reply.data)

    def add_note(self, external_id: str, text: str, *, kind: NoteKind, marker: str) -> RawRecord:
        """A work note (internal) or comment (public), or the resolution notes; looked up by marker first."""
        sys_id = self._sys_id(external_id)
        _plain(marker)
        value = text if marker in text else f"{text.rstrip()}\n\n{marker}" if text.strip() else marker
        if kind is NoteKind.RESOLUTION:
            return self._resolve_note(sys_id, value, marker)
        element = NOTE_ELEMENTS[kind]
        query = f"element_id={sys_id}^element={element}^valueLIKE{marker}^ORDERBYsys_created_on"
        found = self._rows(JOURNAL, query, limit=1)
        if not found:
            self.http.request_json("PATCH", f"{INCIDENT}/{sys_id}", params=READ, json={element: value})
            found = self._rows(JOURNAL, query, limit=1)
        if not found:
            raise PermanentError(f"the {element} entry written to {sys_id} cannot be read back", connection=self.name)
        return found[0]

    def add_time_entry(self, external_id: str, entry: NewTimeEntry, *, marker: str) -> RawRecord:
        """A task_time_worked row (task, user, time_worked, time_in, comments with the marker); by marker first."""
        sys_id = self._sys_id(external_id)
        _plain(marker)
        found = self._rows(TIME_WORKED, f"task={sys_id}^commentsLIKE{marker}^ORDERBYsys_created_on", limit=1)
        if found:
            return found[0]
        note = entry.note if marker in entry.note else f"{entry.note.rstrip()}\n\n{marker}".strip()
        body: dict[str, Any] = {
            "task": sys_id,
            "time_worked": format_duration(entry.minutes),
            "time_in": format_datetime(entry.started_at),
            "comments": note,
            **dict(entry.extra),
        }
        user = self._user_id(entry.who)
        if user:
            body["user"] = user  # otherwise the instance's default: whoever logs it, i.e. the integration user
        reply = self.http.request_json("POST", TIME_WORKED, params=READ, json=body)
        return _result(reply.data)

    # -- webhooks --------------------------------------------------------------------------------------------------

    def webhook_setup(self, url: str) -> str:
        """The business rule to create (ServiceNow has no subscription API: VENDOR-APIS 3.7).

        An async after-rule on incident (insert, update, delete) that POSTs what ``parse_webhook`` reads, with the
        shared secret in ``options.webhook_secret_header``; its condition skips the integration user, so our own
        writes do not call back (VENDOR-APIS 3.7 loop guard). The secret itself is never printed.
        """
        user = self.integration_user() or "<integration user>"
        header = self.options.webhook_secret_header
        return SN_BUSINESS_RULE.format(url=url, user=user, header=header, connection=self.name)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check the shared-secret header (constant time), then read which incident changed and how."""
        secret = self.settings.secrets.get("webhook_secret")
        if not secret:
            raise ConfigError(
                "no webhook_secret credential is configured for ServiceNow notifications", connection=self.name
            )
        header = self.options.webhook_secret_header.lower()
        given = header_value(headers, header)
        if not given:
            raise WebhookVerificationError(f"the {header} header is missing", connection=self.name)
        if not same_secret(given, secret):
            raise WebhookVerificationError(
                f"the {header} header does not match the shared secret", connection=self.name
            )
        try:
            payload = json_body(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("table", "incident") != "incident":
            raise PermanentError("the notification is not about an incident", connection=self.name)
        sys_id, operation = payload.get("sys_id"), payload.get("operation", "update")
        if not isinstance(sys_id, str) or not SYS_ID.fullmatch(sys_id) or not isinstance(operation, str):
            raise PermanentError("the notification names no incident sys_id and operation", connection=self.name)
        if operation not in OPERATIONS:
            raise PermanentError(f"unknown operation {operation[:20]!r} (insert, update, delete)", connection=self.name)
        occurred = parse_datetime(payload.get("sys_updated_on"))
        self._check_age(occurred)
        count = integer_id(payload.get("sys_mod_count"))
        if count is not None:
            delivery = f"servicenow:{sys_id}:{count}:{operation}"
        else:
            delivery = "servicenow:" + hashlib.sha256(body).hexdigest()
        return WebhookEvent(sys_id, OPERATIONS[operation], delivery, occurred)

    def integration_user(self) -> str | None:
        """The user name our writes show in sys_updated_by and sys_created_by (journal entries)."""
        return super().integration_user() or self.settings.secrets.get("username")

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _sys_id(self, external_id: str) -> str:
        if not SYS_ID.match(external_id):
            raise NotFoundError(f"{external_id!r} is not a ServiceNow sys_id", connection=self.name)
        return external_id

    def _incident(self, sys_id: str, *, fields: str | None = None) -> RawRecord:
        params = dict(READ, sysparm_fields=fields) if fields else READ
        return _result(self.http.request_json("GET", f"{INCIDENT}/{sys_id}", params=params).data)

    def _journal(self, sys_id: str) -> list[RawRecord]:
        query = f"element_id={sys_id}^{_JOURNAL_ELEMENTS}^ORDERBYsys_created_on^ORDERBYsys_id"
        return self._rows(JOURNAL, query)

    def _rows(self, path: str, query: str, *, fields: str | None = None, limit: int | None = None) -> list[RawRecord]:
        """Every row of a query, or the first ``limit``.

        Offset pages are safe here: journal and time rows of one incident only ever append, and metadata changes
        rarely (the incident listing itself seeks instead, see servicenow_paging).
        """
        params = dict(READ, sysparm_query=query)
        if fields:
            params["sysparm_fields"] = fields
        if limit is not None:
            params["sysparm_limit"] = str(limit)
            return list(_results(self.http.request_json("GET", path, params=params).data))
        paginator = OffsetPaginator(
            offset_param="sysparm_offset",
            limit_param="sysparm_limit",
            limit=self.rows_page,
            total_header="X-Total-Count",
        )
        rows: list[RawRecord] = []
        for page in self.http.paginate(PageRequest(url=path, params=params), paginator, _results):
            rows.extend(page.records)
        return rows

    def _writable(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A write body: priority dropped (derived), choice values checked against the metadata."""
        body = {k: v for k, v in fields.items() if k != "priority"}
        if "priority" in fields:
            log.debug("servicenow.priority_not_written", connection=self.name, hint="write impact and urgency")
        self._check_choices(body)
        return body

    def _check_choices(self, body: Mapping[str, Any]) -> None:
        """Refuse a choice value the instance does not know (it would store it silently), after one refresh."""
        names = [n for n in (*CHOICE_FIELDS, *CHOICE_FIELDS_MORE, "assignment_group") if body.get(n)]
        if not names:
            return
        for refresh in (False, True):
            metadata = self.metadata(refresh=refresh)
            unknown = [n for n in names if _unknown(metadata, n, str(body[n]))]
            if not unknown:
                return
        raise MappingError(
            "ServiceNow has no such choice: "
            + ", ".join(f"{n}={body[n]!r}" for n in unknown)
            + " (the instance would store it as sent; fix the mapping or the instance's choice list)",
            connection=self.name,
            details={"fields": {n: body[n] for n in unknown}},
        )

    def _resolve_note(self, sys_id: str, value: str, marker: str) -> RawRecord:
        fields = "sys_id,close_notes,close_code,resolved_at,resolved_by,sys_updated_on"
        incident = self._incident(sys_id, fields=fields)
        if marker not in str(incident.get("close_notes", "")):
            patch: dict[str, str] = {"close_notes": value}
            if not incident.get("close_code"):
                patch["close_code"] = self.options.resolution_close_code
            reply = self.http.request_json("PATCH", f"{INCIDENT}/{sys_id}", params=READ, json=patch, idempotent=True)
            incident = _result(reply.data)
        return _close_notes(incident)[0]

    def _user_id(self, who: str | None) -> str | None:
        """A sys_user sys_id for a time entry's ``who``: a sys_id, a user name, or a name known to the metadata."""
        if not who:
            return None
        if SYS_ID.match(who):
            return who
        for choice in self.metadata().choices("assigned_to"):
            if who in (choice.label, choice.extra.get("user_name"), choice.extra.get("email")):
                return choice.value
        return None

    def _check_age(self, occurred: datetime | None) -> None:
        """Deliveries about changes older than ``webhook_max_age_seconds`` are refused as stale (replays)."""
        max_age = self.options.webhook_max_age_seconds
        if max_age <= 0:
            return
        if occurred is None:
            raise WebhookVerificationError("the notification carries no sys_updated_on", connection=self.name)
        age = self.runtime.now() - occurred
        if age > timedelta(seconds=max_age):
            raise WebhookVerificationError(
                f"the notification is stale: the change is {age.total_seconds():.0f}s old (limit {max_age:.0f}s)",
                connection=self.name,
            )

    def load_metadata(self) -> VendorMetadata:
        """Incident choices (sys_choice), assignment groups, users and configuration items."""
        fields: dict[str, list[Choice]] = {}
        elements = ",".join((*CHOICE_FIELDS, *CHOICE_FIELDS_MORE))
        # Choices of incident fields may be defined on incident or inherited from task; incident's win.
        query = f"nameINincident,task^elementIN{elements}^language=en^inactive=false^ORDERBYelement^ORDERBYsequence"
        rows = self._rows(CHOICES, query, fields="name,element,value,label,dependent_value,sequence")
        own = {(r["element"], r["name"]) for r in rows}
        for row in rows:
            element = str(row["element"])
            if row["name"] == "task" and (element, "incident") in own:
                continue
            fields.setdefault(element, []).append(
                Choice(
                    value=str(row["value"]),
                    label=str(row["label"]),
                    scope=str(row.get("dependent_value") or "") or None,
                    is_closed=element == "state" and str(row["value"]) in CLOSED_STATES,
                )
            )
        groups = self._rows(GROUPS, "active=true^ORDERBYname^ORDERBYsys_id", fields="sys_id,name")
        fields["assignment_group"] = [Choice(value=g["sys_id"], label=g["name"]) for g in groups]
        cap = self.options.metadata_max_rows
        users = self._capped(USERS, "active=true", "sys_id,name,user_name,email", cap)
        people = [
            Choice(value=u["sys_id"], label=u["name"], extra={"user_name": u["user_name"], "email": u["email"]})
            for u in users
        ]
        fields["assigned_to"] = fields["caller_id"] = people
        cis = self._capped(CIS, "", "sys_id,name", cap)
        fields["cmdb_ci"] = [Choice(value=c["sys_id"], label=c["name"]) for c in cis]
        return VendorMetadata(
            system=self.system,
            fields={name: tuple(choices) for name, choices in fields.items()},
            fetched_at=self.runtime.now(),
        )

    def _capped(self, path: str, query: str, fields: str, cap: int) -> list[RawRecord]:
        """Rows of a (possibly very large) reference table, at most ``cap`` (lookups of the rest stay unnamed)."""
        rows: list[RawRecord] = []
        paginator = SeekPaginator(limit=min(self.rows_page, max(cap, 1)), extra=query)
        request = PageRequest(url=path, params=dict(READ, sysparm_fields=f"{fields},sys_updated_on"))
        for page in self.http.paginate(request, paginator, _results):
            rows.extend(page.records)
            if len(rows) >= cap:
                break
        return rows[:cap]


def _results(body: Any) -> Sequence[RawRecord]:
    """The ``result`` list of a list response."""
    result = body["result"]
    if not isinstance(result, list):
        raise TypeError(f"result is {type(result).__name__}, not a list")
    return result


def _result(body: Any) -> RawRecord:
    """The ``result`` record of a single-record response."""
    result = body["result"] if isinstance(body, dict) else None
    if not isinstance(result, dict):
        raise PermanentError(f"ServiceNow answered without a result record: {str(body)[:200]}")
    return result


def _reference(value: Any) -> str:
    """The sys_id of a reference field, bare (``sysparm_exclude_reference_link``) or as ``{link, value}``."""
    return str(value.get("value") if isinstance(value, dict) else value or "")


def _close_notes(incident: Mapping[str, Any]) -> list[RawRecord]:
    """The resolution notes as a journal-like row (``element: close_notes``), when the incident has any."""
    text = incident.get("close_notes")
    if not text:
        return []
    return [
        {
            "sys_id": f"{incident['sys_id']}:close_notes",
            "name": "incident",
            "element": "close_notes",
            "element_id": incident["sys_id"],
            "value": text,
            "sys_created_on": incident.get("resolved_at") or incident.get("sys_updated_on", ""),
            "sys_created_by": "",
            "resolved_by": incident.get("resolved_by") or "",
        }
    ]


def _unknown(metadata: VendorMetadata, name: str, value: str) -> bool:
    choices = metadata.choices(name)
    return bool(choices) and all(c.value != value for c in choices)


def _plain(marker: str) -> None:
    """A marker goes into encoded queries: ``^`` would start another condition."""
    if not marker or "^" in marker or "\n" in marker:
        raise ValueError(f"marker {marker!r} cannot be used in a ServiceNow query")


CONNECTOR = ServiceNowConnector
