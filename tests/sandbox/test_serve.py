from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from psabridge.cli import app
from psabridge.settings import load_settings
from psabridge_sandbox.configout import write_config, write_urls
from psabridge_sandbox.credentials import FS_API_KEY, PD_ROUTING_KEY, SECRET_FILES
from psabridge_sandbox.registry import SERVICES
from psabridge_sandbox.runner import SandboxRunner

from .conftest import ANCHOR


def test_runner_serves_every_registered_simulator_on_ephemeral_ports(tmp_path: Path) -> None:
    with SandboxRunner(port_base=0, tickets=5, anchor=ANCHOR, faults="chat=flaky") as sandbox:
        running = {name: info for name, info in sandbox.infos.items() if info.running}
        assert {"pagerduty", "opsgenie", "chat"} <= set(running)
        assert set(sandbox.infos) == {s.name for s in SERVICES}
        assert set(sandbox.missing) == set(sandbox.infos) - set(running)
        ports = {int(info.url.rsplit(":", 1)[1]) for info in running.values()}
        assert len(ports) == len(running) and all(port > 0 for port in ports)
        with httpx.Client(timeout=5) as client:
            for name, info in running.items():
                state = client.get(f"{info.url}/_sandbox/state")
                assert state.status_code == 200 and state.json()["service"] == name
            page = {
                "routing_key": PD_ROUTING_KEY,
                "event_action": "trigger",
                "payload": {"summary": "P1", "source": "psabridge", "severity": "critical"},
            }
            assert client.post(f"{running['pagerduty'].url}/v2/enqueue", json=page).status_code == 202
            assert client.get(f"{running['chat'].url}/_sandbox/faults").json()["name"] == "flaky"
        assert sandbox.simulators["pagerduty"].base_url == running["pagerduty"].url

        config = write_config(
            tmp_path / "conf" / "psabridge.yaml", sandbox.infos, world=sandbox.world, host="127.0.0.1"
        )
        urls = json.loads(write_urls(tmp_path / "urls.json", sandbox.infos).read_text())
    assert set(urls) == set(running)
    settings = load_settings(config, env={})
    assert settings.database == f"sqlite:///{(tmp_path / 'conf' / 'psabridge.db').resolve()}"
    notifiers = {n.name: n for n in settings.notifiers}
    assert notifiers["pagerduty"].base_url == urls["pagerduty"]["base_url"]
    assert notifiers["pagerduty"].secrets.get("routing_key") == PD_ROUTING_KEY
    assert notifiers["incident-channel"].base_url == urls["chat"]["base_url"]
    assert {c.name for c in settings.connections} == {"msp-cw", "partner-at", "acme-snow", "globex-fs"}
    assert [link.name for link in settings.links] == ["acme-snow-to-cw", "globex-fs-to-cw"]
    text = config.read_text()
    assert not [name for name, value in SECRET_FILES.items() if value in text]  # secrets only in files
    assert oct((tmp_path / "conf" / "sandbox-secrets" / "pd_routing_key").stat().st_mode & 0o777) == "0o600"


def test_a_runner_without_limits_lifts_them_and_writes_a_config_that_keeps_none(tmp_path: Path) -> None:
    with SandboxRunner(port_base=0, tickets=3, anchor=ANCHOR, limits=False) as sandbox:
        info = sandbox.infos["freshservice"]
        with httpx.Client(timeout=5, auth=(FS_API_KEY, "X")) as client:
            answer = client.get(f"{info.url}/api/v2/tickets/1")
        config = write_config(tmp_path / "psabridge.yaml", sandbox.infos, world=sandbox.world, host="127.0.0.1",
                              limits=False)  # fmt: skip
    assert answer.status_code == 200 and answer.headers["X-RateLimit-Total"] == "1000000000"
    settings = load_settings(config, env={})
    assert {c.name: c.rate_budget.vendor_limits for c in settings.connections} == dict.fromkeys(
        ("msp-cw", "partner-at", "acme-snow", "globex-fs"), False
    )


def test_a_busy_port_names_the_service() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        offset = next(s.offset for s in SERVICES if s.name == "pagerduty")
        runner = SandboxRunner(port_base=port - offset, only=("pagerduty",), tickets=1, anchor=ANCHOR)
        with pytest.raises(OSError, match=f"pagerduty: cannot listen on 127.0.0.1:{port}"):
            runner.start()


def test_cli_refuses_unknown_fault_profiles() -> None:
    result = CliRunner().invoke(app, ["sandbox", "serve", "--faults", "bogus", "--port-base", "0"])
    assert result.exit_code == 2
    assert "unknown fault profile 'bogus'" in result.output


def test_sandbox_serve_command_end_to_end(tmp_path: Path) -> None:
    urls_file = tmp_path / "urls.json"
    config_out = tmp_path / "sandbox" / "psabridge.yaml"
    command = [
        sys.executable,
        "-c",
        "from psabridge.cli import main; main()",
        "sandbox",
        "serve",
        "--port-base",
        "0",
        "--tickets",
        "5",
        "--seed",
        "7",
        "--urls-file",
        str(urls_file),
        "--config-out",
        str(config_out),
        "--anchor",
        "2026-11-20T15:00:00Z",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not urls_file.exists():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "sandbox serve did not write its urls file"
            time.sleep(0.05)
        urls = json.loads(urls_file.read_text())
        assert {"pagerduty", "opsgenie", "chat"} <= set(urls)
        with httpx.Client(timeout=5) as client:
            hook = client.post(urls["chat"]["base_url"], json={"text": "P1 ticket 493"})
            assert (hook.status_code, hook.text) == (200, "ok")
        check = subprocess.run(
            [
                sys.executable,
                "-c",
                "from psabridge.cli import main; main()",
                "config",
                "check",
                "--config",
                str(config_out),
            ],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PSABRIDGE_")},
            check=False,
        )
        assert check.returncode == 0, check.stderr
        assert "4 connection(s), 2 link(s)" in check.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    lines = output.splitlines()
    assert any(line.startswith("pagerduty") and PD_ROUTING_KEY in line for line in lines)
    assert any(line.startswith("chat") and urls["chat"]["base_url"] in line for line in lines)
    for name in {s.name for s in SERVICES} - set(urls):
        assert any(line.startswith(name) and "not available yet" in line for line in lines)
    assert "sandbox stopped" in output
