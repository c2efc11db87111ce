"""Load config/rules.yaml into a ``RuleSet``; every problem names the file, line and field path where it was written."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from psabridge.errors import ConfigError

# The mapping loader's walk through nested models, reused for the same 'did you mean' hints (one copy of it).
from psabridge.mapping.loader import _model_in
from psabridge.rules.config import RulesDocument
from psabridge.rules.ruleset import RuleSet, compile_checklist
from psabridge.yamlsource import LocatedYaml, Problem, YamlError, format_loc, load_yaml, problems_from_validation

__all__ = ["RulesFileError", "build_rules", "load_rules", "rules_schema"]

Loc = tuple[str | int, ...]


class RulesFileError(ConfigError):
    """The rules file is invalid; ``problems`` names file, line and field path of each."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _fields_at(loc: Loc) -> list[str]:
    """The keys allowed at ``loc`` (for 'did you mean' hints)."""
    model: Any = RulesDocument
    in_dict = False
    for part in loc:
        if in_dict:
            in_dict = False
            continue
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(part)
        if info is None:
            return []
        model, in_dict = _model_in(info.annotation)
    if model is None or in_dict:
        return []
    return list(model.model_fields)


def build_rules(
    path: Path | str, *, text: str | None = None, tenants: Collection[str] | None = None
) -> tuple[RuleSet | None, list[Problem]]:
    """Read and compile a rules file; the rule set (None when there are problems) and every problem found.

    Args:
        path: the rules file.
        text: its content, when already read.
        tenants: the tenant keys of the settings; overrides for other tenants are problems.
    """
    try:
        located = load_yaml(path, text=text)
    except YamlError as exc:
        return None, list(exc.problems)
    if not isinstance(located.data, dict):
        return None, [Problem(located.file, 1, "", "a rules file must hold a mapping (guardrails:, rules: ...)")]
    try:
        document = RulesDocument.model_validate(located.data)
    except ValidationError as exc:
        return None, problems_from_validation(exc, located, fields_at=_fields_at)
    rules, issues = compile_checklist(document)
    problems: list[Problem] = []
    for issue in issues:
        if issue.error is not None:
            problems.extend(problems_from_validation(issue.error, located, prefix=issue.loc, fields_at=_fields_at))
        else:
            problems.append(_problem(located, issue.loc, issue.message))
    if tenants is not None:
        known = set(tenants)
        named: list[tuple[Loc, str]] = [(("tenants", tenant), tenant) for tenant in document.tenants]
        named += list(_tenant_lists(located.data, ()))  # e.g. a change window's tenants: [acme]
        for loc, tenant in named:
            if tenant not in known:
                problems.append(
                    _problem(
                        located,
                        loc,
                        f"tenant {tenant!r} is not under the settings' tenants: ({', '.join(sorted(known)) or 'none'})",
                    )
                )
    if problems:
        return None, problems
    return RuleSet(document, rules, source=located.file), []


def _tenant_lists(data: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Every tenant key in a ``tenants: [...]`` list anywhere in the file, with where."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "tenants" and isinstance(value, list):
                yield from (((*loc, key, i), str(t)) for i, t in enumerate(value) if isinstance(t, str | int))
            else:
                yield from _tenant_lists(value, (*loc, str(key)))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _tenant_lists(item, (*loc, index))


def _problem(located: LocatedYaml, loc: Loc, message: str) -> Problem:
    return Problem(located.file, located.line_of(loc), format_loc(loc), message)


def load_rules(path: Path | str, *, tenants: Collection[str] | None = None) -> RuleSet:
    """Read and compile a rules file.

    Raises:
        RulesFileError: with every problem found, each naming file, line and field path.
    """
    rules, problems = build_rules(path, tenants=tenants)
    if rules is None:
        raise RulesFileError(problems)
    return rules


def rules_schema() -> dict[str, Any]:
    """The JSON Schema of the rules file (for editors)."""
    document = RulesDocument.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "psabridge rules"
    return document
