"""The mapping engine: compiled rules that turn raw vendor records into canonical tickets and changes into patches.

Everything here is pure: no network, no database, no clock. A ``Mapper`` is built by the loader from a validated
mapping file (plus its tenant overlays) and is immutable, so one instance serves every worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError

from psabridge.errors import MappingError
from psabridge.mapping.canonical import CanonicalField
from psabridge.mapping.paths import Path, is_empty, set_path
from psabridge.mapping.results import FieldTrace, InboundResult, MappingContext, MappingProblem, OutboundResult
from psabridge.mapping.transforms import Transform, TransformContext, TransformFailure, find_choice
from psabridge.model import System, Ticket
from psabridge.vendordata import RawRecord, VendorMetadata

__all__ = [
    "CompiledMapping",
    "Condition",
    "FieldRule",
    "Located",
    "Mapper",
    "OutboundRule",
    "TenantRule",
    "ValueMap",
    "norm",
]


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def norm(value: Any) -> str | None:
    """A vendor value as the text value maps are keyed by (ints and bools as text, strings trimmed)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


@dataclass(frozen=True, slots=True)
class Located:
    """Where a rule is written: file, line and path inside the file."""

    file: str
    line: int | None
    path: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.path}" if self.line else f"{self.file} {self.path}"


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled ``when`` test."""

    path: Path
    equals: str | None = None
    among: frozenset[str] | None = None
    empty: bool | None = None

    def __call__(self, record: Any) -> bool:
        value = self.path.get(record)
        if self.empty is not None:
            return is_empty(value) is self.empty
        text = norm(value)
        if self.equals is not None:
            return text is not None and text.casefold() == self.equals
        return self.among is not None and text is not None and text.casefold() in self.among


@dataclass(frozen=True, slots=True)
class ValueMap:
    """A compiled value map: vendor value (or label) -> canonical value, per scope, and its inverse candidates."""

    general: Mapping[str, Any]
    folded: Mapping[str, Any]
    scoped: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]]
    inverse: Mapping[Any, tuple[str, ...]]
    scoped_inverse: Mapping[str, Mapping[Any, tuple[str, ...]]]

    def get(self, key: str, scope: str | None) -> tuple[bool, Any, bool]:
        """``(found, canonical value, found in the scope's own map)``."""
        if scope is not None:
            own = self.scoped.get(scope.casefold())
            if own is not None:
                exact, folded = own
                if key in exact:
                    return True, exact[key], True
                hit = folded.get(key.casefold(), UNSET)
                if hit is not UNSET:
                    return True, hit, True
        if key in self.general:
            return True, self.general[key], False
        hit = self.folded.get(key.casefold(), UNSET)
        return (hit is not UNSET), (None if hit is UNSET else hit), False

    def candidates(self, value: Any, scope: str | None) -> tuple[str, ...]:
        """Vendor values for a canonical value, best first: the scope's own, else the general ones."""
        if scope is not None:
            own = self.scoped_inverse.get(scope.casefold(), {}).get(value)
            if own:
                return own
        return self.inverse.get(value, ())


@dataclass(frozen=True, slots=True)
class Scope:
    """A compiled ``scope``."""

    path: Path
    label: str
    field: str | None


@dataclass(frozen=True, slots=True)
class OutboundRule:
    """A compiled ``outbound``."""

    to: Path | None
    as_: str
    lookup: str | None
    ref_key: str
    key: str
    transforms: tuple[tuple[Transform, BaseModel], ...]
    set: Mapping[Any, tuple[tuple[Path, Any], ...]]
    clear: Any
    create_only: bool
    where: Located


@dataclass(frozen=True, slots=True)
class FieldRule:
    """A compiled rule for one canonical field (or sub-field)."""

    name: str
    spec: CanonicalField
    where: Located
    paths: tuple[Path, ...] = ()
    all_of: tuple[Path, ...] = ()
    const: Any = UNSET
    cases: tuple[tuple[tuple[Condition, ...], Any], ...] = ()
    transforms: tuple[tuple[Transform, BaseModel], ...] = ()
    labels: str | None = None
    codes: Mapping[str, str] = field(default_factory=dict)
    codes_reversed: Mapping[str, str] = field(default_factory=dict)
    vmap: ValueMap | None = None
    scope: Scope | None = None
    default: Any = UNSET
    on_unmapped: str = "finding"
    items: Path | None = None
    where_item: Condition | None = None
    skip: Condition | None = None
    skip_first: Condition | None = None
    children: tuple[FieldRule, ...] = ()
    outbound: OutboundRule | None = None
    source: str | None = field(init=False, default=None)  # the vendor path(s) read, for traces

    def __post_init__(self) -> None:
        paths = self.all_of or self.paths
        source = str(self.items) if self.items is not None else " | ".join(str(p) for p in paths) if paths else None
        object.__setattr__(self, "source", source)


@dataclass(frozen=True, slots=True)
class TenantRule:
    """A compiled ``tenant:`` rule: where the vendor's company identifier is."""

    paths: tuple[Path, ...]
    transforms: tuple[tuple[Transform, BaseModel], ...]
    outbound: OutboundRule | None
    where: Located


@dataclass(frozen=True)
class CompiledMapping:
    """Every rule of one mapping (the file, or the file with one tenant's overlay), in file order."""

    system: System
    rules: Mapping[str, FieldRule]
    tenant_rule: TenantRule | None
    envelope: tuple[str, ...]
    derived: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Canonical field -> the fields the vendor derives it from (the file's ``derived:``)."""


class _Run:
    """The mutable state of one mapping call: findings, unmapped values and the trace."""

    __slots__ = ("context", "explain", "findings", "metadata", "trace", "unmapped")

    def __init__(self, metadata: VendorMetadata | None, explain: bool) -> None:
        self.metadata = metadata
        self.context = TransformContext(metadata)
        self.explain = explain
        self.findings: list[MappingProblem] = []
        self.unmapped: dict[str, str] = {}
        self.trace: list[FieldTrace] = []

    def note(self, name: str, where: Located, source: str | None, raw: Any, value: Any, via: str) -> None:
        if self.explain:
            self.trace.append(FieldTrace(name, str(where), source, raw, value, via))

    def keep_raw(self, name: str, raw: Any, code: str, message: str, *, finding: bool = True) -> None:
        text = _raw_text(raw)
        self.unmapped[name] = text
        if finding:
            self.findings.append(MappingProblem(name, text, code, message))


def _raw_text(raw: Any) -> str:
    text = norm(raw)
    return text if text is not None else str(raw)


def _apply(transforms: Sequence[tuple[Transform, BaseModel]], value: Any, ctx: TransformContext) -> Any:
    """Run transforms in order; a value one cannot handle raises TransformFailure (never anything else)."""
    for transform, args in transforms:
        try:
            if isinstance(value, list) and transform.elementwise:
                value = [transform.fn(v, args, ctx) for v in value]
            else:
                value = transform.fn(value, args, ctx)
        except TransformFailure:
            raise
        except (ValueError, TypeError, ArithmeticError, OSError, LookupError) as exc:
            raise TransformFailure("invalid", f"{transform.name} cannot use {value!r}: {exc}") from exc
    return value


def _coerce_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return norm(value)
    return value


# --- inbound ---------------------------------------------------------------------------------------------------------


def _evaluate(rule: FieldRule, record: Any, run: _Run, name: str) -> Any:
    """The canonical value of ``rule`` for ``record`` (UNSET when the field stays empty)."""
    kind = rule.spec.kind
    if kind != "scalar":
        if kind == "object":
            return _evaluate_object(rule, record, run, name)
        return _evaluate_list(rule, record, run, name)
    if rule.cases:
        for index, (conditions, value) in enumerate(rule.cases):
            if all(condition(record) for condition in conditions):
                run.note(name, rule.where, rule.source, None, value, f"case {index + 1}")
                return value
    if rule.const is not UNSET:
        run.note(name, rule.where, None, None, rule.const, "const")
        return rule.const
    if rule.all_of:
        raw: Any = []
        for path in rule.all_of:
            got = path.get(record)
            if isinstance(got, list):
                raw.extend(v for v in got if not is_empty(v))
            elif not is_empty(got):
                raw.append(got)
        empty = not raw
    else:
        raw = None
        empty = True
        for path in rule.paths:
            raw = path.get(record)
            if raw is not None and not is_empty(raw):
                empty = False
                break
    if empty:
        return _default(rule, run, name, raw) if rule.default is not UNSET else UNSET
    scope = norm(rule.scope.path.get(record)) if rule.scope is not None else None
    value = raw
    if rule.transforms:
        try:
            value = _apply(
                rule.transforms, raw, run.context if scope is None else TransformContext(run.metadata, scope)
            )
        except TransformFailure as failure:
            run.keep_raw(name, raw, failure.code, f"{name}: {failure.message}")
            run.note(name, rule.where, rule.source, raw, None, failure.code)
            return UNSET
        if (value is None or is_empty(value)) and type(value) is not tuple:
            return _default(rule, run, name, raw)
    if rule.labels is None and rule.vmap is None:
        if rule.spec.text and type(value) is not str:
            value = _coerce_text(value)
        if run.explain:
            run.note(name, rule.where, rule.source, raw, value, "value")
        return value
    return _map_value(rule, value, raw, scope, run, name)


def _default(rule: FieldRule, run: _Run, name: str, raw: Any) -> Any:
    if rule.default is UNSET:
        return UNSET
    run.note(name, rule.where, rule.source, raw, rule.default, "default")
    return rule.default


def _where_text(rule: FieldRule, scope: str | None) -> str:
    return f" on {rule.scope.label} {scope!r}" if rule.scope is not None and scope is not None else ""


def _map_value(rule: FieldRule, value: Any, raw: Any, scope: str | None, run: _Run, name: str) -> Any:
    text = norm(value)
    if text is None:
        run.keep_raw(name, raw, "invalid", f"{name} {raw!r} is not a single value")
        return UNSET
    key: str = text
    shown = repr(key)
    via = "map"
    if rule.labels is not None:
        metadata = run.metadata
        if metadata is not None and rule.labels in metadata.fields:
            choice = find_choice(metadata, rule.labels, value=key, scope=scope)
            if choice is None:
                run.keep_raw(
                    name,
                    raw,
                    "unknown_value",
                    f"{name} {key}{_where_text(rule, scope)} is not a value of the vendor's {rule.labels} picklist",
                )
                run.note(name, rule.where, rule.source, raw, None, "unknown value")
                return UNSET
            label = choice.label
            via = "metadata label, map"
        else:
            coded = rule.codes_reversed.get(key)
            via = "codes label, map"
            if coded is None:
                run.keep_raw(
                    name,
                    raw,
                    "unmapped",
                    f"{name} {key}{_where_text(rule, scope)} has no mapping (its label is unknown without the "
                    f"vendor's {rule.labels} picklist)",
                )
                run.note(name, rule.where, rule.source, raw, None, "unmapped")
                return UNSET
            label = coded
        shown = f"{label!r} ({key})"
        key = label
    if rule.vmap is None:  # labels only: the label is the value
        run.note(name, rule.where, rule.source, raw, key, via)
        return key
    found, target, own = rule.vmap.get(key, scope)
    if found:
        run.note(
            name,
            rule.where,
            rule.source,
            raw,
            target,
            f"{via} ({rule.scope.label} {scope!r})" if own and rule.scope else via,
        )
        return target
    if rule.on_unmapped == "pass":
        passed = _coerce_text(value) if rule.spec.text else value
        run.note(name, rule.where, rule.source, raw, passed, "value (not in map)")
        return passed
    run.keep_raw(
        name,
        raw,
        "unmapped",
        f"{name} {shown}{_where_text(rule, scope)} has no mapping",
        finding=rule.on_unmapped == "finding",
    )
    run.note(name, rule.where, rule.source, raw, None, "unmapped")
    return UNSET


def _evaluate_object(rule: FieldRule, record: Any, run: _Run, name: str) -> Any:
    values: dict[str, Any] = {}
    for child in rule.children:
        value = _evaluate(child, record, run, f"{name}.{child.name}")
        if value is not UNSET and value is not None:
            values[child.name] = value
    if not values:
        return UNSET
    assert rule.spec.model is not None
    return _build(rule.spec.model, values, run, name)


def _build(model: type[BaseModel], values: dict[str, Any], run: _Run, name: str) -> Any:
    """``model(**values)``; a value the model refuses is dropped (kept raw, with a finding) instead of failing."""
    for _ in range(len(values) + 1):
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
            if not bad & set(values):
                break
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else ""
                if key in values:
                    raw = values.pop(key)
                    run.keep_raw(f"{name}.{key}", raw, "invalid", f"{name}.{key} {raw!r}: {err['msg']}")
    return UNSET


def _evaluate_list(rule: FieldRule, record: Any, run: _Run, name: str) -> Any:
    assert rule.items is not None
    assert rule.spec.model is not None
    items = rule.items.get(record)
    if items is None:
        return UNSET
    if not isinstance(items, list):
        run.keep_raw(name, items, "invalid", f"{name}: {rule.items} is not a list")
        return UNSET
    out: list[Any] = []
    skipped_first = False
    id_rule = next((c for c in rule.children if c.name == "external_id"), None)
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        if rule.where_item is not None and not rule.where_item(item):
            continue
        if rule.skip is not None and rule.skip(item):
            continue
        if rule.skip_first is not None and not skipped_first and rule.skip_first(item):
            skipped_first = True
            continue
        ident = norm(id_rule.paths[0].get(item)) if id_rule is not None and id_rule.paths else None
        item_name = f"{name}[{ident if ident else index}]"
        values: dict[str, Any] = {}
        for child in rule.children:
            value = _evaluate(child, item, run, f"{item_name}.{child.name}")
            if value is not UNSET and value is not None:
                values[child.name] = value
        built = _build(rule.spec.model, values, run, item_name)
        if built is not UNSET:
            out.append(built)
    run.note(name, rule.where, rule.source, f"{len(items)} item(s)", f"{len(out)} item(s)", "items")
    return tuple(out)


# --- the mapper ------------------------------------------------------------------------------------------------------


class Mapper:
    """One mapping (a vendor file, optionally refined per connection and per tenant), ready to use.

    Built by ``load_mapping`` or served by ``MappingRegistry``; immutable and thread-safe. Pure: no I/O, no clock.

    Attributes:
        system: the vendor this mapping is for.
        files: the files it was built from, base first.
        derived: canonical field -> the fields the vendor derives it from (ServiceNow: priority from impact and
            urgency); writing any of them may change the others.
    """

    def __init__(self, base: CompiledMapping, tenants: Mapping[str, CompiledMapping], files: Sequence[str]) -> None:
        self._base = base
        self._tenants = dict(tenants)
        self.system = base.system
        self.files = tuple(files)
        self.derived = base.derived

    @property
    def tenants(self) -> tuple[str, ...]:
        """The tenants with their own overlay."""
        return tuple(self._tenants)

    def compiled(self, tenant: str | None = None) -> CompiledMapping:
        """The rules in force for ``tenant`` (the file's own rules when it has no overlay)."""
        if tenant is not None:
            return self._tenants.get(tenant, self._base)
        return self._base

    def records(self, data: Any) -> list[RawRecord]:
        """The raw records in an API response: one record, a list, or the vendor's envelope (``{"items": [...]}``)."""
        if isinstance(data, list):
            return [r for r in data if isinstance(r, dict)]
        if isinstance(data, dict):
            for key in self._base.envelope:
                if key in data:
                    inner = data[key]
                    if isinstance(inner, list):
                        return [r for r in inner if isinstance(r, dict)]
                    if isinstance(inner, dict):
                        return [inner]
                    return []
            return [data]
        return []

    # -- inbound ----------------------------------------------------------------------------------------------------

    def inbound(
        self,
        raw: RawRecord,
        context: MappingContext,
        metadata: VendorMetadata | None = None,
        *,
        explain: bool = False,
    ) -> InboundResult:
        """Map a raw vendor record (list-endpoint record or full ticket with ``_psa_*`` extras) to a canonical ticket.

        A value no rule covers leaves its canonical field None, is kept raw in ``ticket.unmapped`` and gives a
        finding; nothing here raises for vendor data except a record without an id (which is not a ticket).

        Args:
            raw: the record exactly as the vendor returned it.
            context: the connection it came from.
            metadata: the connector's statuses, picklists, queues and users, for label and id lookups.
            explain: also return a per-field trace (for ``psabridge mapping preview``).

        Raises:
            MappingError: the record has no id where the mapping says it is.
        """
        run = _Run(metadata, explain)
        tenant = self._tenant_of(raw, context, run)
        compiled = self.compiled(tenant)
        data: dict[str, Any] = {}
        for name, rule in compiled.rules.items():
            value = _evaluate(rule, raw, run, name)
            if value is not UNSET and value is not None:
                data[name] = value
        external_id = data.get("external_id")
        if external_id is None:
            where = compiled.rules.get("external_id")
            raise MappingError(
                f"the record has no id at {where.source if where else 'the external_id rule'}; it is not a ticket",
                connection=context.connection,
            )
        data.update(connection=context.connection, system=context.system, tenant=tenant)
        ticket = self._ticket(data, run)
        return InboundResult(ticket, tuple(run.findings), tuple(run.trace))

    def _ticket(self, data: dict[str, Any], run: _Run) -> Ticket:
        for _ in range(len(data) + 1):
            try:
                return Ticket.model_validate({**data, "unmapped": run.unmapped})
            except ValidationError as exc:
                bad = [str(err["loc"][0]) for err in exc.errors() if err["loc"] and str(err["loc"][0]) in data]
                if not bad or any(b in ("connection", "system", "external_id") for b in bad):
                    raise MappingError(f"the record cannot be a ticket: {exc.errors()[0]['msg']}") from exc
                for err in exc.errors():
                    key = str(err["loc"][0]) if err["loc"] else ""
                    if key in data:
                        raw = data.pop(key)
                        run.keep_raw(key, raw, "invalid", f"{key} {raw!r}: {err['msg']}")
        raise MappingError("the record cannot be a ticket")  # pragma: no cover - every pass removes a field

    def _tenant_of(self, raw: RawRecord | None, context: MappingContext, run: _Run | None) -> str | None:
        if context.tenant is not None:
            return context.tenant
        rule = self._base.tenant_rule
        if rule is None or raw is None or not context.tenants:
            return None
        value: Any = None
        for path in rule.paths:
            value = path.get(raw)
            if not is_empty(value):
                break
        if is_empty(value):
            return None
        try:
            value = _apply(rule.transforms, value, TransformContext(run.metadata if run else None))
        except TransformFailure as failure:
            if run is not None:
                run.keep_raw("tenant", value, failure.code, f"tenant: {failure.message}")
            return None
        key = norm(value)
        if key is None:
            return None
        tenant = context.tenants.get(key)
        if tenant is None:
            folded = key.casefold()
            tenant = next((t for k, t in context.tenants.items() if k.casefold() == folded), None)
        if tenant is None and run is not None:
            run.keep_raw(
                "tenant",
                key,
                "unknown_tenant",
                f"company {key!r} is not under connections[{context.connection}].tenants; the ticket has no tenant",
            )
        if run is not None:
            run.note("tenant", rule.where, " | ".join(str(p) for p in rule.paths), key, tenant, "settings tenants")
        return tenant

    # -- outbound ---------------------------------------------------------------------------------------------------

    def outbound(
        self,
        changes: Mapping[str, Any],
        context: MappingContext,
        metadata: VendorMetadata | None = None,
        current: RawRecord | None = None,
        *,
        create: bool = False,
        explain: bool = False,
    ) -> OutboundResult:
        """Turn canonical changes (field -> new value) into the vendor's patch, in the vendor's native shapes.

        ConnectWise gets ``{id}`` references (``{name}`` without metadata), Autotask picklist integers, ServiceNow
        impact and urgency for a priority, Freshservice integer codes. A change that cannot be expressed is left out
        of the patch and reported in ``problems`` (never replaced by a guess).

        Args:
            changes: canonical field -> value, as in ``SetFields.fields`` (enum values as their strings).
            context: the connection written to (its tenant, or ``current``'s company, picks the tenant overlay).
            metadata: the connector's metadata: labels to ids, per-board statuses.
            current: the ticket's current raw record, for its scope (board) and company.
            create: the patch is for a new ticket (``create_only`` rules apply).
            explain: also return a per-field trace.
        """
        run = _Run(metadata, explain)
        tenant = self._tenant_of(current, context, None)
        compiled = self.compiled(tenant)
        patch: dict[str, Any] = {}
        problems: list[MappingProblem] = []
        ordered = _outbound_order(compiled, changes)
        for name in ordered:
            value = changes[name]
            if name == "tenant":
                self._outbound_tenant(value, context, patch, problems, run)
                continue
            rule = compiled.rules.get(name)
            if rule is not None and rule.outbound is None and any(c.outbound for c in rule.children):
                _write_children(rule, value, create, patch, problems, run)
                continue
            if rule is None or rule.outbound is None:
                problems.append(
                    _problem(
                        name,
                        value,
                        "not_writable",
                        f"{name} is not written back to {self.system.value}: the mapping has no outbound rule for it",
                    )
                )
                continue
            scope = _outbound_scope(rule, changes, current, compiled)
            _write_field(rule, rule.outbound, value, scope, create, patch, problems, run)
        return OutboundResult(patch, tuple(problems), tuple(run.trace))

    def _outbound_tenant(
        self, value: Any, context: MappingContext, patch: dict[str, Any], problems: list[MappingProblem], run: _Run
    ) -> None:
        rule = self._base.tenant_rule
        out = rule.outbound if rule is not None else None
        if out is None or out.to is None:
            problems.append(_problem("tenant", value, "not_writable", "tenant is not written back: no outbound rule"))
            return
        companies = sorted(k for k, t in context.tenants.items() if t == value)
        if len(companies) != 1:
            reason = "no company" if not companies else f"several companies ({', '.join(companies)})"
            problems.append(
                _problem("tenant", value, "no_vendor_value", f"tenant {value!r} has {reason} in connections.tenants")
            )
            return
        vendor: Any = companies[0]
        if out.as_ == "reference":
            vendor = {out.ref_key: companies[0]}
        elif out.as_ == "int":
            vendor = int(companies[0]) if companies[0].lstrip("-").isdigit() else companies[0]
        _put(patch, out.to, vendor, "tenant", value, problems)
        run.note("tenant", out.where, None, value, vendor, "settings tenants")


def _outbound_order(compiled: CompiledMapping, changes: Mapping[str, Any]) -> list[str]:
    """Changes in file order, composite (``set``) rules last so a decided priority wins over impact/urgency."""
    order = {name: index for index, name in enumerate(compiled.rules)}
    composite = {n for n, r in compiled.rules.items() if r.outbound is not None and r.outbound.set}
    return sorted(changes, key=lambda n: (n in composite, order.get(n, len(order)), n))


def _outbound_scope(
    rule: FieldRule, changes: Mapping[str, Any], current: RawRecord | None, compiled: CompiledMapping
) -> str | None:
    scope = rule.scope
    if scope is None:
        return None
    if scope.field is not None and changes.get(scope.field) is not None:
        new = changes[scope.field]
        scope_rule = compiled.rules.get(scope.field)
        if scope_rule is not None and scope_rule.vmap is not None:
            candidates = scope_rule.vmap.candidates(new, None)
            if candidates:
                return candidates[0]
        return norm(new)
    return norm(scope.path.get(current)) if current is not None else None


def _problem(name: str, value: Any, code: str, message: str) -> MappingProblem:
    return MappingProblem(name, None if value is None else _raw_text(value), code, message, "error")


def _put(
    patch: dict[str, Any], path: Path, value: Any, name: str, canonical: Any, problems: list[MappingProblem]
) -> None:
    node: Any = patch
    for key in path.keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    last = path.keys[-1]
    if isinstance(node, dict) and last in node and node[last] != value:
        problems.append(
            MappingProblem(
                name,
                _raw_text(canonical),
                "conflict",
                f"{name} {canonical!r} writes {path} = {value!r}, replacing {node[last]!r} from another change",
                "warning",
            )
        )
    set_path(patch, path, value)


def _write_field(
    rule: FieldRule,
    out: OutboundRule,
    value: Any,
    scope: str | None,
    create: bool,
    patch: dict[str, Any],
    problems: list[MappingProblem],
    run: _Run,
) -> None:
    name = rule.name
    if out.create_only and not create:
        problems.append(_problem(name, value, "not_writable", f"{name} can only be set when a ticket is created"))
        return
    if value is None:
        if out.set or out.to is None:
            problems.append(_problem(name, value, "not_writable", f"{name} cannot be cleared on this vendor"))
            return
        _put(patch, out.to, out.clear, name, value, problems)
        run.note(name, out.where, None, None, out.clear, "clear")
        return
    spec = rule.spec
    if spec.kind == "object":
        _write_party(rule, out, value, scope, patch, problems, run)
        return
    try:
        typed = spec.adapter.validate_python(value)
    except ValidationError as exc:
        allowed = f" (one of {', '.join(spec.choices)})" if spec.choices else ""
        problems.append(
            _problem(name, value, "invalid", f"{name} {value!r} is not valid{allowed}: {exc.errors()[0]['msg']}")
        )
        return
    if out.set:
        writes = out.set.get(typed)
        if writes is None:
            problems.append(_problem(name, value, "no_vendor_value", f"{name} {value!r} has no outbound set entry"))
            return
        for path, vendor in writes:
            _put(patch, path, vendor, name, value, problems)
        run.note(name, out.where, None, value, {str(p): v for p, v in writes}, "set")
        return
    assert out.to is not None or out.as_ == "spread"
    if rule.vmap is not None:
        vendor_label = _inverse(rule, typed, scope, value, problems, run)
        if vendor_label is None:
            return
        resolved = _resolve(rule, out, vendor_label, scope, value, problems, run)
        if resolved is None:
            return
        vendor_value, via = resolved
    else:
        vendor_value = typed.value if isinstance(typed, Enum) else typed
        if out.transforms:
            try:
                vendor_value = _apply(out.transforms, typed, TransformContext(run.metadata, scope))
            except TransformFailure as failure:
                problems.append(_problem(name, value, failure.code, f"{name}: {failure.message}"))
                return
        via = "value"
        if out.lookup is not None:
            resolved = _resolve(rule, out, norm(vendor_value) or "", scope, value, problems, run)
            if resolved is None:
                return
            vendor_value, via = resolved
        elif out.as_ == "reference":
            vendor_value = {out.ref_key: vendor_value}
    shaped = _shape(out, vendor_value, name, value, problems)
    if shaped is UNSET:
        return
    if out.as_ == "spread":
        for key, item in shaped.items():
            patch[key] = item
    else:
        assert out.to is not None
        _put(patch, out.to, shaped, name, value, problems)
    run.note(name, out.where, None, value, shaped, via)


def _write_children(
    rule: FieldRule, value: Any, create: bool, patch: dict[str, Any], problems: list[MappingProblem], run: _Run
) -> None:
    """An object written field by field (``sla``: each due time through its own outbound)."""
    if not isinstance(value, Mapping):
        problems.append(_problem(rule.name, value, "invalid", f"{rule.name} is written as an object of its fields"))
        return
    children = {c.name: c for c in rule.children}
    for child_name, child_value in value.items():
        child = children.get(child_name)
        if child is None or child.outbound is None:
            problems.append(
                _problem(
                    f"{rule.name}.{child_name}",
                    child_value,
                    "not_writable",
                    f"{rule.name}.{child_name} is not written back: the mapping has no outbound rule for it",
                )
            )
            continue
        _write_field(child, child.outbound, child_value, None, create, patch, problems, run)


def _inverse(
    rule: FieldRule, typed: Any, scope: str | None, value: Any, problems: list[MappingProblem], run: _Run
) -> str | None:
    assert rule.vmap is not None
    candidates = rule.vmap.candidates(typed, scope)
    if not candidates:
        where = _where_text(rule, scope)
        problems.append(
            _problem(
                rule.name,
                value,
                "no_vendor_value",
                f"{rule.name} {_raw_text(value)!r}{where} has no vendor value: add it to the map or inverse",
            )
        )
        return None
    metadata = run.metadata
    field_name = rule.labels or (rule.outbound.lookup if rule.outbound else None)
    if metadata is not None and field_name is not None and field_name in metadata.fields and len(candidates) > 1:
        for candidate in candidates:
            if find_choice(metadata, field_name, label=candidate, scope=scope) is not None:
                return candidate
    return candidates[0]


def _resolve(
    rule: FieldRule,
    out: OutboundRule,
    label: str,
    scope: str | None,
    value: Any,
    problems: list[MappingProblem],
    run: _Run,
) -> tuple[Any, str] | None:
    """A vendor label as the value the vendor stores: its id from metadata, else the default codes, else the label."""
    metadata = run.metadata
    field_name = rule.labels or out.lookup
    if field_name is not None and metadata is not None and field_name in metadata.fields:
        choice = find_choice(metadata, field_name, label=label, scope=scope)
        if choice is None:
            problems.append(
                _problem(
                    rule.name,
                    value,
                    "no_vendor_value",
                    f"{rule.name} {_raw_text(value)!r} maps to {label!r}, which is not among the vendor's "
                    f"{field_name} values{_where_text(rule, scope)}",
                )
            )
            return None
        if out.as_ == "reference":
            return {"id": _id_value(choice.value)}, "metadata"
        return choice.value, "metadata"
    if rule.labels is not None:
        code = rule.codes.get(label)
        if code is None:
            problems.append(
                _problem(
                    rule.name,
                    value,
                    "lookup_unavailable",
                    f"{rule.name} {_raw_text(value)!r} maps to {label!r}, whose {rule.labels} value is unknown "
                    "without the vendor's picklists",
                )
            )
            return None
        return code, "codes"
    if out.as_ == "reference":
        return {out.ref_key: label}, "reference by " + out.ref_key
    if out.lookup is not None:
        problems.append(
            _problem(
                rule.name,
                value,
                "lookup_unavailable",
                f"{rule.name} {label!r} needs the vendor's {out.lookup} values to find its id; none were loaded",
            )
        )
        return None
    return label, "map"


def _id_value(value: str) -> Any:
    return int(value) if value.lstrip("-").isdigit() else value


def _shape(out: OutboundRule, vendor_value: Any, name: str, canonical: Any, problems: list[MappingProblem]) -> Any:
    kind = out.as_
    if kind in ("value", "reference"):
        return vendor_value
    if kind == "string":
        return _raw_text(vendor_value)
    if kind == "int":
        text = norm(vendor_value)
        if text is None or not text.lstrip("-").isdigit():
            problems.append(_problem(name, canonical, "invalid", f"{name}: {vendor_value!r} is not a whole number"))
            return UNSET
        return int(text)
    if not isinstance(vendor_value, Mapping):
        problems.append(_problem(name, canonical, "invalid", f"{name}: {kind} needs an object of name -> value"))
        return UNSET
    if kind == "pairs":
        return [{out.key: k, "value": v} for k, v in vendor_value.items()]
    return dict(vendor_value)  # object, spread


def _write_party(
    rule: FieldRule,
    out: OutboundRule,
    value: Any,
    scope: str | None,
    patch: dict[str, Any],
    problems: list[MappingProblem],
    run: _Run,
) -> None:
    """An assignee (or other person) change: an external id is written as is, a name or e-mail is looked up."""
    name = rule.name
    ident: str | None = None
    label: str | None = None
    if isinstance(value, Mapping):
        ident = norm(value.get("external_id"))
        label = norm(value.get("email")) or norm(value.get("name"))
    else:
        label = norm(value)
    if ident is None and label is None:
        problems.append(_problem(name, value, "invalid", f"{name} needs an external_id, a name or an e-mail address"))
        return
    assert out.to is not None
    if ident is not None:
        vendor: Any = {"id": _id_value(ident)} if out.as_ == "reference" else ident
        via = "external id"
    else:
        assert label is not None
        resolved = _resolve(rule, out, label, scope, value, problems, run)
        if resolved is None:
            return
        vendor, via = resolved
    shaped = _shape(out, vendor, name, value, problems)
    if shaped is not UNSET:
        _put(patch, out.to, shaped, name, value, problems)
        run.note(name, out.where, None, value, shaped, via)


def iter_field_rules(rules: Iterable[FieldRule]) -> Iterable[FieldRule]:
    """Every rule and sub-rule, depth first."""
    for rule in rules:
        yield rule
        yield from iter_field_rules(rule.children)
