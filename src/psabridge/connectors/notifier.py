"""The notifier contract: paging services and chat channels that PageOnCall and PostToChannel actions go to.

``get_notifier(settings)`` builds the notifier of one configured ``notifiers:`` entry from
``psabridge.connectors.<kind-module>`` (PagerDuty Events v2, Opsgenie Alerts, Slack/Teams incoming webhooks), where
every vendor field and header lives. Paging services sit behind one interface, ``Notifier.page``, so a deployment can
move from Opsgenie to PagerDuty by changing the ``pager`` it names: Opsgenie's REST API is shut down by its vendor on
2027-04-05 (Atlassian's end-of-support notice), PagerDuty's Events API v2 is not.

Every request goes through the shared HTTP layer (``connectors/http.py``): its resolution table classifies the
answer (202 queued; 429 rate limited; 5xx and network errors retried with backoff; 400 and other 4xx refused for good
with the vendor's own message, which the outbox turns into a dead letter), the notifier's rate budget is held, and
each request is logged with secrets masked (a chat webhook's whole path is its secret). A page is sent as an
idempotent request (the dedup key or alias makes a repeat harmless), so the layer retries it inline; a channel post
is not (neither Slack nor Teams de-duplicates), so it is retried only when the service certainly did not act on it.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx

from psabridge.connectors.budget import BudgetLimits
from psabridge.connectors.http import (
    DefaultHooks,
    HttpClient,
    HttpRuntime,
    Resolution,
    ResolutionKey,
    RetryPolicy,
    build_http_client,
)
from psabridge.errors import ConfigError, RateLimitedError
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


class Notifier(DefaultHooks, abc.ABC):
    """One configured paging service or chat channel, over the shared HTTP layer.

    Class attributes a vendor sets:
        kinds: the ``kind`` values of ``notifiers:`` it serves.
        pages: it is a paging service (else a chat channel).
        default_url: the vendor's API root, used when the settings give no ``base_url``.
        budget_defaults: the vendor's rate limit, used where ``rate_budget`` in the settings is silent.
        resolutions: additions to the HTTP layer's resolution table.
        rate_limit_wait: seconds to wait after a 429 that names no Retry-After.

    Args:
        settings: the ``notifiers:`` entry.
        runtime: broker URL (a shared budget with Redis), transport (tests), namespace, sleep and clocks.
    """

    kinds: ClassVar[tuple[str, ...]]
    pages: ClassVar[bool] = False
    default_url: ClassVar[str] = ""
    budget_defaults: ClassVar[BudgetLimits] = BudgetLimits()
    resolutions: ClassVar[Mapping[ResolutionKey, Resolution]] = {}
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=4, max_elapsed=30.0, inline_max_wait=10.0)
    rate_limit_wait: ClassVar[float] = 60.0
    mask_path: ClassVar[bool] = False

    def __init__(self, settings: NotifierSettings, *, runtime: HttpRuntime | None = None) -> None:
        self.settings = settings
        base = self.base_url()
        if not base:
            raise ConfigError(
                f"notifier {settings.name!r} ({settings.kind}) needs a base_url", connection=settings.name
            )
        self.http: HttpClient = build_http_client(
            settings,
            auth=None,
            hooks=self,
            resolutions=self.resolutions,
            budget_defaults=self.budget_defaults,
            retry=self.retry_policy,
            base_url=base,
            runtime=runtime,
            mask_path=self.mask_path,
        )

    @property
    def name(self) -> str:
        """The notifier's name from config."""
        return self.settings.name

    def base_url(self) -> str:
        """The API root: the settings' ``base_url``, else the vendor's."""
        return self.settings.base_url or self.default_url

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

    def send(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        """Send a request through the HTTP layer; a 429 that names no Retry-After waits ``rate_limit_wait``."""
        try:
            return self.http.request(method, url, idempotent=idempotent, **kwargs)
        except RateLimitedError as exc:
            if exc.retry_after > 0:
                raise
            raise RateLimitedError(
                exc.message,
                retry_after=self.rate_limit_wait,
                connection=exc.connection,
                status=exc.status,
                vendor_message=exc.vendor_message,
                details=exc.details,
            ) from exc

    def close(self) -> None:
        """Release HTTP connections."""
        self.http.close()


def get_notifier(settings: NotifierSettings, *, runtime: HttpRuntime | None = None) -> Notifier:
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
            notifier: Notifier = cls(settings, runtime=runtime)
            return notifier
    raise ConfigError(f"notifier kind {settings.kind!r} is not supported", connection=settings.name)
