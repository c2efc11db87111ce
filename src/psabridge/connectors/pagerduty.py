"""PagerDuty Events API v2: trigger, acknowledge and resolve alerts by dedup key (POST /v2/enqueue).

Source: PagerDuty's published description, GitHub PagerDuty/api-schema ``reference/events-v2/openapiv3.json`` (a copy
is in the sandbox package's specs/). The routing key (the integration key) is the credential, sent in the body; a
trigger needs ``payload.summary`` (at most 1024 characters), ``payload.source`` and ``payload.severity``;
``dedup_key`` (at most 255 characters) is required for acknowledge and resolve. The answer to a good event is 202
``{"status": "success", "message": "Event processed", "dedup_key": ...}``: queued, not yet delivered. The
description's retry table: 202 no; 400 (``{"status", "message", "errors": [...]}``) no; 429 yes, after some time
(PagerDuty sends no Retry-After: we wait a minute); 5xx and network errors yes. PagerDuty de-duplicates a trigger only
while an alert with its dedup key is open, so a retried page adds to the open alert instead of paging again, and a
resolved incident's key pages anew (psabridge's keys carry the ticket's life for that reason).
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from psabridge.connectors.budget import BudgetLimits
from psabridge.connectors.http import default_error_message, json_or_none
from psabridge.connectors.notifier import Notifier, PageEvent

__all__ = ["NOTIFIERS", "PagerDutyNotifier"]


class PagerDutyNotifier(Notifier):
    """Pages through the Events API v2."""

    kinds: ClassVar[tuple[str, ...]] = ("pagerduty",)
    pages: ClassVar[bool] = True
    default_url: ClassVar[str] = "https://events.pagerduty.com"
    # "We dynamically adjust our throttle limits" (the description): psabridge's own ceiling stays well under the
    # 120 events a minute per integration key PagerDuty's knowledge base names.
    budget_defaults: ClassVar[BudgetLimits] = BudgetLimits(requests=60, per=60.0, concurrency=4)

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
            body["client"] = "psabridge"
        response = self.send("POST", "/v2/enqueue", json=body, idempotent=True)
        answer = json_or_none(response)
        return answer if isinstance(answer, dict) else {"status": response.status_code}

    def error_message(self, response: httpx.Response) -> str | None:
        """PagerDuty's ``message`` and its ``errors`` list (``Event object is invalid: 'payload.summary' is ...``)."""
        body = json_or_none(response)
        if isinstance(body, dict):
            errors = [str(e) for e in body.get("errors") or [] if e]
            message = str(body.get("message") or body.get("status") or "").strip()
            if message or errors:
                return ": ".join(p for p in (message, "; ".join(errors)) if p)
        return default_error_message(response)


NOTIFIERS = (PagerDutyNotifier,)
