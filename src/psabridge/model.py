"""Canonical ticket model and the actions rules and mirroring emit: the contract between every layer.

Connectors speak vendor JSON, mapping turns it into these models, the store keeps them, rules read them and emit
actions, and write-back turns actions back into vendor requests. Every datetime here is timezone-aware UTC: a naive
datetime is refused, because a wrong timezone silently skips records in an incremental sync.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    field_validator,
    model_validator,
)

__all__ = [
    "Action",
    "ActionAdapter",
    "AddNote",
    "AddTimeEntry",
    "Asset",
    "CreateMirror",
    "ExternalRef",
    "Kind",
    "Level",
    "Note",
    "NoteKind",
    "PageOnCall",
    "Party",
    "PostToChannel",
    "Priority",
    "RouteToQueue",
    "SetFields",
    "SlaClockName",
    "SlaState",
    "SlaStatus",
    "Source",
    "Status",
    "System",
    "Ticket",
    "TimeEntry",
    "UtcDateTime",
    "split_ticket_key",
    "ticket_key",
]


def _require_utc(value: datetime) -> datetime:
    """Refuse naive datetimes; convert aware ones to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} has no timezone; psabridge only accepts timezone-aware datetimes "
            "(write e.g. 2024-05-01T12:00:00Z)"
        )
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_require_utc)]
"""A datetime that must carry a timezone; it is stored and compared in UTC."""


class System(StrEnum):
    """The vendor systems psabridge connects to."""

    CONNECTWISE = "connectwise"
    AUTOTASK = "autotask"
    SERVICENOW = "servicenow"
    FRESHSERVICE = "freshservice"


class Status(StrEnum):
    """Where a ticket is in its life."""

    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        """True while someone still has to work the ticket."""
        return self not in (Status.RESOLVED, Status.CLOSED, Status.CANCELLED)


class Priority(StrEnum):
    """The contracted SLA matrix of the help-desk checklist."""

    P1 = "P1"  # system down / multi-user
    P2 = "P2"  # single user blocked
    P3 = "P3"  # degraded
    P4 = "P4"  # request

    @property
    def rank(self) -> int:
        """1 for P1 (most urgent) to 4 for P4."""
        return int(self.value[1])


class Level(StrEnum):
    """Impact and urgency levels."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Kind(StrEnum):
    """What sort of work the ticket is."""

    INCIDENT = "incident"
    SERVICE_REQUEST = "service_request"
    PROBLEM = "problem"
    CHANGE = "change"
    ALERT = "alert"


class Source(StrEnum):
    """The channel the ticket came in through."""

    PHONE = "phone"
    EMAIL = "email"
    PORTAL = "portal"
    CHAT = "chat"
    WALK_IN = "walk_in"
    MONITORING = "monitoring"
    OTHER = "other"


class NoteKind(StrEnum):
    """Who may read a note, and whether it documents the resolution."""

    INTERNAL = "internal"
    PUBLIC = "public"
    RESOLUTION = "resolution"


class SlaStatus(StrEnum):
    """Where a ticket stands against its SLA."""

    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    PAUSED = "paused"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Party(_Frozen):
    """A person: requester or assignee."""

    external_id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    identity_verified: bool | None = None
    verified_by: str | None = Field(default=None, description="how the identity was verified, e.g. 'callback'")
    vip: bool = False


class Asset(_Frozen):
    """A configuration item or device the ticket is about."""

    external_id: str | None = None
    name: str | None = None
    kind: str | None = None


class Note(_Frozen):
    """A note or journal entry on a ticket.

    ``origin`` holds the idempotency key of the psabridge action that wrote the note, when the note carries our
    marker: that is how an echo of our own write is recognised.
    """

    external_id: str | None = None
    kind: NoteKind = NoteKind.INTERNAL
    author: str | None = None
    text: str = ""
    created_at: UtcDateTime | None = None
    origin: str | None = None


class TimeEntry(_Frozen):
    """Time logged against a ticket."""

    external_id: str | None = None
    minutes: int = Field(ge=0)
    who: str | None = None
    started_at: UtcDateTime | None = None
    note: str | None = None
    billable: bool | None = None
    origin: str | None = None


SlaClockName = Literal["response", "plan", "resolution"]
"""The SLA clocks: first response, resolution plan (ConnectWise and Autotask have one), resolution."""


class SlaState(_Frozen):
    """Response, plan and resolution targets and where the ticket stands against them.

    The vendor's own SLA figures are read into it by the mapping; psabridge's SLA rule fills in what the vendor does
    not compute (``rules/sla.py``) and lists those fields in ``computed``, so the vendor's figures stay told apart
    from ours. It is left out of the ticket's content hash: a due time that moves is not a change of the ticket.
    """

    policy: str | None = Field(default=None, description="the vendor's SLA name, or psabridge's tier/priority")
    response_due: UtcDateTime | None = None
    plan_due: UtcDateTime | None = None
    resolution_due: UtcDateTime | None = None
    responded_at: UtcDateTime | None = None
    planned_at: UtcDateTime | None = None
    resolved_at: UtcDateTime | None = None
    state: SlaStatus | None = Field(default=None, description="the worst state of the clocks")
    response_state: SlaStatus | None = None
    plan_state: SlaStatus | None = None
    resolution_state: SlaStatus | None = None
    response_target: timedelta | None = None
    plan_target: timedelta | None = None
    resolution_target: timedelta | None = None
    clock: Literal["business", "wall"] | None = Field(default=None, description="how psabridge counts its targets")
    calendar: str | None = Field(default=None, description="the business calendar psabridge counts in")
    computed: tuple[str, ...] = Field(default=(), description="the fields psabridge computed (not the vendor's)")
    computed_at: UtcDateTime | None = None

    def over(self, vendor: SlaState | None) -> SlaState | None:
        """The computed fields laid over fresh vendor figures (the next ingest's ``sla``).

        Only fields the vendor does not give are kept: what the canonical ticket holds until the rules compute again.
        """
        if not self.computed:
            return vendor
        base = vendor.model_dump() if vendor is not None else {}
        ours = self.model_dump()
        kept = [name for name in self.computed if name in ours and base.get(name) is None]
        if not kept:
            return vendor
        base.update({name: ours[name] for name in kept})
        return SlaState.model_validate({**base, "computed": tuple(kept), "computed_at": self.computed_at})

    def vendor_part(self) -> SlaState | None:
        """Only the vendor's figures: every field psabridge computed cleared (None when nothing is left)."""
        if not self.computed:
            return self
        cleared = {name: None for name in self.computed if name in SlaState.model_fields}
        vendor = self.model_copy(update={**cleared, "computed": (), "computed_at": None})
        return None if vendor == SlaState() else vendor


class ExternalRef(_Frozen):
    """Where a ticket lives: connection, vendor, vendor id and human number."""

    connection: str
    system: System
    external_id: str
    number: str | None = None

    @property
    def key(self) -> str:
        """The bridge-wide ticket key."""
        return ticket_key(self.connection, self.external_id)


def ticket_key(connection: str, external_id: str) -> str:
    """The bridge-wide id of a ticket: its connection name and its vendor id."""
    return f"{connection}:{external_id}"


def split_ticket_key(key: str) -> tuple[str, str]:
    """(connection, external id) of a ticket key: connection names hold no ``:``, vendor ids may.

    Raises:
        ValueError: ``key`` is not ``<connection>:<external id>``.
    """
    connection, sep, external_id = key.partition(":")
    if not sep or not connection or not external_id:
        raise ValueError(f"{key!r} is not a ticket key (<connection>:<external id>)")
    return connection, external_id


class Ticket(_Frozen):
    """The canonical ticket: one shape for every vendor.

    A field the vendor value could not be mapped for stays ``None`` and the raw vendor value is kept in
    ``unmapped`` under the canonical field name, so nothing is silently defaulted to a wrong value.
    """

    HASH_EXCLUDED: ClassVar[frozenset[str]] = frozenset({"updated_at", "version", "sla"})
    """Fields whose change is not a change of the ticket: the vendor's update time and version counter (an echo of
    our own write bumps both) and the SLA state (due times move as the clock runs and as psabridge computes them)."""

    key: str = ""
    connection: str
    system: System
    external_id: str
    number: str | None = None
    tenant: str | None = None
    summary: str = ""
    description: str = ""
    status: Status | None = None
    priority: Priority | None = None
    impact: Level | None = None
    urgency: Level | None = None
    kind: Kind | None = None
    category: str | None = None
    subcategory: str | None = None
    source: Source | None = None
    requester: Party | None = None
    assignee: Party | None = None
    queue: str | None = None
    tier: int | None = Field(default=None, ge=1, le=3)
    asset: Asset | None = None
    error_codes: tuple[str, ...] = ()
    tags: tuple[str, ...] = Field(default=(), description="the vendor's tags or labels on the ticket, as written there")
    notes: tuple[Note, ...] = ()
    time_entries: tuple[TimeEntry, ...] = ()
    sla: SlaState | None = None
    created_at: UtcDateTime | None = None
    updated_at: UtcDateTime | None = None
    closed_at: UtcDateTime | None = None
    version: str | None = Field(default=None, description="vendor version counter, e.g. ServiceNow sys_mod_count")
    custom: dict[str, JsonValue] = Field(default_factory=dict)
    unmapped: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _fill_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("connection") and data.get("external_id") is not None:
            expected = ticket_key(str(data["connection"]), str(data["external_id"]))
            if not data.get("key"):
                data = {**data, "key": expected}
            elif data["key"] != expected:
                raise ValueError(f"key {data['key']!r} does not match connection and external_id ({expected!r})")
        return data

    @property
    def ref(self) -> ExternalRef:
        """Where this ticket lives."""
        return ExternalRef(
            connection=self.connection, system=self.system, external_id=self.external_id, number=self.number
        )

    def content_hash(self) -> str:
        """A stable SHA-256 of everything a human could see change.

        The vendor's update time, version counter and SLA state are left out (``HASH_EXCLUDED``), and notes
        and time entries are hashed in a stable order, so the hash changes exactly when the content does. Fields
        added to the model later (``tags``) are left out while they are empty, so the hashes stored before they
        existed stay valid.
        """
        return self.content_hash_of(self.model_dump(mode="json"))

    @classmethod
    def content_hash_of(cls, data: dict[str, Any]) -> str:
        """``content_hash`` of a ticket's ``model_dump(mode="json")`` (for a caller that needs that dump anyway)."""
        hashed = {name: value for name, value in data.items() if name not in cls.HASH_EXCLUDED}
        hashed["sla"] = None  # kept as null, so the hashes of tickets stored without an SLA state stay valid
        hashed["notes"] = sorted(data["notes"], key=_stable_sort_key)
        hashed["time_entries"] = sorted(data["time_entries"], key=_stable_sort_key)
        hashed["error_codes"] = sorted(data["error_codes"])
        if hashed.get("tags"):
            hashed["tags"] = sorted(hashed["tags"])
        else:
            hashed.pop("tags", None)
        blob = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def is_newer_than(self, other: Ticket) -> bool | None:
        """Whether this copy is newer than ``other``: by version counter, else update time; None if unknown."""
        if self.version is not None and other.version is not None:
            try:
                return int(self.version) > int(other.version)
            except ValueError:
                pass
        if self.updated_at is not None and other.updated_at is not None:
            return self.updated_at > other.updated_at
        return None


def _stable_sort_key(item: dict[str, Any]) -> str:
    return json.dumps(item, sort_keys=True, default=str)


# --- actions --------------------------------------------------------------------------------------------------------


class _Action(_Frozen):
    """Fields every action has.

    Args:
        ticket_key: the canonical ticket the action is about.
        target: where it is carried out: a connection name, or a paging service or chat channel from config.
        origin: what emitted it (a rule id such as ``rules.p1_paging``, or ``mirror:<link name>``).
        reason: one line for the audit trail and the technician.
        occurrence_key: what makes this action one occurrence (e.g. ``priority:priority=P1:2``: rule, change and
            the finding's occurrence). When set, the idempotency key is made of the ticket, target, action type and
            this key only, so a re-worded note is not written twice and a genuine second occurrence is not dropped.
    """

    ticket_key: str
    target: str
    origin: str
    reason: str = ""
    occurrence_key: str | None = None

    def idempotency_key(self) -> str:
        """A stable key: the same action emitted twice gets the same key, so it is written once.

        Without an ``occurrence_key`` the whole action is hashed (its reason aside), exactly as before that field
        existed, so the keys of stored mirror writes stay the same.
        """
        if self.occurrence_key is not None:
            payload: dict[str, Any] = {
                "ticket_key": self.ticket_key,
                "target": self.target,
                "type": getattr(self, "type", type(self).__name__),
                "occurrence_key": self.occurrence_key,
            }
        else:
            payload = self.model_dump(mode="json", exclude={"reason", "occurrence_key"})
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


SETTABLE_FIELDS: frozenset[str] = frozenset(
    {
        "summary",
        "description",
        "status",
        "priority",
        "impact",
        "urgency",
        "kind",
        "category",
        "subcategory",
        "source",
        "queue",
        "tier",
        "assignee",
        "tenant",
        "custom",
        "sla",  # due times psabridge computes, where the vendor lets a client set them (the mapping's sla outbound)
    }
)


class AddNote(_Action):
    """Add a note to the ticket in its own system."""

    type: Literal["add_note"] = "add_note"
    text: str = Field(min_length=1)
    kind: NoteKind = NoteKind.INTERNAL


class SetFields(_Action):
    """Change canonical fields of the ticket (status, priority, queue ...); write-back maps them outbound."""

    type: Literal["set_fields"] = "set_fields"
    fields: dict[str, JsonValue] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        unknown = sorted(set(value) - SETTABLE_FIELDS)
        if unknown:
            raise ValueError(f"cannot set {', '.join(unknown)}; settable fields: {', '.join(sorted(SETTABLE_FIELDS))}")
        return value


class RouteToQueue(_Action):
    """Move the ticket to a queue (board, group) and optionally a tier and an owner, per the escalation matrix."""

    type: Literal["route_to_queue"] = "route_to_queue"
    queue: str = Field(min_length=1)
    tier: int | None = Field(default=None, ge=1, le=3)
    assignee: str | None = None


class PageOnCall(_Action):
    """Page the on-call engineer (PagerDuty Events v2 or Opsgenie) for the ticket."""

    type: Literal["page_on_call"] = "page_on_call"
    event: Literal["trigger", "acknowledge", "resolve"] = "trigger"
    summary: str = Field(min_length=1)
    severity: Literal["critical", "error", "warning", "info"] = "critical"
    dedup_key: str = Field(min_length=1)


class PostToChannel(_Action):
    """Post a message to a chat channel (the #incident channel of the checklist)."""

    type: Literal["post_to_channel"] = "post_to_channel"
    text: str = Field(min_length=1)


class CreateMirror(_Action):
    """Create the mirror of ``ticket_key`` in the ``target`` connection, as the named link says."""

    type: Literal["create_mirror"] = "create_mirror"
    link: str = Field(min_length=1)


class AddTimeEntry(_Action):
    """Log time against the ticket."""

    type: Literal["add_time_entry"] = "add_time_entry"
    minutes: int = Field(gt=0)
    note: str = ""
    who: str | None = None
    started_at: UtcDateTime | None = None


Action = Annotated[
    AddNote | SetFields | RouteToQueue | PageOnCall | PostToChannel | CreateMirror | AddTimeEntry,
    Field(discriminator="type"),
]
"""Any action, told apart by its ``type``."""

ActionAdapter: TypeAdapter[Action] = TypeAdapter(Action)
"""Validates an action from JSON (as stored in the outbox)."""
