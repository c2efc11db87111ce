"""The rule set in force: every checklist rule with its settings per tenant (overrides merged), compiled once per load.

``RuleSet.from_document`` turns a validated ``RulesDocument`` into this; ``RuleSet.default()`` is the built-in
checklist with default settings (what runs when the settings name no rules file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from psabridge.errors import ConfigError
from psabridge.rules.base import Effect, Rule, RuleSettings
from psabridge.rules.calendar import BusinessCalendar, compile_calendars
from psabridge.rules.checklist import CHECKLIST
from psabridge.rules.config import Guardrails, NoteSettings, RulesDocument

__all__ = ["CompiledRule", "Issue", "RuleSet", "Tuned", "compile_checklist"]

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Tuned:
    """A rule's settings for one tenant, the effect of each of its finding codes, and the codes' order."""

    settings: RuleSettings
    effects: Mapping[str, Effect]
    order: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule with its default settings and each tenant's."""

    rule: Rule[Any]
    default: Tuned
    tenants: Mapping[str, Tuned]

    def tuned(self, tenant: str | None) -> Tuned:
        """The settings in force for ``tenant`` (the defaults when it has no overrides)."""
        if tenant is None:
            return self.default
        return self.tenants.get(tenant, self.default)


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem found while compiling: where (a path in the rules file) and what, or a validation error there."""

    loc: Loc
    message: str = ""
    error: ValidationError | None = None


def _merge(base: Any, over: Any) -> Any:
    """``over`` deep-merged onto ``base``: mappings merge key by key; lists and values replace."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(out[key], value) if key in out else value
        return out
    return over


def _effects(
    rule: Rule[Any], settings: RuleSettings, loc: Loc, issues: list[Issue], written: Any = None
) -> dict[str, Effect]:
    """The effect of each code; problems are reported for the codes written at ``loc`` (all, or ``written``)."""
    effects = {code: spec.effect for code, spec in rule.codes.items()}
    for code, effect in settings.effects.items():
        spec = rule.codes.get(code)
        if written is not None and code not in written:
            if spec is not None and (effect != "set" or spec.actionable):
                effects[code] = effect
            continue
        if spec is None:
            issues.append(
                Issue(
                    (*loc, "effects", code), f"rule {rule.id!r} has no finding {code!r}; it has {', '.join(rule.codes)}"
                )
            )
            continue
        if effect == "set" and not spec.actionable:
            issues.append(
                Issue(
                    (*loc, "effects", code),
                    f"finding {code!r} proposes no action, so it can be note or report, not set",
                )
            )
            continue
        effects[code] = effect
    return effects


def compile_checklist(document: RulesDocument) -> tuple[tuple[CompiledRule, ...], list[Issue]]:
    """Every checklist rule with its settings per tenant; the issues found (unknown codes, merges that fail)."""
    issues: list[Issue] = []
    compiled = []
    for rule in CHECKLIST:
        base: RuleSettings = getattr(document.rules, rule.id)
        order = {code: i for i, code in enumerate(rule.codes)}
        default = Tuned(base, _effects(rule, base, ("rules", rule.id), issues), order)
        known = {(loc, message) for loc, message in rule.problems(base)}
        issues.extend(Issue(("rules", rule.id, *loc), message) for loc, message in sorted(known, key=str))
        tenants: dict[str, Tuned] = {}
        base_data = base.model_dump()
        for tenant, overrides in document.tenants.items():
            section: RuleSettings = getattr(overrides.rules, rule.id)
            changed = section.model_dump(exclude_unset=True)
            if not changed:
                continue
            loc: Loc = ("tenants", tenant, "rules", rule.id)
            try:
                merged = rule.settings_model.model_validate(_merge(base_data, changed))
            except ValidationError as exc:
                issues.append(Issue(loc, error=exc))
                continue
            written = set(changed.get("effects") or ())
            tenants[tenant] = Tuned(merged, _effects(rule, merged, loc, issues, written), order)
            issues.extend(
                Issue((*loc, *where), message)
                for where, message in rule.problems(merged)
                if (where, message) not in known  # the default's problems are reported once, where they are written
            )
        compiled.append(CompiledRule(rule, default, tenants))
    return tuple(compiled), issues


class RuleSet:
    """The rules in force, their settings per tenant, the guardrails and the note's settings (immutable)."""

    __slots__ = ("_by_id", "_lineups", "_settings", "calendars", "document", "order", "rules", "source")

    def __init__(self, document: RulesDocument, rules: tuple[CompiledRule, ...], source: str | None = None) -> None:
        self.document = document
        self.rules = rules
        self.source = source
        self.calendars: Mapping[str, BusinessCalendar] = compile_calendars(document.calendars)
        """The business calendars of ``calendars:``, compiled once per load, by name."""
        self._by_id = {c.rule.id: c for c in rules}
        self.order: Mapping[str, int] = {c.rule.id: i for i, c in enumerate(rules)}
        """Each rule's place in the checklist, by id."""
        self._lineups: dict[str | None, tuple[tuple[Rule[Any], Tuned | None], ...]] = {}
        self._settings: dict[str | None, Mapping[str, RuleSettings]] = {}

    @classmethod
    def from_document(cls, document: RulesDocument, *, source: str | None = None) -> RuleSet:
        """Compile ``document``.

        Raises:
            ConfigError: an effect names an unknown finding, or a tenant's overrides do not validate.
        """
        rules, issues = compile_checklist(document)
        if issues:
            raise ConfigError("; ".join(f"{'.'.join(str(p) for p in i.loc)}: {i.message or i.error}" for i in issues))
        return cls(document, rules, source)

    @classmethod
    def default(cls) -> RuleSet:
        """The built-in checklist with default settings."""
        return cls.from_document(RulesDocument())

    @property
    def guardrails(self) -> Guardrails:
        """What the engine never does."""
        return self.document.guardrails

    @property
    def note(self) -> NoteSettings:
        """How the combined note is written."""
        return self.document.note

    def lineup(self, tenant: str | None) -> tuple[tuple[Rule[Any], Tuned | None], ...]:
        """Every rule in checklist order with its settings for ``tenant`` (None for a rule it disables); cached."""
        found = self._lineups.get(tenant)
        if found is None:
            tuned = [(c.rule, c.tuned(tenant)) for c in self.rules]
            found = tuple((rule, t if t.settings.enabled else None) for rule, t in tuned)
            if len(self._lineups) < 10_000:  # tenants come from the settings; the bound only guards against misuse
                self._lineups[tenant] = found
        return found

    def settings_by_rule(self, tenant: str | None) -> Mapping[str, RuleSettings]:
        """Every rule's settings for ``tenant``, by rule id (what ``RuleContext.settings`` holds); cached."""
        found = self._settings.get(tenant)
        if found is None:
            found = {c.rule.id: c.tuned(tenant).settings for c in self.rules}
            if len(self._settings) < 10_000:
                self._settings[tenant] = found
        return found

    @property
    def ids(self) -> tuple[str, ...]:
        """The rule ids, in checklist order."""
        return tuple(self._by_id)

    def rule(self, rule_id: str) -> CompiledRule:
        """The compiled rule ``rule_id``.

        Raises:
            ConfigError: no such rule.
        """
        found = self._by_id.get(rule_id)
        if found is None:
            raise ConfigError(f"no rule {rule_id!r}; rules: {', '.join(self._by_id)}")
        return found

    def settings(self, rule_id: str, tenant: str | None = None) -> RuleSettings:
        """The settings of ``rule_id`` for ``tenant`` (e.g. the knowledge rule's windows, for the store query)."""
        return self.rule(rule_id).tuned(tenant).settings

    def act_since(self, connection: str, first_synced_at: datetime | None) -> datetime | None:
        """When writes to ``connection``'s tickets start (``Guardrails.act_since_for``)."""
        return self.guardrails.act_since_for(connection, first_synced_at)
