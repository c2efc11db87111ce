"""The webhook receiver: ``POST /webhooks/{connection}`` -> bounded read -> verify and parse (the connector) -> inbox.

A delivery is a hint, never the truth: the receiver records it (the inbox de-duplicates a vendor's repeats) and
queues an ingest, which re-fetches the ticket. Every answer is JSON and none is a 500:

* 202 ``{"accepted": true, "duplicate": false, "ticket": ...}``: recorded and queued (``duplicate`` true: seen
  before, not queued again);
* 401 ``{"error": "webhook verification failed"}``: the signature or secret is missing, wrong or stale, or the
  request cannot be verified (a ConnectWise key that cannot be fetched now), *or there is no such enabled
  connection*: the caller cannot tell these apart, the log line can (nothing is stored, nothing queued);
* 400: an authentic body the connector cannot read, with the connector's short reason: kept as one failed inbox row
  per distinct body for an operator (at most ``unreadable_per_hour`` rows per connection), never dropped silently
  (the next poll still finds the change); or a malformed request (a Content-Length that lies);
* 413 body over ``max_body`` bytes (read in chunks, stopped at the limit); 415 not JSON; 431 headers too large;
* 503 ``{"error": ..., "retry": true}``: only when our own store or shared budget store is down (the vendor retries).

Beside it: ``GET /healthz`` (the process is up: 200 ``{"ok": true}``), ``GET /readyz`` (200 when the database, the
broker and every enabled connection's last vendor contact are fine, else 503 naming what is down; health.py) and
``GET /metrics`` (Prometheus text format; metrics.py). Every answered delivery is counted (accepted, duplicate,
rejected by reason), labelled with its connection only when that names an enabled one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import dramatiq
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from psabridge import metrics
from psabridge.connectors.base import WebhookEvent
from psabridge.errors import ConfigError, PermanentError, RetryLaterError, WebhookVerificationError
from psabridge.log import get_logger
from psabridge.store import inbox
from psabridge.sync.claims import claim_in, ingest_claim, release_claim
from psabridge.sync.context import SyncContext
from psabridge.webhooks.health import Health
from psabridge.webhooks.intake import MAX_BODY, Refused, check_content_type, read_body, request_headers
from psabridge.webhooks.stored import RecentCount, stored_headers, stored_text

__all__ = ["REFUSED", "UNREADABLE_PER_HOUR", "Receiver", "create_app"]

_log = get_logger("psabridge.webhooks")

UNREADABLE_PER_HOUR = 100
"""Failed inbox rows kept per connection and hour for authentic bodies nobody can read."""
REFUSED: dict[str, Any] = {"error": "webhook verification failed"}
"""The one answer to every request that is not verified, whatever the reason (logged server-side)."""
_RETRY: dict[str, Any] = {"error": "the delivery could not be taken now; send it again", "retry": True}
_MAX_ID = 190  # characters of an external id the inbox holds (inbox.external_id)
_MAX_DELIVERY_ID = 200  # inbox.delivery_id


def create_app(
    ctx: SyncContext,
    *,
    broker: dramatiq.Broker | None = None,
    max_body: int = MAX_BODY,
    unreadable_per_hour: int = UNREADABLE_PER_HOUR,
) -> Starlette:
    """The receiver as an ASGI app over a sync context (its store, connectors and work queue).

    Args:
        ctx: the sync context.
        broker: the process's broker, checked by /readyz and counted by /metrics (None: neither).
        max_body: the largest body read, in bytes.
        unreadable_per_hour: failed inbox rows per connection and hour for authentic unreadable bodies.
    """
    receiver = Receiver(ctx, unreadable_per_hour=unreadable_per_hour)
    checks = Health(ctx, broker)
    known = {c.name for c in ctx.settings.connections if c.enabled}

    async def webhook(request: Request) -> Response:
        connection = request.path_params["connection"]
        label = connection if connection in known else metrics.UNKNOWN_CONNECTION
        try:
            headers = request_headers(request.scope["headers"])
            check_content_type(headers)
            body = await read_body(request.stream(), headers.get("content-length"), max_body)
        except Refused as refused:
            _log.info("webhook refused", connection=connection[:100], status=refused.status, reason=refused.args[0])
            metrics.webhook_delivery(label, refused.status)
            return JSONResponse(refused.answer, status_code=refused.status)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening for the answer
        status, answer = await run_in_threadpool(receiver.receive, connection, headers, body)
        metrics.webhook_delivery(label, status, duplicate=bool(answer.get("duplicate")))
        return JSONResponse(answer, status_code=status)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> JSONResponse:
        ready = await run_in_threadpool(checks.readiness)
        return JSONResponse(
            {"ok": ready.ok, "down": ready.down, "checks": ready.checks}, status_code=200 if ready.ok else 503
        )

    async def metrics_page(request: Request) -> Response:
        gauges = await run_in_threadpool(checks.gauges)
        return Response(metrics.exposition(gauges), media_type=metrics.CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/webhooks/{connection}", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
        ]
    )


class Receiver:
    """What happens to one delivery read within bounds: verify, record, queue (see the module docstring).

    Args:
        ctx: the sync context.
        unreadable_per_hour: failed inbox rows per connection and hour for authentic unreadable bodies.
    """

    def __init__(self, ctx: SyncContext, *, unreadable_per_hour: int = UNREADABLE_PER_HOUR) -> None:
        self.ctx = ctx
        self._unreadable = RecentCount(unreadable_per_hour, 3600.0)

    def receive(self, connection: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Handle one delivery; returns the HTTP status and JSON answer."""
        shown = connection[:100]
        event = self._verified(connection, headers, body)
        if isinstance(event, tuple):
            return event
        try:
            with self.ctx.unit() as session:
                new = inbox.record_delivery(
                    session,
                    connection,
                    event.delivery_id,
                    external_id=event.external_id,
                    event=event.event,
                    headers=stored_headers(headers),
                    body=stored_text(body.decode("utf-8", "replace")),
                )
                claim = ingest_claim(connection, event.external_id)
                claimed = new and bool(claim_in(self.ctx, session, [claim]))  # recovery leaves what we queue alone
        except Exception as exc:  # noqa: BLE001 - the vendor must retry: we could not record it
            _log.error("webhook not recorded", connection=shown, error=str(exc))
            return 503, _RETRY
        if new:  # queued even when claimed already: a worker in hand may have read the ticket before this change
            try:
                self.ctx.queue.ingest(connection, event.external_id)
            except Exception as exc:  # noqa: BLE001 - recorded: recovery queues it once the broker is back
                if claimed:
                    release_claim(self.ctx, claim)
                _log.warning("ingest not queued; recovery will", connection=shown, error=str(exc))
        return 202, {"accepted": True, "duplicate": not new, "ticket": event.external_id}

    def _verified(
        self, connection: str, headers: dict[str, str], body: bytes
    ) -> WebhookEvent | tuple[int, dict[str, Any]]:
        """The connector's verified event, or the answer to give instead."""
        shown = connection[:100]
        try:
            settings = self.ctx.settings.connection(connection)
        except ConfigError:
            _log.warning("webhook refused: no such connection", connection=shown)
            return 401, REFUSED
        if not settings.enabled:
            _log.warning("webhook refused: the connection is disabled", connection=shown)
            return 401, REFUSED
        try:
            event = self.ctx.connector(connection).parse_webhook(headers, body)
        except WebhookVerificationError as exc:
            _log.warning("webhook refused", connection=shown, reason=exc.message)
            return 401, REFUSED
        except PermanentError as exc:
            return 400, self._unreadable_answer(connection, headers, body, exc.message)
        except ConfigError as exc:
            _log.error("webhook cannot be verified: the connection's configuration", connection=shown, error=str(exc))
            return 401, REFUSED
        except RetryLaterError as exc:
            _log.error("webhook cannot be verified now", connection=shown, error=str(exc))
            return 503, _RETRY
        except Exception:  # noqa: BLE001 - a psabridge bug must not answer 500 (and reset the vendor's connection)
            _log.exception("webhook could not be checked (a psabridge bug)", connection=shown)
            return 401, REFUSED
        if len(event.external_id) > _MAX_ID or not event.external_id.isprintable():
            return 400, self._unreadable_answer(connection, headers, body, "the ticket id is not one")
        if len(event.delivery_id) > _MAX_DELIVERY_ID:
            event = WebhookEvent(
                event.external_id, event.event, hashlib.sha256(event.delivery_id.encode()).hexdigest(),
                event.occurred_at,
            )  # fmt: skip
        return event

    def _unreadable_answer(self, connection: str, headers: dict[str, str], body: bytes, error: str) -> dict[str, Any]:
        """Keep an authentic but unreadable delivery as a failed inbox row (once per distinct body, bounded)."""
        recorded = self._record(connection, headers, body, error)
        return {"error": "webhook body not understood", "reason": error, "recorded": recorded}

    def _record(self, connection: str, headers: dict[str, str], body: bytes, error: str) -> bool:
        shown = connection[:100]
        digest = hashlib.sha256(body).hexdigest()[:32]
        if self._unreadable.full(connection):
            _log.warning(
                "unreadable webhook not recorded: too many this hour", connection=shown, error=error, digest=digest
            )
            return False
        text = stored_text(body.decode("utf-8", "replace"))
        try:
            with self.ctx.unit() as session:
                new = inbox.record_delivery(
                    session,
                    connection,
                    f"unreadable:{digest}",
                    external_id=None,
                    event=None,
                    headers=stored_headers(headers),
                    body=text,
                )
                inbox.fail_delivery(session, connection, f"unreadable:{digest}", stored_text(error, 2000))
        except Exception as exc:  # noqa: BLE001 - the log line then keeps what the table could not
            _log.error(
                "unreadable webhook not recorded", connection=shown, error=error, body=text[:2000], cause=str(exc)
            )
            return False
        if new:
            self._unreadable.add(connection)
        _log.warning("unreadable webhook recorded", connection=shown, error=error, digest=digest)
        return True
