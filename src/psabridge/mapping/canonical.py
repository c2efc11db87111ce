"""The canonical fields a mapping file may name, read from the pydantic models, with validators for their values."""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, TypeAdapter

from psabridge.model import SETTABLE_FIELDS, Ticket

__all__ = ["TICKET_FIELDS", "CanonicalField"]

FieldKind = Literal["scalar", "object", "list"]

# Set by the engine, never by a rule: identity comes from the context, unmapped from the engine, tenant from settings.
_NOT_MAPPABLE = frozenset({"key", "connection", "system", "unmapped", "tenant"})


@dataclass(frozen=True)
class CanonicalField:
    """One canonical field.

    Attributes:
        name: its name in the model.
        kind: ``scalar`` (str, enum, number, datetime, dict, tuple of str), ``object`` (Party, Asset, SlaState) or
            ``list`` (notes, time entries).
        adapter: validates a value of this field (map targets, outbound changes).
        closed: the values are a closed set (enum, bool, number): an unknown vendor value is a finding by default.
        text: a string field: scalars read from the vendor are turned into text.
        choices: the allowed values of an enum field, for messages.
        model: the model of an object field or of a list's items.
        children: the fields of that model.
        settable: whether write-back may change it (``model.SETTABLE_FIELDS``; the fields of a settable object
            too, each through its own ``outbound`` when the object has none, as ``sla``'s due times).
    """

    name: str
    kind: FieldKind
    adapter: TypeAdapter[Any]
    closed: bool
    text: bool
    choices: tuple[str, ...] = ()
    model: type[BaseModel] | None = None
    children: dict[str, CanonicalField] = field(default_factory=dict)
    settable: bool = False


def _strip_optional(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _fields_of(model: type[BaseModel], *, top: bool, settable_parent: bool = False) -> dict[str, CanonicalField]:
    out: dict[str, CanonicalField] = {}
    for name, info in model.model_fields.items():
        if top and name in _NOT_MAPPABLE:
            continue
        annotation = info.annotation
        bare = _strip_optional(annotation)
        if typing.get_origin(bare) is Annotated:
            bare = typing.get_args(bare)[0]
        full: Any = Annotated[annotation, *info.metadata] if info.metadata else annotation
        adapter: TypeAdapter[Any] = TypeAdapter(full)
        origin = typing.get_origin(bare)
        item = typing.get_args(bare)[0] if origin is tuple and typing.get_args(bare) else None
        settable = (top and name in SETTABLE_FIELDS) or settable_parent
        if isinstance(bare, type) and issubclass(bare, BaseModel):
            out[name] = CanonicalField(
                name,
                "object",
                adapter,
                False,
                False,
                model=bare,
                children=_fields_of(bare, top=False, settable_parent=settable),
                settable=settable,
            )
        elif isinstance(item, type) and issubclass(item, BaseModel):
            out[name] = CanonicalField(
                name,
                "list",
                adapter,
                False,
                False,
                model=item,
                children=_fields_of(item, top=False),
                settable=settable,
            )
        else:
            is_enum = isinstance(bare, type) and issubclass(bare, enum.Enum)
            closed = is_enum or bare in (bool, int)
            choices = tuple(str(m.value) for m in bare) if is_enum else ()
            out[name] = CanonicalField(name, "scalar", adapter, closed, bare is str, choices, settable=settable)
    return out


TICKET_FIELDS: dict[str, CanonicalField] = _fields_of(Ticket, top=True)
"""The canonical ticket fields a mapping file may name under ``fields:`` (tenant has its own ``tenant:`` rule)."""
