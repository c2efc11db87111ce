"""Run the contract suite against the toy vendor only."""

from __future__ import annotations

import pytest

from ..contract.fixtures import vendor
from .toy import ToyHarness

__all__ = ["vendor"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name in ("harness", "limited"):  # (the toy's one-ticket reads are rate limited: it is a limited harness too)
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [ToyHarness()], ids=["toy"])
