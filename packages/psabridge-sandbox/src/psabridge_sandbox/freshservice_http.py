"""Freshservice's HTTP manners for the simulator: Basic auth with an API key, error bodies, plan rate limits, webhooks.

Sources (VENDOR-APIS.md section 4 shorthand):

- Auth: ``Authorization: Basic base64("<apikey>:X")``, any password (goFS ``client.go``, airbyte manifest). A bad key
  answers 401 ``{"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}``:
  the code is in FSSPEC ``definitions.error``; the message is what Freshworks' Freshdesk API answers (GitHub
  sjkingo/python-freshdesk#74) [UNCONFIRMED for Freshservice]. 403 is FSSPEC ``Forbidden`` ``{code: access_denied,
  message}``, 500 FSSPEC ``InternalServerError`` ``{code: internal_error, message}``.
- Validation: 400 ``{"description": "Validation failed", "errors": [{"field", "message", "code"}]}`` (FSSPEC
  ``BadRequest``; fixture ``badRequest.js``). A missing record is a 404 with an empty body (askasoft/pango
  ``sdk/fdk/fdk.go`` decodes no body on 404).
- Limits: per minute for the whole account, with sub-limits per endpoint, by plan (Starter/Growth/Pro/Enterprise:
  overall 100/200/400/500, list tickets 40/70/120/140, view, create and update ticket 50/80/140/160 each, list
  agents and requesters 40/70/120/140; docs.exalate.com "Rate Limit Limitations for Freshservice"; FSDOCS
  ``#rate_limit``). Failed calls count. ``include`` costs credits: +1 per include on a show call, +2 on a list call
  (askasoft/pango ``freshservice/tickets.go``). Every answer carries X-RateLimit-Total, -Remaining and
  -Used-CurrentRequest; a refusal is 429 with Retry-After in seconds (goFS parses seconds; FSSPEC calls it a
  date-time) and FSSPEC ``RateLimitError`` ``{"message": ...}``.
- Webhooks: no signing. The admin's Workflow Automator "Trigger Webhook" action posts a JSON body of their design
  and may add custom headers; psabridge's setup puts a shared secret in ``X-Psabridge-Secret`` (the connection
  option ``webhook_header`` names another).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.core import Simulator
from psabridge_sandbox.credentials import FS_API_KEY
from psabridge_sandbox.dispatcher import Subscription
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.ratelimit import Verdict

__all__ = [
    "AGENT_PRINCIPAL",
    "PLANS",
    "READONLY_API_KEY",
    "READONLY_PRINCIPAL",
    "WEBHOOK_SECRET_HEADER",
    "Plan",
    "ValidationFailed",
    "authenticate",
    "install_rate_limits",
    "render_error",
    "sign_webhook",
]

WEBHOOK_SECRET_HEADER = "X-Psabridge-Secret"  # noqa: S105 - a header name
AGENT_PRINCIPAL = "agent:psabridge"
READONLY_API_KEY = "sandbox-fs-readonly-key"  # a sandbox key: an agent whose role may only read tickets
READONLY_PRINCIPAL = "agent:readonly"
_KEYS = {FS_API_KEY: AGENT_PRINCIPAL, READONLY_API_KEY: READONLY_PRINCIPAL}

RATE_LIMIT_MESSAGE = "The API rate limit allotted for your Freshservice domain has been exhausted"  # FSSPEC example
_CODES = {
    401: "invalid_credentials",
    403: "access_denied",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "inconsistent_state",
    415: "invalid_content_type",
}


@dataclasses.dataclass(eq=False)
class ValidationFailed(VendorError):
    """A 400 with Freshservice's list of field errors (``errors``: dicts of field, message, code)."""

    errors: list[dict[str, str]] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, errors: list[dict[str, str]]) -> ValidationFailed:
        """The error for these field errors."""
        return cls(400, "Validation failed", errors=errors)


def field_error(field: str, message: str, code: str = "invalid_value") -> dict[str, str]:
    """One entry of ``errors``."""
    return {"field": field, "message": message, "code": code}


def render_error(error: VendorError) -> Response:
    """Any VendorError in Freshservice's shape."""
    if isinstance(error, ValidationFailed):
        return JSONResponse({"description": "Validation failed", "errors": error.errors}, status_code=error.status)
    if error.status == 404:
        return Response(status_code=404)
    if error.status == 429:
        message = error.message if error.message != "Too Many Requests" else RATE_LIMIT_MESSAGE
        return JSONResponse({"message": message}, status_code=429)
    if error.field:
        errors = [field_error(error.field, error.message, error.code or "invalid_value")]
        return JSONResponse({"description": "Validation failed", "errors": errors}, status_code=error.status)
    if error.status >= 500:
        return JSONResponse(
            {"code": "internal_error", "message": "We're sorry, but something went wrong."}, status_code=error.status
        )
    code = error.code or _CODES.get(error.status, "invalid_request")
    return JSONResponse({"code": code, "message": error.message}, status_code=error.status)


def authenticate(request: Request) -> str:
    """Basic auth with the API key as the user name and any password."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = ""
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    principal = _KEYS.get(key)
    if principal is None:
        raise VendorError(401, "You have to be logged in to perform this action.", code="invalid_credentials")
    return principal


def sign_webhook(body: bytes, subscription: Subscription) -> Mapping[str, str]:
    """Freshservice signs nothing: the admin's custom header carries the shared secret, if one was set."""
    return {WEBHOOK_SECRET_HEADER: subscription.secret} if subscription.secret else {}


# --- plans and rate limits -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A plan's per-minute limits (None: no such limit).

    ``unlimited`` exists only in the sandbox, for benchmarks: a limit no client reaches, so the headers still come.
    """

    name: str
    overall: int | None
    list_tickets: int | None
    ticket: int | None  # each of view, create and update ticket
    list_users: int | None  # each of list agents and list requesters


PLANS: dict[str, Plan] = {
    p.name: p
    for p in (
        Plan("starter", 100, 40, 50, 40),
        Plan("growth", 200, 70, 80, 70),  # MSP Core accounts follow Growth
        Plan("pro", 400, 120, 140, 120),
        Plan("enterprise", 500, 140, 160, 140),
        Plan("unlimited", 1_000_000_000, None, None, None),
    )
}

_TICKET = re.compile(r"^/api/v2/tickets/\d+$")
_ENDPOINTS: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("list_tickets", "GET", lambda path: path == "/api/v2/tickets"),
    ("view_ticket", "GET", lambda path: _TICKET.match(path) is not None),
    ("create_ticket", "POST", lambda path: path == "/api/v2/tickets"),
    ("update_ticket", "PUT", lambda path: _TICKET.match(path) is not None),
    ("list_agents", "GET", lambda path: path == "/api/v2/agents"),
    ("list_requesters", "GET", lambda path: path == "/api/v2/requesters"),
)


def endpoint_of(request: Request) -> str | None:
    """The sub-limited endpoint a request is, if any."""
    path = request.url.path.rstrip("/")
    for name, method, matches in _ENDPOINTS:
        if request.method == method and matches(path):
            return name
    return None


def credits(request: Request) -> int:
    """API credits a request costs: 1, plus 2 per ``include`` on list tickets or 1 per include on a show call."""
    includes = {part.strip() for part in request.query_params.get("include", "").split(",") if part.strip()}
    if not includes or request.method != "GET":
        return 1
    return 1 + (2 if endpoint_of(request) == "list_tickets" else 1) * len(includes)


def _rate_headers(verdict: Verdict) -> dict[str, str]:
    return {
        "X-RateLimit-Total": str(verdict.limit),
        "X-RateLimit-Remaining": str(verdict.remaining),
        "X-RateLimit-Used-CurrentRequest": str(verdict.cost),
        "X-Freshservice-Api-Version": "latest=v2; requested=v2",  # on every answer (FSDOCS intro)
    }


def install_rate_limits(sim: Simulator, plan: Plan) -> None:
    """The plan's account-wide limit (with the X-RateLimit headers) and its per-endpoint sub-limits."""
    if plan.overall is not None:
        sim.rate_limit(plan.overall, 60, key=lambda request, principal: "account", cost=credits, headers=_rate_headers)
    for name, limit in (
        ("list_tickets", plan.list_tickets),
        ("view_ticket", plan.ticket),
        ("create_ticket", plan.ticket),
        ("update_ticket", plan.ticket),
        ("list_agents", plan.list_users),
        ("list_requesters", plan.list_users),
    ):
        if limit is not None:
            sim.rate_limit(limit, 60, key=_only(name), cost=credits, message=RATE_LIMIT_MESSAGE)


def _only(endpoint: str) -> Callable[[Request, str | None], str | None]:
    def key(request: Request, principal: str | None) -> str | None:
        return f"account:{endpoint}" if endpoint_of(request) == endpoint else None

    return key
