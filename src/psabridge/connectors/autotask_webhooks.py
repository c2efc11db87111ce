"""Autotask webhooks: verify and read a callout, and register the ticket and note webhooks that send them.

A callout is ``{"Action","Guid","EntityType","Id","Fields","EventTime","SequenceNumber","PersonID"}`` (Nango
``webhooks.mdx``; n8nAT ``types/webhook.ts``) signed ``X-Hook-Signature: sha1=<base64(HMAC-SHA1(SecretKey, raw
body))>`` (ATDOCS SecretKeyPayloadVerification). ``Guid`` names the webhook, not the event: with ``SequenceNumber``
it identifies one delivery. A webhook only calls out once a field is subscribed (Nango step 4); changes made by an
excluded resource send nothing, which is how our own writes are kept from echoing back (ATPM webhook step 4).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from psabridge.connectors.base import WebhookEvent
from psabridge.connectors.http import HttpClient
from psabridge.connectors.webhook_input import delivery_token, header_value, integer_id, json_body, same_secret
from psabridge.errors import PermanentError, WebhookVerificationError

__all__ = ["NOTE_FIELDS", "TICKET_FIELDS", "read_delivery", "register", "registered", "signature"]

TICKET_FIELDS: tuple[str, ...] = (
    "status", "priority", "queueID", "assignedResourceID", "title", "description", "issueType", "subIssueType",
    "ticketType", "source", "companyID", "contactID", "dueDateTime", "completedDate", "resolution",
)  # fmt: skip
"""Ticket fields whose change calls out (what psabridge maps)."""
NOTE_FIELDS: tuple[str, ...] = ("description",)
ALWAYS: Mapping[str, tuple[str, ...]] = {"Ticket": ("ticketNumber",), "TicketNote": ("ticketID",)}
"""Fields every callout shows: a note's callout must name its ticket."""


def signature(secret: str, body: bytes) -> str:
    """The X-Hook-Signature Autotask sends for ``body``."""
    return "sha1=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode("ascii")


def read_delivery(
    headers: Mapping[str, str], body: bytes, *, secret: str, now: datetime, max_age: float, connection: str
) -> WebhookEvent:
    """Verify a callout over its raw body and say which ticket it concerns (the body is a hint, never data).

    Raises:
        WebhookVerificationError: the signature is missing or wrong, or the callout is older than ``max_age``.
        PermanentError: the signed body is not a ticket or ticket-note callout (or its EventTime is not a time).
    """
    given = header_value(headers, "x-hook-signature")
    if not given or not given.strip():
        raise WebhookVerificationError("no X-Hook-Signature header", connection=connection)
    if not same_secret(given, signature(secret, body)):
        raise WebhookVerificationError("X-Hook-Signature does not match the body", connection=connection)
    try:
        payload = json_body(body)
        entity, action, record_id = payload["EntityType"], payload["Action"], payload["Id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PermanentError("not an Autotask webhook callout", connection=connection) from exc
    if not isinstance(entity, str) or not isinstance(action, str):
        raise PermanentError("EntityType and Action of the callout are not text", connection=connection)
    occurred = _event_time(payload.get("EventTime"), connection)
    # Autotask retries a failed callout for two minutes (ATDOCS Webhooks_Error_Handling); much older is a replay.
    if occurred is not None and (now - occurred).total_seconds() > max_age:
        raise WebhookVerificationError(f"stale callout: sent at {occurred.isoformat()}", connection=connection)
    event: Literal["created", "updated", "deleted", "note"]
    if entity == "Ticket":
        external_id = integer_id(record_id)
        event = "created" if action == "Create" else "deleted" if action == "Delete" else "updated"
    elif entity == "TicketNote":
        fields = payload.get("Fields")
        ticket = fields.get("TicketID") if isinstance(fields, dict) else None
        if ticket is None:
            raise PermanentError(
                "a TicketNote webhook must show TicketID (make it an always-displayed field)", connection=connection
            )
        external_id, event = integer_id(ticket), "note"
    else:
        raise PermanentError(f"not a ticket webhook (EntityType {entity[:40]!r})", connection=connection)
    if external_id is None:
        raise PermanentError(f"the {entity} callout names no ticket id", connection=connection)
    guid, sequence = delivery_token(payload.get("Guid")), integer_id(payload.get("SequenceNumber"))
    delivery = f"{guid}:{sequence}" if guid and sequence is not None else hashlib.sha256(body).hexdigest()
    return WebhookEvent(external_id, event, delivery_id=delivery, occurred_at=occurred)


def register(
    api: HttpClient,
    *,
    url: str,
    deactivation_url: str,
    secret: str,
    exclude: Sequence[int],
    name: str = "psabridge",
) -> dict[str, Any]:
    """Create or update a TicketWebhook and a TicketNoteWebhook calling ``url`` (ATPM webhook steps 1-4).

    A webhook of the same name is updated (PATCH with its id: URL, secret, active) instead of created again. Each
    gets the subscribed and always-shown fields it lacks and the ``exclude`` resources (our integration user) it
    lacks, so changes we make ourselves send no callout. Returns ``{"Ticket": {"id", "guid", "ready", "change",
    ...}, "TicketNote": {...}}``.
    """
    made: dict[str, Any] = {}
    for entity, subscribed in (("Ticket", TICKET_FIELDS), ("TicketNote", NOTE_FIELDS)):
        hooks = f"{entity}Webhooks"
        title = f"{name} {entity.lower()}s"
        body = {
            "IsActive": True,
            "Name": title,
            "WebhookUrl": url,
            "DeactivationUrl": deactivation_url,
            "SecretKey": secret,
            "IsSubscribedToCreateEvents": True,
            "IsSubscribedToUpdateEvents": True,
            "IsSubscribedToDeleteEvents": entity == "Ticket",
            "SendThresholdExceededNotification": True,
        }
        existing = _named(api, hooks, title)
        if existing is None:
            webhook_id = int(api.request_json("POST", hooks, json=body).data["itemId"])
            change = "created"
        else:
            webhook_id = int(existing["id"])
            api.request_json("PATCH", hooks, json={"id": webhook_id, **body})
            change = "updated"
        _ensure_fields(api, entity, webhook_id, subscribed)
        have = {int(r.get("resourceID") or 0) for r in _items(api, f"{hooks}/{webhook_id}/ExcludedResources")}
        for resource in (r for r in exclude if r not in have):
            excluded = {"ResourceID": resource, "WebhookID": webhook_id}
            api.request_json("POST", f"{hooks}/{webhook_id}/ExcludedResources", json=excluded)
        item = api.request_json("GET", f"{hooks}/{webhook_id}").data.get("item") or {}
        made[entity] = {
            "id": webhook_id, "guid": item.get("webhookGUID"), "ready": item.get("isReady"), "change": change,
            "url": item.get("webhookUrl"), "active": item.get("isActive"),
            "excluded_resources": sorted({*have, *exclude}),
        }  # fmt: skip
    return made


def registered(api: HttpClient, name: str = "psabridge") -> list[dict[str, Any]]:
    """The ticket and note webhooks ``register`` made (by name), as Autotask shows them (the secret never is)."""
    found: list[dict[str, Any]] = []
    for entity in ("Ticket", "TicketNote"):
        hooks = f"{entity}Webhooks"
        hook = _named(api, hooks, f"{name} {entity.lower()}s")
        if hook is None:
            continue
        fields = _items(api, f"{hooks}/{hook['id']}/Fields")
        excluded = _items(api, f"{hooks}/{hook['id']}/ExcludedResources")
        found.append({
            "name": f"{entity} webhook", "id": hook["id"], "url": hook.get("webhookUrl"),
            "active": hook.get("isActive"), "ready": hook.get("isReady"), "guid": hook.get("webhookGUID"),
            "fields": len(fields), "excluded_resources": sorted(int(r.get("resourceID") or 0) for r in excluded),
        })  # fmt: skip
    return found


def _named(api: HttpClient, hooks: str, title: str) -> dict[str, Any] | None:
    query = {"filter": [{"op": "eq", "field": "name", "value": title}]}
    items = api.request_json("POST", f"{hooks}/query", json=query).data.get("items") or []
    return dict(items[0]) if items else None


def _items(api: HttpClient, path: str) -> list[dict[str, Any]]:
    return [dict(item) for item in api.request_json("GET", path).data.get("items") or []]


def _ensure_fields(api: HttpClient, entity: str, webhook_id: int, subscribed: Sequence[str]) -> None:
    """Add the fields a webhook lacks (FieldID from the fieldID picklist of <Entity>WebhookFields, as n8nAT reads)."""
    hooks = f"{entity}Webhooks"
    info = api.request_json("GET", f"{entity}WebhookFields/entityInformation/fields").data
    ids = {
        str(v["label"]).casefold(): int(v["value"])
        for f in info.get("fields") or ()
        if f.get("name") == "fieldID"
        for v in f.get("picklistValues") or ()
    }
    have = {int(f.get("fieldID") or 0) for f in _items(api, f"{hooks}/{webhook_id}/Fields")}
    for field in dict.fromkeys((*subscribed, *ALWAYS[entity])):
        if field.casefold() not in ids:
            raise PermanentError(f"{entity} webhooks cannot watch {field}")
        if ids[field.casefold()] in have:
            continue
        fields = {
            "FieldID": ids[field.casefold()],
            "IsSubscribedField": field in subscribed,
            "IsDisplayAlwaysField": field in ALWAYS[entity],
            "WebhookID": webhook_id,
        }
        api.request_json("POST", f"{hooks}/{webhook_id}/Fields", json=fields)


def _event_time(value: Any, connection: str) -> datetime | None:
    """The callout's ``EventTime`` (ISO 8601, UTC when it names no offset), None when absent.

    Raises:
        PermanentError: the signed callout carries an EventTime that is not a time.
    """
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise TypeError(type(value).__name__)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError) as exc:
        shown = str(value)[:40]
        raise PermanentError(f"the callout's EventTime {shown!r} is not a time", connection=connection) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
