"""Run the contract suite against the toy vendor only."""

from __future__ import annotations

import pytest

from ..contract.fixtures import vendor
from .toy import ToyHarness

__all__ = ["vendor"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness" in metafunc.fixturenames:
        metafunc.parametrize("harness", [ToyHarness()], ids=["toy"])
