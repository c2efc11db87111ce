"""Check a mapping against the values the vendor allows right now (statuses per board, picklists, queues, users).

Pure: the connector fetches the metadata; this compares. Errors are live values no rule covers (every ticket with one
would get a finding); warnings are values write-back could not set and mapped values the vendor no longer has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psabridge.mapping.engine import CompiledMapping, FieldRule, Located, Mapper, iter_field_rules
from psabridge.mapping.transforms import find_choice
from psabridge.vendordata import VendorMetadata
from psabridge.yamlsource import Problem

__all__ = ["LiveReport", "check_live"]


@dataclass
class LiveReport:
    """What ``check_live`` found: errors (live values with no mapping) and warnings."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors."""
        return not self.errors


def _problem(where: Located, message: str) -> Problem:
    return Problem(where.file, where.line, where.path, message)


def check_live(mapper: Mapper, metadata: VendorMetadata) -> LiveReport:
    """Compare every value-mapped rule (and every lookup) of ``mapper`` and its tenant overlays with ``metadata``."""
    report = LiveReport()
    seen_errors: set[str] = set()
    seen_warnings: set[str] = set()
    for tenant in (None, *mapper.tenants):
        found = _check(mapper.compiled(tenant), metadata, tenant)
        for problem in found.errors:
            if str(problem) not in seen_errors:
                seen_errors.add(str(problem))
                report.errors.append(problem)
        for problem in found.warnings:
            if str(problem) not in seen_warnings:
                seen_warnings.add(str(problem))
                report.warnings.append(problem)
    return report


def _check(compiled: CompiledMapping, metadata: VendorMetadata, tenant: str | None) -> LiveReport:
    report = LiveReport()
    suffix = f" (tenant {tenant})" if tenant else ""
    for rule in iter_field_rules(compiled.rules.values()):
        for transform, args in rule.transforms:
            wanted = getattr(args, "field", None) if transform.name == "lookup" else None
            if isinstance(wanted, str) and wanted not in metadata.fields:
                report.warnings.append(
                    _problem(rule.where, f"the vendor's metadata has no {wanted} values: {rule.name} ids stay unnamed")
                )
        if rule.outbound is not None and rule.outbound.lookup and rule.outbound.lookup not in metadata.fields:
            report.warnings.append(
                _problem(
                    rule.outbound.where,
                    f"the vendor's metadata has no {rule.outbound.lookup} values: write-back of {rule.name} "
                    "cannot find ids",
                )
            )
        field_name = rule.labels or (rule.outbound.lookup if rule.outbound and rule.vmap else None)
        if field_name is None or rule.vmap is None or field_name not in metadata.fields:
            continue
        _check_values(rule, field_name, metadata, suffix, report)
    return report


def _check_values(rule: FieldRule, field_name: str, metadata: VendorMetadata, suffix: str, report: LiveReport) -> None:
    assert rule.vmap is not None
    choices = metadata.fields[field_name]
    scopes: list[str | None] = [None]
    if rule.scope is not None:
        named: list[str | None] = [s for s in sorted({c.scope for c in choices if c.scope is not None})]
        scopes = named or [None]
    live_labels: set[str] = set()
    for scope in scopes:
        where = f" on {rule.scope.label} {scope!r}" if rule.scope is not None and scope is not None else ""
        for choice in choices:
            if not choice.active or (scope is not None and choice.scope not in (None, scope)):
                continue
            live_labels.add(choice.label.casefold())
            found, _, _ = rule.vmap.get(choice.label, scope)
            if not found and rule.on_unmapped == "finding":
                report.errors.append(
                    _problem(rule.where, f"{rule.name} {choice.label!r}{where} has no mapping{suffix}")
                )
        if rule.outbound is None or rule.outbound.set:
            continue
        for value in sorted({v for v in rule.vmap.inverse}, key=str):
            candidates = rule.vmap.candidates(value, scope)
            if not any(find_choice(metadata, field_name, label=c, scope=scope) for c in candidates):
                shown = getattr(value, "value", value)
                report.warnings.append(
                    _problem(
                        rule.outbound.where,
                        f"write-back cannot set {rule.name} {shown!r}{where}: none of "
                        f"{', '.join(repr(c) for c in candidates)} is a live {field_name} value{suffix}",
                    )
                )
    stale = [key for key in rule.vmap.general if key.casefold() not in live_labels]
    if stale:
        report.warnings.append(
            _problem(
                rule.where,
                f"{len(stale)} mapped {rule.name} value(s) are not live {field_name} values (fine for spelling "
                f"variants; a renamed value needs its new name mapped): {', '.join(repr(k) for k in stale)}",
            )
        )
