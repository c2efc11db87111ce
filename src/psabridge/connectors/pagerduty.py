"""PagerDuty Events API v2: trigger, acknowledge and resolve incidents by dedup key (POST /v2/enqueue).

The routing key (integration key) is the credential, sent in the body. A repeated trigger with the same dedup_key
adds to the open incident instead of paging again, which makes a retried page harmless. PagerDuty answers 429
without a Retry-After header; we then wait a minute.
"""

from __future__ import annotations

from typing import Any, ClassVar

from psabridge.connectors.notifier import Notifier, PageEvent

__all__ = ["NOTIFIERS", "PagerDutyNotifier"]


class PagerDutyNotifier(Notifier):
    """Pages through the Events API v2."""

    kinds: ClassVar[tuple[str, ...]] = ("pagerduty",)
    pages: ClassVar[bool] = True

    def page(self, event: PageEvent) -> dict[str, Any]:
        """POST /v2/enqueue; returns PagerDuty's answer (status, message, dedup_key)."""
        body: dict[str, Any] = {
            "routing_key": self.settings.secrets.require("routing_key", connection=self.name),
            "event_action": event.event,
            "dedup_key": event.dedup_key[:255],
        }
        if event.event == "trigger":
            body["payload"] = {
                "summary": event.summary[:1024],
                "source": event.source,
                "severity": event.severity,
                "custom_details": event.details,
            }
        answer: dict[str, Any] = self.send("POST", "/v2/enqueue", json=body).json()
        return answer


NOTIFIERS = (PagerDutyNotifier,)
