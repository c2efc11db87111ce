"""PagerDuty Events API v2 simulator: POST /v2/enqueue, answering and throttling as PagerDuty does.

Sources: PagerDuty's own description of the API, GitHub PagerDuty/api-schema reference/events-v2/openapiv3.json, a
copy of which is specs/pagerduty-events-v2.openapiv3.json (request fields, required payload fields
summary/source/severity, links needing href and images needing src, the 202 body
``{"status": "success", "message": "Event processed", "dedup_key": ...}``, 400 for bad requests, 429 "too many API
calls at a time", and the error body example ``{"status": "Unrecognized object", "message": "Event object format is
unrecognized", "errors": ["JSON parse error"]}``), and the v2 developer docs page "Send an Event" (the 400 body
``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``).
The Events API is asynchronous: acknowledging or resolving an unknown dedup_key is still accepted (202). A trigger
opens an incident unless one with its dedup_key is open (PagerDuty de-duplicates only then): ``state()["incidents"]``
lists every incident opened, so tests count pages there.
"""

from __future__ import annotations

import json
import random
import threading
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.core import Simulator, set_principal
from psabridge_sandbox.credentials import PD_ROUTING_KEY
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.ratelimit import SlidingWindow
from psabridge_sandbox.registry import SandboxContext, register

__all__ = ["PagerDutySimulator", "build"]

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
# PagerDuty adjusts event throttling dynamically; its knowledge base names 120 events per minute per integration
# key as the usual ceiling [UNCONFIRMED figure]. It answers 429 without a Retry-After header.
EVENTS_PER_MINUTE = 120


def _error_body(error: VendorError) -> Response:
    if error.status == 429:
        return JSONResponse({"status": "throttle exceeded", "message": error.message, "errors": []}, status_code=429)
    if error.status == 400:
        return JSONResponse(
            {"status": "invalid event", "message": "Event object is invalid", "errors": [error.message]},
            status_code=400,
        )
    return JSONResponse(
        {"status": "error", "message": error.message, "errors": [error.detail] if error.detail else []},
        status_code=error.status,
    )


class PagerDutySimulator:
    """The events received and the alerts they opened, acknowledged and resolved (by dedup_key)."""

    def __init__(self, context: SandboxContext) -> None:
        self.routing_keys = {PD_ROUTING_KEY}
        self.events: list[dict[str, Any]] = []
        self.alerts: dict[str, dict[str, Any]] = {}
        self.incidents: list[dict[str, Any]] = []
        self._rng = random.Random(f"psabridge-pagerduty:{context.seed}")
        self._lock = threading.Lock()
        self.simulator = Simulator(
            context.service.name,
            errors=_error_body,
            faults=context.faults,
            seed=context.seed,
            clock=context.clock,
            state=self.state,
        )
        self.throttle = SlidingWindow(EVENTS_PER_MINUTE, 60, context.clock)
        self.simulator.add_route("/v2/enqueue", self.enqueue, methods=["POST"])

    def state(self) -> dict[str, Any]:
        """Events in arrival order and alerts by dedup_key."""
        with self._lock:
            return {
                "events": list(self.events),
                "alerts": dict(self.alerts),
                "incidents": [dict(i) for i in self.incidents],
            }

    async def enqueue(self, request: Request) -> Response:
        """POST /v2/enqueue."""
        try:
            event = json.loads(await request.body())
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return JSONResponse(
                {
                    "status": "Unrecognized object",
                    "message": "Event object format is unrecognized",
                    "errors": ["JSON parse error"],
                },
                status_code=400,
            )
        routing_key = event.get("routing_key")
        if isinstance(routing_key, str):
            set_principal(request, routing_key)
        problems = self._problems(event)
        if problems:
            return JSONResponse(
                {"status": "invalid event", "message": "Event object is invalid", "errors": problems},
                status_code=400,
            )
        assert isinstance(routing_key, str)
        if not self.throttle.hit(routing_key).allowed:
            raise VendorError(429, "Requests for this service are arriving too quickly. Please retry later.")
        action = event["event_action"]
        dedup_key = event.get("dedup_key") or f"{self._rng.getrandbits(128):032x}"
        now = self.simulator.clock.now().isoformat().replace("+00:00", "Z")
        with self._lock:
            self.events.append({"received_at": now, **event, "dedup_key": dedup_key})
            alert = self.alerts.get(dedup_key)
            if action == "trigger":
                if alert is None or alert["status"] == "resolved":
                    alert = self.alerts[dedup_key] = {"dedup_key": dedup_key, "status": "triggered", "history": []}
                    self.incidents.append({"dedup_key": dedup_key, "opened_at": now, "status": "triggered"})
                alert["summary"] = event["payload"]["summary"]
                alert["severity"] = event["payload"]["severity"]
            elif alert is not None and alert["status"] != "resolved":
                alert["status"] = "acknowledged" if action == "acknowledge" else "resolved"
                self._incident(dedup_key)["status"] = alert["status"]
            if alert is not None:
                alert["history"].append({"action": action, "at": now})
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": dedup_key}, status_code=202
        )

    def _incident(self, dedup_key: str) -> dict[str, Any]:
        return next(i for i in reversed(self.incidents) if i["dedup_key"] == dedup_key)

    def _problems(self, event: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        routing_key = event.get("routing_key")
        if not isinstance(routing_key, str) or not routing_key:
            problems.append("'routing_key' is missing or blank")
        elif len(routing_key) != 32:
            # Real integration (routing) keys are 32 characters; PagerDuty refuses any other length.
            problems.append("Invalid routing key: must be 32 characters")
        elif routing_key not in self.routing_keys:
            problems.append("Invalid routing key")
        action = event.get("event_action")
        if action not in ACTIONS:
            problems.append("'event_action' is missing or invalid (trigger, acknowledge or resolve)")
        dedup_key = event.get("dedup_key")
        if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
            problems.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup_key:
            problems.append("'dedup_key' is required for acknowledge and resolve events")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                problems.append("'payload' is missing or blank")
            else:
                for name in ("summary", "source"):
                    if not isinstance(payload.get(name), str) or not payload[name].strip():
                        problems.append(f"'payload.{name}' is missing or blank")
                if isinstance(payload.get("summary"), str) and len(payload["summary"]) > 1024:
                    problems.append("'payload.summary' is longer than 1024 characters")
                if payload.get("severity") not in SEVERITIES:
                    problems.append("'payload.severity' is invalid (critical, error, warning or info)")
                if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
                    problems.append("'payload.custom_details' must be an object")
                timestamp = payload.get("timestamp")
                if timestamp is not None and not _is_timestamp(timestamp):
                    problems.append("'payload.timestamp' is not an ISO 8601 date-time")
        for name, needed in (("links", "href"), ("images", "src")):
            items = event.get(name)
            if items is None:
                continue
            if not isinstance(items, list):
                problems.append(f"'{name}' must be an array")
                continue
            for index, item in enumerate(items):
                if not isinstance(item, dict) or not isinstance(item.get(needed), str) or not item[needed]:
                    problems.append(f"'{name}[{index}].{needed}' is missing or blank")
        return problems


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@register("pagerduty")
def build(context: SandboxContext) -> Simulator:
    """The PagerDuty Events API v2 simulator."""
    return PagerDutySimulator(context).simulator
