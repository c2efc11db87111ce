"""YAML loading that remembers the line of every value, so config and mapping errors can name file, line and path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from psabridge.log import mask_text

__all__ = ["LocatedYaml", "Problem", "YamlError", "format_loc", "load_yaml", "problems_from_validation"]

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, located for a human."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class YamlError(Exception):
    """A YAML file could not be read or parsed; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class LocatedYaml:
    """Parsed YAML data plus the 1-based line of every mapping key and sequence item, by path."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Iterable[str | int]) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that has one."""
        parts = tuple(loc)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)


def format_loc(loc: Iterable[str | int]) -> str:
    """``('connections', 2, 'system')`` -> ``connections[2].system``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_yaml(path: Path | str, *, text: str | None = None, display_name: str | None = None) -> LocatedYaml:
    """Parse a YAML file, recording lines and refusing duplicate keys.

    Raises:
        YamlError: the file cannot be read, is not valid YAML, or repeats a key in one mapping.
    """
    name = display_name or str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise YamlError([Problem(name, None, "", f"cannot read file: {exc.strerror or exc}")]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError([Problem(name, line, "", f"invalid YAML: {problem}")]) from exc
    located = LocatedYaml(file=name, data=None)
    if node is None:
        located.data = {}
        return located
    located.lines[()] = node.start_mark.line + 1
    problems: list[Problem] = []
    _walk(node, (), located.lines, problems, name)
    if problems:
        raise YamlError(problems)
    loader = yaml.SafeLoader("")
    try:
        located.data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlError([Problem(name, mark.line + 1 if mark else None, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return located


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[Problem], name: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key == "<<":
                continue
            if key in seen:
                problems.append(
                    Problem(name, line, format_loc((*loc, key)), f"duplicate key (first defined on line {seen[key]})")
                )
                continue
            seen[key] = line
            lines[(*loc, key)] = line
            _walk(value_node, (*loc, key), lines, problems, name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            _walk(item, (*loc, index), lines, problems, name)


def _describe_input(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _message(error: Mapping[str, Any], siblings: Iterable[str]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{_describe_input(value)} is not one of {expected}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        import difflib

        hint = difflib.get_close_matches(str(error["loc"][-1]), list(siblings), n=1)
        return "unknown field" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    msg = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return mask_text(msg)  # a validator may echo the value: a URL's password never reaches the screen


def problems_from_validation(
    exc: ValidationError,
    located: LocatedYaml,
    *,
    prefix: Loc = (),
    fields_at: Any = None,
    origins: Mapping[Loc, str] | None = None,
) -> list[Problem]:
    """Turn a pydantic ValidationError into located problems.

    Args:
        exc: the error from validating ``located.data`` (or a part of it at ``prefix``).
        located: the parsed file, for line numbers.
        prefix: where in the file the validated data sits.
        fields_at: a callable ``loc -> field names`` used to suggest a spelling for unknown fields.
        origins: paths whose value came from somewhere else (e.g. an environment variable), named instead of a line.
    """
    problems = []
    for error in exc.errors():
        loc = (*prefix, *_clean_loc(error["loc"]))
        siblings: Iterable[str] = fields_at(loc[:-1]) if fields_at else ()
        origin = _origin_of(loc, origins or {})
        message = _message(error, siblings)
        if origin:
            problems.append(Problem(origin, None, format_loc(loc), message))
        else:
            problems.append(Problem(located.file, located.line_of(loc), format_loc(loc), message))
    return problems


def _clean_loc(loc: Iterable[Any]) -> Loc:
    """Drop pydantic's union/tag members (e.g. 'function-after[...]') from a location."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def _origin_of(loc: Loc, origins: Mapping[Loc, str]) -> str | None:
    parts = loc
    while parts:
        if parts in origins:
            return origins[parts]
        parts = parts[:-1]
    return None
