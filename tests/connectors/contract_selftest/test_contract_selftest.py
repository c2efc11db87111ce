"""The contract suite's tests, collected here once more and run against the toy vendor (see toy.py)."""

from __future__ import annotations

from ..contract.test_contract import *  # noqa: F403 - the same tests, parametrized by this folder's conftest
