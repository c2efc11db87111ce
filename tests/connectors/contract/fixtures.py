"""Fixtures of the contract suite, shared by its conftest and the self-test's (both parametrize ``harness``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from .harness import Served, VendorHarness, serve_vendor

StartVendor = Callable[..., Served]


@pytest.fixture
def vendor(harness: VendorHarness, namespace: str) -> Iterator[StartVendor]:
    """Start the harness's simulator with N tickets, served on loopback; everything stops when the test ends."""
    with ExitStack() as stack:

        def start(tickets: int = 40, seed: int = 0, limits: bool = True) -> Served:
            return serve_vendor(harness, tickets=tickets, namespace=namespace, stack=stack, seed=seed, limits=limits)

        yield start
