"""Opsgenie Alert API v2: create an alert with the dedup key as its alias; acknowledge and close it by alias.

Source: Opsgenie's published description, GitHub opsgenie/opsgenie-oas (``paths/alert.yaml``, ``definitions/``; a copy
is in the sandbox package's specs/), and the Alert API docs. Auth is ``Authorization: GenieKey <api key>``. Create,
acknowledge and close are processed asynchronously: 202 with ``{"result", "took", "requestId"}``; a create for an open
alert's alias only counts the alert up, so a retried page is not a second page. ``message`` is required (130
characters), ``alias`` at most 512; close and acknowledge take ``identifierType=alias``. Errors are
``{"message", "took", "requestId"}`` (422 adds ``errors``): 400 a body that is not JSON, 401 a bad key, 422 a semantic
error, 429 too many requests. Opsgenie's REST API is shut down by its vendor on 2027-04-05 (Atlassian's notice): keep
a PagerDuty notifier ready behind the same interface.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from psabridge.connectors.budget import BudgetLimits
from psabridge.connectors.http import default_error_message, json_or_none
from psabridge.connectors.notifier import Notifier, PageEvent

__all__ = ["NOTIFIERS", "OpsgenieNotifier"]

_PRIORITY = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}
_ACTIONS = {"acknowledge": "acknowledge", "resolve": "close"}


class OpsgenieNotifier(Notifier):
    """Pages through the Alert API."""

    kinds: ClassVar[tuple[str, ...]] = ("opsgenie",)
    pages: ClassVar[bool] = True
    default_url: ClassVar[str] = "https://api.opsgenie.com"
    budget_defaults: ClassVar[BudgetLimits] = BudgetLimits(requests=60, per=60.0, concurrency=4)

    def page(self, event: PageEvent) -> dict[str, Any]:
        """Create (trigger), acknowledge or close (resolve) the alert whose alias is the dedup key."""
        key = self.settings.secrets.require("api_key", connection=self.name)
        headers = {"Authorization": f"GenieKey {key}"}
        alias = event.dedup_key[:512]
        if event.event == "trigger":
            body = {
                "message": event.summary[:130],
                "alias": alias,
                "description": event.summary,
                "priority": _PRIORITY[event.severity],
                "source": event.source,
                "details": {k: str(v) for k, v in event.details.items()},
            }
            response = self.send("POST", "/v2/alerts", json=body, headers=headers, idempotent=True)
        else:
            # The alias is a path segment: psabridge's keys hold ':' and '#', so it is percent-encoded.
            url = f"/v2/alerts/{quote(alias, safe='')}/{_ACTIONS[event.event]}"
            response = self.send(
                "POST",
                url,
                params={"identifierType": "alias"},
                json={"source": event.source},
                headers=headers,
                idempotent=True,
            )
        answer = json_or_none(response)
        return answer if isinstance(answer, dict) else {"status": response.status_code}

    def error_message(self, response: httpx.Response) -> str | None:
        """Opsgenie's ``message`` and its ``errors`` (field -> reason) for a 422."""
        body = json_or_none(response)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            errors = body.get("errors")
            extra = "; ".join(f"{k}: {v}" for k, v in errors.items()) if isinstance(errors, dict) else ""
            return f"{body['message']} ({extra})" if extra else str(body["message"])
        return default_error_message(response)


NOTIFIERS = (OpsgenieNotifier,)
