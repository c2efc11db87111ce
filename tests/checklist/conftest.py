"""The checklist's end-to-end tests run read-only commands in this process: they leave logging as they found it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A command configures logging for itself (`psabridge findings` quiets it to warnings); later tests capture
    info lines (tests/connectors), so put back what was configured before."""
    saved = structlog.get_config()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    structlog.configure(**saved)
    root.setLevel(level)
    root.handlers[:] = handlers
