"""ConnectWise PSA callbacks for the simulator: ``/system/callbacks``, the signed deliveries and the key URL.

A callback (pyCW ``CallbackEntry``) names a ``url``, ``type`` (Ticket), ``level`` (Owner: every ticket; Board:
``objectId`` is a board id; Ticket: ``objectId`` is a ticket id), ``inactiveFlag`` and ``isSelfSuppressedFlag``
(taken here to suppress callbacks for changes made through the API key itself [UNCONFIRMED semantics]).
A delivery is a POST of ``{MessageId, FromUrl, CompanyId, MemberId, Action, Type, ID, ProductInstanceId,
PartnerId, Entity, Metadata: {key_url}, CallbackObjectRecId}`` with ``Entity`` the record as a JSON *string*
(Nango ``types.ts`` ConnectWisePsaWebhookPayload; CWREST ``src/utils/Callback.ts``), signed
``x-content-signature: base64(HMAC-SHA256(key = SHA256(signing_key), raw body))``; ``GET key_url`` answers
``{"signing_key": ...}`` without credentials (Nango's verifier and its unit test fetch it that way).
``Action`` is added/updated/deleted [UNCONFIRMED spelling].
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from psabridge_sandbox.connectwise_records import API_MEMBER, API_MEMBER_ID, stamp
from psabridge_sandbox.connectwise_writes import CwError, invalid, json_body
from psabridge_sandbox.core import Simulator
from psabridge_sandbox.credentials import CW_COMPANY
from psabridge_sandbox.dispatcher import Subscription
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.table import Change, Row, Table

__all__ = ["ACTIONS", "KEY_PATH", "CallbackHub", "ConnectWiseInstance", "sign"]

KEY_PATH = "/v4_6_release/system/callbackkey/index.rails"
ACTIONS: dict[Change, str] = {"created": "added", "updated": "updated", "deleted": "deleted"}
_KNOWN = frozenset({"id", "url", "type", "level", "objectid", "description", "inactiveflag", "memberid", "_info"})


def sign(body: bytes, signing_key: str) -> str:
    """ConnectWise's callback signature: base64(HMAC-SHA256(key = SHA256(signing_key) bytes, raw body))."""
    key = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


class ConnectWiseInstance(Protocol):
    """What the callbacks need of the simulated instance (``ConnectWiseSimulator`` has it; connectwise.py)."""

    simulator: Simulator
    tickets: Table
    lock: threading.RLock
    rng: random.Random
    api_root: str

    def render(self, row: Row, *, base: str) -> dict[str, Any]:
        """A ticket as the API answers it, with links under ``base``."""

    def json_response(
        self, request: Request, body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON answer with the instance's headers."""

    def list_response(self, request: Request, records: list[dict[str, Any]], known: frozenset[str]) -> Response:
        """A list answer: conditions, ordering, field selection and paging applied."""


class CallbackHub:
    """The registered callbacks of one simulated instance, their signing keys, and the deliveries of changes."""

    def __init__(self, host: ConnectWiseInstance) -> None:
        self.host = host
        self._callbacks: dict[int, dict[str, Any]] = {}
        self._keys: dict[str, str] = {}
        self._next = 1

    def records(self) -> list[dict[str, Any]]:
        """The registered callbacks."""
        with self.host.lock:
            return list(self._callbacks.values())

    # --- deliveries --------------------------------------------------------------------------------------------------

    def emit(self, change: Change, row: Row, *, by_api: bool) -> None:
        """Queue a delivery of this ticket change to every callback whose level covers it."""
        host = self.host
        root = (host.simulator.base_url or "http://127.0.0.1").rstrip("/")
        entity = json.dumps(host.render(row, base=root + host.api_root), separators=(",", ":"))

        def wanted(subscription: Subscription) -> bool:
            data = subscription.data
            if data.get("inactiveFlag") or (by_api and data.get("isSelfSuppressedFlag")):
                return False
            level = str(data.get("level", "Owner")).lower()
            if level == "board":
                return bool(data.get("objectId") == row.data["board"]["id"])
            if level == "ticket":
                return bool(data.get("objectId") == row.id)
            return True

        def payload(subscription: Subscription) -> dict[str, Any]:
            return {
                "MessageId": str(uuid.UUID(int=host.rng.getrandbits(128), version=4)),
                "FromUrl": root,
                "CompanyId": CW_COMPANY,
                "MemberId": API_MEMBER if by_api else "dwhitfield",
                "Action": ACTIONS[change],
                "Type": "ticket",
                "ID": row.id,
                "ProductInstanceId": "00000000-0000-4000-8000-00000000c0de",
                "PartnerId": CW_COMPANY,
                "Entity": entity,
                "Metadata": {"key_url": f"{root}{KEY_PATH}?id={subscription.id}"},
                "CallbackObjectRecId": subscription.data.get("callbackId", 0),
            }

        host.simulator.webhooks.emit(f"ticket.{ACTIONS[change]}", payload, match=wanted)

    def signer(self, body: bytes, subscription: Subscription) -> dict[str, str]:
        """The delivery's ``x-content-signature``."""
        return {"x-content-signature": sign(body, self._key_for(subscription))}

    def _key_for(self, subscription: Subscription) -> str:
        with self.host.lock:
            key = self._keys.get(subscription.id)
            if key is None:
                # A receiver registered through /_sandbox/webhooks signs with its own secret, if it gave one.
                key = self._keys[subscription.id] = subscription.secret or f"{self.host.rng.getrandbits(160):040x}"
            return key

    # --- routes ------------------------------------------------------------------------------------------------------

    async def signing_key(self, request: Request) -> Response:
        """GET key_url: ``{"signing_key": ...}`` for a callback's id (no credentials needed)."""
        wanted = request.query_params.get("id", "")
        for subscription in self.host.simulator.webhooks.subscriptions():
            if subscription.id == wanted:
                return JSONResponse({"signing_key": self._key_for(subscription)})
        raise VendorError(404, f"Callback key {wanted} not found", code="NotFound")

    async def add(self, request: Request) -> Response:
        """POST /system/callbacks: register a receiver (type Ticket; level Owner, Board or Ticket)."""
        record = self._record(await json_body(request))
        with self.host.lock:
            callback_id = self._next
            self._next += 1
            record["id"] = callback_id
        self._subscribe(record)
        return self.host.json_response(request, record, status=201)

    async def replace(self, request: Request) -> Response:
        """PUT /system/callbacks/{id}: the whole callback replaced (ConnectWise's PUT semantics; the id stays)."""
        callback_id = request.path_params["id"]
        with self.host.lock:
            known = callback_id in self._callbacks
        if not known:
            raise VendorError(404, f"Callback recId {callback_id} not found", code="NotFound")
        record = {**self._record(await json_body(request)), "id": callback_id}
        self.host.simulator.webhooks.unsubscribe(str(callback_id))
        self._subscribe(record)
        return self.host.json_response(request, record)

    def _subscribe(self, record: dict[str, Any]) -> None:
        callback_id = int(record["id"])
        data = {**record, "callbackId": callback_id}
        self.host.simulator.webhooks.subscribe(record["url"], id=str(callback_id), data=data)
        with self.host.lock:
            self._callbacks[callback_id] = record

    def _record(self, body: Any) -> dict[str, Any]:
        """A callback as stored and shown, from a request body (400 InvalidObject naming what is wrong)."""
        if not isinstance(body, dict):
            raise CwError(400, "The request body must be a callback object", code="InvalidObject")
        url, kind, level = body.get("url"), str(body.get("type", "")), str(body.get("level", ""))
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("InvalidValue", "url must be an http(s) URL", "url", resource="callbackEntry")
        if kind.lower() != "ticket":
            raise invalid(
                "InvalidValue", "the sandbox calls back for type Ticket only", "type", resource="callbackEntry"
            )
        if level.lower() not in ("owner", "board", "ticket"):
            raise invalid("InvalidValue", "level must be Owner, Board or Ticket", "level", resource="callbackEntry")
        return {
            "id": 0,
            "description": str(body.get("description", ""))[:100],
            "url": url,
            "objectId": int(body.get("objectId") or 0),
            "type": "Ticket",
            "level": level.capitalize(),
            "memberId": API_MEMBER_ID,
            "payloadVersion": str(body.get("payloadVersion", "2025.1")),
            "inactiveFlag": bool(body.get("inactiveFlag", False)),
            "isSoapCallbackFlag": bool(body.get("isSoapCallbackFlag", False)),
            "isSelfSuppressedFlag": bool(body.get("isSelfSuppressedFlag", False)),
            "_info": {"lastUpdated": stamp(self.host.tickets.stamp()), "updatedBy": API_MEMBER},
        }

    async def list(self, request: Request) -> Response:
        """GET /system/callbacks."""
        return self.host.list_response(request, self.records(), _KNOWN)

    async def get(self, request: Request) -> Response:
        """GET /system/callbacks/{id}."""
        with self.host.lock:
            record = self._callbacks.get(request.path_params["id"])
        if record is None:
            raise VendorError(404, f"Callback recId {request.path_params['id']} not found", code="NotFound")
        return self.host.json_response(request, record)

    async def delete(self, request: Request) -> Response:
        """DELETE /system/callbacks/{id}: 204."""
        with self.host.lock:
            record = self._callbacks.pop(request.path_params["id"], None)
        if record is None:
            raise VendorError(404, f"Callback recId {request.path_params['id']} not found", code="NotFound")
        self.host.simulator.webhooks.unsubscribe(str(record["id"]))
        return Response(status_code=204)
