"""The default mappings ship as package data (builtin:<vendor>), and configurations and mapping files find them."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import psabridge
from psabridge.cli import app
from psabridge.default_mappings import UnknownMappingError, builtin_mapping, builtin_names
from psabridge.mapping import check_mapping, load_mapping
from psabridge.settings import SettingsError, load_settings
from tests.mapping.conftest import INSTALLATION_MAPPINGS, MAPPINGS, VENDORS

CONNECTION = """\
database: sqlite:///psabridge.db
broker: embedded
tenants:
  acme: {{name: Acme Dental}}
connections:
  - name: acme-snow
    system: servicenow
    tenant: acme
    base_url: https://acme.service-now.com
    credentials: {{username: psabridge, password_env: SN_PASSWORD}}
{mapping}"""


def test_every_vendor_has_a_builtin_mapping_in_the_package_data() -> None:
    assert builtin_names() == sorted(VENDORS)
    package = Path(str(resources.files("psabridge")))
    for vendor in VENDORS:
        path = builtin_mapping(vendor)
        assert path == package / "mapping" / "defaults" / f"{vendor}.yaml"
        assert path.parent == Path(psabridge.__file__).parent / "mapping" / "defaults"  # inside the package
        assert path.read_bytes() == (MAPPINGS / f"{vendor}.yaml").read_bytes()


def test_builtin_mappings_resolve_outside_a_checkout(tmp_path: Path) -> None:
    """From a folder with no config/ and no mappings/, a configuration and a mapping file still find the defaults."""
    (tmp_path / "psabridge.yaml").write_text(CONNECTION.format(mapping=""))
    (tmp_path / "mine.yaml").write_text("extends: builtin:connectwise\nfields:\n  number: {path: summary}\n")
    script = (
        "from psabridge.settings import load_settings\n"
        "from psabridge.mapping import load_mapping\n"
        "settings = load_settings('psabridge.yaml', env={'SN_PASSWORD': 'x'})\n"
        "print(settings.connection('acme-snow').mapping)\n"
        "print(load_mapping('mine.yaml').system.value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(builtin_mapping("servicenow")), "connectwise"]


def test_a_connection_names_a_builtin_mapping_or_takes_the_file_beside_it(tmp_path: Path) -> None:
    config = tmp_path / "psabridge.yaml"
    config.write_text(CONNECTION.format(mapping="    mapping: builtin:servicenow\n"))
    assert load_settings(config, env={"SN_PASSWORD": "x"}).connection("acme-snow").mapping == builtin_mapping(
        "servicenow"
    )
    (tmp_path / "mappings").mkdir()
    beside = tmp_path / "mappings" / "servicenow.yaml"
    beside.write_text("extends: builtin:servicenow\n")
    config.write_text(CONNECTION.format(mapping=""))
    assert load_settings(config, env={"SN_PASSWORD": "x"}).connection("acme-snow").mapping == beside.resolve()


def test_an_unknown_builtin_is_a_located_problem(tmp_path: Path) -> None:
    config = tmp_path / "psabridge.yaml"
    config.write_text(CONNECTION.format(mapping="    mapping: builtin:servicenw\n"))
    with pytest.raises(SettingsError) as info:
        load_settings(config, env={"SN_PASSWORD": "x"})
    shipped = "builtin:autotask, builtin:connectwise, builtin:freshservice, builtin:servicenow"
    assert [str(p) for p in info.value.problems] == [
        f"{config}:11 connections[0].mapping: builtin:servicenw is not a mapping psabridge ships (it ships {shipped})"
    ]
    extending = tmp_path / "m.yaml"
    extending.write_text("system: servicenow\nextends: builtin:../defaults/servicenow\n")
    mapper, problems = check_mapping(extending)
    assert mapper is None
    assert [str(p) for p in problems] == [
        f"{extending}:2 extends: builtin:../defaults/servicenow is not a mapping psabridge ships (it ships {shipped})"
    ]
    with pytest.raises(UnknownMappingError):
        builtin_mapping("")


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_checkout_mapping_files_extend_the_builtin_and_add_nothing(vendor: str) -> None:
    """One full copy of each default: config/mappings/<vendor>.yaml only says which default it refines."""
    path = INSTALLATION_MAPPINGS / f"{vendor}.yaml"
    assert yaml.safe_load(path.read_text()) == {"system": vendor, "extends": f"builtin:{vendor}"}
    assert load_mapping(path).files == (str(builtin_mapping(vendor)), str(path))


def test_mapping_check_takes_builtin_names() -> None:
    good = CliRunner().invoke(app, ["mapping", "check", "builtin:servicenow"])
    assert (good.exit_code, good.output) == (0, f"ok: {builtin_mapping('servicenow')} (servicenow, 26 fields)\n")
    bad = CliRunner().invoke(app, ["mapping", "check", "builtin:servicenw"])
    assert bad.exit_code == 2
    assert bad.output.startswith("error: builtin:servicenw is not a mapping psabridge ships (it ships builtin:autotask")
