"""The default mapping per vendor that psabridge ships as package data, and the ``builtin:<vendor>`` names for them.

The files live in ``psabridge/mapping/defaults/<vendor>.yaml`` inside the installed package (found through
importlib.resources, so an installed psabridge needs no checkout). A connection's ``mapping:`` and a mapping file's
``extends:`` may name one as ``builtin:<vendor>``; any other text is a file path, relative to the file that says it.
This module sits below settings and mapping, which both resolve such references.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["BUILTIN", "UnknownMappingError", "builtin_mapping", "builtin_names", "resolve_mapping"]

BUILTIN = "builtin:"
"""The prefix of a reference to a shipped default mapping: ``builtin:servicenow``."""


class UnknownMappingError(ValueError):
    """A ``builtin:`` reference names no shipped mapping."""


def _folder() -> Path:
    folder = resources.files("psabridge") / "mapping" / "defaults"
    # A wheel installs as files on disk; only a zipped psabridge would give another Traversable (not supported: the
    # mapping registry watches its files by modification time).
    if not isinstance(folder, Path):
        raise UnknownMappingError(f"psabridge's shipped mappings are not files on disk ({folder}): install it unzipped")
    return folder


def builtin_names() -> list[str]:
    """The vendors psabridge ships a default mapping for, sorted."""
    return sorted(path.stem for path in _folder().glob("*.yaml"))


def builtin_mapping(vendor: str) -> Path:
    """The shipped default mapping file of ``vendor``.

    Raises:
        UnknownMappingError: psabridge ships no mapping of that name (the message lists the ones it ships).
    """
    path = _folder() / f"{vendor}.yaml"
    if not vendor or "/" in vendor or "\\" in vendor or not path.is_file():
        known = ", ".join(BUILTIN + name for name in builtin_names())
        raise UnknownMappingError(f"{BUILTIN}{vendor} is not a mapping psabridge ships (it ships {known})")
    return path


def resolve_mapping(reference: str | Path, relative_to: Path) -> Path:
    """The file a ``mapping:`` or ``extends:`` reference names: a shipped default, or a path from ``relative_to``.

    Raises:
        UnknownMappingError: an unknown ``builtin:`` name.
    """
    text = str(reference)
    if text.startswith(BUILTIN):
        return builtin_mapping(text[len(BUILTIN) :])
    path = Path(text)
    return path if path.is_absolute() else relative_to / path
