"""Opsgenie Alert API v2: create an alert with the dedup key as its alias; acknowledge and close it by alias.

Auth is ``Authorization: GenieKey <api key>``. Opsgenie processes requests asynchronously and answers 202 with a
request id; a create for an open alert's alias only counts the alert up, so a retried page is not a second page.
"""

from __future__ import annotations

from typing import Any, ClassVar

from psabridge.connectors.notifier import Notifier, PageEvent

__all__ = ["NOTIFIERS", "OpsgenieNotifier"]

_PRIORITY = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}
_ACTIONS = {"acknowledge": "acknowledge", "resolve": "close"}


class OpsgenieNotifier(Notifier):
    """Pages through the Alert API."""

    kinds: ClassVar[tuple[str, ...]] = ("opsgenie",)
    pages: ClassVar[bool] = True

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
            answer: dict[str, Any] = self.send("POST", "/v2/alerts", json=body, headers=headers).json()
            return answer
        url = f"/v2/alerts/{alias}/{_ACTIONS[event.event]}"
        answer = self.send(
            "POST", url, params={"identifierType": "alias"}, json={"source": event.source}, headers=headers
        ).json()
        return answer


NOTIFIERS = (OpsgenieNotifier,)
