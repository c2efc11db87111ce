"""Vendor data that connectors and mapping both speak: raw records, allowed values (choices) and vendor metadata.

It sits below both layers, so the pure mapping layer depends on these plain data types and never on a connector.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from psabridge.model import System, UtcDateTime

__all__ = ["Choice", "RawRecord", "VendorMetadata"]

RawRecord = dict[str, Any]
"""A vendor record exactly as the vendor's API returned it (plus ``_psa_*`` extras on full tickets)."""


class Choice(BaseModel):
    """One allowed value of a vendor field: a status, priority, picklist entry, queue, group or user.

    ``value`` is the vendor's id as a string (ConnectWise id, Autotask picklist integer, ServiceNow choice value or
    sys_id, Freshservice code); ``label`` is the name humans see; ``scope`` narrows where it applies (a ConnectWise
    board for statuses, a parent picklist value for Autotask sub-issue types).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str
    label: str
    active: bool = True
    scope: str | None = None
    is_default: bool = False
    is_closed: bool = False
    extra: dict[str, Any] = Field(default_factory=dict)


class VendorMetadata(BaseModel):
    """Values the vendor allows, loaded through the connector and handed to mapping as plain data (no I/O there).

    ``fields`` maps a vendor field name (as written in the mapping file, e.g. ``status``, ``priority``, ``queueID``,
    ``assignment_group``, ``group_id``) to its allowed choices.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: System
    fields: dict[str, tuple[Choice, ...]] = Field(default_factory=dict)
    fetched_at: UtcDateTime | None = None

    def choices(self, field_name: str, scope: str | None = None) -> tuple[Choice, ...]:
        """The choices of ``field_name`` (those in ``scope`` plus unscoped ones, when a scope is given)."""
        found = self.fields.get(field_name, ())
        if scope is None:
            return found
        return tuple(c for c in found if c.scope in (None, scope))

    _by_value: dict[tuple[str, str | None], tuple[tuple[Choice, ...], dict[str, Choice]]] = PrivateAttr(
        default_factory=dict
    )

    def choice_of(self, field_name: str, value: str, scope: str | None = None) -> Choice | None:
        """The choice of ``field_name`` with this value (in ``scope`` or unscoped): the first active, else the first.

        Indexed by value once per field and scope: a backfill looks up several ids per ticket (queues, resources,
        picklists) in lists of hundreds of choices. The index is checked against the field's choices, so a copy of
        this metadata with other choices (``model_copy(update=...)`` shares private attributes) never reads a stale one.
        """
        found = self.fields.get(field_name, ())
        cache = cast(dict[str, Any], self.__pydantic_private__)["_by_value"]  # not through pydantic's __getattr__
        entry = cache.get((field_name, scope))
        if entry is None or entry[0] is not found:
            index: dict[str, Choice] = {}
            for choice in self.choices(field_name, scope):
                current = index.get(choice.value)
                if current is None or (choice.active and not current.active):
                    index[choice.value] = choice
            entry = (found, index)
            cache[(field_name, scope)] = entry
        return cast(Choice | None, entry[1].get(value))

    def label_of(self, field_name: str, value: str, scope: str | None = None) -> str | None:
        """The label of a value, or None if the vendor does not know it."""
        choice = self.choice_of(field_name, value, scope)
        return choice.label if choice is not None else None

    def value_of(self, field_name: str, label: str, scope: str | None = None) -> str | None:
        """The value of a label (case-insensitive), or None if the vendor does not know it."""
        wanted = label.casefold()
        for choice in self.choices(field_name, scope):
            if choice.label.casefold() == wanted:
                return choice.value
        return None
