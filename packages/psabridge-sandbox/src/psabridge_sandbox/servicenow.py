"""ServiceNow simulator: a client's instance behind the Table API, with its paging, errors, limits and notifications.

Tables: incident, sys_journal_field, task_time_worked, and the reference tables sys_user, sys_user_group,
core_company, cmdb_ci and sys_choice.

Sources (ServiceNow publishes no OpenAPI file for the Table API; see shared vendor-specs README "Not saved"):
docs/VENDOR-APIS.md section 3 and the vendor pages it cites; docs.servicenow.com "Table API - GET
/now/table/{tableName}" (parameters, ORDERBY, invalid query parts ignored); KB0534905 "Table API FAQs" (one record per
write, sysparm_input_display_value); "Inbound REST API rate limiting" (hourly rules, X-RateLimit-Limit/-Reset/-Rule,
429 with Retry-After); gist bryanbarnard/ee1d952604a11e0f0342 and ServiceNowITOM/ansible-sn-inventory#15 (Link header
with first/prev/next/last built from sysparm_offset, X-Total-Count); many client test suites for the 404 body
``{"error": {"message": "No Record found", "detail": "Record doesn't exist or ACL restricts the record retrieval"},
"status": "failure"}``.

What it reproduces:

- ``GET/POST /api/now/table/{table}`` and ``GET/PATCH/PUT /api/now/table/{table}/{sys_id}`` (also ``/api/now/v1|v2/``)
  with sysparm_query (servicenow_query.py), sysparm_limit (default 10,000), sysparm_offset, sysparm_fields,
  sysparm_display_value (false/true/all), sysparm_exclude_reference_link, sysparm_suppress_pagination_header and
  sysparm_no_count; the
  ``X-Total-Count`` and ``Link`` headers; 201 and a Location header for a POST.
- Writes (servicenow_records.Instance): PATCH and PUT are both partial; unknown and read-only fields are ignored
  silently; choice values are not validated (an unknown state is stored as sent); priority is always derived from
  impact x urgency; work_notes/comments become sys_journal_field rows and read back ""; sys_mod_count goes up per
  update, not when nothing changed; resolved_at/closed_at are stamped on entering Resolved/Closed.
- Offset paging over a live table: after each incident page the churn faults change records, so a client paging
  ``ORDERBYsys_updated_on`` by offset sees the real duplicates and skips (FIELD-LESSONS: rbw/pysnow#104).
- A request line longer than Tomcat's 8 KB header buffer is refused with 400 "Request header is too large"
  (KB0826932: long encoded queries hit the Tomcat limit), so a client listing many sys_ids with ``IN`` must split them.
- Errors ``{"error": {"message", "detail"}, "status": "failure"}``: 401 "User Not Authenticated"/"Required to provide
  Auth information", 403 ACL refusals for tables the integration user may only read, 404 "No Record found", 400
  "Invalid table", a negative offset, or an unknown API path, and 429 from the hourly rate-limit rule.
- Change notifications as an after-insert/update business rule on incident would POST them with RESTMessageV2
  (VENDOR-APIS 3.7): JSON ``{table, sys_id, number, operation, sys_updated_on, sys_updated_by, sys_mod_count}`` with a
  shared-secret header (``X-Webhook-Secret``, as docs.2501.ai's rule sends it), and the usual loop guard: no
  notification for changes made by the integration user. Async business rules do not retry a failed POST.

Every seeded agent (the integration user and the MSP's engineers) signs in with the sandbox password.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict, deque
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.core import Simulator, principal_of
from psabridge_sandbox.credentials import SN_PASSWORD, SN_USERNAME
from psabridge_sandbox.dispatcher import Subscription
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.ratelimit import Verdict, by_principal
from psabridge_sandbox.registry import SandboxContext, register
from psabridge_sandbox.servicenow_query import EncodedQuery, parse_query
from psabridge_sandbox.servicenow_records import DisplayMode, Instance
from psabridge_sandbox.servicenow_schema import SCHEMAS, sys_id_for
from psabridge_sandbox.servicenow_seed import seed_incidents, seed_reference
from psabridge_sandbox.table import Change, Listener, Row

__all__ = [
    "DEFAULT_LIMIT",
    "RATE_LIMIT_PER_HOUR",
    "SECRET_HEADER",
    "ServiceNowSimulator",
    "build",
    "servicenow_error",
]

DEFAULT_LIMIT = 10_000
"""sysparm_limit when none is given (docs: "The default is 10000")."""
RATE_LIMIT_PER_HOUR = 50_000
MAX_REQUEST_LINE = 8192  # Tomcat's default maxHttpHeaderSize, which holds the request line (KB0826932)
"""The sandbox instance's rate-limit rule ("All users", per user per hour); ServiceNow ships no default rule."""
SECRET_HEADER = "X-Webhook-Secret"  # noqa: S105 - a header name, not a secret
"""The header the notification business rule sends the shared secret in (docs.2501.ai webhooks; VENDOR-APIS 3.7)."""
_REALM = 'Basic realm="Service-now"'
_VERSIONS = ("v1", "v2")


def servicenow_error(error: VendorError) -> Response:
    """The Table API's error body: ``{"error": {"message", "detail"}, "status": "failure"}``."""
    body = {"error": {"message": error.message, "detail": error.detail or None}, "status": "failure"}
    return JSONResponse(body, status_code=error.status)


def _not_authenticated() -> VendorError:
    return VendorError(
        401,
        "User Not Authenticated",
        detail="Required to provide Auth information",
        headers={"WWW-Authenticate": _REALM},
    )


class ServiceNowSimulator:
    """One client's ServiceNow instance.

    Args:
        context: the sandbox context (seed world, tickets, faults, clock).
        rate_limit: requests per user per hour allowed by the instance's rate-limit rule.
        close_info_mandatory: a data policy requiring close_code and close_notes on Resolved/Closed (instance
            dependent, off out of the box for the API: VENDOR-APIS 3.4 [UNCONFIRMED]).
        webhook_transport: an httpx transport for notifications (tests; default: the network).
    """

    def __init__(
        self,
        context: SandboxContext,
        *,
        rate_limit: int = RATE_LIMIT_PER_HOUR,
        close_info_mandatory: bool = False,
        webhook_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.instance = Instance(context.clock, context.seed, SN_USERNAME, close_info_mandatory=close_info_mandatory)
        seed_reference(self.instance, context.world, context.service.tenants, context.service.handoff_queue)
        seed_incidents(self.instance, context.seed_tickets())
        self.agents = {SN_USERNAME} | set(self.instance.refs.user_of_tech.values())
        self.pages: deque[dict[str, Any]] = deque(maxlen=10_000)
        self._generation = dict.fromkeys(SCHEMAS, 0)
        self._cache: OrderedDict[tuple[str, str, int], list[Row]] = OrderedDict()
        self._churn_users = sorted(self.instance.refs.user_of_tech.values())
        self._churns = 0
        sim = self.simulator = Simulator(
            context.service.name,
            auth=self._authenticate,
            errors=servicenow_error,
            faults=context.faults,
            seed=context.seed,
            clock=context.clock,
            state=self.state,
            signer=_shared_secret,
            webhook_transport=webhook_transport,
        )
        for name, table in self.instance.tables.items():
            table.on_change(self._listener(name))
        self.rule_id = sys_id_for("sys_rate_limit_rules", context.seed, 1)
        sim.rate_limit(
            context.limit(rate_limit), 3600, key=by_principal, message="Rate limit exceeded", headers=self._rate_headers
        )
        for prefix in ("/api/now/table", "/api/now/{version}/table"):
            sim.add_route(prefix + "/{table}", self.list_records, methods=["GET"])
            sim.add_route(prefix + "/{table}", self.create_record, methods=["POST"])
            sim.add_route(prefix + "/{table}/{sys_id}", self.get_record, methods=["GET"])
            sim.add_route(prefix + "/{table}/{sys_id}", self.update_record, methods=["PATCH", "PUT"])
        sim.add_route("/api/{rest:path}", self.unknown_resource)

    # --- hooks -------------------------------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise _not_authenticated()
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _not_authenticated() from None
        if user not in self.agents or password != SN_PASSWORD:
            raise _not_authenticated()
        return user

    def _rate_headers(self, verdict: Verdict) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(verdict.limit),
            "X-RateLimit-Reset": str(int(verdict.reset)),
            "X-RateLimit-Rule": self.rule_id,
        }

    def _listener(self, table: str) -> Listener:
        def changed(change: Change, row: Row) -> None:
            self._generation[table] += 1
            if change != "deleted":
                self.instance.sync(table, row)
            if table == "incident":
                self._notify(change, row)

        return changed

    def _notify(self, change: Change, row: Row) -> None:
        """The business rule: POST a change notification unless the integration user made the change."""
        data = row.data
        if data.get("sys_updated_by") == SN_USERNAME:
            return
        operation = {"created": "insert", "updated": "update", "deleted": "delete"}[change]
        payload = {
            "table": "incident",
            "sys_id": str(row.id),
            "number": data.get("number", ""),
            "operation": operation,
            "sys_updated_on": data.get("sys_updated_on", ""),
            "sys_updated_by": data.get("sys_updated_by", ""),
            "sys_mod_count": data.get("sys_mod_count", "0"),
        }
        self.simulator.webhooks.emit(f"incident.{operation}", payload)

    def state(self) -> dict[str, Any]:
        """What ``/_sandbox/state`` shows: counts, and what changed since seeding (incidents, notes, time, pages)."""
        inst = self.instance
        base = self.simulator.base_url or ""

        def rows(table: str) -> list[dict[str, Any]]:
            return [inst.render(table, r, base_url=base, links=False) for r in inst.changed_since_seed(table)]

        return {
            "counts": {name: len(table) for name, table in inst.tables.items()},
            "incidents": rows("incident"),
            "journal": rows("sys_journal_field"),
            "time_worked": rows("task_time_worked"),
            "pages": list(self.pages),
            "rate_limit": {"rule": self.rule_id, "per_hour": self.simulator.rate_limits[0].window.limit},
        }

    # --- routes ------------------------------------------------------------------------------------------------------

    async def list_records(self, request: Request) -> Response:
        """GET /api/now/table/{table}: a page of records, with X-Total-Count and Link."""
        table = self._table(request)
        params = request.query_params
        limit = _integer(params.get("sysparm_limit"), DEFAULT_LIMIT)
        if limit <= 0:
            limit = DEFAULT_LIMIT
        offset = _integer(params.get("sysparm_offset"), 0)
        if offset < 0:
            # Tangoe's published ServiceNow samples (VENDOR-APIS 3.6) [UNCONFIRMED which text is message/detail].
            raise VendorError(400, "Negative offset is not supported", detail=f"offset is {offset}")
        text = params.get("sysparm_query", "")
        query = parse_query(text, lambda name: self.instance.knows(table, name))
        rows = self._select(table, query, text)
        total = len(rows)
        page = rows[offset : offset + limit]
        mode, links, fields = self._shape(request, table)
        base = _base(request)
        result = [self.instance.render(table, r, base_url=base, fields=fields, mode=mode, links=links) for r in page]
        headers = {} if params.get("sysparm_no_count", "").lower() == "true" else {"X-Total-Count": str(total)}
        if params.get("sysparm_suppress_pagination_header", "").lower() != "true":
            headers["Link"] = _links(request, base, offset, limit, total)
        self.pages.append(
            {
                "table": table,
                "principal": principal_of(request),
                "query": text,
                "ignored": list(query.ignored),
                "offset": offset,
                "limit": limit,
                "returned": len(result),
                "total": total,
            }
        )
        if table == "incident" and result:
            self.simulator.between_pages(self.instance.tables["incident"], change=self._churn, create=self._new)
        return JSONResponse({"result": result}, headers=headers)

    async def get_record(self, request: Request) -> Response:
        """GET /api/now/table/{table}/{sys_id}."""
        table = self._table(request)
        row = self._row(table, request.path_params["sys_id"])
        return self._one(request, table, row)

    async def update_record(self, request: Request) -> Response:
        """PATCH or PUT /api/now/table/{table}/{sys_id}: a partial update either way (VENDOR-APIS 3.5)."""
        table = self._table(request)
        sys_id = request.path_params["sys_id"]
        self._row(table, sys_id)
        self._writable(table, "Update")
        body = await _body(request)
        user = principal_of(request) or SN_USERNAME
        if table == "incident":
            row = self.instance.update_incident(sys_id, body, user)
        else:
            row = self.instance.update_row(table, sys_id, body, user)
        return self._one(request, table, row)

    async def create_record(self, request: Request) -> Response:
        """POST /api/now/table/{table}: 201 with the record and its Location."""
        table = self._table(request)
        self._writable(table, "Insert")
        body = await _body(request)
        user = principal_of(request) or SN_USERNAME
        if table == "incident":
            row = self.instance.create_incident(body, user)
        else:
            row = self.instance.create_row(table, body, user)
        response = self._one(request, table, row, status=201)
        response.headers["Location"] = f"{_base(request)}/api/now/table/{table}/{row.id}"
        return response

    async def unknown_resource(self, request: Request) -> Response:
        """Any other /api path."""
        raise VendorError(400, "Requested URI does not represent any resource")

    # --- helpers -----------------------------------------------------------------------------------------------------

    def _table(self, request: Request) -> str:
        target = request.scope.get("raw_path", b"") + b"?" + request.scope.get("query_string", b"")
        if len(request.method) + len(target) + len(" HTTP/1.1") + 1 > MAX_REQUEST_LINE:
            raise VendorError(400, "Request header is too large", detail="the request line exceeds 8 KB")
        version = request.path_params.get("version")
        if version is not None and version not in _VERSIONS:
            raise VendorError(400, "Requested URI does not represent any resource")
        table = str(request.path_params["table"])
        if table not in SCHEMAS:
            raise VendorError(400, f"Invalid table {table}")
        return table

    def _row(self, table: str, sys_id: str) -> Row:
        row = self.instance.tables[table].get(sys_id)
        if row is None:
            raise VendorError(
                404, "No Record found", detail="Record doesn't exist or ACL restricts the record retrieval"
            )
        return row

    def _writable(self, table: str, operation: str) -> None:
        if not SCHEMAS[table].writable:
            raise VendorError(
                403, "Operation Failed", detail=f"ACL Exception {operation} Failed due to security constraints"
            )

    def _shape(self, request: Request, table: str) -> tuple[DisplayMode, bool, list[str] | None]:
        params = request.query_params
        raw_mode = params.get("sysparm_display_value", "false").lower()
        mode: DisplayMode = "true" if raw_mode == "true" else "all" if raw_mode == "all" else "false"
        links = params.get("sysparm_exclude_reference_link", "false").lower() != "true"
        wanted = [f.strip() for f in params.get("sysparm_fields", "").split(",") if f.strip()]
        fields = [f for f in wanted if self.instance.knows(table, f)] or None
        return mode, links, fields

    def _one(self, request: Request, table: str, row: Row, status: int = 200) -> JSONResponse:
        mode, links, fields = self._shape(request, table)
        record = self.instance.render(table, row, base_url=_base(request), fields=fields, mode=mode, links=links)
        return JSONResponse({"result": record}, status_code=status)

    def _select(self, table: str, query: EncodedQuery, text: str) -> list[Row]:
        """The matching rows in order, cached per query until the table changes (so paging 100k rows is cheap)."""
        key = (table, text, self._generation[table])
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        inst = self.instance
        candidates: list[Row] | None = None
        if table == "sys_journal_field" and (incidents := query.one_of("element_id")) is not None:
            journal = inst.tables[table]
            of = inst.journal_of
            candidates = [journal[i] for incident in dict.fromkeys(incidents) for i in of.get(incident, ())]
        elif table == "task_time_worked" and (tasks := query.one_of("task")) is not None:
            worked = inst.tables[table]
            candidates = [worked[i] for task in dict.fromkeys(tasks) for i in inst.time_of.get(task, ())]
        if candidates is None:
            candidates = inst.tables[table].rows()
        schema = SCHEMAS[table]
        found = query.filter(
            candidates, lambda row, name: inst.get(table, row, name), lambda name: name in schema.numbers
        )
        self._cache[key] = found
        while len(self._cache) > 16:
            self._cache.popitem(last=False)
        return found

    def _churn(self, row: Row) -> dict[str, str]:
        """A record changed by one of the MSP's engineers while a client pages (the churn fault)."""
        self._churns += 1
        return {"sys_updated_by": self._churn_users[self._churns % len(self._churn_users)]}

    def _new(self) -> dict[str, str]:
        """An incident raised while a client pages (the churn fault)."""
        self._churns += 1
        return self.instance.new_incident_data(
            {"short_description": "New incident raised while paging"},
            self._churn_users[self._churns % len(self._churn_users)],
        )


def _shared_secret(body: bytes, subscription: Subscription) -> dict[str, str]:
    """The business rule's authentication: the shared secret in a header (no signature exists to compute)."""
    return {SECRET_HEADER: subscription.secret} if subscription.secret else {}


def _integer(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _links(request: Request, base: str, offset: int, limit: int, total: int) -> str:
    """The Link header: first, prev (unless on the first page), next (unless on the last), last."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in ("sysparm_offset", "sysparm_limit")]

    def url(at: int) -> str:
        query = urlencode([*pairs, ("sysparm_offset", str(at)), ("sysparm_limit", str(limit))], quote_via=quote)
        return f"<{base}{request.url.path}?{query}>"

    last = max(0, (total - 1) // limit * limit)
    parts = [f'{url(0)};rel="first"']
    if offset > 0:
        parts.append(f'{url(max(0, offset - limit))};rel="prev"')
    if offset + limit < total:
        parts.append(f'{url(offset + limit)};rel="next"')
    parts.append(f'{url(last)};rel="last"')
    return ",".join(parts)


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of a write; ServiceNow works on the first record only when given a list (KB0534905)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise VendorError(400, "Exception while reading request", detail="The payload is not valid JSON.") from None
    if isinstance(body, list):
        body = body[0] if body else {}
    if not isinstance(body, dict):
        raise VendorError(400, "Exception while reading request", detail="The payload is not a JSON object.")
    return body


@register("servicenow")
def build(context: SandboxContext) -> Simulator:
    """The ServiceNow simulator for ``psabridge sandbox serve``."""
    return ServiceNowSimulator(context).simulator
