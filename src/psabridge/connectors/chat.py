"""Chat incoming webhooks: Slack (``{"text": ...}``, answers ``ok``) and Microsoft Teams (a MessageCard, answers ``1``).

The webhook URL is the credential: ``credentials: {webhook_url_env: VARIABLE}`` (or ``_file``), with ``base_url`` its
origin (https://hooks.slack.com, https://<tenant>.webhook.office.com); a sandbox channel, whose URL is no secret, may
give the whole URL as ``base_url``. The URL's path is never logged. Neither service de-duplicates, so a post is sent
once: the HTTP layer retries it only when the service certainly did not act (no connection, 429, or a 5xx answer,
which Slack and Teams give without posting), and the outbox does not post again a message whose request may have
landed (a read timeout after it was sent). Sources: api.slack.com/messaging/webhooks ("Handling errors":
``invalid_payload``, ``no_text``, 429 with Retry-After), learn.microsoft.com "Create an Incoming Webhook" (Teams).
"""

from __future__ import annotations

from typing import Any, ClassVar

from psabridge.connectors.budget import BudgetLimits
from psabridge.connectors.http import Resolution, ResolutionKey
from psabridge.connectors.notifier import Notifier

__all__ = ["NOTIFIERS", "SlackNotifier", "TeamsNotifier"]

_ANSWERED_5XX: dict[ResolutionKey, Resolution] = {
    status: Resolution.retry(f"the chat service failed ({status}) without posting", refused=True)
    for status in (500, 502, 503, 504)
}


class _Webhook(Notifier):
    """An incoming webhook: one URL, posted to."""

    budget_defaults: ClassVar[BudgetLimits] = BudgetLimits(requests=60, per=60.0, concurrency=1)  # Slack: ~1/s
    resolutions: ClassVar[dict[ResolutionKey, Resolution]] = _ANSWERED_5XX
    mask_path: ClassVar[bool] = True

    def webhook_url(self) -> str:
        """The webhook's URL: the ``webhook_url`` credential, else ``base_url``."""
        return self.settings.secrets.get("webhook_url") or self.settings.base_url

    def base_url(self) -> str:
        """The webhook URL's origin (requests may only go there)."""
        url = self.webhook_url()
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}" if rest else url

    def deliver(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the webhook, once."""
        response = self.send("POST", self.webhook_url(), json=body, idempotent=False)
        return {"status": response.status_code, "body": response.text[:100]}


class SlackNotifier(_Webhook):
    """A Slack incoming webhook."""

    kinds: ClassVar[tuple[str, ...]] = ("slack",)

    def post(self, text: str) -> dict[str, Any]:
        """POST the message as ``{"text": ...}``."""
        return self.deliver({"text": text})


class TeamsNotifier(_Webhook):
    """A Microsoft Teams (Office 365 connector) incoming webhook."""

    kinds: ClassVar[tuple[str, ...]] = ("teams",)

    def post(self, text: str) -> dict[str, Any]:
        """POST the message as a MessageCard."""
        card = {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "summary": text[:100],
            "text": text,
        }
        return self.deliver(card)


NOTIFIERS = (SlackNotifier, TeamsNotifier)
