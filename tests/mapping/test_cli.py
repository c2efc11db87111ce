"""`psabridge mapping check [--live]` and `psabridge mapping preview`, with a fake connector."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import structlog
from typer.testing import CliRunner

from psabridge import connectors
from psabridge.cli import app, mapping_cmd
from psabridge.connectors.base import Connector, NewTimeEntry, Page, WebhookEvent
from psabridge.errors import NotFoundError, PsaBridgeError, RetryLaterError
from psabridge.model import NoteKind, System
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import RawRecord, VendorMetadata
from tests.mapping.conftest import FIXTURES, MAPPINGS, fixture, metadata

runner = CliRunner()

CONFIG = """\
database: sqlite:///db.sqlite
tenants:
  acme: {name: Acme Dental}
  globex: {name: Globex Logistics}
connections:
  - name: msp-cw
    system: connectwise
    base_url: http://127.0.0.1:9
    tenants: {AcmeDental: acme, GlobexLogistics: globex}
    mapping: mappings/connectwise.yaml
  - name: acme-snow
    system: servicenow
    tenant: acme
    base_url: http://127.0.0.1:9
    mapping: mappings/servicenow.yaml
"""


class FakeConnector(Connector):
    """Serves fixture tickets and metadata; fails on demand."""

    system = System.CONNECTWISE
    fail = False
    metadata_by_system: ClassVar[dict[str, VendorMetadata]] = {}

    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        raise NotImplementedError

    def get_ticket(self, external_id: str) -> RawRecord:
        if self.settings.system == System.CONNECTWISE and external_id == "4711":
            return dict(fixture("connectwise", "ticket_full.json"))
        raise NotFoundError(f"ticket {external_id} not found", connection=self.name)

    def list_notes(self, external_id: str) -> list[RawRecord]:
        return []

    def metadata(self, *, refresh: bool = False) -> VendorMetadata:
        if self.fail:
            raise RetryLaterError("connection refused", connection=self.name)
        return self.metadata_by_system.get(self.settings.system.value) or VendorMetadata(system=self.settings.system)

    def external_id_of(self, record: RawRecord) -> str:
        return str(record["id"])

    def updated_at_of(self, record: RawRecord) -> datetime | None:
        return None

    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        raise NotImplementedError

    def find_by_marker(self, marker: str) -> str | None:
        return None

    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        raise NotImplementedError

    def add_note(self, external_id: str, text: str, *, kind: NoteKind, marker: str) -> RawRecord:
        raise NotImplementedError

    def add_time_entry(self, external_id: str, entry: NewTimeEntry, *, marker: str) -> RawRecord:
        raise NotImplementedError

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        raise NotImplementedError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    shutil.copytree(MAPPINGS, tmp_path / "mappings")
    path = tmp_path / "psabridge.yaml"
    path.write_text(CONFIG)
    FakeConnector.fail = False
    FakeConnector.metadata_by_system = {"connectwise": metadata("connectwise"), "servicenow": metadata("servicenow")}
    monkeypatch.setattr(mapping_cmd, "connector_factory", FakeConnector)
    yield path
    structlog.reset_defaults()  # the commands configured logging onto the runner's (now closed) stderr


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["mapping", *args])


def test_check_passes_on_the_shipped_files(config: Path) -> None:
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert sorted(line.split("/")[-1] for line in result.stdout.splitlines()) == [
        "autotask.yaml (autotask, 23 fields)",
        "connectwise.yaml (connectwise, 25 fields)",
        "freshservice.yaml (freshservice, 26 fields)",
        "servicenow.yaml (servicenow, 26 fields)",
    ]


def test_check_names_file_line_and_path_and_fails(config: Path) -> None:
    mapping = config.parent / "mappings" / "connectwise.yaml"
    mapping.write_text(mapping.read_text().replace("      Assigned: assigned\n", "      Assigned: asigned\n"))
    line = mapping.read_text().splitlines().index("      Assigned: asigned") + 1
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 2
    assert f"{mapping}:{line} fields.status.map.Assigned: 'asigned' is not a canonical status" in result.stderr
    assert "1 problem(s) in mapping files" in result.stderr


def test_check_a_file_without_settings(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("system: autotask\nfields:\n  external_id: {path: id}\n  external_id: {path: ID}\n")
    result = invoke("check", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"{path}:4 fields.external_id: duplicate key (first defined on line 3)"
    assert invoke("check", str(MAPPINGS / "autotask.yaml")).exit_code == 0


def test_check_tenant_overlays_name_known_tenants(config: Path) -> None:
    mapping = config.parent / "mappings" / "servicenow.yaml"
    mapping.write_text(mapping.read_text() + "tenants:\n  acme-dental:\n    fields:\n      kind: {const: problem}\n")
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 2
    assert "tenants.acme-dental: no tenant 'acme-dental' under tenants: in the settings" in result.stderr


def test_check_live_finds_vendor_values_without_a_mapping(config: Path) -> None:
    result = invoke("check", "--live", "--config", str(config), "--connection", "msp-cw")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("[msp-cw]")]
    assert [e.split(": ", 1)[1] for e in errors] == [
        "status 'Working' on board 'Acme Service' has no mapping",
        "status 'Waiting on Vendor' on board 'Acme Service' has no mapping",
        "status 'Closed by Client' on board 'Acme Service' has no mapping",
    ]
    assert "connectwise.yaml:38 fields.status" in errors[0]
    assert "[msp-cw] live check 3 error(s) against 2 board, 2 owner, 4 priority, 3 source, 10 status" in result.stdout
    assert "write-back cannot set status 'cancelled' on board 'Service Desk'" in result.stdout  # a warning only


def test_check_live_passes_once_the_board_is_mapped(config: Path) -> None:
    (config.parent / "mappings" / "msp-cw.yaml").write_text(
        "extends: connectwise.yaml\n"
        "fields:\n  status:\n    scopes:\n      Acme Service:\n"
        "        map: {Waiting on Vendor: on_hold, Working: in_progress, Closed by Client: closed}\n"
        "        inverse: {closed: Closed by Client}\n"
    )
    config.write_text(config.read_text().replace("mapping: mappings/connectwise.yaml", "mapping: mappings/msp-cw.yaml"))
    result = invoke("check", "--live", "--config", str(config), "--connection", "msp-cw")
    assert result.exit_code == 0, result.output
    assert "[msp-cw] live check ok" in result.stdout


def test_check_live_reports_a_connector_that_fails(config: Path) -> None:
    FakeConnector.fail = True
    result = invoke("check", "--live", "--config", str(config), "--connection", "acme-snow")
    assert result.exit_code == 1
    assert "[acme-snow] cannot fetch the vendor's metadata: [acme-snow] connection refused" in result.stderr


def test_preview_a_list_envelope(config: Path) -> None:
    result = invoke(
        "preview",
        "--config",
        str(config),
        "--connection",
        "acme-snow",
        "--input",
        str(FIXTURES / "servicenow" / "incidents_list.json"),
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [o["ticket"]["number"] for o in out] == ["INC0010042", "INC0010039"]
    first = {t["field"]: t for t in out[0]["trace"]}
    assert first["priority"]["source"] == "priority"
    assert first["priority"]["via"] == "map"
    assert first["priority"]["rule"].endswith("fields.priority")
    assert out[0]["findings"][0]["code"] == "lookup_unavailable"  # no metadata offline: the group stays an id


def test_preview_a_single_record_with_metadata(config: Path, tmp_path: Path) -> None:
    meta = tmp_path / "meta.json"
    meta.write_text(metadata("connectwise").model_dump_json())
    result = invoke(
        "preview",
        "--config",
        str(config),
        "--connection",
        "msp-cw",
        "--metadata",
        str(meta),
        "--input",
        str(FIXTURES / "connectwise" / "tickets_list.json"),
    )
    out = json.loads(result.stdout)
    assert out[0]["unmapped"] == {"status": "Waiting on Vendor", "tier": "Acme Service"}
    assert out[0]["findings"][0]["message"] == "status 'Waiting on Vendor' on board 'Acme Service' has no mapping"


def test_preview_a_ticket_fetched_through_the_connector(config: Path) -> None:
    result = invoke("preview", "--config", str(config), "--connection", "msp-cw", "--ticket", "4711")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["ticket"]["status"] == "in_progress"
    assert [n["external_id"] for n in out["ticket"]["notes"]] == ["90002", "90003"]
    missing = invoke("preview", "--config", str(config), "--connection", "msp-cw", "--ticket", "1")
    assert missing.exit_code == 1
    assert "ticket 1 not found" in missing.stderr


def test_preview_outbound(config: Path) -> None:
    result = invoke(
        "preview",
        "--config",
        str(config),
        "--connection",
        "msp-cw",
        "--ticket",
        "4711",
        "--direction",
        "outbound",
        "--set",
        "status=closed",
        "--set",
        "priority=P1",
        "--set",
        "kind=incident",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["patch"] == {"status": {"id": 5}, "priority": {"id": 6}}
    assert [p["code"] for p in out["problems"]] == ["not_writable"]
    whole = invoke(
        "preview",
        "--config",
        str(config),
        "--connection",
        "msp-cw",
        "--direction",
        "outbound",
        "--input",
        str(FIXTURES / "connectwise" / "ticket_full.json"),
    )
    patch = json.loads(whole.stdout)["patch"]
    assert patch["status"] == {"name": "In Progress"}
    assert patch["company"] == {"identifier": "AcmeDental"}


def test_preview_needs_exactly_one_source(config: Path) -> None:
    assert invoke("preview", "--config", str(config), "--connection", "msp-cw").exit_code == 2
    both = invoke("preview", "--config", str(config), "--connection", "msp-cw", "--ticket", "1", "--input", "x")
    assert both.exit_code == 2
    unknown = invoke("preview", "--config", str(config), "--connection", "nope", "--ticket", "1")
    assert unknown.exit_code == 2
    assert "no connection named 'nope'" in unknown.stderr


def test_the_default_factory_is_the_connector_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ConnectionSettings(name="x", system="connectwise", base_url="http://127.0.0.1:9")
    monkeypatch.setattr(connectors, "get_connector", FakeConnector, raising=False)
    assert isinstance(mapping_cmd._registry_factory(settings), FakeConnector)
    monkeypatch.delattr(connectors, "get_connector")
    with pytest.raises(PsaBridgeError, match="no connector registry"):
        mapping_cmd._registry_factory(settings)
