"""Shared helpers for the mapping tests: the shipped vendor mappings, fixtures, contexts and metadata."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from psabridge.mapping import Mapper, MappingContext, load_mapping
from psabridge.model import System
from psabridge.vendordata import VendorMetadata

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "src" / "psabridge" / "mapping" / "defaults"  # the shipped defaults (builtin:<vendor>)
INSTALLATION_MAPPINGS = ROOT / "config" / "mappings"  # the checkout's admin-editable files, which extend them
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VENDORS = ("connectwise", "autotask", "servicenow", "freshservice")

CONTEXTS: dict[str, MappingContext] = {
    "connectwise": MappingContext(
        "msp-cw", System.CONNECTWISE, tenants={"AcmeDental": "acme", "GlobexLogistics": "globex"}
    ),
    "autotask": MappingContext("partner-at", System.AUTOTASK, tenants={"1001": "initech", "1002": "umbrella"}),
    "servicenow": MappingContext("acme-snow", System.SERVICENOW, tenant="acme"),
    "freshservice": MappingContext("globex-fs", System.FRESHSERVICE, tenant="globex"),
}


def fixture(vendor: str, name: str) -> Any:
    """A JSON fixture of ``vendor``."""
    return json.loads((FIXTURES / vendor / name).read_text(encoding="utf-8"))


@functools.cache
def metadata(vendor: str) -> VendorMetadata:
    """The vendor metadata fixture (what the connector would fetch; immutable, so shared)."""
    return VendorMetadata.model_validate(fixture(vendor, "metadata.json"))


@pytest.fixture(scope="session")
def mappers() -> dict[str, Mapper]:
    """The shipped default mapping of every vendor."""
    return {vendor: load_mapping(MAPPINGS / f"{vendor}.yaml") for vendor in VENDORS}
