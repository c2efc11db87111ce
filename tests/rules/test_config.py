"""config/rules.yaml: typed loading with located errors, tenant overrides, hot reload, and the CLI touches."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from psabridge.cli import app
from psabridge.errors import ConfigError
from psabridge.rules import RuleSet, RulesFileError, RulesRegistry, load_rules
from psabridge.rules.checklist import CHECKLIST, ChecklistSettings
from psabridge.rules.config import RulesDocument

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "rules.yaml"
TENANTS = ("acme", "globex", "initech", "umbrella")
runner = CliRunner()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    with structlog.testing.capture_logs():
        yield


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later mtime, whatever the clock
    return path


def test_the_shipped_rules_file_writes_out_the_built_in_defaults() -> None:
    rules = load_rules(RULES, tenants=TENANTS)
    shipped, built_in = rules.document.rules, ChecklistSettings()
    examples = {
        ("recent_changes", "change_windows"),
        ("knowledge", "articles"),
        ("paging", "pager"),  # the notifiers of psabridge.yaml: a deployment's own names
        ("paging", "channel"),
        ("paging", "ticket_links"),
    }
    for rule in CHECKLIST:
        ours, default = getattr(shipped, rule.id).model_dump(), getattr(built_in, rule.id).model_dump()
        assert ours["effects"] == {code: spec.effect for code, spec in rule.codes.items()}
        for key in ours:
            if key != "effects" and (rule.id, key) not in examples:
                assert ours[key] == default[key], f"config/rules.yaml rules.{rule.id}.{key} differs from the default"
    windows = shipped.recent_changes.change_windows
    assert [w.reference for w in windows] == ["CHG0030012", None]
    assert rules.rule("priority").tuned("acme").effects["understated"] == "set"
    assert rules.rule("priority").tuned("globex").effects["understated"] == "note"
    assert rules.settings("satisfaction", "acme").survey_field == "smileback_sent"  # type: ignore[attr-defined]
    assert rules.settings("satisfaction").survey_field is None  # type: ignore[attr-defined]


def test_problems_name_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "rules.yaml",
        "guardrails:\n"
        "  evaluate_mirrors_on: sourse\n"
        "rules:\n"
        "  identity:\n"
        "    credentail_words: [x]\n"
        "  priority:\n"
        "    multi_user_threshold: 1\n",
    )
    with pytest.raises(RulesFileError) as info:
        load_rules(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:2 guardrails.evaluate_mirrors_on: 'sourse' is not one of source, target",
        f"{path}:5 rules.identity.credentail_words: unknown field (did you mean 'credential_words'?)",
        f"{path}:7 rules.priority.multi_user_threshold: Input should be greater than or equal to 2",
    ]
    assert isinstance(info.value, ConfigError)


def test_effects_and_tenants_are_checked_against_the_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path / "rules.yaml",
        "rules:\n"
        "  priority:\n"
        "    effects: {understatd: set, matrix_mismatch: set}\n"
        "tenants:\n"
        "  hooli:\n"
        "    rules: {closure: {statuses: [closed]}}\n"
        "  acme:\n"
        "    rules:\n"
        "      priority: {effects: {nope: note}}\n",
    )
    with pytest.raises(RulesFileError) as info:
        load_rules(path, tenants=TENANTS)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:3 rules.priority.effects.understatd: rule 'priority' has no finding 'understatd'; it has "
        "understated, overstated, missing, matrix_mismatch",
        f"{path}:3 rules.priority.effects.matrix_mismatch: finding 'matrix_mismatch' proposes no action, so it can "
        "be note or report, not set",
        f"{path}:9 tenants.acme.rules.priority.effects.nope: rule 'priority' has no finding 'nope'; it has "
        "understated, overstated, missing, matrix_mismatch",
        f"{path}:5 tenants.hooli: tenant 'hooli' is not under the settings' tenants: (acme, globex, initech, umbrella)",
    ]


def test_bad_yaml_and_a_missing_file_are_problems_too(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="cannot read file"):
        load_rules(tmp_path / "absent.yaml")
    with pytest.raises(RulesFileError, match="must hold a mapping"):
        load_rules(write(tmp_path / "list.yaml", "- a\n"))
    with pytest.raises(RulesFileError, match="duplicate key"):
        load_rules(write(tmp_path / "dupe.yaml", "rules: {}\nrules: {}\n"))


def test_tenant_overrides_deep_merge_lists_replace(tmp_path: Path) -> None:
    path = write(
        tmp_path / "rules.yaml",
        "rules:\n"
        "  recent_changes: {patch_tuesday: {days_after: 2}}\n"
        "tenants:\n"
        "  acme:\n"
        "    rules:\n"
        "      recent_changes: {patch_tuesday: {enabled: false}}\n"
        "      identity: {credential_words: [vpn token]}\n",
    )
    rules = load_rules(path)
    acme = rules.settings("recent_changes", "acme")
    assert acme.patch_tuesday.model_dump() == {"enabled": False, "days_after": 2}  # type: ignore[attr-defined]
    assert rules.settings("identity", "acme").credential_words.words == ("vpn token",)  # type: ignore[attr-defined]
    assert "password reset" in rules.settings("identity", "globex").credential_words.words  # type: ignore[attr-defined]


def test_act_since_per_connection(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    path = write(
        tmp_path / "rules.yaml",
        "guardrails:\n  connections: {msp-cw: {act_since: 2026-05-01T00:00:00Z}}\n",
    )
    rules = load_rules(path)
    first = datetime(2026, 4, 1, tzinfo=UTC)
    assert rules.act_since("msp-cw", first) == datetime(2026, 5, 1, tzinfo=UTC)
    assert rules.act_since("acme-snow", first) == first
    assert rules.act_since("acme-snow", None) is None


def test_the_registry_reloads_and_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.yaml", "rules: {tagging: {enabled: false}}\n")
    clock = Clock()
    registry = RulesRegistry(path, tenants=TENANTS, check_every=5, clock=clock)
    assert registry.rules().settings("tagging").enabled is False
    write(path, "rules: {tagging: {enabled: true}}\n")
    assert registry.rules().settings("tagging").enabled is False  # not checked again yet
    clock.now = 5
    assert registry.rules().settings("tagging").enabled is True
    write(path, "rules: {tagging: {enabld: false}}\n")
    clock.now = 10
    assert registry.rules().settings("tagging").enabled is True  # the bad edit keeps the last good rules
    assert [p.path for p in registry.problems()] == ["rules.tagging.enabld"]
    write(path, "rules: {tagging: {enabled: false}}\n")
    assert registry.reload(force=True) == []
    assert registry.rules().settings("tagging").enabled is False


def test_a_registry_without_a_good_file_raises_and_without_a_file_serves_defaults(tmp_path: Path) -> None:
    broken = RulesRegistry(write(tmp_path / "rules.yaml", "rules: [1]\n"), check_every=0)
    with pytest.raises(RulesFileError):
        broken.rules()
    assert RulesRegistry(None).rules().ids == RuleSet.default().ids


def test_config_check_validates_the_rules_file_and_schema_covers_it(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    settings = tmp_path / "config" / "psabridge.yaml"
    ok = runner.invoke(app, ["config", "check", "--config", str(settings)])
    assert ok.exit_code == 0, ok.output
    assert "rules.yaml: 17 of 17 checklist rule(s) enabled, 1 tenant override(s)" in ok.output
    write(tmp_path / "config" / "rules.yaml", "rules:\n  priority:\n    effects: {understated: sett}\n")
    bad = runner.invoke(app, ["config", "check", "--config", str(settings)])
    assert bad.exit_code == 2
    assert "rules.yaml:3 rules.priority.effects.understated: 'sett' is not one of note, set, report" in bad.output
    schema = runner.invoke(app, ["config", "schema", "--rules"])
    assert schema.exit_code == 0
    document = json.loads(schema.output)
    assert document["title"] == "psabridge rules"
    assert set(document["properties"]) == set(RulesDocument.model_fields)
    assert document["$defs"]["IdentitySettings"]["properties"]["credential_words"]["type"] == "array"
