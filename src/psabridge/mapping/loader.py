"""Load mapping files: read the ``extends`` chain, layer the files and tenant overlays, validate, compile to a Mapper.

Every problem names the file, line and path where it was written, including problems that only show once files are
layered (a tenant overlay mapping to a status that does not exist names the overlay's line, not the base file's).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from psabridge.default_mappings import UnknownMappingError, resolve_mapping
from psabridge.errors import MappingError
from psabridge.mapping.canonical import TICKET_FIELDS, CanonicalField
from psabridge.mapping.engine import (
    UNSET,
    CompiledMapping,
    Condition,
    FieldRule,
    Located,
    Mapper,
    OutboundRule,
    Scope,
    TenantRule,
    ValueMap,
    norm,
)
from psabridge.mapping.paths import Path as FieldPath
from psabridge.mapping.paths import PathError, compile_path
from psabridge.mapping.spec import (
    ConditionSpec,
    FieldRuleSpec,
    MappingDocument,
    OutboundSpec,
    ScopedMapSpec,
    TenantRuleSpec,
    TransformRef,
)
from psabridge.mapping.transforms import TRANSFORMS, Transform
from psabridge.yamlsource import LocatedYaml, Problem, YamlError, format_loc, load_yaml, problems_from_validation

__all__ = ["MappingFileError", "build_mapping", "check_mapping", "load_mapping"]

Loc = tuple[str | int, ...]
MAX_EXTENDS = 8
_OBJECT_KEYS = frozenset({"fields", "outbound"})
_LIST_KEYS = frozenset({"items", "fields", "where", "skip", "skip_first"})


class MappingFileError(MappingError):
    """A mapping file (or a file it extends) is invalid; ``problems`` names file, line and path of each."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class _Origin:
    file: str
    line: int | None
    loc: Loc


class _Provenance:
    """Which file and line each path of the layered document was written at."""

    def __init__(self, entries: dict[Loc, _Origin] | None = None) -> None:
        self.entries: dict[Loc, _Origin] = dict(entries or {})

    def add(self, located: LocatedYaml) -> None:
        for loc, line in located.lines.items():
            self.entries[loc] = _Origin(located.file, line, loc)
        self.entries.setdefault((), _Origin(located.file, located.lines.get(()), ()))

    def for_tenant(self, tenant: str) -> _Provenance:
        out = _Provenance(self.entries)
        for loc, origin in self.entries.items():
            if len(loc) > 2 and loc[:2] == ("tenants", tenant):
                out.entries[loc[2:]] = origin
        return out

    def locate(self, loc: Loc) -> tuple[str, int | None, str]:
        parts = loc
        while parts not in self.entries and parts:
            parts = parts[:-1]
        origin = self.entries.get(parts)
        if origin is None:
            return "<mapping>", None, format_loc(loc)
        return origin.file, origin.line, format_loc((*origin.loc, *loc[len(parts) :]))


# --- reading and layering --------------------------------------------------------------------------------------------


def _read_chain(path: Path) -> tuple[list[LocatedYaml], list[str], list[Problem]]:
    """The files of an ``extends`` chain, base first, each checked against the schema on its own."""
    chain: list[LocatedYaml] = []
    files: list[str] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    current: Path | None = path
    while current is not None:
        files.append(str(current))
        resolved = current.resolve()
        if resolved in seen or len(chain) >= MAX_EXTENDS:
            problems.append(Problem(str(current), None, "extends", "extends goes round in a circle (or too deep)"))
            break
        seen.add(resolved)
        try:
            located = load_yaml(current)
        except YamlError as exc:
            problems.extend(exc.problems)
            break
        if not isinstance(located.data, dict):
            problems.append(Problem(located.file, 1, "", "a mapping file must hold a mapping (system:, fields: ...)"))
            break
        try:
            document = MappingDocument.model_validate(located.data)
        except ValidationError as exc:
            problems.extend(problems_from_validation(exc, located, fields_at=_fields_at))
            break
        chain.append(located)
        current = None
        if document.extends:
            line = located.line_of(("extends",))
            try:
                current = resolve_mapping(document.extends, Path(located.file).parent)
            except UnknownMappingError as exc:
                problems.append(Problem(located.file, line, "extends", str(exc)))
                break
            if not current.exists():
                problems.append(Problem(located.file, line, "extends", f"file {current} does not exist"))
                break
    chain.reverse()
    return chain, files, problems


def _merge(base: Any, over: Any) -> Any:
    """``over`` layered on ``base``: dicts merge key by key, a null removes a key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = _merge(out[key], value)
            else:
                out[key] = value
        return out
    return over


def _fields_at(loc: Loc) -> list[str]:
    """The keys allowed at ``loc`` (for 'did you mean' hints)."""
    model: Any = MappingDocument
    in_dict = False
    for part in loc:
        if in_dict:
            in_dict = False
            continue
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(part) or next((f for f in model.model_fields.values() if f.alias == part), None)
        if info is None:
            return []
        model, in_dict = _model_in(info.annotation)
    if model is None or in_dict:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> tuple[Any, bool]:
    """The BaseModel inside an annotation, and whether it sits inside a dict (``dict[str, FieldRuleSpec]``)."""
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if not args:
        return None, False
    is_dict = getattr(annotation, "__origin__", None) is dict
    for arg in args[1:] if is_dict else args:
        model, _ = _model_in(arg)
        if model is not None:
            return model, is_dict
    return None, False


# --- compiling -------------------------------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, provenance: _Provenance) -> None:
        self.provenance = provenance
        self.problems: list[Problem] = []
        self._writing_children = False  # compiling the fields of an object written field by field (sla)

    def problem(self, loc: Loc, message: str) -> None:
        file, line, path = self.provenance.locate(loc)
        self.problems.append(Problem(file, line, path, message))

    def located(self, loc: Loc) -> Located:
        file, line, path = self.provenance.locate(loc)
        return Located(file, line, path)

    # -- document ---------------------------------------------------------------------------------------------------

    def document(self, document: MappingDocument) -> CompiledMapping | None:
        if document.system is None:
            self.problem((), "system: is required (connectwise, autotask, servicenow or freshservice)")
        rules: dict[str, FieldRule] = {}
        for name, spec in document.fields.items():
            loc: Loc = ("fields", name)
            canonical = TICKET_FIELDS.get(name)
            if canonical is None:
                if name == "tenant":
                    self.problem(
                        loc,
                        "tenant comes from the settings (connections[].tenant or tenants); say where "
                        "the vendor's company identifier is with a top-level tenant: {path: ...}",
                    )
                else:
                    self.problem(loc, f"unknown canonical field {name!r}{_hint(name, TICKET_FIELDS)}")
                continue
            if spec is None:
                self.problem(loc, "has no rule (write one, or remove the line)")
                continue
            rule = self.rule(spec, canonical, loc, name, top=True)
            if rule is not None:
                rules[name] = rule
        if "external_id" not in rules:
            self.problem(("fields",), "external_id is required: the path of the vendor's ticket id")
        tenant_rule = self.tenant_rule(document.tenant) if document.tenant is not None else None
        if document.system is None:
            return None
        derived = self.derived(document.derived)
        return CompiledMapping(document.system, rules, tenant_rule, tuple(document.envelope or ()), derived)

    def derived(self, spec: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
        derived: dict[str, tuple[str, ...]] = {}
        for name, sources in spec.items():
            loc: Loc = ("derived", name)
            unknown = [n for n in (name, *sources) if n not in TICKET_FIELDS]
            if unknown:
                self.problem(loc, f"unknown canonical field {unknown[0]!r}{_hint(unknown[0], TICKET_FIELDS)}")
            elif not sources or name in sources:
                self.problem(loc, "name the other fields the vendor derives it from, e.g. priority: [impact, urgency]")
            else:
                derived[name] = tuple(sources)
        return derived

    def tenant_rule(self, spec: TenantRuleSpec) -> TenantRule:
        loc: Loc = ("tenant",)
        paths = self.paths(spec.path, (*loc, "path"))
        transforms = self.transforms(spec.transform, (*loc, "transform"))
        outbound = None
        if spec.outbound is not None:
            outbound = self.outbound(spec.outbound, None, None, (*loc, "outbound"), "tenant")
        return TenantRule(paths, transforms, outbound, self.located(loc))

    # -- rules ------------------------------------------------------------------------------------------------------

    def rule(
        self, spec: FieldRuleSpec, canonical: CanonicalField, loc: Loc, name: str, *, top: bool
    ) -> FieldRule | None:
        given = {k for k in spec.model_fields_set if getattr(spec, k) not in (None, [], {})}
        if canonical.kind == "object":
            return self.object_rule(spec, canonical, loc, name, given, top=top)
        if canonical.kind == "list":
            return self.list_rule(spec, canonical, loc, name, given)
        for key in sorted(given & {"items", "fields", "where", "skip", "skip_first"}):
            self.problem((*loc, key), f"{name} is a single value; {key} is for lists and objects (notes, requester)")
        sources = [k for k in ("path", "all_of", "const") if k in given]
        if len(sources) > 1:
            self.problem(loc, f"give one of path, all_of, const (this rule has {', '.join(sources)})")
        if not sources and not spec.cases:
            self.problem(loc, "needs a path (or all_of, const or cases) to read the value from")
        paths = self.paths(spec.path, (*loc, "path")) if spec.path is not None else ()
        all_of = tuple(
            p for p in (self.path(t, (*loc, "all_of", i)) for i, t in enumerate(spec.all_of or ())) if p is not None
        )
        const = self.target(spec.const, canonical, (*loc, "const"), name) if spec.const is not None else UNSET
        cases = tuple(
            (
                tuple(self.condition(c, (*loc, "cases", i, "when")) for c in case.conditions),
                self.target(case.value, canonical, (*loc, "cases", i, "value"), name),
            )
            for i, case in enumerate(spec.cases)
        )
        default = self.target(spec.default, canonical, (*loc, "default"), name) if spec.default is not None else UNSET
        codes: dict[str, str] = {}
        for label, value in spec.codes.items():
            text = norm(value)
            if text is None:
                self.problem((*loc, "codes", label), "has no value (the vendor's value for this label)")
            else:
                codes[label] = text
        if codes and spec.labels is None:
            self.problem((*loc, "codes"), "codes are the default picklist of labels:; add labels: <vendor field>")
        scope = None
        if spec.scope is not None:
            scope_field = spec.scope.field
            if scope_field is not None and scope_field not in TICKET_FIELDS:
                self.problem((*loc, "scope", "field"), f"unknown canonical field {scope_field!r}")
            scope_path = self.path(spec.scope.path, (*loc, "scope", "path"))
            if scope_path is not None:
                scope = Scope(scope_path, spec.scope.label, scope_field)
        elif spec.scopes:
            self.problem((*loc, "scopes"), "scopes needs scope: {path: ..., label: ...} to say what a scope is")
        vmap = self.value_map(spec, canonical, loc, name)
        on_unmapped = spec.on_unmapped or ("finding" if canonical.closed or not canonical.text else "pass")
        outbound = None
        if spec.outbound is not None:
            if not (top or self._writing_children) or not canonical.settable:
                self.problem(
                    (*loc, "outbound"),
                    f"{name} cannot be written back (write-back sets: "
                    f"{', '.join(sorted(n for n, f in TICKET_FIELDS.items() if f.settable))}"
                    ", tenant)",
                )
            else:
                outbound = self.outbound(spec.outbound, canonical, vmap, (*loc, "outbound"), name)
                if vmap is not None and not spec.outbound.set:
                    self.check_inverse(spec, vmap, canonical, loc, name)
        return FieldRule(
            name=name,
            spec=canonical,
            where=self.located(loc),
            paths=paths,
            all_of=all_of,
            const=const,
            cases=cases,
            transforms=self.transforms(spec.transform, (*loc, "transform")),
            labels=spec.labels,
            codes=codes,
            codes_reversed={v: k for k, v in codes.items()},
            vmap=vmap,
            scope=scope,
            default=default,
            on_unmapped=on_unmapped,
            outbound=outbound,
        )

    def object_rule(
        self, spec: FieldRuleSpec, canonical: CanonicalField, loc: Loc, name: str, given: set[str], *, top: bool
    ) -> FieldRule | None:
        for key in sorted(given - _OBJECT_KEYS):
            self.problem((*loc, key), f"{name} is an object ({_model_name(canonical)}): put {key} on its fields")
        # A settable object without an outbound of its own (sla) writes each field through the field's outbound.
        writes_children = top and canonical.settable and spec.outbound is None
        outer, self._writing_children = self._writing_children, writes_children
        try:
            children = self.children(spec, canonical, loc, name)
        finally:
            self._writing_children = outer
        if not children:
            if not spec.fields:
                self.problem(loc, f"{name} needs fields: (one rule per {_model_name(canonical)} field)")
            return None
        outbound = None
        if spec.outbound is not None:
            if not top or not canonical.settable:
                self.problem((*loc, "outbound"), f"{name} cannot be written back")
            else:
                outbound = self.outbound(spec.outbound, canonical, None, (*loc, "outbound"), name)
        return FieldRule(name=name, spec=canonical, where=self.located(loc), children=children, outbound=outbound)

    def list_rule(
        self, spec: FieldRuleSpec, canonical: CanonicalField, loc: Loc, name: str, given: set[str]
    ) -> FieldRule | None:
        for key in sorted(given - _LIST_KEYS):
            hint = " (notes and time entries are added with their own actions)" if key == "outbound" else ""
            self.problem((*loc, key), f"{name} is a list: {key} belongs on its fields{hint}")
        if spec.items is None:
            self.problem(loc, f"{name} needs items: the path of the list (e.g. _psa_notes)")
            return None
        children = self.children(spec, canonical, loc, name)
        if not children:
            if not spec.fields:
                self.problem(loc, f"{name} needs fields: (one rule per {_model_name(canonical)} field)")
            return None
        return FieldRule(
            name=name,
            spec=canonical,
            where=self.located(loc),
            items=self.path(spec.items, (*loc, "items")),
            where_item=self.condition(spec.where, (*loc, "where")) if spec.where else None,
            skip=self.condition(spec.skip, (*loc, "skip")) if spec.skip else None,
            skip_first=self.condition(spec.skip_first, (*loc, "skip_first")) if spec.skip_first else None,
            children=children,
        )

    def children(self, spec: FieldRuleSpec, canonical: CanonicalField, loc: Loc, name: str) -> tuple[FieldRule, ...]:
        out: list[FieldRule] = []
        for child_name, child_spec in spec.fields.items():
            child_loc = (*loc, "fields", child_name)
            child = canonical.children.get(child_name)
            if child is None:
                self.problem(
                    child_loc,
                    f"{_model_name(canonical)} has no field {child_name!r}{_hint(child_name, canonical.children)}",
                )
                continue
            if child_spec is None:
                self.problem(child_loc, "has no rule (write one, or remove the line)")
                continue
            rule = self.rule(child_spec, child, child_loc, child_name, top=False)
            if rule is not None:
                out.append(rule)
        return tuple(out)

    # -- values -----------------------------------------------------------------------------------------------------

    def target(self, value: Any, canonical: CanonicalField, loc: Loc, name: str) -> Any:
        """A canonical value written in the file, validated and converted (``new`` -> Status.NEW)."""
        if value is None:
            self.problem(loc, "has no value")
            return UNSET
        try:
            return canonical.adapter.validate_python(value)
        except ValidationError as exc:
            if canonical.choices:
                self.problem(loc, f"{value!r} is not a canonical {name}: use one of {', '.join(canonical.choices)}")
            else:
                message = exc.errors()[0]["msg"].removeprefix("Value error, ")
                self.problem(loc, f"{value!r} is not a valid {name}: {message}")
            return UNSET

    def value_map(self, spec: FieldRuleSpec, canonical: CanonicalField, loc: Loc, name: str) -> ValueMap | None:
        if not spec.map and not spec.scopes:
            return None
        general, folded = self.entries(spec.map, canonical, (*loc, "map"), name)
        inverse = self.inverse(spec.inverse, general, canonical, (*loc, "inverse"), name)
        scoped: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        scoped_inverse: dict[str, dict[Any, tuple[str, ...]]] = {}
        for scope_name, scoped_spec in spec.scopes.items():
            scope_loc = (*loc, "scopes", scope_name)
            if scoped_spec is None:
                self.problem(scope_loc, "has no map (write map:, or remove the line)")
                continue
            own, own_folded = self.entries(scoped_spec.map, canonical, (*scope_loc, "map"), name)
            scoped[scope_name.casefold()] = (own, own_folded)
            scoped_inverse[scope_name.casefold()] = self.inverse(
                scoped_spec.inverse, own, canonical, (*scope_loc, "inverse"), name
            )
        return ValueMap(general, folded, scoped, inverse, scoped_inverse)

    def entries(
        self, raw: Mapping[Any, Any], canonical: CanonicalField, loc: Loc, name: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        exact: dict[str, Any] = {}
        folded: dict[str, Any] = {}
        first: dict[str, Any] = {}
        for key, value in raw.items():
            text = norm(key)
            entry_loc = (*loc, str(key) if not isinstance(key, bool) else str(key).lower())
            if text is None or not text:
                self.problem(entry_loc, "a map key must be a vendor value")
                continue
            target = self.target(value, canonical, entry_loc, name)
            if target is UNSET:
                continue
            if text.casefold() in first:
                self.problem(
                    entry_loc,
                    f"{text!r} is already mapped (as {first[text.casefold()]!r}); vendor values "
                    "are matched ignoring case",
                )
                continue
            first[text.casefold()] = key
            exact[text] = target
            folded[text.casefold()] = target
        return exact, folded

    def inverse(
        self, explicit: Mapping[str, Any], entries: Mapping[str, Any], canonical: CanonicalField, loc: Loc, name: str
    ) -> dict[Any, tuple[str, ...]]:
        out: dict[Any, list[str]] = {}
        for key, vendor in explicit.items():
            target = self.target(key, canonical, (*loc, key), name)
            text = norm(vendor)
            if target is UNSET:
                continue
            if text is None:
                self.problem((*loc, key), "has no value (the vendor value to write)")
                continue
            out.setdefault(target, []).append(text)
        for vendor_key, target in entries.items():
            candidates = out.setdefault(target, [])
            if vendor_key not in candidates:
                candidates.append(vendor_key)
        return {k: tuple(v) for k, v in out.items()}

    def check_inverse(
        self, spec: FieldRuleSpec, vmap: ValueMap, canonical: CanonicalField, loc: Loc, name: str
    ) -> None:
        """A canonical value mapped from several vendor values needs an explicit inverse (which one to write)."""
        self.ambiguous(spec.map, spec.inverse, canonical, (*loc, "map"), (*loc, "inverse"), name, "")
        for scope_name, scoped_spec in spec.scopes.items():
            if isinstance(scoped_spec, ScopedMapSpec):
                scope_loc = (*loc, "scopes", scope_name)
                self.ambiguous(
                    scoped_spec.map,
                    scoped_spec.inverse,
                    canonical,
                    (*scope_loc, "map"),
                    (*scope_loc, "inverse"),
                    name,
                    f" on {spec.scope.label if spec.scope else 'scope'} {scope_name!r}",
                )

    def ambiguous(
        self,
        entries: Mapping[Any, Any],
        explicit: Mapping[str, Any],
        canonical: CanonicalField,
        map_loc: Loc,
        inverse_loc: Loc,
        name: str,
        where: str,
    ) -> None:
        by_target: dict[Any, list[str]] = {}
        seen: set[str] = set()
        for key, value in entries.items():
            text = str(norm(key))
            if text.casefold() in seen:
                continue  # reported as a repeated value
            seen.add(text.casefold())
            try:
                target = canonical.adapter.validate_python(value)
            except ValidationError:
                continue
            by_target.setdefault(target, []).append(text)
        declared = set()
        for key in explicit:
            try:
                declared.add(canonical.adapter.validate_python(key))
            except ValidationError:
                continue
        for target, keys in by_target.items():
            if len(keys) > 1 and target not in declared:
                shown = getattr(target, "value", target)
                inverse_path = self.provenance.locate(inverse_loc)[2]
                self.problem(
                    (*map_loc, keys[1]),
                    f"ambiguous inverse: {name} {shown!r}{where} is mapped from {', '.join(repr(k) for k in keys)}; "
                    f"say which one write-back sets under inverse: {{{shown}: ...}} ({inverse_path})",
                )

    # -- outbound ---------------------------------------------------------------------------------------------------

    def outbound(
        self, spec: OutboundSpec, canonical: CanonicalField | None, vmap: ValueMap | None, loc: Loc, name: str
    ) -> OutboundRule:
        to = None
        if spec.to is not None:
            to = self.path(spec.to, (*loc, "to"))
            if to is not None and not to.is_plain:
                self.problem((*loc, "to"), f"{spec.to!r}: write-back paths are plain keys (a.b), no [..]")
                to = None
        elif not spec.set and spec.as_ != "spread":
            self.problem(loc, "needs to: the vendor field to write (or set: for several fields)")
        writes: dict[Any, tuple[tuple[FieldPath, Any], ...]] = {}
        for key, fields in spec.set.items():
            if canonical is None:
                break
            target = self.target(key, canonical, (*loc, "set", key), name)
            if target is UNSET:
                continue
            if not fields:
                self.problem((*loc, "set", key), "has no vendor fields to write")
                continue
            pairs = []
            for vendor_field, vendor_value in fields.items():
                path = self.path(vendor_field, (*loc, "set", key, vendor_field))
                if path is not None and path.is_plain:
                    pairs.append((path, vendor_value))
                elif path is not None:
                    self.problem((*loc, "set", key, vendor_field), "write-back paths are plain keys (a.b)")
            writes[target] = tuple(pairs)
        if spec.set and vmap is not None and canonical is not None and canonical.choices:
            missing = [c for c in canonical.choices if canonical.adapter.validate_python(c) not in writes]
            if missing:
                self.problem((*loc, "set"), f"no entry for {', '.join(missing)}: those {name} values cannot be written")
        if spec.as_ in ("object", "pairs", "spread") and canonical is not None and canonical.name != "custom":
            self.problem((*loc, "as"), f"as: {spec.as_} is for custom fields (a name -> value object)")
        return OutboundRule(
            to=to,
            as_=spec.as_,
            lookup=spec.lookup,
            ref_key=spec.ref_key,
            key=spec.key,
            transforms=self.transforms(spec.transform, (*loc, "transform")),
            set=writes,
            clear=spec.clear,
            create_only=spec.create_only,
            where=self.located(loc),
        )

    # -- pieces -----------------------------------------------------------------------------------------------------

    def path(self, text: str, loc: Loc) -> FieldPath | None:
        try:
            return compile_path(text)
        except PathError as exc:
            self.problem(loc, str(exc))
            return None

    def paths(self, value: str | list[str], loc: Loc) -> tuple[FieldPath, ...]:
        texts = [value] if isinstance(value, str) else value
        locs = [loc] if isinstance(value, str) else [(*loc, i) for i in range(len(value))]
        return tuple(p for p in (self.path(t, lc) for t, lc in zip(texts, locs, strict=True)) if p is not None)

    def condition(self, spec: ConditionSpec, loc: Loc) -> Condition:
        path = self.path(spec.path, (*loc, "path")) or compile_path("$")
        if spec.empty is not None:
            return Condition(path, empty=spec.empty)
        if spec.in_ is not None:
            return Condition(path, among=frozenset(str(norm(v)).casefold() for v in spec.in_))
        return Condition(path, equals=str(norm(spec.equals)).casefold())

    def transforms(self, refs: TransformRef | list[TransformRef] | None, loc: Loc) -> tuple[tuple[Transform, Any], ...]:
        if refs is None:
            return ()
        items = refs if isinstance(refs, list) else [refs]
        out: list[tuple[Transform, Any]] = []
        for index, ref in enumerate(items):
            item_loc = (*loc, index) if isinstance(refs, list) else loc
            if isinstance(ref, str):
                name, args = ref, {}
            elif len(ref) == 1:
                name, raw_args = next(iter(ref.items()))
                args = raw_args or {}
                item_loc = (*item_loc, name)
            else:
                self.problem(item_loc, "a transform is a name, or {name: {argument: value}} with one name")
                continue
            transform = TRANSFORMS.get(name)
            if transform is None:
                self.problem(
                    item_loc,
                    f"unknown transform {name!r}{_hint(name, TRANSFORMS)}; transforms: {', '.join(sorted(TRANSFORMS))}",
                )
                continue
            try:
                out.append((transform, transform.args.model_validate(args)))
            except ValidationError as exc:
                for err in exc.errors():
                    where = (*item_loc, *(str(p) for p in err["loc"]))
                    self.problem(where, f"{name}: {err['msg'].removeprefix('Value error, ')}")
        return tuple(out)


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_name(canonical: CanonicalField) -> str:
    return canonical.model.__name__ if canonical.model is not None else canonical.name


# --- public ----------------------------------------------------------------------------------------------------------


def build_mapping(path: Path) -> tuple[Mapper | None, list[str], list[Problem]]:
    """The mapper of a file (or None), the files it is built from (to watch for changes) and the problems found."""
    chain, files, problems = _read_chain(path)
    if problems:
        return None, files, problems
    provenance = _Provenance()
    merged: Any = {}
    for located in chain:
        merged = _merge(merged, located.data) if merged else dict(located.data)
        provenance.add(located)
    merged.pop("extends", None)
    tenants = merged.pop("tenants", None) or {}
    compiler = _Compiler(provenance)
    base_doc = _validated(merged, compiler)
    base = compiler.document(base_doc) if base_doc is not None else None
    compiled_tenants: dict[str, CompiledMapping] = {}
    for tenant, overlay in tenants.items():
        if not overlay or not overlay.get("fields"):
            continue
        tenant_compiler = _Compiler(provenance.for_tenant(str(tenant)))
        doc = _validated(_merge(merged, {"fields": overlay["fields"]}), tenant_compiler)
        compiled = tenant_compiler.document(doc) if doc is not None else None
        compiler.problems.extend(tenant_compiler.problems)
        if compiled is not None:
            compiled_tenants[str(tenant)] = compiled
    unique = list(dict.fromkeys(compiler.problems))
    if unique or base is None:
        return None, files, unique
    return Mapper(base, compiled_tenants, [str(located.file) for located in chain]), files, []


def _validated(data: dict[str, Any], compiler: _Compiler) -> MappingDocument | None:
    try:
        return MappingDocument.model_validate(data)
    except ValidationError as exc:  # each file passed on its own; layering files of different shapes can still fail
        for err in exc.errors():
            compiler.problem(tuple(err["loc"]), str(err["msg"]))
        return None


def check_mapping(path: Path | str) -> tuple[Mapper | None, list[Problem]]:
    """Load and validate a mapping file and the files it extends; return the mapper, or every problem found."""
    mapper, _, problems = build_mapping(Path(path))
    return mapper, problems


def load_mapping(path: Path | str) -> Mapper:
    """Load a mapping file (and the files it extends) into a Mapper.

    Raises:
        MappingFileError: with every problem, each naming file, line and path.
    """
    mapper, problems = check_mapping(path)
    if mapper is None:
        raise MappingFileError(problems)
    return mapper
