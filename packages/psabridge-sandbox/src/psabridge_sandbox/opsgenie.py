"""Opsgenie Alert API simulator: create, acknowledge and close alerts (by id, tiny id or alias), request status.

Sources: Opsgenie docs "Alert API" (docs.opsgenie.com/docs/alert-api): requests are processed asynchronously, so
create, acknowledge and close answer 202 ``{"result": "Request will be processed", "took": ..., "requestId": ...}``
and the outcome (e.g. "Alert does not exist") shows only in GET /v2/alerts/requests/{requestId}; ``message`` is
mandatory (130 characters), ``alias`` is the de-duplication key (512 characters). Opsgenie docs "Response"
(docs.opsgenie.com/docs/response): 400 is a JSON syntax error only, 401 an invalid key, 422 semantic errors, 429 too
many requests (a fault-profile storm here). Bodies follow Opsgenie's published description (GitHub
opsgenie/opsgenie-oas; specs/opsgenie-alert.json): SuccessResponse and ErrorResponse (requestId, took, message);
CreateAlertPayload's ``details`` are string values, ``tags`` strings. The 422
body ``{"message": "Request body is not processable. Please check the errors.", "errors": {field: reason}, ...}`` is
as Opsgenie's Go SDK tests (opsgenie/opsgenie-go-sdk-v2) decode it. Auth is ``Authorization: GenieKey <key>``.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.core import Simulator
from psabridge_sandbox.credentials import OG_API_KEY
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.registry import SandboxContext, register

__all__ = ["OpsgenieSimulator", "build"]

PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
_DONE = {"Close": "Closed alert", "Acknowledge": "Acknowledged alert"}


class OpsgenieSimulator:
    """Alerts, and the asynchronous requests that created or changed them."""

    def __init__(self, context: SandboxContext) -> None:
        self.api_keys = {OG_API_KEY}
        self.alerts: list[dict[str, Any]] = []
        self.requests: dict[str, dict[str, Any]] = {}
        self._rng = random.Random(f"psabridge-opsgenie:{context.seed}")
        self._tiny = 0
        self._lock = threading.RLock()
        self.simulator = Simulator(
            context.service.name,
            auth=self.authenticate,
            errors=self.render_error,
            faults=context.faults,
            seed=context.seed,
            clock=context.clock,
            state=self.state,
        )
        sim = self.simulator
        sim.add_route("/v2/alerts", self.create, methods=["POST"])
        sim.add_route("/v2/alerts/requests/{request_id}", self.request_status, methods=["GET"])
        sim.add_route("/v2/alerts/{identifier}/close", self.close, methods=["POST"])
        sim.add_route("/v2/alerts/{identifier}/acknowledge", self.acknowledge, methods=["POST"])

    def _uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def render_error(self, error: VendorError) -> Response:
        """Opsgenie's error shape: message, took, requestId (and errors for 422)."""
        body: dict[str, Any] = {"message": error.message, "took": 0.001, "requestId": self._uuid()}
        if error.field:
            body["errors"] = {error.field: error.detail}
        return JSONResponse(body, status_code=error.status)

    def authenticate(self, request: Request) -> str:
        """``Authorization: GenieKey <api key>``."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "geniekey" or key.strip() not in self.api_keys:
            raise VendorError(401, "Could not authenticate")
        return f"GenieKey {key.strip()[:6]}..."

    def state(self) -> dict[str, Any]:
        """Alerts and request outcomes."""
        with self._lock:
            return {"alerts": [dict(a) for a in self.alerts], "requests": dict(self.requests)}

    async def create(self, request: Request) -> Response:
        """POST /v2/alerts."""
        body = await _json(request)
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise _unprocessable("message", "Message can not be empty.")
        alias = body.get("alias")
        if alias is not None and (not isinstance(alias, str) or len(alias) > 512):
            raise _unprocessable("alias", "Alias can not be longer than 512 characters.")
        priority = body.get("priority", "P3")
        if priority not in PRIORITIES:
            raise _unprocessable("priority", f"Priority should be one of {list(PRIORITIES)}")
        details = body.get("details", {})
        if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
            raise _unprocessable("details", "Details should be a map of string keys to string values.")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _unprocessable("tags", "Tags should be a list of strings.")
        started = time.perf_counter()
        request_id = self._uuid()
        now = self._now()
        with self._lock:
            existing = self._find(alias, "alias") if alias else None
            if existing is not None:
                # Alias de-duplication: a create for an open alert's alias only counts up.
                existing["count"] += 1
                existing["updatedAt"] = now
                alert = existing
                status = "Alert is deduplicated"
            else:
                self._tiny += 1
                alert = {
                    "id": self._uuid(),
                    "tinyId": str(self._tiny),
                    "alias": alias or "",
                    "message": message[:130],
                    "description": body.get("description", ""),
                    "priority": priority,
                    "source": body.get("source", ""),
                    "tags": body.get("tags", []),
                    "details": body.get("details", {}),
                    "status": "open",
                    "acknowledged": False,
                    "count": 1,
                    "createdAt": now,
                    "updatedAt": now,
                    "history": [],
                }
                if not alert["alias"]:
                    alert["alias"] = alert["id"]
                self.alerts.append(alert)
                status = "Created alert"
            alert["history"].append({"action": "Create", "at": now, "requestId": request_id})
            self._record(request_id, "Create", True, status, alert, now)
        return _accepted(request_id, started)

    async def close(self, request: Request) -> Response:
        """POST /v2/alerts/{identifier}/close?identifierType=id|tiny|alias."""
        return await self._act(request, "Close")

    async def acknowledge(self, request: Request) -> Response:
        """POST /v2/alerts/{identifier}/acknowledge?identifierType=id|tiny|alias."""
        return await self._act(request, "Acknowledge")

    async def _act(self, request: Request, action: str) -> Response:
        identifier_type = request.query_params.get("identifierType", "id")
        if identifier_type not in ("id", "tiny", "alias"):
            raise _unprocessable("identifierType", "Invalid identifierType. Should be one of [id, alias, tiny]")
        if await request.body():
            body = await _json(request)
            note = body.get("note")
            if note is not None and not isinstance(note, str):
                raise _unprocessable("note", "Note must be a string.")
        started = time.perf_counter()
        request_id = self._uuid()
        now = self._now()
        with self._lock:
            alert = self._find(request.path_params["identifier"], identifier_type)
            if alert is None:
                self._record(request_id, action, False, "Alert does not exist", None, now)
            else:
                if action == "Close":
                    alert["status"] = "closed"
                else:
                    alert["acknowledged"] = True
                alert["updatedAt"] = now
                alert["history"].append({"action": action, "at": now, "requestId": request_id})
                self._record(request_id, action, True, _DONE[action], alert, now)
        # Asynchronous: even an unknown alias is accepted here; the failure shows in the request status.
        return _accepted(request_id, started)

    async def request_status(self, request: Request) -> Response:
        """GET /v2/alerts/requests/{requestId}."""
        with self._lock:
            found = self.requests.get(request.path_params["request_id"])
        if found is None:
            raise VendorError(404, "Request not found. It might not be processed, yet.")
        return JSONResponse({"data": found, "took": 0.005, "requestId": self._uuid()})

    def _find(self, identifier: str | None, identifier_type: str) -> dict[str, Any] | None:
        field = {"id": "id", "tiny": "tinyId", "alias": "alias"}[identifier_type]
        for alert in self.alerts[::-1]:
            live = identifier_type != "alias" or alert["status"] == "open"  # an alias names the open alert
            if live and str(alert[field]) == identifier:
                return alert
        return None

    def _record(
        self, request_id: str, action: str, success: bool, status: str, alert: dict[str, Any] | None, now: str
    ) -> None:
        self.requests[request_id] = {
            "success": success,
            "action": action,
            "processedAt": now,
            "integrationId": "psabridge-sandbox",
            "isSuccess": success,
            "status": status,
            "alertId": alert["id"] if alert else "",
            "alias": alert["alias"] if alert else "",
        }

    def _now(self) -> str:
        return self.simulator.clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _accepted(request_id: str, started: float) -> Response:
    took = round(time.perf_counter() - started, 3)
    return JSONResponse({"result": "Request will be processed", "took": took, "requestId": request_id}, status_code=202)


def _unprocessable(field: str, reason: str) -> VendorError:
    return VendorError(422, "Request body is not processable. Please check the errors.", field=field, detail=reason)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # Opsgenie: 400 is for JSON syntax errors only.
        raise VendorError(400, "Could not parse the request body: invalid JSON.")
    return body


@register("opsgenie")
def build(context: SandboxContext) -> Simulator:
    """The Opsgenie Alert API simulator."""
    return OpsgenieSimulator(context).simulator
