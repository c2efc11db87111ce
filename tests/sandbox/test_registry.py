from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from psabridge_sandbox import credentials
from psabridge_sandbox.configout import DEMO_LINKS, sandbox_config
from psabridge_sandbox.registry import (
    SERVICES,
    SIMULATORS,
    SandboxContext,
    build_simulator,
    load_simulators,
    register,
    service,
)
from psabridge_sandbox.runner import ServiceInfo, parse_faults
from psabridge_sandbox.world import World, build_world

from .conftest import ANCHOR

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ROOT / "config" / "sandbox-secrets"


def test_credentials_module_and_sandbox_secret_files_agree() -> None:
    files = {p.name: p.read_text(encoding="utf-8") for p in SECRETS.iterdir() if p.name != "README.md"}
    assert files == credentials.SECRET_FILES
    assert credentials.CW_COMPANY == "psabridge"
    assert credentials.AT_USERNAME == "api@psabridge.sandbox"
    assert credentials.SN_USERNAME == "psabridge.integration"


def _demo() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config" / "psabridge.yaml").read_text())


def _default_infos() -> dict[str, ServiceInfo]:
    infos = {}
    for spec in SERVICES:
        url = f"http://127.0.0.1:{8701 + spec.offset}"
        infos[spec.name] = ServiceInfo(spec.name, url, url + spec.base_path, spec.accepts, running=False)
    return infos


def test_services_on_default_ports_are_exactly_the_demo_configuration(world: World) -> None:
    demo = _demo()
    generated = sandbox_config(_default_infos(), world=world, host="127.0.0.1", webhook_port=8700)

    def strip(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entry.items() if k != "mapping"}

    assert [strip(c) for c in generated["connections"]] == [strip(c) for c in demo["connections"]]
    assert generated["notifiers"] == demo["notifiers"]
    assert generated["links"] == demo["links"] == DEMO_LINKS
    assert generated["tenants"] == demo["tenants"]
    assert (generated["database"], generated["broker"]) == ("sqlite:///psabridge.db", "embedded")
    for connection in generated["connections"]:
        assert connection["mapping"] == f"builtin:{connection['system']}"
        for key in connection["credentials"]:
            assert not any(word in key for word in ("password", "secret", "key")) or key.endswith("_file")


def test_paging_and_chat_simulators_are_registered() -> None:
    factories = load_simulators()
    assert {"pagerduty", "opsgenie", "chat"} <= set(factories)
    assert list(factories) == [s.name for s in SERVICES if s.name in factories]  # service order
    with pytest.raises(KeyError, match="no sandbox service 'conectwise'"):
        register("conectwise")
    with pytest.raises(KeyError, match="known: connectwise"):
        service("nope")


def test_register_adds_a_factory_that_build_simulator_uses() -> None:
    before = SIMULATORS.get("chat")
    try:
        calls: list[str] = []

        @register("chat")
        def factory(context):  # type: ignore[no-untyped-def]
            calls.append(context.service.name)
            assert before is not None
            return before(context)

        sim = build_simulator("chat", tickets=3)
        assert calls == ["chat"] and sim.name == "chat"
    finally:
        assert before is not None
        SIMULATORS["chat"] = before


def test_vendor_context_scopes_seed_tickets() -> None:
    context = SandboxContext(service=service("servicenow"), world=build_world(0), anchor=ANCHOR, tickets=40)
    tickets = context.seed_tickets()
    assert len(tickets) == 40 and {t.tenant.key for t in tickets} == {"acme"}
    assert any(t.queue.name == "MSP Support" for t in tickets)
    autotask = SandboxContext(service=service("autotask"), world=build_world(0), anchor=ANCHOR, tickets=40)
    assert {t.tenant.key for t in autotask.seed_tickets()} == {"initech", "umbrella"}


def test_parse_faults() -> None:
    assert set(parse_faults("none").values()) == {"none"}
    chosen = parse_faults("flaky,pagerduty=throttled")
    assert chosen["pagerduty"] == "throttled" and chosen["connectwise"] == "flaky"
    assert parse_faults("chat=slow")["chat"] == "slow" and parse_faults("chat=slow")["opsgenie"] == "none"
    with pytest.raises(ValueError, match="unknown fault profile 'bogus'"):
        parse_faults("bogus")
    with pytest.raises(ValueError, match="unknown service 'slack'"):
        parse_faults("slack=flaky")
