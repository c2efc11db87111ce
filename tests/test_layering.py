"""The package's layers, read from the source (not by importing it): which psabridge modules may import which.

Only psabridge.store talks SQL (imports sqlalchemy) or touches the ORM tables; the pure mapping layer speaks vendor
data types (psabridge.vendordata), never a connector; nothing below sync/ imports upwards.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "psabridge"

EVERYWHERE = "psabridge"
RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # (layer, what it must not import, sub-layers exempt)
    (EVERYWHERE, ("sqlalchemy", "psabridge.store.models"), ("psabridge.store",)),
    ("psabridge.mapping", ("psabridge.connectors", "psabridge.store", "psabridge.sync", "psabridge.rules"), ()),
    ("psabridge.vendordata", ("psabridge.connectors", "psabridge.mapping"), ()),
    ("psabridge.model", ("psabridge.connectors", "psabridge.mapping", "psabridge.store", "psabridge.sync"), ()),
    ("psabridge.connectors", ("psabridge.mapping", "psabridge.store", "psabridge.sync", "psabridge.rules"), ()),
)


def _within(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, name: str) -> set[str]:
    """Every module a file imports (``from a import b`` counts as ``a`` and ``a.b``), relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def offenders(root: Path) -> dict[str, list[str]]:
    """Modules of the package at ``root`` that import what their layer may not, and what."""
    bad: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root.parent)
        hits: set[str] = set()
        for layer, banned, exempt in RULES:
            if not _within(name, layer) or any(_within(name, e) for e in exempt):
                continue
            hits.update(m for m in imported(path, name) if any(_within(m, b) for b in banned))
        if hits:
            bad[name] = sorted(hits)
    return bad


def test_no_module_imports_what_its_layer_may_not() -> None:
    assert offenders(PACKAGE) == {}


def test_the_check_finds_every_way_of_importing_them(tmp_path: Path) -> None:
    fake = tmp_path / "psabridge"
    for sub in ("sync", "store", "mapping"):
        (fake / sub).mkdir(parents=True)
        (fake / sub / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "store" / "__init__.py").write_text("import sqlalchemy\n")
    (fake / "sync" / "a.py").write_text("import sqlalchemy as sa\n")
    (fake / "sync" / "b.py").write_text("from sqlalchemy.orm import Session\n")
    (fake / "sync" / "c.py").write_text("from psabridge.store import models\n")
    (fake / "sync" / "d.py").write_text("from ..store.models import Link\n")
    (fake / "sync" / "e.py").write_text("from psabridge.store import links, Session\n")
    (fake / "mapping" / "f.py").write_text("from psabridge.connectors.base import Connector\n")
    assert offenders(fake) == {
        "psabridge.mapping.f": ["psabridge.connectors.base", "psabridge.connectors.base.Connector"],
        "psabridge.sync.a": ["sqlalchemy"],
        "psabridge.sync.b": ["sqlalchemy.orm", "sqlalchemy.orm.Session"],
        "psabridge.sync.c": ["psabridge.store.models"],
        "psabridge.sync.d": ["psabridge.store.models", "psabridge.store.models.Link"],
    }
