"""`webhooks register|list` against the simulators: ConnectWise's /system/callbacks and Autotask's TicketWebhooks are
created once, updated in place when the URL changes, listed as the vendor shows them; ServiceNow and Freshservice get
the exact settings to paste, without the secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from psabridge.cli import app, webhooks_cmd
from psabridge.connectors.connectwise import ConnectWiseConnector
from psabridge.settings import ConnectionSettings

from .contract.autotask_harness import AutotaskHarness
from .contract.connectwise_harness import ConnectWiseHarness
from .contract.harness import Served, serve_vendor

runner = CliRunner()


@pytest.fixture
def cw(namespace: str) -> Iterator[Served]:
    with ExitStack() as stack:
        yield serve_vendor(ConnectWiseHarness(), tickets=3, namespace=namespace, stack=stack)


@pytest.fixture
def at(namespace: str) -> Iterator[Served]:
    with ExitStack() as stack:
        yield serve_vendor(AutotaskHarness(), tickets=3, namespace=namespace, stack=stack)


def test_a_connectwise_callback_is_created_once_then_updated_in_place(cw: Served) -> None:
    connector = cw.connector()
    assert isinstance(connector, ConnectWiseConnector)
    assert connector.webhooks() == []
    first = connector.register_webhooks("https://bridge.example/webhooks/msp-cw")["callback"]
    assert first["change"] == "created" and first["active"] and first["level"] == "Owner"
    assert first["self_suppressed"] is True
    again = connector.register_webhooks("https://bridge.example/webhooks/msp-cw")["callback"]
    assert (again["change"], again["id"]) == ("unchanged", first["id"])
    moved = connector.register_webhooks("https://new.example/webhooks/msp-cw")["callback"]
    assert (moved["change"], moved["id"], moved["url"]) == (
        "updated",
        first["id"],
        "https://new.example/webhooks/msp-cw",
    )
    [listed] = connector.webhooks()
    assert listed["url"] == "https://new.example/webhooks/msp-cw"


def test_autotask_webhooks_are_updated_not_duplicated_and_keep_the_api_user_excluded(at: Served) -> None:
    connector = at.connector(options={"integration_user": "29682999"})
    made = connector.register_webhooks("https://bridge.example/webhooks/at")
    assert {e["change"] for e in made.values()} == {"created"} and made["Ticket"]["ready"]
    again = connector.register_webhooks("https://moved.example/webhooks/at")
    assert {e["change"] for e in again.values()} == {"updated"}
    assert {k: v["id"] for k, v in again.items()} == {k: v["id"] for k, v in made.items()}
    listed = connector.webhooks()
    assert [h["name"] for h in listed] == ["Ticket webhook", "TicketNote webhook"]
    assert all(h["url"] == "https://moved.example/webhooks/at" and h["active"] for h in listed)
    assert all(h["excluded_resources"] == [29682999] for h in listed)  # once, not once per registration
    fields_once = {h["name"]: h["fields"] for h in listed}
    connector.register_webhooks("https://moved.example/webhooks/at")
    assert {h["name"]: h["fields"] for h in connector.webhooks()} == fields_once


def _config(tmp_path: Path, served: Served) -> tuple[Path, ConnectionSettings]:
    conn = served.settings()
    path = tmp_path / "psabridge.yaml"
    secrets = {name: f"PSAB_T_{name.upper()}" for name in conn.secrets.names()}
    path.write_text(yaml.safe_dump({
        "database": f"sqlite:///{tmp_path / 'bridge.db'}",
        "webhooks": {"public_url": "https://bridge.example"},
        "connections": [{"name": conn.name, "system": conn.system.value, "base_url": conn.base_url,
                         "credentials": {f"{k}_env": v for k, v in secrets.items()}}],
    }))  # fmt: skip
    return path, conn


def test_the_cli_registers_and_lists_through_the_connector(
    tmp_path: Path, cw: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, conn = _config(tmp_path, cw)
    for name in conn.secrets.names():
        monkeypatch.setenv(f"PSAB_T_{name.upper()}", conn.secrets.require(name, connection=conn.name))
    monkeypatch.setattr(webhooks_cmd, "connector_factory", lambda settings, c: cw.connector())
    result = runner.invoke(app, ["webhooks", "register", "--connection", conn.name, "--config", str(config)])
    assert result.exit_code == 0, result.stderr
    assert "ticket callback created" in result.stdout
    assert f"https://bridge.example/webhooks/{conn.name}" in result.stdout
    listed = runner.invoke(app, ["webhooks", "list", "--json", "--config", str(config)])
    assert listed.exit_code == 0, listed.stderr
    [hook] = json.loads(listed.stdout)[conn.name]["webhooks"]
    assert hook["url"] == f"https://bridge.example/webhooks/{conn.name}"
    bad = runner.invoke(app, ["webhooks", "register", "--connection", conn.name, "--url", "ftp://x", "--config",
                              str(config)])  # fmt: skip
    assert bad.exit_code == 2


@pytest.mark.parametrize("system", ["servicenow", "freshservice"])
def test_servicenow_and_freshservice_get_the_settings_to_paste_without_the_secret(
    tmp_path: Path, system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"servicenow": "https://acme.service-now.com", "freshservice": "https://acme.freshservice.com"}[system]
    creds: dict[str, Any] = {"servicenow": {"username": "psabridge", "password_env": "PSAB_T_PW"},
                             "freshservice": {"api_key_env": "PSAB_T_PW"}}[system]  # fmt: skip
    creds["webhook_secret_env"] = "PSAB_T_HOOK"
    monkeypatch.setenv("PSAB_T_PW", "pw-value")
    monkeypatch.setenv("PSAB_T_HOOK", "hook-secret-value")
    config = tmp_path / "psabridge.yaml"
    config.write_text(yaml.safe_dump({
        "database": f"sqlite:///{tmp_path / 'bridge.db'}",
        "connections": [{"name": "acme", "system": system, "base_url": base, "credentials": creds}],
    }))  # fmt: skip
    result = runner.invoke(app, ["webhooks", "register", "--connection", "acme", "--url", "https://bridge.example",
                                 "--config", str(config)])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "https://bridge.example/webhooks/acme" in text
    assert "hook-secret-value" not in text and "pw-value" not in text
    if system == "servicenow":
        assert "gs.getUserName() != 'psabridge'" in text and "X-Webhook-Secret" in text
        assert "sn_ws.RESTMessageV2" in text
    else:
        assert "Trigger Webhook" in text and "X-Psabridge-Secret" in text and "{{ticket.id}}" in text
