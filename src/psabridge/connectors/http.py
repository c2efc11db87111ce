"""The shared HTTP layer: one pooled httpx client per connection, with retries, a resolution table, budget and logs.

Every vendor connector sends its requests through an ``HttpClient`` built by ``build_http_client``, so all of
them get the same behaviour:

- explicit connect/read timeouts and a connection pool (one ``httpx.Client`` per connection);
- a rate budget slot around every request (``connectors/budget.py``), charged as the vendor counts it (the
  ``charge_of`` hook: credits and the vendor's endpoint windows), and every attempt counted for whoever counts
  requests (``connectors/requestcount.py``);
- one structured log line per request: connection, method, path (secret query parameters masked), status,
  duration_ms, attempt, outcome; never a header or a credential;
- an outcome for every response and transport failure from one table, ``DEFAULT_RESOLUTIONS`` (after airbyte's
  ``ResponseAction``/``FailureType``: what to do, and who must act), which a vendor extends or overrides with its
  ``classify`` hook, while its ``error_message`` hook pulls the vendor's own message out of an error body;
- tenacity retries of transient failures with exponential backoff and jitter, bounded in attempts and in total
  time; a 429 waits as its Retry-After says, unless that is longer than ``RetryPolicy.inline_max_wait``, in which
  case ``RateLimitedError(retry_after=...)`` is raised at once so the worker can reschedule instead of blocking.

A request that is not idempotent (POST, PATCH unless the caller says otherwise) is sent again only after failures
that prove the vendor never acted on it (connection refused, 429, a vendor "refused" classification); after a read
timeout or a 5xx it raises at once, and the caller's idempotency (markers, find_by_marker) decides what next.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
import random
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import tenacity
from tenacity import stop as tenacity_stop

from psabridge import metrics
from psabridge.connectors.budget import DEFAULT_NAMESPACE, Budget, BudgetLimits, Charge, budget_for
from psabridge.connectors.pagination import PageRequest, Paginator
from psabridge.connectors.requestcount import counted
from psabridge.errors import (
    AuthError,
    BugError,
    ConflictError,
    NotFoundError,
    PermanentError,
    PsaBridgeError,
    RateLimitedError,
    RetryLaterError,
)
from psabridge.log import MASK, get_logger, is_secret_key
from psabridge.settings import RateBudget, Timeouts

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_RESOLUTIONS",
    "IGNORE",
    "SUCCESS",
    "DefaultHooks",
    "Endpoint",
    "FailureType",
    "FetchedPage",
    "HttpClient",
    "HttpRuntime",
    "Reply",
    "Resolution",
    "ResolutionKey",
    "ResponseAction",
    "ResponseHooks",
    "RetryPolicy",
    "build_http_client",
    "default_endpoint",
    "default_error_message",
    "json_or_none",
    "parse_retry_after",
]

log = get_logger("psabridge.connectors.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=5.0)
"""Pool per connection; keep-alive shorter than common server idle timeouts (uvicorn and many proxies: 5 s)."""


# --- outcomes -----------------------------------------------------------------------------------------------------


class ResponseAction(StrEnum):
    """What the client does with a response or failure."""

    SUCCESS = "success"
    IGNORE = "ignore"  # hand the response back as it is (e.g. a 404 the caller expects)
    RETRY = "retry"  # transient: back off and send again
    RATE_LIMITED = "rate_limited"  # wait as the vendor says (Retry-After), then send again
    FAIL = "fail"  # raise now


class FailureType(StrEnum):
    """Who must act on a failure (airbyte's FailureType, with the request itself as a fourth party)."""

    CONFIG = "config"  # a human must fix configuration, credentials or permissions
    TRANSIENT = "transient"  # time: the same request may well succeed later
    REQUEST = "request"  # the vendor refused this request for good (validation, missing record)
    SYSTEM = "system"  # psabridge or the vendor misbehaves: a developer must look


@dataclass(frozen=True)
class Resolution:
    """The outcome of one response or transport failure.

    Attributes:
        action: what to do.
        failure: who must act (None for success).
        error: the exception raised for FAIL (and when retries run out); default by action:
            RETRY -> RetryLaterError, RATE_LIMITED -> RateLimitedError, FAIL -> PermanentError.
        message: what happened, in our words (the vendor's own words are added from the body).
        refused: the vendor certainly did not act on the request (connection refused, 429, "busy"), so even a
            non-idempotent request may be sent again.
    """

    action: ResponseAction
    failure: FailureType | None = None
    error: type[PsaBridgeError] | None = None
    message: str = ""
    refused: bool = False

    def error_class(self) -> type[PsaBridgeError]:
        """The exception type this resolution raises."""
        if self.error is not None:
            return self.error
        if self.action is ResponseAction.RATE_LIMITED:
            return RateLimitedError
        if self.action is ResponseAction.RETRY:
            return RetryLaterError
        return PermanentError

    @classmethod
    def retry(cls, message: str, *, refused: bool = False) -> Resolution:
        """A transient failure: back off and send again (``refused``: the vendor surely did nothing)."""
        return cls(ResponseAction.RETRY, FailureType.TRANSIENT, RetryLaterError, message, refused=refused)

    @classmethod
    def fail(cls, error: type[PsaBridgeError], message: str, failure: FailureType = FailureType.REQUEST) -> Resolution:
        """Raise ``error`` at once."""
        return cls(ResponseAction.FAIL, failure, error, message)


SUCCESS = Resolution(ResponseAction.SUCCESS)
IGNORE = Resolution(ResponseAction.IGNORE)
_retry = Resolution.retry
_fail = Resolution.fail


ResolutionKey = int | type[BaseException]

DEFAULT_RESOLUTIONS: Mapping[ResolutionKey, Resolution] = {
    400: _fail(PermanentError, "the vendor rejected the request"),
    401: _fail(AuthError, "the vendor refused our credentials", FailureType.CONFIG),
    403: _fail(PermanentError, "the integration user may not do this", FailureType.CONFIG),
    404: _fail(NotFoundError, "no such record (or it is hidden from the integration user)"),
    405: _fail(PermanentError, "the vendor does not allow this method here", FailureType.SYSTEM),
    409: _fail(ConflictError, "the record changed underneath us or already exists"),
    422: _fail(PermanentError, "the vendor could not process the request"),
    429: Resolution(ResponseAction.RATE_LIMITED, FailureType.TRANSIENT, RateLimitedError, "rate limited", refused=True),
    500: _retry("the vendor failed (500)"),
    502: _retry("bad gateway in front of the vendor (502)"),
    503: _retry("the vendor is unavailable (503)"),
    504: _retry("the vendor's gateway timed out (504)"),
    httpx.ConnectError: _retry("could not connect", refused=True),
    httpx.ConnectTimeout: _retry("connecting timed out", refused=True),
    httpx.PoolTimeout: _retry("no free connection in our pool", refused=True),
    httpx.ReadTimeout: _retry("no answer within the read timeout"),
    httpx.WriteTimeout: _retry("sending the request timed out"),
    httpx.RemoteProtocolError: _retry("the vendor broke off the connection"),
    httpx.NetworkError: _retry("network error"),
    httpx.TransportError: _retry("transport error"),
    httpx.DecodingError: _retry("the answer could not be decoded"),
    jsonlib.JSONDecodeError: _retry("the answer was not valid JSON (cut short?)"),
}
"""Status codes and exception types -> outcome. Statuses not listed: 2xx success, 3xx a bug (we never expect a
redirect), other 4xx PermanentError, other 5xx retry. Exceptions are looked up along their class hierarchy."""


def _by_status_class(status: int) -> Resolution:
    if 200 <= status < 300:
        return SUCCESS
    if 300 <= status < 400:
        return _fail(BugError, f"unexpected redirect ({status})", FailureType.SYSTEM)
    if 400 <= status < 500:
        return _fail(PermanentError, f"the vendor refused the request ({status})")
    return _retry(f"the vendor failed ({status})")


# --- hooks --------------------------------------------------------------------------------------------------------


class ResponseHooks(Protocol):
    """What a vendor connector may tell the HTTP layer (``HttpConnector`` implements all of it with defaults)."""

    def classify(self, response: httpx.Response) -> Resolution | None:
        """The outcome of a response when the vendor's rules differ from the table (None: use the table).

        E.g. a 200 whose body reports an error, a 500 whose text says "timeout" (retry), a thread-limit refusal.
        """
        ...

    def error_message(self, response: httpx.Response) -> str | None:
        """The vendor's own error text from an error response's body."""
        ...

    def on_response(self, response: httpx.Response, budget: Budget) -> None:
        """See every response (errors too), e.g. to follow the vendor's rate headers with ``budget.observe``."""
        ...

    def endpoint_of(self, path: str) -> str:
        """The endpoint a request path counts against for the concurrency cap (path relative to the base URL)."""
        ...

    def charge_of(self, request: httpx.Request, path: str) -> Charge:
        """What a request costs the budget: credits, and the vendor's endpoint windows it counts against.

        ``path`` is the request's path relative to the base URL.
        """
        ...


_ONE_CREDIT = Charge()
_VERSION_SEGMENT = re.compile(r"^v?\d+(\.\d+)*$", re.IGNORECASE)


def default_endpoint(path: str) -> str:
    """The first path segment that is not a version (``/V1.0/Tickets/query`` -> ``Tickets``)."""
    for segment in path.split("/"):
        if segment and not _VERSION_SEGMENT.match(segment):
            return segment
    return "/"


def json_or_none(response: httpx.Response) -> Any:
    """The response's JSON body, or None when it is not JSON (an HTML error page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None


def default_error_message(response: httpx.Response) -> str | None:
    """A best guess at the vendor's message: a top-level ``message``/``error``/``detail`` string, else the text."""
    body = json_or_none(response)
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "description"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    text = response.text.strip()
    return text[:500] if text else None


class DefaultHooks:
    """The hooks' defaults: the table decides, a guessed message, no rate headers, endpoint by path segment."""

    def classify(self, response: httpx.Response) -> Resolution | None:
        """The outcome of a response where the vendor differs from the table; None: use the table."""
        return None

    def error_message(self, response: httpx.Response) -> str | None:
        """The vendor's own message from an error body (default: a generic guess)."""
        return default_error_message(response)

    def on_response(self, response: httpx.Response, budget: Budget) -> None:
        """Follow the vendor's rate headers, e.g. ``budget.observe("account", used=...)`` (default: none)."""

    def endpoint_of(self, path: str) -> str:
        """The endpoint a path counts against for the concurrency cap (default: first non-version segment)."""
        return default_endpoint(path)

    def charge_of(self, request: httpx.Request, path: str) -> Charge:
        """What a request costs the budget (default: one credit, no endpoint window)."""
        return _ONE_CREDIT


# --- retry policy -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request tries.

    Attributes:
        max_attempts: sends per request, the first included.
        max_elapsed: seconds one request may take in all, waits included; a retry whose wait would pass it is not
            made.
        backoff_initial: the first backoff wait; it doubles per retry, plus up to ``jitter`` seconds at random.
        backoff_max: the longest backoff wait.
        jitter: random seconds added to each backoff wait.
        inline_max_wait: the longest wait a 429's Retry-After (or a full budget) may impose inside a request;
            longer, and RateLimitedError is raised at once.
    """

    max_attempts: int = 5
    max_elapsed: float = 90.0
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    jitter: float = 0.5
    inline_max_wait: float = 30.0

    def backoff(self, failures: int) -> float:
        """The wait after the ``failures``-th failed attempt: doubling from ``backoff_initial``, capped, plus jitter.

        (tenacity's ``wait_exponential_jitter`` does the same but renamed its parameters between 9.1 and 9.2.)
        """
        base: float = min(self.backoff_max, self.backoff_initial * 2.0 ** max(0, failures - 1))
        return base + random.uniform(0, self.jitter)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value: integer (or decimal) seconds, an HTTP date, or an ISO datetime.

    Freshservice's published spec describes Retry-After as a date-time while its clients read integer seconds
    (VENDOR-APIS.md 4.6, FSSPEC vs goFS), so both are accepted. A time in the past means 0; garbage means None.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    when: datetime | None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


# --- the client ---------------------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HttpRuntime:
    """Where a connection's client runs: broker (for the budget), transport, key namespace, time.

    Attributes:
        broker_url: ``embedded``, ``redis://...`` (shared budget) or ``amqp://...``.
        transport: an httpx transport (tests: respx, an ASGI app); None for the network.
        namespace: prefix of shared budget keys; tests pass a unique one.
        sleep: how to wait (tests record instead of waiting).
        clock: monotonic seconds, for durations and the total time bound.
        now: the wall clock, for Retry-After dates.
    """

    broker_url: str = "embedded"
    transport: httpx.BaseTransport | None = None
    namespace: str = DEFAULT_NAMESPACE
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = _utcnow


@dataclass(frozen=True)
class Reply:
    """A successful (or ignored) response and its parsed JSON body."""

    response: httpx.Response
    data: Any


@dataclass(frozen=True)
class FetchedPage:
    """One page of a paginated list.

    Attributes:
        records: the records taken from the page.
        reply: the response and parsed body.
        number: 1 for the first page.
        last: the paginator says no page follows.
    """

    records: list[Any]
    reply: Reply
    number: int
    last: bool


class Endpoint(Protocol):
    """What a client is built from: a connection's settings, or a notifier's (a paging service, a chat webhook)."""

    @property
    def name(self) -> str:
        """The name in logs, errors and the rate budget."""
        ...

    @property
    def base_url(self) -> str:
        """The API root."""
        ...

    @property
    def rate_budget(self) -> RateBudget:
        """The configured budget."""
        ...

    @property
    def timeouts(self) -> Timeouts:
        """Connect and read timeouts."""
        ...


class HttpClient:
    """One connection's HTTP client. Thread-safe; build it with ``build_http_client``.

    Args:
        connection: the connection name (logs, errors, budget).
        base_url: the vendor API root; relative request paths are joined to it.
        auth: the vendor's auth (an httpx.Auth).
        timeout: explicit timeouts.
        budget: the connection's rate budget.
        hooks: the vendor's hooks (default: DefaultHooks).
        resolutions: entries that extend or override DEFAULT_RESOLUTIONS.
        retry: the retry policy.
        headers: headers sent with every request (Accept, a version pin ...).
        secret_params: query parameter names to mask in logs beyond the usual secret-looking ones.
        runtime: transport, sleep and clocks.
        limits: the connection pool's limits.
        mask_path: the URL path itself is a credential (a chat incoming webhook): logs and errors show ``***``.
    """

    def __init__(
        self,
        *,
        connection: str,
        base_url: str,
        auth: httpx.Auth | None,
        timeout: httpx.Timeout,
        budget: Budget,
        hooks: ResponseHooks | None = None,
        resolutions: Mapping[ResolutionKey, Resolution] | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        secret_params: Collection[str] = (),
        runtime: HttpRuntime | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        mask_path: bool = False,
    ) -> None:
        runtime = runtime or HttpRuntime()
        self._mask_path = mask_path
        self.connection = connection
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.hooks: ResponseHooks = hooks or DefaultHooks()
        self.resolutions: dict[ResolutionKey, Resolution] = {**DEFAULT_RESOLUTIONS, **(resolutions or {})}
        self.retry = retry or RetryPolicy()
        self._secret_params = frozenset(p.lower() for p in secret_params)
        self._sleep = runtime.sleep
        self._clock = runtime.clock
        self._now = runtime.now
        self._base_path = urlsplit(self.base_url).path.rstrip("/")
        self._origins = {_origin(self.base_url)}
        self._client = httpx.Client(
            base_url=self.base_url + "/",
            auth=auth,
            timeout=timeout,
            headers=dict(headers or {}),
            limits=limits,
            transport=runtime.transport,
            follow_redirects=False,
        )

    # -- public ------------------------------------------------------------------------------------------------------

    def trust_origin(self, url: str) -> None:
        """Allow absolute URLs (next-page links) on another origin, e.g. a zone host the vendor told us to use."""
        self._origins.add(_origin(url))

    def resolve(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.URL:
        """The absolute URL of a request: a relative path joined to the base URL, ``params`` merged into its query.

        (httpx itself would replace a URL's own query whenever params are given, even empty ones, which would drop
        the query a next-page link carries.)
        """
        full = httpx.URL(url) if _is_absolute(url) else httpx.URL(f"{self.base_url}/{url.lstrip('/')}")
        return full.copy_merge_params(dict(params)) if params else full

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send a request with budget, retries and logging; return the response when it is a success (or ignored).

        Args:
            method: the verb.
            url: a path relative to the base URL, or an absolute URL on a trusted origin.
            params: query parameters.
            json: a JSON body.
            content: a raw body.
            headers: extra headers.
            idempotent: whether sending it twice is harmless; default by verb (GET, HEAD, OPTIONS, PUT, DELETE).

        Raises:
            AuthError: 401 (at once, never retried).
            NotFoundError, ConflictError, PermanentError: the vendor refused the request for good.
            RateLimitedError: rate limited for longer than the inline maximum, or still after every retry.
            RetryLaterError: transient failures outlasted the retries.
        """
        return self._send(method, url, params, json, content, headers, idempotent, parse=False).response

    def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Reply:
        """As ``request``, and parse the body as JSON; a body that is not JSON counts as a transient failure."""
        return self._send(method, url, params, json, content, headers, idempotent, parse=True)

    def paginate(
        self,
        request: PageRequest,
        paginator: Paginator,
        records: Callable[[Any], Sequence[Any]],
        *,
        idempotent: bool = True,
    ) -> Iterator[FetchedPage]:
        """Fetch page after page, as the paginator says, holding one page at a time.

        Args:
            request: the first page's request (changed in place by the paginator).
            paginator: the strategy; only it decides when to stop.
            records: takes the records out of a parsed page body.
            idempotent: list requests are reads even when POSTed (an Autotask query); say False otherwise.

        Raises:
            BugError: the same page was requested twice (a pagination loop), or a body had an unexpected shape.
            PermanentError: a next-page URL points to an untrusted origin.
            (and whatever ``request`` raises)
        """
        paginator.init_request(request)
        seen: set[str] = set()
        number = 0
        while True:
            self._check_origin(request.url)
            fingerprint = _fingerprint(request.method, self.resolve(request.url, request.params), request.json)
            if fingerprint in seen:
                raise BugError(
                    f"pagination loop: page {number + 1} repeats an earlier request "
                    f"({request.method} {self._safe_target(request.url)})",
                    connection=self.connection,
                )
            seen.add(fingerprint)
            number += 1
            reply = self.request_json(
                request.method,
                request.url,
                params=request.params,
                json=request.json,
                headers=request.headers,
                idempotent=idempotent,
            )
            try:
                found = list(records(reply.data))
            except (KeyError, TypeError, IndexError, AttributeError) as exc:
                raise BugError(
                    f"page {number} of {request.method} {self._safe_target(request.url)} has an unexpected shape: "
                    f"{type(exc).__name__}: {exc}",
                    connection=self.connection,
                    status=reply.response.status_code,
                ) from exc
            paginator.update_state(reply.response, found, reply.data)
            last = not paginator.has_next
            yield FetchedPage(found, reply, number, last)
            if last:
                return
            paginator.update_request(request)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        idempotent: bool | None,
        *,
        parse: bool,
    ) -> Reply:
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        self._check_origin(url)
        started = self._clock()
        policy = self.retry

        def should_retry(exc: BaseException) -> bool:
            if not isinstance(exc, RetryLaterError) or exc.details.get("source") == "budget":
                return False
            if isinstance(exc, RateLimitedError) and exc.retry_after > policy.inline_max_wait:
                return False
            return safe or bool(exc.details.get("refused"))

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            hinted = exc.details.get("retry_after") if isinstance(exc, PsaBridgeError) else None
            if isinstance(exc, RateLimitedError) and hinted is not None:
                return float(hinted) + random.uniform(0, 0.1)  # as told; a hair later, never earlier
            return max(policy.backoff(state.attempt_number), float(hinted or 0.0))

        stop = tenacity.stop_after_attempt(policy.max_attempts) | _OutOfTime(self._clock, started, policy.max_elapsed)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(should_retry),
            stop=stop,
            wait=wait,
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                number = attempt.retry_state.attempt_number
                return self._attempt(method, url, params, json, content, headers, number, started, parse=parse)
        raise BugError("unreachable: tenacity neither returned nor raised")  # pragma: no cover

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        number: int,
        started: float,
        *,
        parse: bool,
    ) -> Reply:
        request = self._client.build_request(
            method, self.resolve(url, params), json=json, content=content, headers=headers
        )
        target = self._safe_target(str(request.url))
        path = self._relative_path(request.url.path)
        endpoint = self.hooks.endpoint_of(path)
        charge = self.hooks.charge_of(request, path)
        with self.budget.slot(endpoint, charge=charge, max_wait=self.retry.max_elapsed - (self._clock() - started)):
            begun = self._clock()
            counted()
            try:
                response = _released(self._client.send(request))
            except Exception as exc:
                resolution = self._lookup(type(exc))
                if resolution is None:
                    raise
                self._log(method, target, endpoint, None, begun, number, resolution, error=type(exc).__name__)
                raise self._error(resolution, method, target, None, number, cause=exc) from exc
        self.hooks.on_response(response, self.budget)
        resolution = self.hooks.classify(response) or self._classify_status(response.status_code)
        data: Any = None
        if parse and resolution.action is ResponseAction.SUCCESS:
            try:
                data = response.json()
            except ValueError as exc:
                resolution = self._lookup(type(exc)) or _retry("the answer was not valid JSON")
                self._log(
                    method, target, endpoint, response.status_code, begun, number, resolution, error="invalid JSON"
                )
                raise self._error(resolution, method, target, response, number, cause=exc) from exc
        self._log(method, target, endpoint, response.status_code, begun, number, resolution)
        if resolution.action in (ResponseAction.SUCCESS, ResponseAction.IGNORE):
            return Reply(response, data)
        raise self._error(resolution, method, target, response, number)

    # -- classification and errors -----------------------------------------------------------------------------------

    def _classify_status(self, status: int) -> Resolution:
        return self.resolutions.get(status) or _by_status_class(status)

    def _lookup(self, kind: type[BaseException]) -> Resolution | None:
        for klass in kind.__mro__:
            found = self.resolutions.get(klass)
            if found is not None:
                return found
        return None

    def _error(
        self,
        resolution: Resolution,
        method: str,
        target: str,
        response: httpx.Response | None,
        attempt: int,
        *,
        cause: BaseException | None = None,
    ) -> PsaBridgeError:
        # The vendor's words: from any response that is not a success (a 200 carrying an error included), but not
        # from a body that failed to parse (that would be half a page of records).
        vendor_message = self.hooks.error_message(response) if response is not None and cause is None else None
        what = resolution.message or (cause and type(cause).__name__) or "request failed"
        details: dict[str, Any] = {
            "method": method,
            "path": target,
            "attempt": attempt,
            "action": resolution.action.value,
            "failure": resolution.failure.value if resolution.failure else None,
            "refused": resolution.refused,
        }
        if cause is not None and not isinstance(cause, ValueError):
            details["cause"] = f"{type(cause).__name__}: {cause}"
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._now())
            if retry_after is not None:
                details["retry_after"] = retry_after
        cls = resolution.error_class()
        kwargs: dict[str, Any] = {
            "connection": self.connection,
            "status": response.status_code if response is not None else None,
            "vendor_message": vendor_message,
            "details": details,
        }
        message = f"{method} {target}: {what}"
        if issubclass(cls, RateLimitedError):
            return cls(message, retry_after=retry_after or 0.0, **kwargs)
        return cls(message, **kwargs)

    # -- helpers -----------------------------------------------------------------------------------------------------

    def _log(
        self,
        method: str,
        target: str,
        endpoint: str,
        status: int | None,
        begun: float,
        attempt: int,
        resolution: Resolution,
        *,
        error: str | None = None,
    ) -> None:
        """One log line per attempt (a success at debug: a run's summary is the news) and its metrics."""
        metrics.vendor_request(self.connection, endpoint, status, attempt)
        fields: dict[str, Any] = {
            "connection": self.connection,
            "method": method,
            "path": target,
            "status": status,
            "duration_ms": round((self._clock() - begun) * 1000, 1),
            "attempt": attempt,
            "outcome": resolution.action.value,
        }
        if error is not None:
            fields["error"] = error
        if resolution.action in (ResponseAction.SUCCESS, ResponseAction.IGNORE):
            log.debug("http.request", **fields)
        else:
            log.warning("http.request", **fields)

    def _safe_target(self, url: str) -> str:
        """Path and query of a URL with secret-looking (and vendor-named) query parameters masked."""
        parts = urlsplit(url)
        if self._mask_path:
            return f"/{MASK}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, MASK if is_secret_key(k) or k.lower() in self._secret_params else v) for k, v in pairs],
                safe="[]/:,=<>\"' *",
            )
        return parts.path + (f"?{query}" if query else "")

    def _relative_path(self, path: str) -> str:
        if self._base_path and path.lower().startswith(self._base_path.lower()):
            return path[len(self._base_path) :] or "/"
        return path

    def _check_origin(self, url: str) -> None:
        if _is_absolute(url) and _origin(url) not in self._origins:
            raise PermanentError(
                f"refusing to send credentials to {_origin(url)}: not the configured vendor host",
                connection=self.connection,
            )


class _OutOfTime(tenacity_stop.stop_base):
    """Stop when the next wait would take the request past its total time (by our injectable clock)."""

    def __init__(self, clock: Callable[[], float], started: float, limit: float) -> None:
        self.clock = clock
        self.started = started
        self.limit = limit

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.clock() - self.started + retry_state.upcoming_sleep > self.limit


def _is_absolute(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _fingerprint(method: str, url: httpx.URL, body: Any) -> str:
    query = sorted(url.params.multi_items())
    payload = jsonlib.dumps([method.upper(), str(url.copy_with(query=None)), query, body], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def build_http_client(
    settings: Endpoint,
    *,
    auth: httpx.Auth | None,
    hooks: ResponseHooks | None = None,
    resolutions: Mapping[ResolutionKey, Resolution] | None = None,
    budget_defaults: BudgetLimits | None = None,
    retry: RetryPolicy | None = None,
    headers: Mapping[str, str] | None = None,
    secret_params: Collection[str] = (),
    base_url: str | None = None,
    runtime: HttpRuntime | None = None,
    mask_path: bool = False,
) -> HttpClient:
    """The HTTP client of one connection, with the timeouts, budget, retries and logging every connector shares.

    Args:
        settings: the connection, or a notifier (name, base URL, timeouts, rate budget).
        auth: the vendor's auth.
        hooks: the vendor's response hooks.
        resolutions: the vendor's additions to DEFAULT_RESOLUTIONS.
        budget_defaults: the vendor's default budget, for what ``settings.rate_budget`` leaves out.
        retry: the retry policy (default RetryPolicy()).
        headers: headers for every request.
        secret_params: extra query parameter names to mask in logs.
        base_url: another API root than ``settings.base_url`` (e.g. a zone the vendor pointed us to).
        runtime: broker URL (shared budget with Redis), transport, key namespace, sleep and clocks.
        mask_path: the URL path is a credential (a chat incoming webhook): never logged.

    Raises:
        ConfigError: the configured budget is invalid.
    """
    runtime = runtime or HttpRuntime()
    retry = retry or RetryPolicy()
    limits = BudgetLimits.resolve(settings.rate_budget, budget_defaults or BudgetLimits())
    budget = budget_for(
        settings.name,
        limits,
        broker_url=runtime.broker_url,
        namespace=runtime.namespace,
        max_wait=retry.inline_max_wait,
        sleep=runtime.sleep,
        clock=runtime.clock,
        # one attempt holds a slot for at most connect + read (+ write) time; a crashed holder's lease ends after it
        slot_ttl=settings.timeouts.connect + 2 * settings.timeouts.read + 5,
    )
    timeout = httpx.Timeout(
        connect=settings.timeouts.connect,
        read=settings.timeouts.read,
        write=settings.timeouts.read,
        pool=settings.timeouts.connect,
    )
    return HttpClient(
        connection=settings.name,
        base_url=base_url or settings.base_url,
        auth=auth,
        timeout=timeout,
        budget=budget,
        hooks=hooks,
        resolutions=resolutions,
        retry=retry,
        headers={"Accept": "application/json", "User-Agent": "psabridge", **(headers or {})},
        secret_params=secret_params,
        runtime=runtime,
        mask_path=mask_path,
    )


def _released(response: httpx.Response) -> httpx.Response:
    """The response with its read-and-closed body stream dropped.

    httpx 0.28 wraps every body in a stream that points back at its Response; the cycle keeps each page's bytes
    alive until a full garbage collection, so a backfill's memory grew with its length (encode/httpx#3733). The body
    is already read (``send`` without ``stream=True``), so the stream is not needed any more.
    """
    if response.is_closed:
        response.stream = httpx.ByteStream(b"")
    return response
