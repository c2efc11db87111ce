"""Chat incoming-webhook sink standing in for the #incident channel: Slack-style and Teams-style endpoints.

Slack incoming webhooks (api.slack.com/messaging/webhooks, "Handling errors") answer 200 with the plain-text body
``ok``; a body that is not valid JSON gets 400 ``invalid_payload`` and a message without ``text`` (or blocks or
attachments) 400 ``no_text`` (as reported in gitlab-org/gitlab#332611). Teams (Office 365 connector) incoming
webhooks answer 200 with the body ``1``; a MessageCard needs ``text`` or ``summary`` ("Summary or Text is
required."). Every accepted post is recorded, by channel, in ``/_sandbox/state``.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from psabridge_sandbox.core import Simulator
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.registry import SandboxContext, register

__all__ = ["ChatSink", "build"]


def _plain_error(error: VendorError) -> Response:
    return PlainTextResponse(error.message, status_code=error.status)


class ChatSink:
    """Messages posted to incoming webhooks, in arrival order."""

    def __init__(self, context: SandboxContext) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.simulator = Simulator(
            context.service.name,
            errors=_plain_error,
            faults=context.faults,
            seed=context.seed,
            clock=context.clock,
            state=self.state,
        )
        # Slack: https://hooks.slack.com/services/T.../B.../xxx; the sandbox also takes /hooks/<channel>.
        self.simulator.add_route("/hooks/{channel}", self.slack, methods=["POST"])
        self.simulator.add_route("/services/{channel:path}", self.slack, methods=["POST"])
        # Teams: https://<tenant>.webhook.office.com/webhookb2/<ids>/IncomingWebhook/<id>/<id>.
        self.simulator.add_route("/webhookb2/{channel:path}", self.teams, methods=["POST"])

    def state(self) -> dict[str, Any]:
        """Messages in arrival order."""
        with self._lock:
            return {"messages": list(self.messages)}

    async def slack(self, request: Request) -> Response:
        """A Slack-style incoming webhook."""
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raw = (parse_qs(raw.decode("utf-8", "replace")).get("payload") or [""])[0].encode()
        payload = _loads(raw)
        if not isinstance(payload, dict):
            raise VendorError(400, "invalid_payload")
        text = payload.get("text")
        if (
            not (isinstance(text, str) and text.strip())
            and not payload.get("blocks")
            and not payload.get("attachments")
        ):
            raise VendorError(400, "no_text")
        self._record(request, "slack", text if isinstance(text, str) else "", payload)
        return PlainTextResponse("ok")

    async def teams(self, request: Request) -> Response:
        """A Teams-style incoming webhook (MessageCard, or a message with Adaptive Card attachments)."""
        payload = _loads(await request.body())
        if not isinstance(payload, dict):
            # [UNCONFIRMED wording] the message Teams connectors give for an unparsable body.
            raise VendorError(400, "Bad payload received by generic incoming webhook.")
        text = payload.get("text") or payload.get("summary")
        if not text and not payload.get("attachments"):
            raise VendorError(400, "Summary or Text is required.")
        self._record(request, "teams", str(text or ""), payload)
        return PlainTextResponse("1")

    def _record(self, request: Request, style: str, text: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(
                {
                    "channel": request.path_params["channel"],
                    "style": style,
                    "text": text,
                    "payload": payload,
                    "received_at": self.simulator.clock.now().isoformat().replace("+00:00", "Z"),
                }
            )


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


@register("chat")
def build(context: SandboxContext) -> Simulator:
    """The chat incoming-webhook sink."""
    return ChatSink(context).simulator
