"""Paths into vendor records: ``a.b``, ``list[0]``, ``list[*].x``, ``pairs[name=Ref].value`` and ``$`` (the record).

Paths are compiled once when a mapping is loaded; reading a compiled path is a few dict lookups, so mapping a record
costs microseconds. Writing (outbound) accepts plain dotted keys only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Path", "PathError", "compile_path", "is_empty", "set_path"]


class PathError(ValueError):
    """A path is not valid syntax."""


_TOKEN = re.compile(r"\s*(?:(?P<key>[^.\[\]]+)|\[(?P<bracket>[^\]]*)\])\s*")
_SELECT = re.compile(r"^\s*([^=\s]+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class _Key:
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Every:
    pass


@dataclass(frozen=True, slots=True)
class _Select:
    attribute: str
    wanted: str


_Step = _Key | _Index | _Every | _Select


@dataclass(frozen=True, slots=True)
class Path:
    """A compiled path. ``get`` returns None for anything missing; a ``[*]`` step makes the result a list."""

    text: str
    steps: tuple[_Step, ...]
    many: bool
    plain: tuple[str, ...] | None = None  # the keys, when every step is a key (the fast, common case)

    @property
    def is_plain(self) -> bool:
        """Only dict keys (no indexes, wildcards or selectors): writable by ``set_path``."""
        return bool(self.steps) and all(isinstance(step, _Key) for step in self.steps)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of a plain path."""
        return tuple(step.name for step in self.steps if isinstance(step, _Key))

    def get(self, record: Any) -> Any:
        """The value at this path in ``record`` (None when missing; a flat list when the path has ``[*]``)."""
        if self.plain is not None:
            node = record
            for key in self.plain:
                if type(node) is not dict:
                    return None
                node = node.get(key)
            return node
        if not self.many:
            node = record
            for step in self.steps:
                if isinstance(step, _Key):
                    if not isinstance(node, Mapping):
                        return None
                    node = node.get(step.name)
                else:
                    node = _single(node, step)
                if node is None:
                    return None
            return node
        nodes: list[Any] = [record]
        for step in self.steps:
            nxt: list[Any] = []
            for node in nodes:
                if isinstance(step, _Every):
                    if isinstance(node, list):
                        nxt.extend(item for item in node if item is not None)
                    continue
                if isinstance(step, _Key):
                    value = node.get(step.name) if isinstance(node, Mapping) else None
                else:
                    value = _single(node, step)
                if value is not None:
                    nxt.append(value)
            nodes = nxt
        return nodes

    def __str__(self) -> str:
        return self.text


def _single(node: Any, step: _Step) -> Any:
    if isinstance(step, _Index):
        if isinstance(node, list) and -len(node) <= step.index < len(node):
            return node[step.index]
        return None
    if isinstance(step, _Select):
        if isinstance(node, list):
            for item in node:
                if isinstance(item, Mapping) and _text(item.get(step.attribute)) == step.wanted:
                    return item
        return None
    return None  # pragma: no cover - keys and wildcards are handled by the caller


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_CACHE: dict[str, Path] = {}


def compile_path(text: str) -> Path:
    """Compile a path.

    Raises:
        PathError: the text is not a valid path.
    """
    cached = _CACHE.get(text)
    if cached is not None:
        return cached
    source = text.strip()
    if source in ("$", ""):
        if source == "":
            raise PathError("a path cannot be empty (write $ for the whole record)")
        path = Path(text, (), False)
        _CACHE[text] = path
        return path
    steps: list[_Step] = []
    pos = 0
    expect_key = True
    while pos < len(source):
        if source[pos] == "." and not expect_key and steps:
            pos += 1
            expect_key = True
            continue
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise PathError(f"{text!r} is not a valid path (unexpected {source[pos]!r} at position {pos + 1})")
        if match.group("key") is not None:
            if not expect_key:
                raise PathError(f"{text!r} is not a valid path (missing '.' before {match.group('key')!r})")
            steps.append(_Key(match.group("key").strip()))
        else:
            if not steps:
                raise PathError(f"{text!r} is not a valid path (it cannot start with '[')")
            steps.append(_bracket(text, match.group("bracket")))
        expect_key = False
        pos = match.end()
    if expect_key:
        raise PathError(f"{text!r} is not a valid path (it ends with '.')")
    keys = tuple(step.name for step in steps if isinstance(step, _Key))
    plain = keys if len(keys) == len(steps) else None
    path = Path(text, tuple(steps), any(isinstance(step, _Every) for step in steps), plain)
    _CACHE[text] = path
    return path


def _bracket(text: str, inside: str) -> _Step:
    inside = inside.strip()
    if inside == "*":
        return _Every()
    if re.fullmatch(r"-?\d+", inside):
        return _Index(int(inside))
    match = _SELECT.match(inside)
    if match:
        return _Select(match.group(1), match.group(2).strip("\"'"))
    raise PathError(f"{text!r} is not a valid path ([{inside}] must be [*], [number] or [attribute=value])")


def set_path(target: dict[str, Any], path: Path, value: Any) -> None:
    """Write ``value`` at a plain path in ``target``, creating dicts on the way."""
    keys = path.keys
    node = target
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def is_empty(value: Any) -> bool:
    """None, a blank string, or an empty list or dict: 'the vendor did not say'."""
    if value is None:
        return True
    kind = type(value)
    if kind is str:
        return not value or value.isspace()
    if kind is list or kind is dict or kind is tuple:
        return not value
    if isinstance(value, str):
        return not value.strip()
    return False
