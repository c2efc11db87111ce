"""The vendor harnesses the contract suite runs against. Vendor engineers append theirs here.

An empty list means zero contract tests are collected (not skipped, not passed): the terminal summary says so.
See harness.py for what a harness provides.
"""

from __future__ import annotations

from .autotask_harness import AutotaskHarness
from .connectwise_harness import ConnectWiseHarness
from .freshservice_harness import FreshserviceHarness
from .harness import VendorHarness
from .servicenow_harness import ServiceNowHarness

HARNESSES: list[VendorHarness] = [
    ConnectWiseHarness(),
    AutotaskHarness(),
    ServiceNowHarness(),
    FreshserviceHarness(),
]
