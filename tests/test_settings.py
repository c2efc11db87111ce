from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psabridge.cli import app
from psabridge.settings import SettingsError, load_settings, parse_duration

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of config/ so tests can edit it."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config"


def write(config_dir: Path, text: str) -> Path:
    path = config_dir / "test.yaml"
    path.write_text(text)
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(path, env=env or {})
    return [str(p) for p in info.value.problems]


def test_shipped_embedded_config_is_valid() -> None:
    settings = load_settings(ROOT / "config" / "psabridge.yaml", env={})
    assert [c.name for c in settings.connections] == ["msp-cw", "partner-at", "acme-snow", "globex-fs"]
    assert settings.broker == "embedded"
    assert settings.database == f"sqlite:///{(ROOT / 'var' / 'psabridge.db').resolve()}"
    snow = settings.connection("acme-snow")
    assert snow.secrets.get("password") == (ROOT / "config/sandbox-secrets/sn_password").read_text().strip()
    assert snow.mapping == (ROOT / "config/mappings/servicenow.yaml").resolve()
    assert snow.poll_every == timedelta(minutes=2)


def test_example_production_config_is_valid_once_its_secrets_are_set() -> None:
    names = [
        "CW_PUBLIC_KEY",
        "CW_PRIVATE_KEY",
        "CW_CLIENT_ID",
        "ACME_SN_USER",
        "ACME_SN_PASSWORD",
        "ACME_SN_HOOK_SECRET",
        "AT_API_USER",
        "AT_SECRET",
        "AT_INTEGRATION_CODE",
        "AT_HOOK_SECRET",
        "ACME_FS_API_KEY",
        "ACME_FS_HOOK_SECRET",
        "PD_ROUTING_KEY",
        "TEAMS_INCIDENT_WEBHOOK",
    ]
    settings = load_settings(ROOT / "config" / "psabridge.example.yaml", env={n: f"value-of-{n}" for n in names})
    assert settings.database.startswith("postgresql+psycopg://")
    assert settings.connection("msp-autotask").rate_budget.concurrency == 3
    assert settings.connection("msp-cw").secrets.get("private_key") == "value-of-CW_PRIVATE_KEY"


def test_missing_secret_env_names_the_line_and_variable() -> None:
    path = ROOT / "config" / "psabridge.example.yaml"
    line = next(i for i, row in enumerate(path.read_text().splitlines(), 1) if "public_key_env" in row)
    found = problems_of(path)
    assert any(
        p.endswith(
            f"psabridge.example.yaml:{line} connections[0].credentials.public_key_env: "
            "environment variable CW_PUBLIC_KEY is not set"
        )
        for p in found
    ), found


def test_wrong_system_names_file_line_and_path(config_dir: Path) -> None:
    text = (config_dir / "psabridge.yaml").read_text().replace("system: servicenow", "system: servicenw")
    path = write(config_dir, text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "servicenw" in row)
    assert problems_of(path) == [
        f"{path}:{line} connections[2].system: "
        "'servicenw' is not one of connectwise, autotask, servicenow, freshservice"
    ]


def test_unknown_field_suggests_the_right_spelling(config_dir: Path) -> None:
    path = write(
        config_dir,
        "broker: embedded\nconnections:\n  - name: a\n    system: autotask\n"
        "    base_url: https://x.example\n    pol_every: 1m\n",
    )
    assert problems_of(path) == [f"{path}:6 connections[0].pol_every: unknown field (did you mean 'poll_every'?)"]


def test_inline_secret_is_refused(config_dir: Path) -> None:
    path = write(
        config_dir,
        "connections:\n  - name: a\n    system: freshservice\n    base_url: https://x.example\n"
        "    credentials: {api_key: abc}\n",
    )
    [problem] = problems_of(path)
    assert problem == (
        f"{path}:5 connections[0].credentials.api_key: secrets must not sit in the config file; "
        "write api_key_env: VARIABLE or api_key_file: path"
    )


def test_duplicate_keys_and_bad_yaml_are_located(config_dir: Path) -> None:
    dup = write(config_dir, "broker: embedded\nbroker: redis://x\n")
    assert problems_of(dup) == [f"{dup}:2 broker: duplicate key (first defined on line 1)"]
    broken = write(config_dir, "broker: embedded\nconnections: [\n  {name: a\n")
    [problem] = problems_of(broken)
    assert problem.startswith(f"{broken}:") and "invalid YAML" in problem


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "nope.yaml")
    assert "nope.yaml: cannot read file" in problem


def test_environment_wins_and_can_address_connections_by_name(config_dir: Path) -> None:
    env = {
        "PSABRIDGE_BROKER": "redis://127.0.0.1:6379/0",
        "PSABRIDGE_CONNECTIONS__ACME_SNOW__POLL_EVERY": "30s",
        "PSABRIDGE_CONNECTIONS__0__PAGE_SIZE": "500",
        "PSABRIDGE_LOG__LEVEL": "debug",
        "PSABRIDGE_REQUIRE_SERVICES": "1",  # not a setting: ignored, not an error
    }
    settings = load_settings(config_dir / "psabridge.yaml", env=env)
    assert settings.broker == "redis://127.0.0.1:6379/0"
    assert settings.connection("acme-snow").poll_every == timedelta(seconds=30)
    assert settings.connection("msp-cw").page_size == 500
    assert settings.log.level == "debug"


def test_bad_environment_value_names_the_variable(config_dir: Path) -> None:
    found = problems_of(config_dir / "psabridge.yaml", env={"PSABRIDGE_CONNECTIONS__GLOBEX_FS__POLL_EVERY": "soon"})
    assert found == [
        "environment variable PSABRIDGE_CONNECTIONS__GLOBEX_FS__POLL_EVERY connections[3].poll_every: "
        "'soon' is not a duration (write e.g. 30s, 2m, 1h)"
    ]


def test_connector_options_are_checked_against_the_vendors_model_with_file_line_and_field(config_dir: Path) -> None:
    path = write(
        config_dir,
        "connections:\n"
        "  - name: fs\n    system: freshservice\n    base_url: https://x.example\n"
        "    options:\n      plan: sprout\n      webhook_headr: X-Token\n"
        "  - name: sn\n    system: servicenow\n    base_url: https://y.example\n"
        "    options: {webhook_max_age_seconds: soon}\n",
    )
    assert problems_of(path) == [
        f"{path}:6 connections[0].options.plan: 'sprout' is not one of starter, growth, pro, enterprise",
        f"{path}:7 connections[0].options.webhook_headr: unknown field (did you mean 'webhook_header'?)",
        f"{path}:11 connections[1].options.webhook_max_age_seconds: "
        "Input should be a valid number, unable to parse string as a number",
    ]


def test_connector_options_from_the_environment_are_typed_and_located(config_dir: Path) -> None:
    settings = load_settings(
        config_dir / "psabridge.yaml", env={"PSABRIDGE_CONNECTIONS__GLOBEX_FS__OPTIONS__PLAN": "pro"}
    )
    assert settings.connection("globex-fs").options == {"plan": "pro"}
    env = {"PSABRIDGE_CONNECTIONS__PARTNER_AT__OPTIONS__NOTE_TYPE": "x"}
    found = problems_of(config_dir / "psabridge.yaml", env=env)
    assert found == [
        "environment variable PSABRIDGE_CONNECTIONS__PARTNER_AT__OPTIONS__NOTE_TYPE connections[1].options.note_type: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_config_file_chosen_by_environment(config_dir: Path) -> None:
    settings = load_settings(env={"PSABRIDGE_CONFIG": str(config_dir / "psabridge.yaml")})
    assert settings.source == (config_dir / "psabridge.yaml").resolve()


def test_links_must_name_configured_connections(config_dir: Path) -> None:
    text = (
        (config_dir / "psabridge.yaml")
        .read_text()
        .replace("to: {connection: msp-cw, queue: Acme", "to: {connection: msp-c, queue: Acme")
    )
    found = problems_of(write(config_dir, text))
    assert len(found) == 1 and "link 'acme-snow-to-cw' names connection 'msp-c'" in found[0]


def test_secrets_never_appear_in_repr_or_dump() -> None:
    settings = load_settings(ROOT / "config" / "psabridge.yaml", env={})
    secret = settings.connection("globex-fs").secrets.get("api_key")
    assert secret
    assert secret not in repr(settings)
    assert secret not in json.dumps(settings.safe_dump())
    assert secret not in repr(settings.connection("globex-fs").secrets)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30s", 30), ("2m", 120), ("1h", 3600), ("250ms", 0.25)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_duration_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("two minutes")


def test_cli_config_check_exit_codes(config_dir: Path) -> None:
    ok = runner.invoke(app, ["config", "check", "--config", str(config_dir / "psabridge.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "4 connection(s)" in ok.output
    bad = write(config_dir, (config_dir / "psabridge.yaml").read_text().replace("system: autotask", "system: autotsk"))
    result = runner.invoke(app, ["config", "check", "--config", str(bad)])
    assert result.exit_code == 2
    assert "connections[1].system: 'autotsk' is not one of" in result.output


def test_cli_config_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["config", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "psabridge settings"
    assert "connections" in schema["properties"]
    systems = schema["$defs"]["System"]["enum"]
    assert systems == ["connectwise", "autotask", "servicenow", "freshservice"]
    # each system's connector options are documented, and apply to the connections of that system
    rules = schema["$defs"]["ConnectionSettings"]["allOf"]
    by_system = {rule["if"]["properties"]["system"]["const"]: rule["then"]["properties"]["options"] for rule in rules}
    assert by_system["freshservice"] == {"$ref": "#/$defs/FreshserviceOptions"}
    fresh = schema["$defs"]["FreshserviceOptions"]
    assert fresh["additionalProperties"] is False
    assert fresh["properties"]["plan"]["enum"] == ["starter", "growth", "pro", "enterprise"]
    assert "shared secret" in schema["$defs"]["ServiceNowOptions"]["properties"]["webhook_secret_header"]["description"]
