"""The package's layers: which psabridge modules may import which (read from the source, not by importing it)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "psabridge"

FORBIDDEN: dict[str, tuple[str, ...]] = {
    # the pure mapping layer speaks vendor data types (psabridge.vendordata), never a connector
    "psabridge.mapping": ("psabridge.connectors", "psabridge.store", "psabridge.sync", "psabridge.rules"),
    "psabridge.vendordata": ("psabridge.connectors", "psabridge.mapping"),
    "psabridge.model": ("psabridge.connectors", "psabridge.mapping", "psabridge.store", "psabridge.sync"),
    "psabridge.connectors": ("psabridge.mapping", "psabridge.store", "psabridge.sync", "psabridge.rules"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        for layer, banned in FORBIDDEN.items():
            if module != layer and not module.startswith(layer + "."):
                continue
            for name in sorted(_imports(path)):
                if any(name == b or name.startswith(b + ".") for b in banned):
                    out.append(f"{module} imports {name}")
    return out


def test_no_layer_imports_upwards() -> None:
    assert _violations() == []


def test_the_check_sees_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a copy of the tree where mapping imports a connector
    fake = tmp_path / "psabridge"
    (fake / "mapping").mkdir(parents=True)
    (fake / "mapping" / "bad.py").write_text("from psabridge.connectors.base import Connector\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    # Then the check names it
    assert _violations() == ["psabridge.mapping.bad imports psabridge.connectors.base"]
