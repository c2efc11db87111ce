r"""Autotask webhooks: TicketWebhooks and TicketNoteWebhooks with their Fields and ExcludedResources, and the callouts.

Sources: ATPM webhook steps 1-4 and ATDOCS REST_WebhooksEntity / REST_WebhookFieldsEntity (create the webhook with
SecretKey, add fields, exclude resources; ``isReady`` once a subscribed field exists: Nango ``webhooks.mdx`` step 4);
the payload ``{"Action","Guid","EntityType","Id","Fields","EventTime","SequenceNumber","PersonID"}`` with PascalCase
field names (Nango ``webhooks.mdx``; n8nAT ``types/webhook.ts``); ``X-Hook-Signature: sha1=<base64(HMAC-SHA1(SecretKey,
raw body))>`` (ATDOCS SecretKeyPayloadVerification). The body is written by .NET's JSON encoder, which escapes
``& < > ' " ` +`` and every non-ASCII character as ``\uXXXX``: n8nAT ``helpers/webhook/signature.ts`` has to
rebuild exactly that form to check signatures of re-serialised bodies. A change made by an excluded resource sends
no callout; Autotask retries a failed callout five times within two minutes (ATDOCS Webhooks_Error_Handling).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psabridge_sandbox.autotask_data import WEBHOOK_FIELD_IDS, format_time
from psabridge_sandbox.dispatcher import Subscription, WebhookDispatcher
from psabridge_sandbox.errors import VendorError

__all__ = ["RETRY_DELAYS", "Webhook", "WebhookRegistry", "dotnet_json", "pascal", "sign", "signer"]

RETRY_DELAYS = (10.0, 20.0, 30.0, 30.0, 30.0)
"""Five retries within two minutes, then the callout is dropped (ATDOCS Webhooks_Error_Handling)."""

_ESCAPED = {
    "&": "\\u0026",
    "<": "\\u003C",
    ">": "\\u003E",
    "'": "\\u0027",
    '"': "\\u0022",
    "`": "\\u0060",
    "+": "\\u002B",
}
_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in _ESCAPED:
            out.append(_ESCAPED[char])
        elif char in _SHORT:
            out.append(_SHORT[char])
        elif ord(char) < 0x20 or ord(char) > 0x7E:
            units = char.encode("utf-16-be")  # characters beyond the BMP become a surrogate pair, as in .NET
            out.extend(f"\\u{units[i : i + 2].hex().upper()}" for i in range(0, len(units), 2))
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def dotnet_json(value: Any) -> str:
    r"""Compact JSON as .NET's default encoder writes it (HTML-sensitive and non-ASCII characters as ``\uXXXX``)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_string(str(k))}:{dotnet_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Iterable):
        return "[" + ",".join(dotnet_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def sign(body: bytes, secret: str) -> str:
    """The X-Hook-Signature value: ``sha1=`` and the base64 HMAC-SHA1 of the raw body under the secret key."""
    digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(digest).decode("ascii")


def pascal(name: str) -> str:
    """A field name as webhook payloads spell it (``ticketNumber`` -> ``TicketNumber``)."""
    return name[:1].upper() + name[1:]


@dataclass
class Webhook:
    """One TicketWebhook or TicketNoteWebhook with its fields and excluded resources."""

    id: int
    entity: str  # "Ticket" or "TicketNote"
    guid: str
    data: dict[str, Any]  # the webhook's own properties (camelCase), secretKey included
    fields: dict[int, dict[str, Any]] = field(default_factory=dict)  # field row id -> TicketWebhookField
    excluded: dict[int, dict[str, Any]] = field(default_factory=dict)  # row id -> ExcludedResource
    sequence: int = 0

    @property
    def ready(self) -> bool:
        """A webhook calls out only once at least one field is subscribed."""
        return any(f["isSubscribedField"] for f in self.fields.values())

    def names(self, *, subscribed: bool = False, always: bool = False) -> set[str]:
        """Field names that are subscribed, or always displayed."""
        by_id = {number: name for name, number in WEBHOOK_FIELD_IDS[self.entity].items()}
        return {
            by_id[f["fieldID"]]
            for f in self.fields.values()
            if (subscribed and f["isSubscribedField"]) or (always and f["isDisplayAlwaysField"])
        }

    def render(self) -> dict[str, Any]:
        """The webhook as GET returns it (the secret key is never shown back)."""
        return {"id": self.id, **self.data, "secretKey": None, "isReady": self.ready, "webhookGUID": self.guid}


_BOOLEAN_PROPS = (
    "isActive",
    "isSubscribedToCreateEvents",
    "isSubscribedToUpdateEvents",
    "isSubscribedToDeleteEvents",
    "sendThresholdExceededNotification",
)
_TEXT_PROPS = ("name", "webhookUrl", "deactivationUrl", "secretKey", "notificationEmailAddress")


class WebhookRegistry:
    """The database's webhooks, each backed by a dispatcher subscription, and the callouts they make."""

    def __init__(self, dispatcher: WebhookDispatcher, *, seed: int = 0) -> None:
        self.dispatcher = dispatcher
        self.hooks: dict[int, Webhook] = {}
        self._rng = random.Random(f"psabridge-autotask-webhooks:{seed}")
        self._next_id = 1
        self._next_child = 1
        self._sequence: dict[str, int] = {}  # ad-hoc (control-plane) receivers: their own sequence numbers
        self._lock = threading.Lock()

    # --- the REST entity ---------------------------------------------------------------------------------------------

    def create(self, entity: str, body: Mapping[str, Any], owner: int) -> Webhook:
        """POST /<Entity>Webhooks."""
        props = {str(k)[:1].lower() + str(k)[1:]: v for k, v in body.items()}
        for required in ("webhookUrl", "deactivationUrl", "name"):
            if not isinstance(props.get(required), str) or not props[required].strip():
                raise VendorError(500, f"{pascal(required)} is required.")
        for url in ("webhookUrl", "deactivationUrl"):
            if not str(props[url]).startswith(("http://", "https://")):
                raise VendorError(500, f"{pascal(url)} must be an absolute http(s) URL.")
        secret = props.get("secretKey")
        if secret is not None and (not isinstance(secret, str) or len(secret) > 64):
            raise VendorError(500, "SecretKey must be a string of at most 64 characters.")
        data: dict[str, Any] = {name: bool(props.get(name, False)) for name in _BOOLEAN_PROPS}
        data.update({name: props.get(name) for name in _TEXT_PROPS})
        data["ownerResourceID"] = owner
        with self._lock:
            hook = Webhook(self._next_id, entity, str(uuid.UUID(int=self._rng.getrandbits(128), version=4)), data)
            self._next_id += 1
            self.hooks[hook.id] = hook
        self._sync(hook)
        return hook

    def get(self, entity: str, webhook_id: int) -> Webhook:
        """The webhook, or VendorError 404."""
        hook = self.hooks.get(webhook_id)
        if hook is None or hook.entity != entity:
            raise VendorError(404, f"No {entity}Webhook with id {webhook_id} was found.")
        return hook

    def update(self, entity: str, body: Mapping[str, Any]) -> Webhook:
        """PATCH /<Entity>Webhooks: the id is in the body."""
        props = {str(k)[:1].lower() + str(k)[1:]: v for k, v in body.items()}
        hook = self.get(entity, int(props.get("id") or 0))
        for name in _BOOLEAN_PROPS:
            if name in props:
                hook.data[name] = bool(props[name])
        for name in _TEXT_PROPS:
            if name in props:
                hook.data[name] = props[name]
        self._sync(hook)
        return hook

    def delete(self, entity: str, webhook_id: int) -> None:
        """DELETE /<Entity>Webhooks/{id}."""
        hook = self.get(entity, webhook_id)
        with self._lock:
            del self.hooks[hook.id]
        self.dispatcher.unsubscribe(_subscription_id(hook))

    def add_field(self, entity: str, webhook_id: int, body: Mapping[str, Any]) -> int:
        """POST /<Entity>Webhooks/{parentId}/Fields."""
        hook = self.get(entity, webhook_id)
        props = {str(k).casefold(): v for k, v in body.items()}
        field_id = props.get("fieldid")
        if not isinstance(field_id, int) or field_id not in WEBHOOK_FIELD_IDS[entity].values():
            raise VendorError(500, f"FieldID {field_id!r} is not a webhook field of {entity}.")
        with self._lock:
            row_id = self._next_child
            self._next_child += 1
            hook.fields[row_id] = {
                "id": row_id,
                "fieldID": field_id,
                "isDisplayAlwaysField": bool(props.get("isdisplayalwaysfield", False)),
                "isSubscribedField": bool(props.get("issubscribedfield", False)),
                "webhookID": hook.id,
            }
        self._sync(hook)
        return row_id

    def exclude(self, entity: str, webhook_id: int, body: Mapping[str, Any], resources: Iterable[int]) -> int:
        """POST /<Entity>Webhooks/{parentId}/ExcludedResources."""
        hook = self.get(entity, webhook_id)
        props = {str(k).casefold(): v for k, v in body.items()}
        resource = props.get("resourceid")
        if not isinstance(resource, int) or resource not in set(resources):
            raise VendorError(500, f"ResourceID {resource!r} is not a resource of this database.")
        with self._lock:
            row_id = self._next_child
            self._next_child += 1
            hook.excluded[row_id] = {"id": row_id, "resourceID": resource, "webhookID": hook.id}
        return row_id

    def _sync(self, hook: Webhook) -> None:
        """Keep the dispatcher subscription in step: active and ready webhooks receive callouts."""
        sub_id = _subscription_id(hook)
        self.dispatcher.unsubscribe(sub_id)
        if hook.data.get("isActive") and hook.ready:
            self.dispatcher.subscribe(
                str(hook.data["webhookUrl"]),
                secret=str(hook.data.get("secretKey") or ""),
                data={"webhook": hook.id},
                id=sub_id,
            )

    # --- callouts ----------------------------------------------------------------------------------------------------

    def emit(
        self,
        entity: str,
        action: str,
        record_id: int,
        record: Mapping[str, Any],
        changed: Iterable[str] | None,
        actor: int,
        now: datetime,
    ) -> None:
        """Call out to every webhook that wants this change (``changed`` None: every field, as on create)."""
        changed_set = set(record) if changed is None else set(changed)

        def wanted(sub: Subscription) -> bool:
            hook = self.hooks.get(int(sub.data.get("webhook", 0)))
            if hook is None:  # a receiver registered through the control plane: every change of every entity
                return bool(changed_set) or action != "Update"
            if hook.entity != entity or not hook.data.get(f"isSubscribedTo{action}Events"):
                return False
            if actor in {row["resourceID"] for row in hook.excluded.values()}:
                return False  # the loop guard: changes by an excluded resource (our API user) send nothing
            return action != "Update" or bool(hook.names(subscribed=True) & changed_set)

        def payload(sub: Subscription) -> bytes:
            hook = self.hooks.get(int(sub.data.get("webhook", 0)))
            if hook is None:
                names = changed_set & set(WEBHOOK_FIELD_IDS[entity])
                names |= {"ticketNumber"} if entity == "Ticket" else {"ticketID"}
                guid = str(uuid.uuid5(uuid.NAMESPACE_URL, sub.id))
                with self._lock:
                    sequence = self._sequence[sub.id] = self._sequence.get(sub.id, 0) + 1
            else:
                names = (hook.names(subscribed=True) & changed_set) | hook.names(always=True)
                guid = hook.guid
                with self._lock:
                    hook.sequence += 1
                    sequence = hook.sequence
            fields = {pascal(name): _plain(record.get(name)) for name in sorted(names)}
            body = {
                "Action": action,
                "Guid": guid,
                "EntityType": entity,
                "Id": record_id,
                "Fields": fields,
                "EventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "SequenceNumber": sequence,
                "PersonID": actor,
            }
            return dotnet_json(body).encode("ascii")

        self.dispatcher.emit(f"{entity}.{action}", payload, match=wanted)

    def as_state(self) -> list[dict[str, Any]]:
        """Every webhook with its fields and excluded resources, for /_sandbox/state."""
        return [
            {
                **hook.render(),
                "entity": hook.entity,
                "fields": list(hook.fields.values()),
                "excludedResources": list(hook.excluded.values()),
            }
            for hook in self.hooks.values()
        ]


def _subscription_id(hook: Webhook) -> str:
    return f"autotask-{hook.entity.lower()}-webhook-{hook.id}"


def _plain(value: Any) -> Any:
    return format_time(value) if isinstance(value, datetime) else value


def signer(body: bytes, subscription: Subscription) -> dict[str, str]:
    """The dispatcher's signer: X-Hook-Signature when the webhook has a secret key."""
    return {"X-Hook-Signature": sign(body, subscription.secret)} if subscription.secret else {}
