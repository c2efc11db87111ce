"""Overrides: a connection's file refines the vendor default (extends), tenants and boards get their own values."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from psabridge.mapping import Mapper, MappingContext, load_mapping
from psabridge.model import Status, System
from tests.mapping.conftest import MAPPINGS, fixture, metadata

CONTEXT = MappingContext("msp-cw", System.CONNECTWISE, tenants={"AcmeDental": "acme", "GlobexLogistics": "globex"})

OVERRIDE = """\
# msp-cw: our ConnectWise, refined
extends: connectwise.yaml
fields:
  status:
    map:
      Waiting Parts: on_hold          # a status every board of ours has
  tier: null                          # we do not derive tiers from boards
tenants:
  acme:
    fields:
      status:
        scopes:
          Acme Service:
            map: {Waiting on Vendor: on_hold, Working: in_progress, Closed by Client: closed}
            inverse: {on_hold: Waiting on Vendor}
"""


@pytest.fixture
def mapper(tmp_path: Path) -> Mapper:
    shutil.copy(MAPPINGS / "connectwise.yaml", tmp_path / "connectwise.yaml")
    (tmp_path / "msp-cw.yaml").write_text(OVERRIDE)
    return load_mapping(tmp_path / "msp-cw.yaml")


def ticket(board: str, status: str, company: str) -> dict[str, object]:
    raw = fixture("connectwise", "tickets_list.json")[0]
    return {
        **raw,
        "board": {"id": 9, "name": board},
        "status": {"id": 1, "name": status},
        "company": {"identifier": company},
    }


def test_a_connection_file_refines_the_vendor_default(mapper: Mapper) -> None:
    assert mapper.files[0].endswith("connectwise.yaml") and mapper.files[1].endswith("msp-cw.yaml")
    result = mapper.inbound(ticket("Service Desk", "Waiting Parts", "GlobexLogistics"), CONTEXT)
    assert result.ticket.status == Status.ON_HOLD
    assert result.ticket.tier is None and "tier" not in result.ticket.unmapped  # the rule was removed
    assert mapper.inbound(ticket("Service Desk", ">Closed", "GlobexLogistics"), CONTEXT).ticket.status == Status.CLOSED


def test_one_tenants_board_has_its_own_status_names(mapper: Mapper) -> None:
    acme = mapper.inbound(ticket("Acme Service", "Waiting on Vendor", "AcmeDental"), CONTEXT)
    assert (acme.ticket.tenant, acme.ticket.status, acme.findings) == ("acme", Status.ON_HOLD, ())
    # the same name elsewhere is still unknown: another tenant, or another board of the same tenant
    globex = mapper.inbound(ticket("Acme Service", "Waiting on Vendor", "GlobexLogistics"), CONTEXT)
    assert globex.ticket.status is None
    assert globex.findings[0].message == "status 'Waiting on Vendor' on board 'Acme Service' has no mapping"
    other_board = mapper.inbound(ticket("Service Desk", "Waiting on Vendor", "AcmeDental"), CONTEXT)
    assert other_board.ticket.status is None
    # board names are matched ignoring case, and the board's own names win over the general ones
    shouted = mapper.inbound(ticket("ACME SERVICE", "working", "AcmeDental"), CONTEXT)
    assert shouted.ticket.status == Status.IN_PROGRESS
    assert mapper.inbound(ticket("Acme Service", "New", "AcmeDental"), CONTEXT).ticket.status == Status.NEW


def test_write_back_uses_the_tenants_board_names(mapper: Mapper) -> None:
    current = ticket("Acme Service", "Working", "AcmeDental")
    out = mapper.outbound({"status": "on_hold"}, CONTEXT, current=current)
    assert out.patch == {"status": {"name": "Waiting on Vendor"}}
    live = mapper.outbound({"status": "closed"}, CONTEXT, metadata("connectwise"), current=current)
    assert live.patch == {"status": {"id": 94}}  # "Closed by Client" is the board's closed status
    elsewhere = mapper.outbound({"status": "on_hold"}, CONTEXT, current=ticket("Service Desk", "New", "AcmeDental"))
    assert elsewhere.patch == {"status": {"name": "Waiting Customer"}}
    # a connection that is one tenant uses that tenant's overlay for every ticket
    whole = MappingContext("msp-cw", System.CONNECTWISE, tenant="acme")
    assert mapper.outbound({"status": "on_hold"}, whole, current=current).patch == {
        "status": {"name": "Waiting on Vendor"}
    }


def test_tenant_overlays_can_live_in_the_vendor_file_too(tmp_path: Path) -> None:
    text = (MAPPINGS / "freshservice.yaml").read_text() + (
        "tenants:\n  globex:\n    fields:\n      kind:\n        map: {Case: incident, Query: service_request}\n"
        "        inverse: {incident: Incident, service_request: Service Request}\n"
    )
    (tmp_path / "freshservice.yaml").write_text(text)
    mapper = load_mapping(tmp_path / "freshservice.yaml")
    raw = {**fixture("freshservice", "ticket_full.json"), "type": "Query"}
    globex = MappingContext("globex-fs", System.FRESHSERVICE, tenant="globex")
    other = MappingContext("other-fs", System.FRESHSERVICE, tenant="initech")
    assert str(mapper.inbound(raw, globex).ticket.kind) == "service_request"
    assert mapper.inbound(raw, other).ticket.kind is None
    assert mapper.tenants == ("globex",)
