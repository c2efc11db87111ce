"""The mapping file format as pydantic models: what a mapping file (defaults/<vendor>.yaml) may say, key by key.

A mapping file holds one rule per canonical field (``fields:``), where the vendor's company identifier is
(``tenant:``), how list responses are wrapped (``envelope:``), an optional base file it refines (``extends:``) and
per-tenant refinements (``tenants:``) and the fields the vendor derives from others (``derived:``, e.g.
``priority: [impact, urgency]``: the write-back then counts a change of those that its own write caused as its
own). Every model forbids unknown keys, so a typo is a located error. Meaning that
needs the whole merged file (canonical names, map targets, ambiguous inverses) is checked by the compiler.

A rule, in the order the engine applies it::

    status:
      path: status.name            # where the value is (a list of paths: the first non-empty one)
      cases:                       # conditions on the record, tried first
        - {when: {path: closedFlag, equals: true}, value: closed}
      transform: [trim]            # named transforms from the registry
      labels: status               # map by the label of the vendor's picklist value (metadata, else `codes`)
      codes: {New: 1}              # the out-of-the-box picklist (label -> value) used without metadata
      scope: {path: board.name, label: board, field: queue}
      map: {New: new, ">Closed": closed}       # vendor value (or label) -> canonical value
      inverse: {closed: ">Closed"}             # canonical -> vendor, where the map's inverse is ambiguous
      scopes: {"Acme Service": {map: {...}, inverse: {...}}}
      default: new                 # only when the vendor sent nothing; never for an unknown value
      on_unmapped: finding         # finding (default for enums), keep (raw kept quietly), pass (free text)
      outbound: {to: status, as: reference, lookup: status}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from psabridge.model import System

__all__ = [
    "CaseSpec",
    "ConditionSpec",
    "FieldRuleSpec",
    "MappingDocument",
    "OutboundSpec",
    "Scalar",
    "ScopeSpec",
    "ScopedMapSpec",
    "TenantOverlay",
    "TenantRuleSpec",
    "TransformRef",
]

Scalar = str | int | float | bool
TransformRef = str | dict[str, dict[str, Any] | None]
"""``trim``, or ``{lookup: {field: group_id}}``: a registered transform's name and its arguments."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ConditionSpec(_Spec):
    """A test on a record: ``{path: closedFlag, equals: true}``, ``{path: x, in: [a, b]}``, ``{path: x, empty: true}``.

    Values are compared as text, ignoring case.
    """

    path: str
    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    empty: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> ConditionSpec:
        tests = [t for t in (self.equals, self.in_, self.empty) if t is not None]
        if len(tests) != 1:
            raise ValueError("a condition needs exactly one of equals, in, empty")
        return self


class CaseSpec(_Spec):
    """``{when: <condition or list of conditions, all must hold>, value: <canonical value>}``."""

    when: ConditionSpec | list[ConditionSpec]
    value: Scalar

    @property
    def conditions(self) -> list[ConditionSpec]:
        """The conditions as a list."""
        return self.when if isinstance(self.when, list) else [self.when]


class ScopeSpec(_Spec):
    """Where a rule's values are scoped (ConnectWise statuses are per board).

    ``path`` reads the scope from the record; ``label`` names it in findings ("on board 'Acme Service'"); ``field``
    is the canonical field whose new value gives the scope when writing (moving a ticket to another board).
    """

    path: str
    label: str = "scope"
    field: str | None = None


class ScopedMapSpec(_Spec):
    """Values of one scope (e.g. one board): its own entries win over the rule's general map."""

    map: dict[Scalar, Scalar | None] = Field(default_factory=dict)
    inverse: dict[str, Scalar | None] = Field(default_factory=dict)


class OutboundSpec(_Spec):
    """How a canonical change becomes part of the vendor's patch.

    ``as``: ``value`` (as mapped), ``string``, ``int`` (Autotask, Freshservice codes), ``reference`` (ConnectWise
    ``{id}`` from metadata, else ``{<ref_key>: label}``), ``object`` (a dict), ``pairs`` (a list of {key, value}
    objects), ``spread`` (a dict's keys become top-level vendor fields). ``lookup`` names the metadata field that
    turns a label into the vendor's id. ``set`` writes several vendor fields for one canonical value (ServiceNow
    priority -> impact + urgency). ``create_only`` fields are sent only when a ticket is created.
    """

    to: str | None = None
    as_: Literal["value", "string", "int", "reference", "object", "pairs", "spread"] = Field(
        default="value", alias="as"
    )
    lookup: str | None = None
    ref_key: str = "name"
    key: str = "name"
    transform: TransformRef | list[TransformRef] | None = None
    set: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    clear: Scalar | None = Field(default=None, description="what the vendor takes for 'no value' (null by default)")
    create_only: bool = False


class FieldRuleSpec(_Spec):
    """One canonical field (or a sub-field of requester, notes ...): where it comes from and where it goes."""

    path: str | list[str] | None = None
    all_of: list[str] | None = None
    const: Scalar | None = None
    cases: list[CaseSpec] = Field(default_factory=list)
    transform: TransformRef | list[TransformRef] | None = None
    labels: str | None = None
    codes: dict[str, Scalar | None] = Field(default_factory=dict)
    map: dict[Scalar, Scalar | None] = Field(default_factory=dict)
    inverse: dict[str, Scalar | None] = Field(default_factory=dict)
    scope: ScopeSpec | None = None
    scopes: dict[str, ScopedMapSpec | None] = Field(default_factory=dict)
    default: Scalar | None = None
    on_unmapped: Literal["finding", "keep", "pass"] | None = None
    items: str | None = None
    where: ConditionSpec | None = None
    skip: ConditionSpec | None = None
    skip_first: ConditionSpec | None = None
    fields: dict[str, FieldRuleSpec | None] = Field(default_factory=dict)
    outbound: OutboundSpec | None = None


class TenantRuleSpec(_Spec):
    """Where the vendor's company identifier is; settings ``connections[].tenants`` turns it into a tenant key."""

    path: str | list[str]
    transform: TransformRef | list[TransformRef] | None = None
    outbound: OutboundSpec | None = None


class TenantOverlay(_Spec):
    """Rules that differ for one tenant (one client's board has its own status names); layered on the file."""

    fields: dict[str, FieldRuleSpec | None] = Field(default_factory=dict)


class MappingDocument(_Spec):
    """A whole mapping file."""

    system: System | None = None
    extends: str | None = Field(
        default=None, description="the mapping this one refines: builtin:<vendor>, or a file relative to this one"
    )
    envelope: list[str] | None = Field(default=None, description="keys that wrap records in list/single responses")
    tenant: TenantRuleSpec | None = None
    fields: dict[str, FieldRuleSpec | None] = Field(default_factory=dict)
    tenants: dict[str, TenantOverlay | None] = Field(default_factory=dict)
    derived: dict[str, list[str]] = Field(
        default_factory=dict,
        description="canonical fields the vendor derives from others ({priority: [impact, urgency]}): writing one "
        "of them may change the rest",
    )
