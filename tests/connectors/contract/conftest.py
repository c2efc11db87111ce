"""Parametrize the contract suite over the registered vendor harnesses; with none, collect nothing and say so."""

from __future__ import annotations

import pytest

from .fixtures import vendor
from .vendors import HARNESSES

__all__ = ["vendor"]

# An empty parameter list would give skipped tests that look like coverage; zero collected tests do not.
collect_ignore = [] if HARNESSES else ["test_contract.py"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness" in metafunc.fixturenames:
        metafunc.parametrize("harness", HARNESSES, ids=[h.id for h in HARNESSES])
    if "limited" in metafunc.fixturenames:  # the harnesses whose default limits a test can cross
        limited = [h for h in HARNESSES if h.limited_tickets]
        metafunc.parametrize("limited", limited, ids=[h.id for h in limited])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    names = ", ".join(h.id for h in HARNESSES) or "none yet (add yours to tests/connectors/contract/vendors.py)"
    terminalreporter.write_line(f"connector contract suite: vendor harnesses: {names}")
