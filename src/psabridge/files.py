"""Files holding credentials or clients' tickets (the SQLite store, a written config): readable by the owner only."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["PRIVATE", "create_private", "sqlite_path", "write_private"]

PRIVATE = 0o600
"""The mode of every such file psabridge creates."""


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (its folder too) unless it exists; an existing file is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte on, via a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL; None for an in-memory database or another dialect."""
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return None
    raw = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(raw) if raw else None
