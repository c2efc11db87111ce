"""The layering the code keeps: only psabridge.store talks SQL (imports sqlalchemy) or touches the ORM tables."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "psabridge"
STORE_ONLY = ("sqlalchemy", "psabridge.store.models")


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
    """Modules of the package at ``root`` outside its store that import what only the store may, and what."""
    bad: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root.parent)
        if name == "psabridge.store" or name.startswith("psabridge.store."):
            continue
        hits = sorted(m for m in imported(path, name) if any(m == s or m.startswith(f"{s}.") for s in STORE_ONLY))
        if hits:
            bad[name] = hits
    return bad


def test_only_the_store_imports_sqlalchemy_or_the_orm_models() -> None:
    assert offenders(PACKAGE) == {}


def test_the_check_finds_every_way_of_importing_them(tmp_path: Path) -> None:
    fake = tmp_path / "psabridge"
    (fake / "sync").mkdir(parents=True)
    (fake / "store").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "sync" / "__init__.py").write_text("")
    (fake / "store" / "__init__.py").write_text("import sqlalchemy\n")
    (fake / "sync" / "a.py").write_text("import sqlalchemy as sa\n")
    (fake / "sync" / "b.py").write_text("from sqlalchemy.orm import Session\n")
    (fake / "sync" / "c.py").write_text("from psabridge.store import models\n")
    (fake / "sync" / "d.py").write_text("from ..store.models import Link\n")
    (fake / "sync" / "e.py").write_text("from psabridge.store import links, Session\n")
    assert offenders(fake) == {
        "psabridge.sync.a": ["sqlalchemy"],
        "psabridge.sync.b": ["sqlalchemy.orm", "sqlalchemy.orm.Session"],
        "psabridge.sync.c": ["psabridge.store.models"],
        "psabridge.sync.d": ["psabridge.store.models", "psabridge.store.models.Link"],
    }
