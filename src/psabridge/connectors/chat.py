"""Chat incoming webhooks: Slack (``{"text": ...}``, answers ``ok``) and Microsoft Teams (a MessageCard, answers ``1``).

The webhook URL is the ``base_url`` of the notifier (it is the credential: keep it in the environment for real
channels). Neither service de-duplicates, so a message carries psabridge's marker for people to spot a repeat.
"""

from __future__ import annotations

from typing import Any, ClassVar

from psabridge.connectors.notifier import Notifier

__all__ = ["NOTIFIERS", "SlackNotifier", "TeamsNotifier"]


class SlackNotifier(Notifier):
    """A Slack incoming webhook."""

    kinds: ClassVar[tuple[str, ...]] = ("slack",)

    def post(self, text: str) -> dict[str, Any]:
        """POST the message as ``{"text": ...}``."""
        response = self.send("POST", self.settings.base_url, json={"text": text})
        return {"status": response.status_code, "body": response.text[:100]}


class TeamsNotifier(Notifier):
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
        response = self.send("POST", self.settings.base_url, json=card)
        return {"status": response.status_code, "body": response.text[:100]}


NOTIFIERS = (SlackNotifier, TeamsNotifier)
