"""The deployment files in deploy/: systemd units pass `systemd-analyze verify`, the image runs as a non-root user."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import service_unavailable

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())
INSTALLED = "/opt/psabridge/venv/bin/psabridge"


def _verify(folder: Path) -> subprocess.CompletedProcess[str]:
    """systemd-analyze verify over every unit in ``folder``, with our binary at the path the units name."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        service_unavailable("systemd-analyze", "PATH", "not installed (Debian: package systemd)")
    psabridge = Path(sys.executable).with_name("psabridge")
    for unit in UNITS:
        (folder / unit.name).write_text(unit.read_text().replace(INSTALLED, str(psabridge)))
    return subprocess.run(
        [str(tool), "verify", *sorted(str(p) for p in folder.iterdir())],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_units_verify_without_a_warning(tmp_path: Path) -> None:
    # systemd-analyze exits 0 on unknown keys and only warns, so every line it prints about our units is a failure
    result = _verify(tmp_path)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "psabridge" in line]
    assert result.returncode == 0, result.stderr
    assert ours == []


def test_the_check_catches_a_misspelt_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "units"
    broken.mkdir()
    bad = broken / "psabridge-serve.service"
    bad.write_text((DEPLOY / "systemd" / "psabridge-serve.service").read_text().replace("Restart=", "Restartt="))
    monkeypatch.setattr(sys.modules[__name__], "UNITS", [bad])
    target = tmp_path / "check"
    target.mkdir()
    result = _verify(target)
    assert "Unknown key 'Restartt'" in result.stderr


def test_every_unit_runs_as_the_psabridge_user_with_the_environment_file() -> None:
    services = [u for u in UNITS if u.suffix == ".service"]
    assert {u.name for u in services} == {
        "psabridge-serve.service",
        "psabridge-worker@.service",
        "psabridge-reconcile.service",
        "psabridge-reconcile-full.service",
    }
    for unit in services:
        text = unit.read_text()
        assert "User=psabridge\n" in text, unit.name
        assert "EnvironmentFile=/etc/psabridge/psabridge.env\n" in text, unit.name
        assert "NoNewPrivileges=yes\n" in text and "ProtectSystem=strict\n" in text, unit.name
    for timer in (u for u in UNITS if u.suffix == ".timer"):
        assert (DEPLOY / "systemd" / timer.with_suffix(".service").name).exists(), timer.name


def test_reconcile_units_run_the_readme_schedule() -> None:
    quick = (DEPLOY / "systemd" / "psabridge-reconcile.service").read_text()
    full = (DEPLOY / "systemd" / "psabridge-reconcile-full.service").read_text()
    assert f"ExecStart={INSTALLED} reconcile --since 24h --json\n" in quick
    assert f"ExecStart={INSTALLED} reconcile --full --json\n" in full
    assert "SuccessExitStatus=3\n" in quick  # another reconcile holding the lock is not a failure
    cron = (DEPLOY / "cron" / "psabridge").read_text()
    assert re.search(r"^\*/15 \* \* \* \* psabridge .*reconcile .*--since 24h", cron, re.M)
    assert re.search(r"^30 2 \* \* \* +psabridge .*reconcile .*--full", cron, re.M)


def test_the_image_runs_as_a_non_root_user_with_both_commands() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users == ["10001:10001"]
    assert 'ENTRYPOINT ["psabridge"]' in text
    assert re.search(r"^#\s+docker run .* worker --threads 8$", text, re.M)


def test_the_environment_template_names_every_secret_of_the_example_config() -> None:
    config = (DEPLOY.parent / "config" / "psabridge.example.yaml").read_text()
    wanted = set(re.findall(r"_env: ([A-Z][A-Z0-9_]+)", config))
    template = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (DEPLOY / "psabridge.env.example").read_text(), re.M))
    assert wanted, "the example config names its secrets with *_env"
    assert wanted <= template, sorted(wanted - template)
