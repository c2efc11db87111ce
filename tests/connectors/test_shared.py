"""Auth classes, the connector registry, and the HttpConnector helpers (overlap, page size, ChangeRun)."""

from __future__ import annotations

import base64
import sys
import types
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from psabridge.connectors import connector_class, get_connector
from psabridge.connectors.auth import BasicAuth, HeaderAuth, MultiAuth
from psabridge.connectors.base import Page, PageCompletion
from psabridge.connectors.requestcount import counted
from psabridge.connectors.rest import ChangeRun, HttpConnector
from psabridge.errors import BugError, ConfigError, NotFoundError
from psabridge.model import System
from psabridge.vendordata import RawRecord, VendorMetadata

from .conftest import BASE_URL, make_settings

# --- auth -------------------------------------------------------------------------------------------------------------


def test_basic_and_header_auth_from_secrets_on_the_wire() -> None:
    settings = make_settings(secrets={"company": "msp", "public_key": "pub", "private_key": "priv", "client_id": "cid"})
    auth = MultiAuth(
        BasicAuth(f"{settings.secrets.get('company')}+{settings.secrets.get('public_key')}", "priv"),
        HeaderAuth.from_secrets(settings, {"clientId": "client_id"}),
    )
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as mock:
        route = mock.get("/tickets").mock(return_value=httpx.Response(200))
        with httpx.Client(base_url=BASE_URL, auth=auth) as client:
            client.get("/tickets")
    sent = route.calls.last.request.headers
    assert sent["Authorization"] == "Basic " + base64.b64encode(b"msp+pub:priv").decode()
    assert sent["clientId"] == "cid"
    assert "priv" not in repr(auth) and "cid" not in repr(auth)


def test_basic_auth_from_secrets() -> None:
    settings = make_settings(secrets={"username": "svc", "password": "pw"})
    request = httpx.Request("GET", BASE_URL)
    flow = BasicAuth.from_secrets(settings, "username", "password").sync_auth_flow(request)
    assert next(flow).headers["Authorization"] == "Basic " + base64.b64encode(b"svc:pw").decode()


def test_a_missing_credential_is_a_config_error_naming_it() -> None:
    settings = make_settings(secrets={"username": "svc"})
    with pytest.raises(ConfigError, match="password"):
        BasicAuth.from_secrets(settings, "username", "password")
    with pytest.raises(ConfigError, match="integration_code"):
        HeaderAuth.from_secrets(settings, {"ApiIntegrationCode": "integration_code"})


# --- registry ---------------------------------------------------------------------------------------------------------


class FakeVendor(HttpConnector):
    """The least an HttpConnector needs, to exercise the registry and helpers."""

    system = System.AUTOTASK
    default_overlap_seconds = 120.0

    def auth(self) -> httpx.Auth:
        return HeaderAuth.from_secrets(self.settings, {"Secret": "secret"})

    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        return iter(())

    def get_ticket(self, external_id: str) -> RawRecord:
        return dict(self.http.request_json("GET", f"Tickets/{external_id}").data)

    def list_notes(self, external_id: str) -> list[RawRecord]:
        return []

    def load_metadata(self) -> VendorMetadata:
        return VendorMetadata(system=self.system, fields={})

    def external_id_of(self, record: RawRecord) -> str:
        return str(record["id"])

    def updated_at_of(self, record: RawRecord) -> datetime | None:
        return None

    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        raise AssertionError("the registry and helper tests never write or receive webhooks")

    def find_by_marker(self, marker: str) -> str | None:
        return None

    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        raise AssertionError("the registry and helper tests never write or receive webhooks")

    def add_note(self, external_id: str, text: str, *, kind: Any, marker: str) -> RawRecord:
        raise AssertionError("the registry and helper tests never write or receive webhooks")

    def add_time_entry(self, external_id: str, entry: Any, *, marker: str) -> RawRecord:
        raise AssertionError("the registry and helper tests never write or receive webhooks")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> Any:
        raise AssertionError("the registry and helper tests never write or receive webhooks")


@pytest.fixture
def fake_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Stand in for psabridge.connectors.autotask for one test."""
    module = types.ModuleType("psabridge.connectors.autotask")
    module.CONNECTOR = FakeVendor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "psabridge.connectors.autotask", module)
    return module


def test_get_connector_builds_the_modules_connector_with_transport_and_namespace(
    fake_module: types.ModuleType, namespace: str
) -> None:
    settings = make_settings(system="autotask", secrets={"secret": "s3"})
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": 7})

    connector = get_connector(settings, transport=httpx.MockTransport(handler), namespace=namespace)
    with connector:
        assert isinstance(connector, FakeVendor)
        assert connector.get_ticket("7") == {"id": 7}
    assert seen[0].headers["Secret"] == "s3"
    assert str(seen[0].url) == f"{BASE_URL}/Tickets/7"


def test_get_connector_names_the_connection_when_a_credential_is_missing(fake_module: types.ModuleType) -> None:
    with pytest.raises(ConfigError, match="secret") as caught:
        get_connector(make_settings(name="at-main", system="autotask"))
    assert caught.value.connection == "at-main"


def test_a_missing_vendor_module_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psabridge.connectors.servicenow", None)
    with pytest.raises(ConfigError, match="servicenow"):
        get_connector(make_settings(system="servicenow"))
    with pytest.raises(ConfigError, match="no connector is available"):
        connector_class("nosuchvendor")


def test_a_vendor_module_without_connector_export_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("psabridge.connectors.freshservice")
    module.CONNECTOR = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "psabridge.connectors.freshservice", module)
    with pytest.raises(BugError, match="CONNECTOR"):
        connector_class("freshservice")


def test_every_module_exports_what_its_all_says() -> None:
    import psabridge.connectors as package
    from psabridge.connectors import auth, budget, http, pagination, rest

    for module in (package, auth, budget, http, pagination, rest):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


# --- HttpConnector helpers --------------------------------------------------------------------------------------------


def test_overlap_and_page_size_follow_settings_then_vendor_defaults(fake_module: types.ModuleType) -> None:
    connector = FakeVendor(make_settings(system="autotask", secrets={"secret": "s"}))
    since = datetime(2026, 11, 20, tzinfo=UTC)
    assert connector.read_from(since) == since - timedelta(seconds=120)
    assert connector.read_from(None) is None
    assert connector.page_size(default=100, maximum=500) == 100
    configured = FakeVendor(make_settings(system="autotask", secrets={"secret": "s"}, overlap="10m", page_size=900))
    assert configured.overlap == timedelta(minutes=10)
    assert configured.page_size(default=100, maximum=500) == 500
    connector.close()
    configured.close()


def at(minute: int) -> datetime:
    return datetime(2026, 11, 20, 12, minute, tzinfo=UTC)


def record(key: int, minute: int) -> RawRecord:
    return {"id": key, "updated": at(minute)}


def change_run(*, since: datetime | None, ordered: bool) -> ChangeRun:
    return ChangeRun(
        since=since, external_id=lambda r: str(r["id"]), updated_at=lambda r: r["updated"], ordered=ordered
    )


def test_a_change_run_drops_repeats_but_keeps_newer_versions() -> None:
    run = change_run(since=None, ordered=True)
    first = run.page([record(1, 1), record(2, 2)], last=False)
    second = run.page([record(2, 2), record(3, 3), record(1, 9)], last=True)
    assert [r["id"] for r in first.records] == [1, 2]
    assert [(r["id"], r["updated"].minute) for r in second.records] == [(3, 3), (1, 9)]
    assert (first.watermark, second.watermark) == (at(2), at(9))
    assert run.returned == 4


def test_an_unordered_change_run_moves_the_watermark_only_on_the_last_page() -> None:
    run = change_run(since=at(0), ordered=False)
    assert run.page([record(5, 30)], last=False).watermark == at(0)
    assert run.page([record(1, 10)], last=True).watermark == at(30)
    assert change_run(since=at(0), ordered=False).page([], last=True).watermark == at(0)


def test_an_ordered_change_run_remembers_only_the_newest_time() -> None:
    run = change_run(since=None, ordered=True)
    for start in range(0, 5000, 500):
        run.page([record(key, key // 100) for key in range(start, start + 500)], last=False)
    assert run.returned == 5000
    assert run.remembered == 100  # the hundred ids updated in the newest minute, not all 5000
    assert run.page([record(4999, 49)], last=True).records == []  # still a repeat
    assert len(run.page([record(10, 1)], last=True).records) == 1  # older than the newest: cannot be a repeat


def test_an_unordered_change_run_drops_repeats_from_neighbouring_pages_within_a_bounded_window() -> None:
    run = change_run(since=None, ordered=False)
    run.page([record(1, 1), record(2, 1)], last=False)
    shifted = run.page([record(2, 1), record(3, 1)], last=False)  # an insert before the cursor shifted record 2
    assert [r["id"] for r in shifted.records] == [3]
    run.page([record(4, 1)], last=False)
    run.page([record(5, 1)], last=False)
    assert run.remembered == 2  # two pages' ids, however many pages came before
    assert [r["id"] for r in run.page([record(1, 1)], last=True).records] == [1]  # beyond the window


def test_complete_page_default_reads_changed_records_and_skips_unchanged(fake_module: types.ModuleType) -> None:
    read: list[str] = []

    class Reading(FakeVendor):
        def get_ticket(self, external_id: str) -> RawRecord:
            read.append(external_id)
            counted()  # one request per read, as the HTTP layer counts them
            if external_id == "9":
                raise NotFoundError("gone")
            return {"id": external_id, "full": True}

    fake_module.CONNECTOR = Reading  # type: ignore[attr-defined]
    page = [{"id": "1", "v": 1}, {"id": "2", "v": 2}, {"id": "3", "v": 1}, {"id": "9", "v": 1}]
    stored = {"1": {"id": "1", "v": 1, "_psa_notes": []}, "2": {"id": "2", "v": 1}}
    with get_connector(make_settings(system="autotask", secrets={"secret": "s"})) as connector:
        completion = connector.complete_page(page, stored)
    assert completion == PageCompletion(
        full=[{"id": "2", "full": True}, {"id": "3", "full": True}], unchanged=("1", "9"), request_count=3
    )  # the read of the ticket gone since it was listed cost a request too
    assert read == ["2", "3", "9"]
