"""The Simulator: one simulated service as an ASGI app, with the machinery every vendor simulator shares.

A request to a vendor path goes through, in order: recording, injected faults (latency, 429 storm, timeout,
5xx), the vendor's authentication hook, the vendor's rate limits and in-flight caps, then the vendor's routes;
a 2xx body may then be cut short (malformed). Errors anywhere are VendorErrors rendered in the vendor's own shape.
Paths under ``/_sandbox`` are the control plane (never faulted, authenticated or recorded):

- ``GET /_sandbox/requests`` (filters: method, path prefix, principal, status, since, fault) and ``DELETE`` to clear
- ``GET /_sandbox/state``: what the vendor module contributes (tickets, notes, time entries, pages ...)
- ``GET /_sandbox/faults``; ``PUT`` or ``POST`` ``{"profile": "throttled", "error_rate": 0.2 ...}`` to change it
- ``GET /_sandbox/webhooks`` (receivers and deliveries), ``POST`` ``{"url", "secret", "headers", "events"}`` to
  register a receiver, ``DELETE /_sandbox/webhooks/{id}``, ``POST /_sandbox/webhooks/flush``
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import httpx
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Message, Receive, Scope, Send

from psabridge_sandbox.clock import Clock, SystemClock
from psabridge_sandbox.dispatcher import Signer, WebhookDispatcher
from psabridge_sandbox.errors import ErrorRenderer, VendorError, plain_json_error
from psabridge_sandbox.faults import Decision, FaultInjector, FaultProfile
from psabridge_sandbox.ratelimit import ConcurrencyLimit, KeyFunc, RateLimit, Verdict, by_principal
from psabridge_sandbox.recording import RecordedRequest, Recorder
from psabridge_sandbox.table import Row, RowId, Table

__all__ = ["CONTROL_PREFIX", "Authenticator", "Endpoint", "Simulator", "principal_of", "set_principal"]

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox"

Authenticator = Callable[[Request], str | Awaitable[str | None] | None]
"""Checks a request's credentials (sync or async): returns the principal (None: anonymous is fine), raises
VendorError to refuse."""

Endpoint = Callable[[Request], Any]
"""A Starlette endpoint: ``async def handler(request) -> Response``."""


def principal_of(request: Request) -> str | None:
    """The principal the authentication hook returned for this request."""
    state = request.scope.get("state") or {}
    value = state.get("principal")
    return value if isinstance(value, str) else None


def set_principal(request: Request, principal: str) -> None:
    """Record who made the request, for services whose credential is in the body (a PagerDuty routing key)."""
    request.scope.setdefault("state", {})["principal"] = principal


class Simulator:
    """One simulated service. Build it in a vendor module, add routes, serve ``simulator`` as the ASGI app.

    Args:
        name: the service name (``connectwise``, ``pagerduty`` ...), used in logs and the control plane.
        auth: the vendor's authentication hook.
        errors: renders VendorErrors in the vendor's shape.
        faults: the fault profile at start (a name from ``faults.PROFILES`` or a FaultProfile).
        seed: seeds the fault stream.
        clock: the clock for record stamps, rate windows and storms (real by default).
        state: returns what ``GET /_sandbox/state`` shows (tickets, notes, time entries, pages ...).
        signer: signs outgoing webhooks as the vendor does.
        webhook_retry_delays: the vendor's retry schedule for failed webhook deliveries, in seconds.
        webhook_transport: an httpx transport for webhook deliveries (tests; default: the network).
    """

    def __init__(
        self,
        name: str,
        *,
        auth: Authenticator | None = None,
        errors: ErrorRenderer = plain_json_error,
        faults: FaultProfile | str = "none",
        seed: int = 0,
        clock: Clock | None = None,
        state: Callable[[], Mapping[str, Any]] | None = None,
        signer: Signer | None = None,
        webhook_retry_delays: Sequence[float] = (),
        webhook_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self.auth = auth
        self.errors = errors
        self.recorder = Recorder()
        self.faults = FaultInjector(faults, seed=seed, clock=self.clock)
        self.webhooks = WebhookDispatcher(
            signer=signer,
            faults=self.faults,
            clock=self.clock,
            retry_delays=webhook_retry_delays,
            transport=webhook_transport,
        )
        self.rate_limits: list[RateLimit] = []
        self.concurrency_limits: list[ConcurrencyLimit] = []
        self.base_url: str | None = None  # set by the runner once the service listens, e.g. http://127.0.0.1:8701
        self._state = state
        self._router = Router()
        self._control = Router(routes=_control_routes(self))

    # --- building ----------------------------------------------------------------------------------------------------

    def add_route(
        self, path: str, endpoint: Endpoint, methods: Sequence[str] | None = None, *, case_sensitive: bool = True
    ) -> None:
        """Add a vendor route (Starlette path syntax: ``/tickets/{id:int}``).

        ``case_sensitive=False`` matches the path in any letter case, as IIS-hosted APIs do (Autotask answers
        ``/atservicesrest/v1.0/...`` and ``/ATServicesRest/V1.0/...`` alike).
        """
        route = Route(path, endpoint, methods=list(methods) if methods else None)
        if not case_sensitive:
            route.path_regex = re.compile(route.path_regex.pattern, re.IGNORECASE)
        self._router.routes.append(route)

    def rate_limit(
        self,
        limit: int,
        per: float,
        *,
        key: KeyFunc = by_principal,
        cost: Callable[[Request], int] | None = None,
        status: int = 429,
        message: str = "Too Many Requests",
        code: str = "",
        headers: Callable[[Verdict], Mapping[str, str]] | None = None,
        retry_after: bool = True,
        count_refused: bool = False,
    ) -> RateLimit:
        """Enforce a rolling-window rate rule (see RateLimit); returns it, e.g. to report usage."""
        rule = RateLimit(
            limit,
            per,
            key=key,
            cost=cost,
            status=status,
            message=message,
            code=code,
            headers=headers,
            retry_after=retry_after,
            count_refused=count_refused,
            clock=self.clock,
        )
        self.rate_limits.append(rule)
        return rule

    def concurrency_limit(
        self, limit: int, *, key: KeyFunc, status: int = 429, message: str = "Too Many Requests", code: str = ""
    ) -> ConcurrencyLimit:
        """Cap requests in flight per key; returns the limiter."""
        limiter = ConcurrencyLimit(limit, key=key, status=status, message=message, code=code)
        self.concurrency_limits.append(limiter)
        return limiter

    def table(
        self,
        name: str,
        *,
        first_id: int = 1,
        id_factory: Callable[[int], RowId] | None = None,
        resolution: float = 1.0,
    ) -> Table:
        """A Table on this simulator's clock (see Table)."""
        return Table(name, clock=self.clock, first_id=first_id, id_factory=id_factory, resolution=resolution)

    def between_pages(
        self,
        table: Table,
        *,
        change: Callable[[Row], Mapping[str, Any]] | None = None,
        create: Callable[[], Mapping[str, Any]] | None = None,
    ) -> list[RowId]:
        """Call after serving a page of a list: the churn faults change records under a paging client."""
        return self.faults.between_pages(table, change=change, create=create)

    def state(self) -> dict[str, Any]:
        """What ``GET /_sandbox/state`` shows."""
        return {"service": self.name, **(self._state() if self._state else {})}

    def close(self) -> None:
        """Stop background work (the webhook sender)."""
        self.webhooks.close()

    # --- serving -----------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        scope["app"] = self  # Starlette routing then raises HTTPException for 404/405, which we render
        if scope["type"] != "http":
            await self._router(scope, receive, send)
        elif scope["path"] == CONTROL_PREFIX or scope["path"].startswith(CONTROL_PREFIX + "/"):
            try:
                await self._control(scope, receive, send)
            except HTTPException as exc:
                await JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)(
                    scope, receive, send
                )
        else:
            await self._serve(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        seq = self.recorder.next_seq()
        arrived = self.clock.now()
        started_at = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        extra_headers: list[tuple[bytes, bytes]] = []
        status = 500
        started = False
        principal: str | None = None
        error: str | None = None

        async def send_out(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                if extra_headers:
                    message = {**message, "headers": [*message.get("headers", []), *extra_headers]}
            await send(message)

        decision = self.faults.decide(method, path)
        try:
            try:
                principal = await self._handle(scope, receive, send_out, decision, extra_headers)
            except HTTPException as exc:
                phrase = HTTPStatus(exc.status_code).phrase
                raise VendorError(exc.status_code, phrase, headers=exc.headers or {}) from exc
        except VendorError as exc:
            if started:
                error = str(exc)
            else:
                await self._render(exc, scope, receive, send_out)
        except Exception as exc:
            log.exception("%s: %s %s failed", self.name, method, path)
            error = f"{type(exc).__name__}: {exc}"
            if not started:
                await self._render(VendorError(500, "Internal Server Error"), scope, receive, send_out)
        finally:
            state = scope.get("state") or {}
            if principal is None and isinstance(state.get("principal"), str):
                principal = state["principal"]  # set by the route (set_principal)
            self.recorder.add(
                RecordedRequest(
                    seq=seq,
                    method=method,
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    principal=principal,
                    status=status,
                    time=arrived.isoformat().replace("+00:00", "Z"),
                    duration_ms=round((time.perf_counter() - started_at) * 1000, 3),
                    fault=decision.name,
                    error=error,
                )
            )

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        decision: Decision,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> str | None:
        """Faults, auth, limits, then the vendor's route. Returns the principal."""
        if decision.latency:
            await asyncio.sleep(decision.latency)
        if decision.throttle is not None:
            raise VendorError(429, "Too Many Requests", headers={"Retry-After": str(decision.throttle)})
        if decision.hang is not None:
            await asyncio.sleep(decision.hang)
            raise VendorError(504, "Gateway Timeout")
        if decision.error is not None:
            raise VendorError(decision.error, HTTPStatus(decision.error).phrase)

        request = Request(scope, receive)
        principal: str | None = None
        if self.auth is not None:
            found = self.auth(request)
            principal = await found if inspect.isawaitable(found) else found
        scope.setdefault("state", {})["principal"] = principal
        for rule in self.rate_limits:
            verdict = rule.check(request, principal)
            if verdict is None:
                continue
            if rule.headers is not None:
                extra_headers.extend((k.lower().encode(), v.encode()) for k, v in rule.headers(verdict).items())
            if not verdict.allowed:
                headers = {"Retry-After": verdict.retry_after_header} if rule.retry_after else {}
                raise VendorError(rule.status, rule.message, code=rule.code, headers=headers)
        acquired: list[tuple[ConcurrencyLimit, str]] = []
        try:
            for limiter in self.concurrency_limits:
                bucket = limiter.key(request, principal)
                if bucket is None:
                    continue
                if not limiter.try_acquire(bucket):
                    raise VendorError(limiter.status, limiter.message, code=limiter.code)
                acquired.append((limiter, bucket))
            await self._router(scope, receive, _truncating(send) if decision.malformed else send)
        finally:
            for limiter, bucket in acquired:
                limiter.release(bucket)
        return principal

    async def _render(self, error: VendorError, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.errors(error)
        for name, value in error.headers.items():
            response.headers[name] = value
        await response(scope, receive, send)


def _truncating(send: Send) -> Send:
    """Wrap ``send`` so a 2xx body goes out cut in half (with a matching Content-Length): a malformed answer."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapper(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        if 200 <= start["status"] < 300 and len(body) > 1:
            body = body[: len(body) // 2]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return wrapper


# --- the control plane ----------------------------------------------------------------------------------------------


def _control_routes(sim: Simulator) -> list[BaseRoute]:
    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            return JSONResponse({"cleared": sim.recorder.clear()})
        q = request.query_params
        try:
            status = int(q["status"]) if "status" in q else None
            since = int(q["since"]) if "since" in q else None
        except ValueError:
            return _bad("status and since must be integers")
        found = sim.recorder.find(
            method=q.get("method"),
            path=q.get("path"),
            principal=q.get("principal"),
            status=status,
            since=since,
            fault=q.get("fault"),
        )
        return JSONResponse({"count": len(found), "requests": [r.as_dict() for r in found]})

    async def state(request: Request) -> Response:
        return JSONResponse(sim.state())

    async def faults(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            body = await _json_body(request)
            if not isinstance(body, dict):
                return _bad('send a JSON object such as {"profile": "throttled"}')
            try:
                sim.faults.update(body)
            except ValueError as exc:
                return _bad(str(exc))
        return JSONResponse(sim.faults.profile.model_dump(mode="json"))

    async def webhooks(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("url"), str):
                return _bad('send {"url": "http://...", "secret": "...", "headers": {}, "events": []}')
            try:
                subscription = sim.webhooks.subscribe(
                    body["url"],
                    secret=str(body.get("secret", "")),
                    headers={str(k): str(v) for k, v in dict(body.get("headers") or {}).items()},
                    events=[str(e) for e in body.get("events") or ()],
                )
            except ValueError as exc:
                return _bad(str(exc))
            return JSONResponse(subscription.as_dict(), status_code=201)
        return JSONResponse(
            {
                "subscriptions": [s.as_dict() for s in sim.webhooks.subscriptions()],
                "deliveries": [d.as_dict() for d in sim.webhooks.deliveries()],
            }
        )

    async def webhook(request: Request) -> Response:
        if sim.webhooks.unsubscribe(request.path_params["id"]):
            return Response(status_code=204)
        return JSONResponse({"error": "no such subscription"}, status_code=404)

    async def flush(request: Request) -> Response:
        done = await asyncio.to_thread(sim.webhooks.flush, 10.0)
        return JSONResponse({"flushed": done}, status_code=200 if done else 504)

    async def index(request: Request) -> Response:
        return JSONResponse(
            {
                "service": sim.name,
                "endpoints": ["requests", "state", "faults", "webhooks", "webhooks/flush"],
                "faults": sim.faults.profile.name,
                "recorded": len(sim.recorder),
            }
        )

    p = CONTROL_PREFIX
    return [
        Route(p, index, methods=["GET"]),
        Route(f"{p}/requests", requests, methods=["GET", "DELETE"]),
        Route(f"{p}/state", state, methods=["GET"]),
        Route(f"{p}/faults", faults, methods=["GET", "PUT", "POST"]),
        Route(f"{p}/webhooks", webhooks, methods=["GET", "POST"]),
        Route(f"{p}/webhooks/flush", flush, methods=["POST"]),
        Route(f"{p}/webhooks/{{id}}", webhook, methods=["DELETE"]),
    ]


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


def _bad(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)
