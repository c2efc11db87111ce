"""The notifier contract: paging services and chat channels that PageOnCall and PostToChannel actions go to.

``get_notifier(settings)`` builds the notifier of one configured ``notifiers:`` entry from
``psabridge.connectors.<kind-module>`` (PagerDuty Events v2, Opsgenie Alerts, Slack/Teams incoming webhooks), where
every vendor field and header lives. Notifiers classify HTTP outcomes like connectors do: 429 ->
RateLimitedError, 5xx and network errors -> RetryLaterError, 401/403 -> AuthError, other 4xx -> PermanentError.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import httpx

from psabridge.connectors.http import parse_retry_after
from psabridge.errors import AuthError, ConfigError, PermanentError, RateLimitedError, RetryLaterError
from psabridge.settings import NotifierSettings

__all__ = ["Notifier", "PageEvent", "get_notifier"]

_MODULES = {"pagerduty": "pagerduty", "opsgenie": "opsgenie", "slack": "chat", "teams": "chat"}


@dataclass(frozen=True)
class PageEvent:
    """An on-call page, in vendor-neutral terms.

    Attributes:
        event: trigger, acknowledge or resolve.
        dedup_key: one incident per key: a repeated trigger with the same key is not a second page.
        summary: one line for the on-call engineer.
        severity: critical, error, warning or info.
        source: where it comes from (the ticket's key).
        details: extra fields shown with the page.
    """

    event: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str
    summary: str
    severity: Literal["critical", "error", "warning", "info"] = "critical"
    source: str = "psabridge"
    details: dict[str, Any] = field(default_factory=dict)


class Notifier(abc.ABC):
    """One configured paging service or chat channel.

    Args:
        settings: the ``notifiers:`` entry.
        transport: an httpx transport (tests); None for the network.
        timeout: seconds for connect and read.
    """

    kinds: ClassVar[tuple[str, ...]]
    pages: ClassVar[bool] = False

    def __init__(
        self, settings: NotifierSettings, *, transport: httpx.BaseTransport | None = None, timeout: float = 10.0
    ) -> None:
        self.settings = settings
        self.http = httpx.Client(
            base_url=settings.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": "psabridge"},
        )

    @property
    def name(self) -> str:
        """The notifier's name from config."""
        return self.settings.name

    def page(self, event: PageEvent) -> dict[str, Any]:
        """Send a page; returns what the service answered.

        Raises:
            ConfigError: this notifier is a chat channel, not a paging service.
        """
        raise ConfigError(f"notifier {self.name!r} ({self.settings.kind}) cannot page; use a pagerduty or opsgenie one")

    def post(self, text: str) -> dict[str, Any]:
        """Post a message to the channel; returns what the service answered.

        Raises:
            ConfigError: this notifier is a paging service, not a chat channel.
        """
        raise ConfigError(f"notifier {self.name!r} ({self.settings.kind}) is not a chat channel")

    def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request and classify the outcome into the error tree."""
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise RetryLaterError(f"{self.settings.kind} timed out: {exc}", connection=self.name) from exc
        except httpx.HTTPError as exc:
            raise RetryLaterError(f"{self.settings.kind} unreachable: {exc}", connection=self.name) from exc
        status = response.status_code
        if status < 400:
            return response
        text = response.text[:300]
        if status == 429:
            wait = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
            raise RateLimitedError(
                f"{self.settings.kind} is throttling",
                retry_after=60.0 if wait is None else wait,
                connection=self.name,
                status=status,
                vendor_message=text,
            )
        if status >= 500:
            raise RetryLaterError(
                f"{self.settings.kind} failed", connection=self.name, status=status, vendor_message=text
            )
        if status in (401, 403):
            raise AuthError(
                f"{self.settings.kind} refused our credentials",
                connection=self.name,
                status=status,
                vendor_message=text,
            )
        raise PermanentError(
            f"{self.settings.kind} rejected the request", connection=self.name, status=status, vendor_message=text
        )

    def close(self) -> None:
        """Release HTTP connections."""
        self.http.close()


def get_notifier(settings: NotifierSettings, *, transport: httpx.BaseTransport | None = None) -> Notifier:
    """The notifier of one ``notifiers:`` entry.

    Raises:
        ConfigError: no notifier exists for its kind, or a credential is missing.
    """
    module_name = _MODULES.get(settings.kind)
    if module_name is None:
        raise ConfigError(f"notifier kind {settings.kind!r} is not supported", connection=settings.name)
    module = importlib.import_module(f"{__package__}.{module_name}")
    for cls in module.NOTIFIERS:
        if settings.kind in cls.kinds:
            notifier: Notifier = cls(settings, transport=transport)
            return notifier
    raise ConfigError(f"notifier kind {settings.kind!r} is not supported", connection=settings.name)
