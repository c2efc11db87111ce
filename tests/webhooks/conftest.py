"""The receiver over the four real connectors: each vendor's own signature scheme, a ConnectWise key server to count.

Deliveries are built here exactly as each vendor signs them (VENDOR-APIS.md 1.7, 2.7, 3.7, 4.7), without the
sandbox, so the receiver is tested against the schemes themselves.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from psabridge.connectors.autotask import AutotaskConnector
from psabridge.connectors.base import Connector
from psabridge.connectors.connectwise import ConnectWiseConnector
from psabridge.connectors.freshservice import FreshserviceConnector
from psabridge.connectors.http import HttpRuntime
from psabridge.connectors.servicenow import ServiceNowConnector
from psabridge.mapping import MappingRegistry
from psabridge.settings import ConnectionSettings, Credentials, Settings
from psabridge.store import Database
from psabridge.store.models import InboxDelivery
from psabridge.sync.context import SyncContext
from psabridge.sync.locks import locks_for
from psabridge.webhooks.app import create_app
from tests.sync.conftest import RecordingQueue

MAPPINGS = Path(__file__).resolve().parents[2] / "config" / "mappings"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
CW_HOST = "cw.test"
CW_BASE = f"https://{CW_HOST}/v4_6_release/apis/3.0"
CW_KEY_ID = "0d3c5a1e-8f0b-4c1e-9a57-3b9e1f2a7c40"
CW_KEY_URL = f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}"
CW_SIGNING_KEY = "cw-signing-key-of-the-callback"
AT_SECRET = "autotask-webhook-secret"
SN_SECRET = "servicenow-shared-secret"
SN_HEADER = "X-Acme-Token"  # a custom header named in options: its value must never be stored
FS_SECRET = "freshservice-shared-secret"
SN_SYS_ID = "1c741bd70b2322007518478d83673af3"
VENDORS = ("connectwise", "autotask", "servicenow", "freshservice")
CONNECTION = {"connectwise": "msp-cw", "autotask": "msp-at", "servicenow": "acme-snow", "freshservice": "acme-fs"}
KEY_FETCHES_PER_MINUTE = 10  # the ConnectWise default


class KeyServer:
    """ConnectWise's side of the key URL (an httpx transport): counts key fetches and any other request.

    ``hold`` makes fetches of unknown key ids wait until ``release`` (a slow ConnectWise, for the flood test).
    """

    def __init__(self) -> None:
        self.keys = {CW_KEY_ID: CW_SIGNING_KEY}
        self.fetches: list[httpx.Request] = []
        self.other: list[httpx.Request] = []  # requests to anything but the key endpoint (the ticket API)
        self.held = 0  # fetches that waited at the gate
        self.answered_held = 0  # ... and were answered
        self._gate: threading.Event | None = None
        self._lock = threading.Lock()

    def hold(self) -> None:
        self._gate = threading.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/system/callbackkey/index.rails"):
            with self._lock:
                self.other.append(request)
            return httpx.Response(500, json={"code": "Unexpected", "message": "only keys are served here"})
        with self._lock:
            self.fetches.append(request)
        key = self.keys.get(request.url.params.get("id", ""))
        if key is None and self._gate is not None:
            with self._lock:
                self.held += 1
            self._gate.wait(30)
            with self._lock:
                self.answered_held += 1
        if key is None:
            return httpx.Response(404, json={"code": "NotFound", "message": "Callback key not found"})
        return httpx.Response(200, json={"signing_key": key})


def _settings() -> Settings:
    data: dict[str, Any] = {
        "database": "sqlite://",
        "broker": "embedded",
        "tenants": {"acme": {"name": "Acme Dental"}},
        "connections": [
            {"name": "msp-cw", "system": "connectwise", "base_url": CW_BASE,
             "credentials": {"company": "msp", "public_key": "pub", "private_key": "priv", "client_id": "cid",
                             "webhook_host": CW_HOST}},
            {"name": "msp-at", "system": "autotask", "base_url": "https://webservices2.autotask.test/atservicesrest",
             "credentials": {"username": "api@msp.test", "secret": "s", "integration_code": "ic",
                             "webhook_secret": AT_SECRET}},
            {"name": "acme-snow", "system": "servicenow", "tenant": "acme", "base_url": "https://acme.snow.test",
             "credentials": {"username": "psabridge", "password": "p", "webhook_secret": SN_SECRET},
             "options": {"webhook_secret_header": SN_HEADER}},
            {"name": "acme-fs", "system": "freshservice", "tenant": "acme", "base_url": "https://acme.fs.test",
             "credentials": {"api_key": "k", "webhook_secret": FS_SECRET}},
            {"name": "old-fs", "system": "freshservice", "tenant": "acme", "base_url": "https://old.fs.test",
             "credentials": {"api_key": "k", "webhook_secret": FS_SECRET}, "enabled": False},
        ],
    }  # fmt: skip
    for conn in data["connections"]:
        conn["mapping"] = str(MAPPINGS / f"{conn['system']}.yaml")
    settings = Settings(**data)
    for conn in settings.connections:
        conn._credentials = Credentials({k: SecretStr(v) for k, v in conn.credentials.items()})
    return settings


@dataclass
class Receiver:
    """The receiver app over real connectors, a recording queue and a fresh SQLite store."""

    ctx: SyncContext
    keys: KeyServer
    namespace: str
    connectors: dict[str, Connector] = field(default_factory=dict)
    max_body: int = 1_000_000
    unreadable_per_hour: int = 100

    _apps: dict[tuple[int, int], Any] = field(default_factory=dict)
    seconds: float = 1000.0  # the connectors' monotonic clock: still unless a test moves it

    def clock(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.seconds += seconds

    def app(self) -> Any:
        """One app per set of limits (the receiver's counts live in it, as in ``serve``)."""
        limits = (self.max_body, self.unreadable_per_hour)
        if limits not in self._apps:
            self._apps[limits] = create_app(self.ctx, max_body=self.max_body, unreadable_per_hour=limits[1])
        return self._apps[limits]

    def post(self, vendor_or_connection: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        path = f"/webhooks/{CONNECTION.get(vendor_or_connection, vendor_or_connection)}"
        raw = {k: v.encode("latin-1") for k, v in headers.items()}  # as sent: bytes (httpx takes only ASCII text)

        async def go() -> httpx.Response:
            async with self.client() as client:
                return await client.post(path, content=body, headers=raw)

        return asyncio.run(go())

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app()), base_url="http://psabridge.test")

    def inbox(self) -> list[InboxDelivery]:
        with self.ctx.db.session() as s:
            return list(s.scalars(sa.select(InboxDelivery).order_by(InboxDelivery.id)))

    def jobs(self) -> list[tuple[Any, ...]]:
        assert isinstance(self.ctx.queue, RecordingQueue)
        return self.ctx.queue.of("ingest")


@pytest.fixture
def receiver(sqlite_db: Database, namespace: str) -> Iterator[Receiver]:
    settings = _settings()
    keys = KeyServer()
    made = Receiver(ctx=None, keys=keys, namespace=namespace)  # type: ignore[arg-type]
    classes: dict[str, type[Any]] = {
        "connectwise": ConnectWiseConnector, "autotask": AutotaskConnector,
        "servicenow": ServiceNowConnector, "freshservice": FreshserviceConnector,
    }  # fmt: skip

    def build(conn: ConnectionSettings) -> Connector:
        runtime = HttpRuntime(
            namespace=namespace,
            transport=httpx.MockTransport(keys),
            now=lambda: NOW,
            clock=made.clock,
            sleep=made.sleep,
        )
        made.connectors[conn.name] = connector = classes[conn.system.value](conn, runtime=runtime)
        return connector

    made.ctx = SyncContext(
        settings=settings,
        db=sqlite_db,
        mappings=MappingRegistry(settings.connections),
        locks=locks_for("embedded", sqlite_db, wait=10),
        queue=RecordingQueue(),
        connector_factory=build,
    )
    yield made
    made.ctx.close()


# --- deliveries as each vendor sends them -----------------------------------------------------------------------------


def cw_signature(body: bytes, key: str = CW_SIGNING_KEY) -> str:
    """base64(HMAC-SHA256(key = SHA256(signing key), raw body)) (VENDOR-APIS 1.7)."""
    digest = hmac.new(hashlib.sha256(key.encode()).digest(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def at_signature(body: bytes, secret: str = AT_SECRET) -> str:
    """sha1=base64(HMAC-SHA1(SecretKey, raw body)) (VENDOR-APIS 2.7)."""
    return "sha1=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def cw_payload(**fields: Any) -> dict[str, Any]:
    return {"MessageId": str(uuid.uuid4()), "FromUrl": f"https://{CW_HOST}", "CompanyId": "msp",
            "MemberId": "dwhitfield", "Action": "updated", "Type": "ticket", "ID": 493, "Entity": "{}",
            "Metadata": {"key_url": CW_KEY_URL}, "CallbackObjectRecId": 7, **fields}  # fmt: skip


def at_payload(**fields: Any) -> dict[str, Any]:
    return {"Action": "Update", "Guid": "a1da62a4-2c49-40a8-8183-69994ce5b3eb", "EntityType": "Ticket", "Id": 351181,
            "Fields": {"TicketNumber": "T20261120.0001"}, "EventTime": "2026-11-20T14:59:30Z",
            "SequenceNumber": 4, "PersonID": 30691780, **fields}  # fmt: skip


def sn_payload(**fields: Any) -> dict[str, Any]:
    return {"table": "incident", "sys_id": SN_SYS_ID, "number": "INC0010001", "operation": "update",
            "sys_updated_on": "2026-11-20 14:59:00", "sys_updated_by": "beth.anglin", "sys_mod_count": "7",
            **fields}  # fmt: skip


def fs_payload(**fields: Any) -> dict[str, Any]:
    return {"ticket_id": 42, "event": "ticket_updated", "updated_at": "2026-11-20T14:59:00Z", **fields}


PAYLOADS = {"connectwise": cw_payload, "autotask": at_payload, "servicenow": sn_payload, "freshservice": fs_payload}
TICKETS = {"connectwise": "493", "autotask": "351181", "servicenow": SN_SYS_ID, "freshservice": "42"}


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def signed(vendor: str, body: bytes) -> dict[str, str]:
    """The headers that authenticate ``body`` as ``vendor`` sends it (with its content type)."""
    auth = {
        "connectwise": {"x-content-signature": cw_signature(body)},
        "autotask": {"X-Hook-Signature": at_signature(body)},
        "servicenow": {SN_HEADER: SN_SECRET},
        "freshservice": {"X-Psabridge-Secret": FS_SECRET},
    }[vendor]
    return {"Content-Type": "application/json", **auth}


def forged(vendor: str, body: bytes) -> dict[str, str]:
    """Headers of the right shape with a wrong signature or secret."""
    auth = {
        "connectwise": {"x-content-signature": cw_signature(body, "not-the-key")},
        "autotask": {"X-Hook-Signature": at_signature(body, "not-the-secret")},
        "servicenow": {SN_HEADER: "not-the-secret"},
        "freshservice": {"X-Psabridge-Secret": "not-the-secret"},
    }[vendor]
    return {"Content-Type": "application/json", **auth}


SECRETS = (CW_SIGNING_KEY, AT_SECRET, SN_SECRET, FS_SECRET)


# --- a raw ASGI call, to count what the app reads ---------------------------------------------------------------------


@dataclass
class Streamed:
    """The answer to a request whose body was streamed, and how much of the body the app asked for."""

    status: int
    answer: Any
    consumed: int


def stream(app: Any, path: str, headers: Sequence[tuple[bytes, bytes]], chunks: AsyncIterator[bytes]) -> Streamed:
    """Call the ASGI app with ``chunks`` as the body, counting the bytes it receives (no server in between)."""
    consumed = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"psabridge.test"), *headers], "client": ("203.0.113.9", 50000),
        "server": ("psabridge.test", 80),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Streamed(start["status"], json.loads(body) if body else None, consumed)


async def chunks_of(size: int, total: int) -> AsyncIterator[bytes]:
    """``total`` bytes of a JSON-looking body in chunks of ``size``."""
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        yield b" " * part
        sent += part


def stale(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)
