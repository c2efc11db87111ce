"""The typed model of config/rules.yaml: guardrails, the note, business calendars, every rule's settings, overrides.

The top level is one field per section; unknown keys are refused (``extra="forbid"``) with a "did you mean" hint.
``calendars:`` holds the business calendars tenants name (rules/calendar.py); the SLA targets, the routing matrix
and the paging set-up are the settings of the ``sla``, ``routing`` and ``paging`` rules under ``rules:``, so every
tenant may override them like any other rule's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from psabridge.model import Status
from psabridge.rules.calendar import CalendarSettings
from psabridge.rules.checklist import ChecklistSettings

__all__ = [
    "ConnectionGuardrails",
    "Guardrails",
    "HandsOff",
    "NoteSettings",
    "RulesDocument",
    "TenantRules",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HandsOff(_Section):
    """Tickets psabridge evaluates but never writes to."""

    statuses: list[Status] = Field(
        default_factory=lambda: [Status.CANCELLED], description="canonical statuses that make a ticket hands-off"
    )
    tags: list[str] = Field(
        default_factory=lambda: ["psabridge-hands-off", "hands-off", "no-automation"],
        description="vendor tags that make a ticket hands-off (compared case-insensitively)",
    )


ActSince = Literal["first_sync"] | AwareDatetime


class ConnectionGuardrails(_Section):
    """Guardrails of one connection."""

    act_since: ActSince | None = Field(
        default=None, description="first_sync or an ISO time; default: guardrails.act_since"
    )


class Guardrails(_Section):
    """What the engine never does, whatever the rules propose."""

    hands_off: HandsOff = Field(default_factory=HandsOff)
    act_since: ActSince = Field(
        default="first_sync",
        description="tickets last changed before this get findings but no writes: first_sync (the moment the "
        "connection was first synced) or an ISO time",
    )
    connections: dict[str, ConnectionGuardrails] = Field(default_factory=dict, description="per connection name")
    evaluate_mirrors_on: Literal["source", "target"] = Field(
        default="source", description="which side of a mirror pair is evaluated (the other is left alone)"
    )

    def act_since_for(self, connection: str, first_synced_at: datetime | None) -> datetime | None:
        """The moment before which ``connection``'s tickets are not written to (None: no limit known yet).

        Args:
            connection: the connection's name.
            first_synced_at: when the connection was first synced (from the store), if it has been.
        """
        own = self.connections.get(connection)
        value = own.act_since if own is not None and own.act_since is not None else self.act_since
        return value if isinstance(value, datetime) else first_synced_at


class NoteSettings(_Section):
    """The one combined internal note an evaluation writes."""

    advice: bool = Field(default=True, description="add what to do under each finding")
    explain_hint: bool = Field(default=True, description="end with the `psabridge rules explain` command")


class TenantRules(_Section):
    """One client's overrides: deep-merged over the rules' settings (lists and values replace, mappings merge)."""

    rules: ChecklistSettings = Field(default_factory=ChecklistSettings)


class RulesDocument(_Section):
    """The whole rules file."""

    version: Literal[1] = 1
    guardrails: Guardrails = Field(default_factory=Guardrails)
    note: NoteSettings = Field(default_factory=NoteSettings)
    calendars: dict[str, CalendarSettings] = Field(
        default_factory=dict,
        description="business calendars by name (tenants name one in the settings' tenants: calendar)",
    )
    rules: ChecklistSettings = Field(default_factory=ChecklistSettings)
    tenants: dict[str, TenantRules] = Field(default_factory=dict, description="per-tenant overrides, by tenant key")
