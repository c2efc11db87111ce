"""ConnectWise callbacks: ``x-content-signature`` checked with the signing key ConnectWise serves, fetched safely.

Sources (VENDOR-APIS.md 1.7 and its shorthand): Nango ``connectwise-psa-webhook-routing.ts`` and its unit test,
CWREST ``src/utils/Callback.ts``, and a public Go connector's test of the same endpoint.

- A callback is signed ``x-content-signature: base64(HMAC-SHA256(key = SHA256(signing key), raw body))``; its
  ``Metadata.key_url`` names where the key is: ``https://<host>/<codebase>/system/callbackkey/index.rails?id=<key
  id>`` (VENDOR-APIS 1.7's example; Nango's test has the same path, once with a doubled slash after the codebase; the
  Go test adds ``companyName``). ``GET`` on it answers ``{"signing_key": "..."}`` without credentials.
- Until the signature checks out, everything in the request is the caller's. So the key URL must be on the configured
  scheme, host *and port* (``credentials.webhook_host``, default the API host), on that path with only those
  parameters, and the request is rebuilt from the configured origin rather than sent where the URL says (an SSRF
  guard that does not depend on how a URL parser reads an odd URL). The signature header must be base64 of 32 bytes
  before any fetch.
- Keys are cached by key id (LRU, ``KEY_CACHE`` of them); a key id ConnectWise does not know is remembered for
  ``UNKNOWN_FOR`` seconds, so repeating it fetches nothing. Concurrent requests for one key id share one fetch.
- Fetches have a budget of their own, ``options.callback_key_fetches_per_minute`` (default 10) per connection,
  shared through Redis like every budget when the broker is Redis; never the ticket API's budget, and never waited
  for: beyond it a request is refused as unverifiable (401) without a fetch. A flood of forged callbacks therefore
  costs ConnectWise at most that many requests a minute, and real callbacks, whose keys are cached, are not held up.
- A cached key that does not match is fetched again (ConnectWise may have rotated it) at most once per
  ``REFRESH_AFTER`` seconds per key id, within the same budget.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from psabridge.connectors.budget import BudgetLimits, budget_for
from psabridge.connectors.http import HttpClient, HttpRuntime, RetryPolicy
from psabridge.connectors.webhook_input import header_value
from psabridge.errors import ConfigError, PsaBridgeError, RateLimitedError, RetryLaterError, WebhookVerificationError
from psabridge.log import get_logger
from psabridge.settings import ConnectionSettings

__all__ = [
    "KEY_CACHE",
    "SIGNATURE_HEADER",
    "CallbackKeys",
    "KeyOrigin",
    "KeyTarget",
    "given_signature",
    "key_target",
    "signature",
]

_log = get_logger("psabridge.connectors.connectwise")

SIGNATURE_HEADER = "x-content-signature"
KEY_CACHE = 64
"""Signing keys kept, by key id (one per registered callback: a handful per instance)."""
UNKNOWN_CACHE = 256
UNKNOWN_FOR = 600.0
"""Seconds a key id ConnectWise answered 404 (or no key) for is refused without asking again."""
REFRESH_AFTER = 300.0
"""Seconds before a cached key that does not match may be fetched again (key rotation)."""
DEFAULT_FETCHES_PER_MINUTE = 10
FETCH_TIMEOUT = 5.0
"""Seconds at most for one key fetch (a receiver thread waits on it)."""
_KEY_PATH = re.compile(r"/(?P<codebase>[A-Za-z0-9][A-Za-z0-9_.-]{0,39})/system/callbackkey/index\.rails")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_COMPANY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MAX_KEY_URL = 2048
_DIGEST = 32  # bytes of an HMAC-SHA256


def signature(body: bytes, signing_key: str) -> str:
    """The ``x-content-signature`` of a callback body: base64(HMAC-SHA256(SHA256(signing key), body))."""
    return base64.b64encode(_digest(body, signing_key)).decode()


def _digest(body: bytes, signing_key: str) -> bytes:
    key = hashlib.sha256(signing_key.encode()).digest()
    return hmac.new(key, body, hashlib.sha256).digest()


def given_signature(headers: Mapping[str, str], connection: str) -> bytes:
    """The 32 bytes the callback's ``x-content-signature`` claims, checked before anything is fetched.

    Raises:
        WebhookVerificationError: missing, not ASCII, not base64, or not 32 bytes long.
    """
    value = (header_value(headers, SIGNATURE_HEADER) or "").strip()
    if not value:
        raise WebhookVerificationError("the callback has no x-content-signature header", connection=connection)
    try:
        if len(value) > 100 or not value.isascii():
            raise ValueError(value[:20])
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("x-content-signature is not base64", connection=connection) from exc
    if len(digest) != _DIGEST:
        raise WebhookVerificationError("x-content-signature is not an HMAC-SHA256", connection=connection)
    return digest


@dataclass(frozen=True)
class KeyOrigin:
    """Where signing keys may be fetched from: the configured scheme, host and port."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, base_url: str, webhook_host: str | None) -> KeyOrigin:
        """The API's scheme with ``webhook_host`` (``host`` or ``host:port``); without it, the API's host and port.

        A ``webhook_host`` without a port has the API's port when it is the API's host, else the scheme's default.

        Raises:
            ConfigError: ``webhook_host`` is not a host name with an optional port.
        """
        api = urlsplit(base_url)
        scheme = api.scheme.lower()
        try:
            given = urlsplit(f"//{webhook_host.strip()}") if webhook_host else api
            host, port = (given.hostname or "").lower(), given.port
            if not host or (webhook_host and (given.username is not None or given.path or given.query)):
                raise ValueError(webhook_host)
        except ValueError as exc:
            raise ConfigError(f"credentials.webhook_host {webhook_host!r} is not host[:port]") from exc
        if port is None:
            port = api.port if host == (api.hostname or "").lower() and api.port else _default_port(scheme)
        return cls(scheme, host, port)

    @property
    def url(self) -> str:
        """``scheme://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class KeyTarget:
    """A signing key request rebuilt from a checked ``key_url``: the key id, the path and the parameters to send."""

    key_id: str
    path: str
    params: tuple[tuple[str, str], ...]


def key_target(key_url: Any, origin: KeyOrigin, connection: str) -> KeyTarget:
    """The key request a callback's ``Metadata.key_url`` names, if it is one psabridge may make.

    Raises:
        WebhookVerificationError: not a string URL on ``origin`` (scheme, host and port), with user info or a
            fragment, off the key path, or with parameters other than one ``id`` (and one ``companyName``).
    """

    def refuse(why: str) -> WebhookVerificationError:
        return WebhookVerificationError(f"refusing the callback's key_url: {why}", connection=connection)

    if not isinstance(key_url, str):
        raise refuse("not a string")
    if len(key_url) > _MAX_KEY_URL or not key_url.isascii() or not key_url.isprintable():
        raise refuse("not a plain URL")
    try:
        parts = urlsplit(key_url)
        port = parts.port or _default_port(parts.scheme.lower())
    except ValueError as exc:
        raise refuse("not a URL") from exc
    if (parts.scheme.lower(), (parts.hostname or "").lower(), port) != (origin.scheme, origin.host, origin.port):
        raise refuse(f"not on the configured webhook_host {origin.url}")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise refuse("user info or a fragment")
    path = re.sub("/{2,}", "/", parts.path)
    if _KEY_PATH.fullmatch(path) is None:
        raise refuse("not the callback key path /<codebase>/system/callbackkey/index.rails")
    params = parse_qsl(parts.query, keep_blank_values=True)
    names = [name for name, _ in params]
    if sorted(names) not in (["id"], ["companyName", "id"]):
        raise refuse("parameters other than one id (and one companyName)")
    found = dict(params)
    if not _KEY_ID.fullmatch(found["id"]) or ("companyName" in found and not _COMPANY.fullmatch(found["companyName"])):
        raise refuse("an odd key id or company name")
    return KeyTarget(key_id=found["id"], path=path, params=tuple(params))


class CallbackKeys:
    """The signing keys of one connection's callbacks: checked URLs, a bounded cache, a fetch budget of their own.

    Args:
        settings: the connection (``base_url``, ``credentials.webhook_host``, ``timeouts``).
        runtime: transport, broker (a shared budget with Redis), namespace and clock, as the API client's.
        fetches_per_minute: the key fetches allowed a minute (``options.callback_key_fetches_per_minute``).

    Raises:
        ConfigError: ``webhook_host`` is invalid.
    """

    def __init__(self, settings: ConnectionSettings, runtime: HttpRuntime, *, fetches_per_minute: int) -> None:
        self.connection = settings.name
        self.origin = KeyOrigin.of(settings.base_url, settings.secrets.get("webhook_host"))
        self.fetches_per_minute = fetches_per_minute
        self._clock: Callable[[], float] = runtime.clock
        budget = budget_for(
            f"{settings.name}:callback-keys",
            BudgetLimits(requests=self.fetches_per_minute, per=60.0),
            broker_url=runtime.broker_url,
            namespace=runtime.namespace,
            max_wait=0.0,  # never queue behind the budget: a request beyond it is refused at once
            sleep=runtime.sleep,
            clock=runtime.clock,
        )
        timeout = min(FETCH_TIMEOUT, settings.timeouts.read)
        self.client = HttpClient(
            connection=settings.name,
            base_url=self.origin.url,
            auth=None,  # ConnectWise serves keys without credentials (Nango, CWREST): none are sent
            timeout=httpx.Timeout(timeout, connect=min(FETCH_TIMEOUT, settings.timeouts.connect)),
            budget=budget,
            retry=RetryPolicy(max_attempts=1, max_elapsed=2 * FETCH_TIMEOUT, inline_max_wait=0.0),
            runtime=runtime,
        )
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key id -> (key, fetched at)
        self._unknown: OrderedDict[str, float] = OrderedDict()  # key id -> refused until
        self._fetching: dict[str, threading.Event] = {}

    def verify(self, body: bytes, given: bytes, target: KeyTarget) -> None:
        """Check ``given`` (the signature's 32 bytes) over ``body`` with the key of ``target``.

        Raises:
            WebhookVerificationError: the signature does not match, or the key cannot be had (unknown key id, the
                fetch budget is spent, ConnectWise did not answer).
            RetryLaterError: the shared fetch budget (Redis) is unreachable: ours to fix, the vendor should retry.
        """
        key, fetched = self._key(target, replace=False)
        if hmac.compare_digest(_digest(body, key), given):
            return
        if not fetched and self._may_refresh(target.key_id):
            key, _ = self._key(target, replace=True)
            if hmac.compare_digest(_digest(body, key), given):
                return
        raise WebhookVerificationError("the callback's signature is wrong", connection=self.connection)

    def cached(self) -> int:
        """How many keys are cached."""
        with self._lock:
            return len(self._keys)

    def close(self) -> None:
        """Close the key client."""
        self.client.close()

    # -- internals ---------------------------------------------------------------------------------------------------

    def _may_refresh(self, key_id: str) -> bool:
        with self._lock:
            cached = self._keys.get(key_id)
            return cached is None or self._clock() - cached[1] >= REFRESH_AFTER

    def _key(self, target: KeyTarget, *, replace: bool) -> tuple[str, bool]:
        """The key of ``target`` and whether this call fetched it; one fetch at a time per key id."""
        key_id = target.key_id
        with self._lock:
            cached = self._keys.get(key_id)
            if cached is not None and not replace:
                self._keys.move_to_end(key_id)
                return cached[0], False
            until = self._unknown.get(key_id)
            if until is not None and self._clock() < until:
                raise WebhookVerificationError(f"unknown callback key id {key_id}", connection=self.connection)
            running = self._fetching.get(key_id)
            if running is None:
                self._fetching[key_id] = threading.Event()
        if running is not None:
            # Another request is fetching this very key: use its result rather than fetch it again.
            running.wait(2 * FETCH_TIMEOUT)
            with self._lock:
                cached = self._keys.get(key_id)
            if cached is None:
                raise WebhookVerificationError(
                    f"the signing key {key_id} could not be fetched", connection=self.connection
                )
            return cached[0], False
        try:
            key = self._fetch(target)
        finally:
            with self._lock:
                self._fetching.pop(key_id).set()
        return key, True

    def _fetch(self, target: KeyTarget) -> str:
        key_id = target.key_id
        try:
            reply = self.client.request_json("GET", target.path.lstrip("/"), params=dict(target.params))
        except RateLimitedError as exc:
            if exc.details.get("source") != "budget":
                raise self._unverifiable(key_id, "ConnectWise rate-limited the key request") from exc
            raise WebhookVerificationError(
                f"not fetching signing key {key_id}: the limit of {self.fetches_per_minute} key fetches a minute "
                "is reached",
                connection=self.connection,
            ) from exc
        except RetryLaterError as exc:
            if exc.details.get("source") == "budget":
                raise  # the shared budget's store is down: ours to fix, so the vendor should send it again
            raise self._unverifiable(key_id, f"the key request failed ({exc.message})") from exc
        except PsaBridgeError as exc:  # 4xx: ConnectWise has no such key
            self._remember_unknown(key_id)
            raise self._unverifiable(key_id, "ConnectWise does not know the key id") from exc
        except httpx.HTTPError as exc:
            raise self._unverifiable(key_id, f"the key request failed ({type(exc).__name__})") from exc
        found = reply.data.get("signing_key") if isinstance(reply.data, dict) else None
        if not isinstance(found, str) or not found:
            self._remember_unknown(key_id)
            raise self._unverifiable(key_id, "the key URL answered without a signing_key")
        with self._lock:
            self._keys[key_id] = (found, self._clock())
            self._keys.move_to_end(key_id)
            while len(self._keys) > KEY_CACHE:
                self._keys.popitem(last=False)
            self._unknown.pop(key_id, None)
        return found

    def _remember_unknown(self, key_id: str) -> None:
        with self._lock:
            self._unknown[key_id] = self._clock() + UNKNOWN_FOR
            self._unknown.move_to_end(key_id)
            while len(self._unknown) > UNKNOWN_CACHE:
                self._unknown.popitem(last=False)

    def _unverifiable(self, key_id: str, why: str) -> WebhookVerificationError:
        _log.warning("connectwise.callback_key_unavailable", connection=self.connection, key_id=key_id, reason=why)
        return WebhookVerificationError(f"signing key {key_id} not available: {why}", connection=self.connection)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
