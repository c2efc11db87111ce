"""Golden tests: realistic raw vendor records (list envelopes and full tickets) -> expected canonical tickets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from psabridge.mapping import Mapper
from tests.mapping.conftest import CONTEXTS, FIXTURES, fixture, metadata

CASES = [
    ("connectwise", "tickets_list.json"),
    ("connectwise", "ticket_full.json"),
    ("autotask", "tickets_query.json"),
    ("autotask", "ticket_full.json"),
    ("servicenow", "incidents_list.json"),
    ("servicenow", "incident_full.json"),
    ("freshservice", "tickets_list.json"),
    ("freshservice", "ticket_full.json"),
]
UPDATE = os.environ.get("PSABRIDGE_UPDATE_GOLDEN") == "1"


def _mapped(mapper: Mapper, vendor: str, name: str) -> list[dict[str, Any]]:
    records = mapper.records(fixture(vendor, name))
    out = []
    for raw in records:
        result = mapper.inbound(raw, CONTEXTS[vendor], metadata(vendor))
        out.append(
            {
                "ticket": result.ticket.model_dump(mode="json"),
                "findings": [
                    {"field": f.field, "code": f.code, "raw": f.raw, "message": f.message} for f in result.findings
                ],
            }
        )
    return out


@pytest.mark.parametrize(("vendor", "name"), CASES, ids=[f"{v}-{n.removesuffix('.json')}" for v, n in CASES])
def test_raw_records_map_to_the_expected_canonical_tickets(mappers: dict[str, Mapper], vendor: str, name: str) -> None:
    actual = _mapped(mappers[vendor], vendor, name)
    expected_file = FIXTURES / vendor / "expected" / name
    if UPDATE:
        expected_file.parent.mkdir(exist_ok=True)
        expected_file.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(Path(expected_file).read_text(encoding="utf-8"))
    assert actual == expected
