"""The webhook receiver: ``POST /webhooks/{connection}`` -> verify and parse (the connector) -> inbox -> ingest -> 202.

A delivery is a hint, never the truth: the receiver records it (the inbox de-duplicates a vendor's repeats) and
queues an ingest, which re-fetches the ticket. Answers, each with a JSON body that says what happened:

* 202 ``{"accepted": true, "duplicate": false}``: recorded and queued (``duplicate`` true: seen before, not queued);
* 401: the connector refused the signature or secret (nothing recorded: anyone can send those);
* 400: an authentic-looking body the connector cannot read: recorded as a failed delivery for an operator, never
  dropped silently (the next poll still finds the change);
* 404: no such connection; 503: the store or the configuration cannot take deliveries right now (the vendor retries).
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from psabridge.errors import ConfigError, PermanentError, WebhookVerificationError
from psabridge.log import get_logger, mask_secrets
from psabridge.store import inbox
from psabridge.sync.context import SyncContext

__all__ = ["create_app", "receive"]

_log = get_logger("psabridge.webhooks")

MAX_BODY = 1_000_000  # bytes: vendors send small JSON notifications
KEPT_BODY = 64_000  # characters of a body kept in the inbox


def create_app(ctx: SyncContext) -> Starlette:
    """The receiver as an ASGI app over a sync context (its store, connectors and work queue)."""

    async def webhook(request: Request) -> JSONResponse:
        connection = request.path_params["connection"]
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": f"body larger than {MAX_BODY} bytes"}, status_code=413)
        status, answer = await run_in_threadpool(receive, ctx, connection, dict(request.headers), body)
        return JSONResponse(answer, status_code=status)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/webhooks/{connection}", webhook, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


def receive(ctx: SyncContext, connection: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """Handle one delivery; returns the HTTP status and JSON answer (see the module docstring)."""
    try:
        conn = ctx.settings.connection(connection)
    except ConfigError:
        return 404, {"error": f"no connection named {connection!r}"}
    if not conn.enabled:
        return 404, {"error": f"connection {connection!r} is disabled"}
    try:
        event = ctx.connector(connection).parse_webhook(headers, body)
    except WebhookVerificationError as exc:
        _log.warning("webhook refused", connection=connection, reason=exc.message)
        return 401, {"error": "webhook verification failed", "connection": connection, "reason": exc.message}
    except PermanentError as exc:
        _record_unreadable(ctx, connection, headers, body, str(exc))
        return 400, {
            "error": "webhook body not understood",
            "connection": connection,
            "reason": exc.message,
            "recorded": True,
        }
    except ConfigError as exc:
        _log.error("webhook cannot be verified", connection=connection, error=str(exc))
        return 503, {"error": "the receiver is not configured for this connection", "reason": exc.message}
    try:
        with ctx.unit() as session:
            new = inbox.record_delivery(
                session,
                connection,
                event.delivery_id,
                external_id=event.external_id,
                event=event.event,
                headers=mask_secrets(headers),
                body=body.decode("utf-8", "replace")[:KEPT_BODY],
            )
    except Exception as exc:  # noqa: BLE001 - the vendor must retry: we could not record it
        _log.error("webhook not recorded", connection=connection, error=str(exc))
        return 503, {"error": "the delivery could not be recorded; send it again"}
    if new:
        try:
            ctx.queue.ingest(connection, event.external_id)
        except Exception as exc:  # noqa: BLE001 - recorded: recovery queues it once the broker is back
            _log.warning("ingest not queued; recovery will", connection=connection, error=str(exc))
    return 202, {"accepted": True, "duplicate": not new, "ticket": event.external_id}


def _record_unreadable(ctx: SyncContext, connection: str, headers: dict[str, str], body: bytes, error: str) -> None:
    """Keep an unreadable delivery as a failed inbox row (once per distinct body), for an operator to look at."""
    digest = hashlib.sha256(body).hexdigest()[:32]
    text = body.decode("utf-8", "replace")[:KEPT_BODY]
    try:
        with ctx.unit() as session:
            inbox.record_delivery(
                session,
                connection,
                f"unreadable:{digest}",
                external_id=None,
                event=None,
                headers=mask_secrets(headers),
                body=text,
            )
            inbox.fail_delivery(session, connection, f"unreadable:{digest}", error)
    except Exception as exc:  # noqa: BLE001 - the log line then keeps what the table could not
        _log.error(
            "unreadable webhook not recorded", connection=connection, error=error, body=text[:2000], cause=str(exc)
        )
    _log.warning("unreadable webhook recorded", connection=connection, error=error)
