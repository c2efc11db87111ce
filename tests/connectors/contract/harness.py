"""The contract suite's harness: what a vendor engineer provides (VendorHarness) and what the suite gives back (Served).

To put a vendor under the contract suite, write ``tests/connectors/contract/<vendor>_harness.py``::

    class ConnectWiseHarness(VendorHarness):
        system = "connectwise"                  # sandbox service name = ConnectionSettings.system

        def tickets(self, served): ...          # external id -> last update time, as the simulator holds them
        def change_tickets(self, served, ids): ...
        def stored_ticket(self, served, external_id): ...
        def note_texts(self, served, external_id): ...
        def time_entry_texts(self, served, external_id): ...
        def update_patch(self): ...
        def new_ticket_fields(self): ...
        def webhook(self, served, external_id, variant): ...

and append ``ConnectWiseHarness()`` to ``HARNESSES`` in ``tests/connectors/contract/vendors.py``.

The defaults need nothing else once the vendor's simulator is registered in ``psabridge_sandbox.registry`` (with
``@register("<system>")``) and its connector module exports ``CONNECTOR``: the simulator is built with
``registry.build_simulator``, settings come from the service's entry in ``registry.SERVICES`` with the sandbox
credentials, and the connector from ``connectors.get_connector``. Override ``build_simulator``, ``settings`` or
``connector`` only if the vendor needs more (Autotask's zone lookup may, for example).

Each test gets its own simulator served over real HTTP on loopback (uvicorn on an ephemeral port, in a
background thread), so timeouts, pooling and concurrency are real. Between the client and the simulator sits a
``FaultGate`` that records every request's arrival time and can answer the next requests with an error rendered
in the vendor's own shape (the simulator's error renderer), or hold them past the client's read timeout.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr
from starlette.types import Message, Receive, Scope, Send

from psabridge.connectors import get_connector
from psabridge.connectors.base import Connector
from psabridge.log import is_secret_key
from psabridge.settings import ConnectionSettings, Credentials
from psabridge.vendordata import RawRecord
from psabridge_sandbox.core import CONTROL_PREFIX, Simulator
from psabridge_sandbox.credentials import SECRET_FILES
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.registry import build_simulator, service

from ..serving import serve

__all__ = [
    "RECEIVER_PATH",
    "Arrival",
    "FaultGate",
    "SandboxControl",
    "Served",
    "VendorHarness",
    "WebhookDelivery",
    "WebhookVariant",
    "connection_settings",
    "pages_needed",
    "pages_of",
    "serve_vendor",
    "ticket_ids",
]

RECEIVER_PATH = "/_contract/webhooks"
"""Where the gate accepts webhooks the simulator sends (``Served.receiver_url``)."""

WebhookVariant = Literal["valid", "wrong", "stale", "missing"]


@dataclass(frozen=True)
class WebhookDelivery:
    """A webhook as it reaches psabridge: raw body and headers."""

    headers: Mapping[str, str]
    body: bytes


def connection_settings(
    *, name: str, system: str, base_url: str, secrets: Mapping[str, str], **fields: Any
) -> ConnectionSettings:
    """ConnectionSettings with resolved secrets, as ``load_settings`` would leave them."""
    settings = ConnectionSettings(name=name, system=system, base_url=base_url, **fields)
    settings._credentials = Credentials({key: SecretStr(value) for key, value in secrets.items()})
    return settings


# --- the gate between client and simulator ----------------------------------------------------------------------------


@dataclass
class Arrival:
    """One request as the gate saw it (monotonic times, comparable with ``time.monotonic()`` in the test)."""

    seq: int
    at: float
    method: str
    path: str
    scripted: str | None = None  # "error" or "hang" when the gate answered instead of the simulator
    status: int | None = None
    answered_at: float | None = None


@dataclass(frozen=True)
class _Script:
    kind: Literal["error", "hang"]
    status: int = 500
    message: str = ""
    code: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class FaultGate:
    """An ASGI wrapper around a simulator: records arrivals, answers scripted faults, receives webhooks.

    The control plane (``/_sandbox``) passes straight through and is not recorded.
    """

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._script: deque[_Script] = deque()
        self._arrivals: list[Arrival] = []
        self._webhooks: list[WebhookDelivery] = []
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    # -- scripting (from the test thread) --

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int,
        message: str = "",
        code: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` vendor requests with this error, in the vendor's shape."""
        with self._lock:
            self._script.extend(
                _Script("error", status, message or f"contract fault {status}", code, dict(headers or {}))
                for _ in range(count)
            )

    def hang_next(self, count: int = 1, *, seconds: float) -> None:
        """Hold the next ``count`` vendor requests for ``seconds`` (past the client's read timeout), then 504."""
        with self._lock:
            self._script.extend(_Script("hang", 504, "Gateway Timeout", seconds=seconds) for _ in range(count))

    def arrivals(self) -> list[Arrival]:
        """Requests seen so far."""
        with self._lock:
            return list(self._arrivals)

    def webhooks(self) -> list[WebhookDelivery]:
        """Webhooks received at ``RECEIVER_PATH``."""
        with self._lock:
            return list(self._webhooks)

    def reset(self) -> None:
        """Forget arrivals, received webhooks and any unused script."""
        with self._lock:
            self._arrivals.clear()
            self._webhooks.clear()
            self._script.clear()

    # -- serving --

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            await self.simulator(scope, receive, send)
            return
        if path == RECEIVER_PATH:
            await self._receive_webhook(scope, receive, send)
            return
        with self._lock:
            arrival = Arrival(next(self._seq), time.monotonic(), scope["method"], path)
            self._arrivals.append(arrival)
            script = self._script.popleft() if self._script else None

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                arrival.status = message["status"]
                arrival.answered_at = time.monotonic()
            await send(message)

        if script is None:
            await self.simulator(scope, receive, recording_send)
            return
        arrival.scripted = script.kind
        if script.kind == "hang":
            await asyncio.sleep(script.seconds)
        error = VendorError(script.status, script.message, code=script.code, headers=script.headers)
        response = self.simulator.errors(error)
        for name, value in error.headers.items():
            response.headers[name] = value
        await response(scope, receive, recording_send)

    async def _receive_webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            self._webhooks.append(WebhookDelivery(headers, body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class SandboxControl:
    """A client of a simulator's control plane (``/_sandbox``)."""

    def __init__(self, root: str) -> None:
        self._client = httpx.Client(base_url=root + CONTROL_PREFIX, timeout=30)

    def state(self) -> dict[str, Any]:
        """``GET /_sandbox/state``: what the vendor module shows of its data."""
        return dict(self._client.get("/state").raise_for_status().json())

    def requests(self, **filters: str | int) -> list[dict[str, Any]]:
        """``GET /_sandbox/requests``: the requests the simulator served (after the gate)."""
        return list(self._client.get("/requests", params=filters).raise_for_status().json()["requests"])

    def clear_requests(self) -> None:
        """``DELETE /_sandbox/requests``."""
        self._client.delete("/requests").raise_for_status()

    def set_faults(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /_sandbox/faults``, e.g. ``{"profile": "churn"}``; returns the profile now in force."""
        return dict(self._client.put("/faults", json=dict(changes)).raise_for_status().json())

    def subscribe(
        self, url: str, *, secret: str = "", headers: Mapping[str, str] | None = None, events: Sequence[str] = ()
    ) -> str:
        """Register a webhook receiver; returns its id."""
        body = {"url": url, "secret": secret, "headers": dict(headers or {}), "events": list(events)}
        return str(self._client.post("/webhooks", json=body).raise_for_status().json()["id"])

    def flush_webhooks(self) -> None:
        """Send every queued webhook now and wait until they are out."""
        self._client.post("/webhooks/flush").raise_for_status()

    def close(self) -> None:
        """Close the client."""
        self._client.close()


# --- a served vendor --------------------------------------------------------------------------------------------------


@dataclass
class Served:
    """One vendor simulator, served for one test, and the means to drive it.

    Attributes:
        harness: the vendor's harness.
        simulator: the simulator (in this process; its tables can be read directly).
        gate: the fault gate in front of it.
        root: the server's root URL (``http://127.0.0.1:<port>``).
        base_url: what the connection is configured with (root + the vendor's base path).
        control: the simulator's control plane.
        namespace: the budget key namespace of this test.
    """

    harness: VendorHarness
    simulator: Simulator
    gate: FaultGate
    root: str
    base_url: str
    control: SandboxControl
    namespace: str
    _stack: ExitStack

    @property
    def receiver_url(self) -> str:
        """Where webhooks sent by the simulator are received and kept (``gate.webhooks()``)."""
        return self.root + RECEIVER_PATH

    def settings(self, *, wrong_credentials: bool = False, **overrides: Any) -> ConnectionSettings:
        """The connection's settings, with ``overrides`` applied (``page_size``, ``overlap``, ``timeouts`` ...)."""
        settings = self.harness.settings(self.base_url, wrong_credentials=wrong_credentials)
        if not overrides:
            return settings
        changed = connection_settings(
            name=settings.name,
            system=settings.system.value,
            base_url=settings.base_url,
            secrets={
                name: settings.secrets.require(name, connection=settings.name) for name in settings.secrets.names()
            },
            **{**settings.model_dump(exclude={"name", "system", "base_url"}, exclude_unset=True), **overrides},
        )
        return changed

    def connector(self, *, wrong_credentials: bool = False, **overrides: Any) -> Connector:
        """A connector pointed at the simulator (closed when the test ends)."""
        connector = self.harness.connector(
            self.settings(wrong_credentials=wrong_credentials, **overrides), namespace=self.namespace
        )
        self._stack.callback(connector.close)
        return connector

    def tickets(self) -> dict[str, datetime]:
        """Every ticket in the simulator: external id -> last update time."""
        return self.harness.tickets(self)

    def captured_webhooks(self, *, at_least: int = 1, timeout: float = 10.0) -> list[WebhookDelivery]:
        """Flush the simulator's webhooks and return those received so far (waiting for ``at_least``)."""
        deadline = time.monotonic() + timeout
        while True:
            self.control.flush_webhooks()
            found = self.gate.webhooks()
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


# --- what a vendor provides -------------------------------------------------------------------------------------------


class VendorHarness(abc.ABC):
    """How the contract suite drives one vendor: its simulator, its connector, and how to look inside.

    Attributes:
        system: the sandbox service name, which is also the connection's ``system``.
        backfill_tickets: how many tickets the backfill test seeds ("thousands").
        count_tickets: how many tickets the request-count test seeds.
        count_page_size: its list pages' size (several pages, so per-page costs show).
        setup_requests: what a connector sends once before its first list page (a zone or codebase lookup ...).
        limited_tickets: a backfill that crosses the vendor's default limits (for the no-429 test; None: none of
            this vendor's limits are ours to cross in a test's time).
    """

    system: ClassVar[str]
    backfill_tickets: ClassVar[int] = 2500
    count_tickets: ClassVar[int] = 250
    count_page_size: ClassVar[int] = 100
    setup_requests: ClassVar[int] = 0
    limited_tickets: ClassVar[int | None] = None

    @property
    def id(self) -> str:
        """The name in test ids."""
        return self.system

    @property
    def base_path(self) -> str:
        """The API root below the server root (default: the service's ``base_path`` in the sandbox registry)."""
        return service(self.system).base_path

    # -- building (defaults work for a registered simulator and connector) --

    def build_simulator(self, *, tickets: int, seed: int = 0, limits: bool = True) -> Simulator:
        """The vendor's simulator holding ``tickets`` seed tickets, no faults (``limits`` False: rate limits lifted)."""
        return build_simulator(self.system, seed=seed, tickets=tickets, limits=limits)

    def settings(self, base_url: str, *, wrong_credentials: bool = False) -> ConnectionSettings:
        """Settings for the sandbox service at ``base_url``: its registry entry and the sandbox credentials.

        With ``wrong_credentials`` every secret credential is changed (names stay, so lookups such as Autotask's
        zone discovery still work) and the vendor must refuse with 401.
        """
        spec = service(self.system)
        entry = spec.entry(base_url, "127.0.0.1")
        secrets: dict[str, str] = {}
        for key, value in dict(entry.pop("credentials", {})).items():
            if key.endswith("_file"):
                secrets[key.removesuffix("_file")] = SECRET_FILES[PurePosixPath(value).name]
            elif not key.endswith("_env"):
                secrets[key] = str(value)
        if wrong_credentials:
            secrets = {k: (f"wrong-{v}" if is_secret_key(k) else v) for k, v in secrets.items()}
        entry.pop("mapping", None)
        return connection_settings(
            name=entry.pop("name"),
            system=entry.pop("system"),
            base_url=entry.pop("base_url"),
            secrets=secrets,
            **entry,
        )

    def connector(self, settings: ConnectionSettings, *, namespace: str) -> Connector:
        """The connector for ``settings``, through the registry (``connectors.get_connector``)."""
        return get_connector(settings, namespace=namespace)

    def missing_id(self) -> str:
        """An external id no ticket has."""
        return "987654321"

    # -- looking inside the simulator --

    @abc.abstractmethod
    def tickets(self, served: Served) -> dict[str, datetime]:
        """Every ticket the simulator holds: external id (as the connector reports it) -> last update (UTC)."""

    @abc.abstractmethod
    def change_tickets(self, served: Served, external_ids: Sequence[str]) -> None:
        """Change these tickets as a technician would, so that their update time moves forward."""

    @abc.abstractmethod
    def stored_ticket(self, served: Served, external_id: str) -> RawRecord:
        """The ticket as the simulator stores it."""

    @abc.abstractmethod
    def note_texts(self, served: Served, external_id: str) -> list[str]:
        """The text of every note (journal entry, conversation) the simulator holds for the ticket."""

    @abc.abstractmethod
    def time_entry_texts(self, served: Served, external_id: str) -> list[str]:
        """The notes of every time entry the simulator holds for the ticket."""

    def patch_landed(self, served: Served, external_id: str, patch: RawRecord) -> bool:
        """Whether ``patch`` (from ``update_patch``) shows in the stored ticket (default: every key equal)."""
        stored = self.stored_ticket(served, external_id)
        return all(stored.get(key) == value for key, value in patch.items())

    # -- what to write --

    @abc.abstractmethod
    def update_patch(self) -> RawRecord:
        """A vendor-shaped patch (as mapping.outbound would give) that the simulator accepts."""

    @abc.abstractmethod
    def new_ticket_fields(self) -> RawRecord:
        """Vendor-shaped fields of a new ticket that the simulator accepts."""

    @abc.abstractmethod
    def design_requests(self, served: Served, pages: Sequence[Sequence[str]], read: Collection[str]) -> int:
        """The requests the design allows for listing ``pages`` (external ids per page) and completing them.

        ``read`` are the tickets whose sub-resources must be read (new, or changed since the stored copy); the
        others of a page cost nothing. Count a list request per page, the vendor's bulk pages for the read tickets
        of each page, and the per-ticket reads only the vendor forces (``setup_requests`` is counted apart).
        """

    @abc.abstractmethod
    def webhook(self, served: Served, external_id: str, variant: WebhookVariant) -> WebhookDelivery | None:
        """A delivery about ``external_id`` as the vendor would POST it to psabridge.

        ``valid``: correctly signed (or carrying the right shared secret); ``wrong``: a wrong signature or secret;
        ``stale``: correctly signed but too old (None if the vendor's deliveries carry no time to judge by);
        ``missing``: no signature or secret at all. ``Served.captured_webhooks`` returns real deliveries sent by
        the simulator to ``Served.receiver_url`` (subscribe it with ``served.control.subscribe``).
        """


def serve_vendor(
    harness: VendorHarness, *, tickets: int, namespace: str, stack: ExitStack, seed: int = 0, limits: bool = True
) -> Served:
    """Build, wrap and serve the harness's simulator until ``stack`` closes (``limits`` False: rate limits lifted)."""
    simulator = harness.build_simulator(tickets=tickets, seed=seed, limits=limits)
    stack.callback(simulator.close)
    gate = FaultGate(simulator)
    root = stack.enter_context(serve(gate))
    simulator.base_url = root
    control = SandboxControl(root)
    stack.callback(control.close)
    return Served(harness, simulator, gate, root, root + harness.base_path, control, namespace, stack)


def ticket_ids(pages: Iterator[Any], connector: Connector) -> tuple[list[str], datetime | None, list[RawRecord]]:
    """Read every page: (external ids in order, the last page's watermark, the records)."""
    found: list[str] = []
    records: list[RawRecord] = []
    watermark: datetime | None = None
    for page in pages:
        records.extend(page.records)
        found.extend(connector.external_id_of(record) for record in page.records)
        watermark = page.watermark if page.watermark is not None else watermark
    return found, watermark, records


def pages_of(ids: Sequence[str], size: int) -> list[list[str]]:
    """``ids`` in groups of ``size``: the bulk reads' chunks, for a harness's ``design_requests``."""
    return [list(ids[start : start + size]) for start in range(0, len(ids), size)]


def pages_needed(rows: int, page: int) -> int:
    """Requests to read ``rows`` records ``page`` at a time (an empty answer is one request too)."""
    return max(1, -(-rows // page))
