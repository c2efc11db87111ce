"""config check and tenants: every tenant named anywhere is defined, and no link can carry one client's tickets into
another client's system or company (the rule the outbox enforces, tests/sync/test_tenancy.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psabridge.cli import app
from psabridge.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_LINK = "to: {connection: msp-cw, queue: Acme Service, tenant: acme}"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of config/ (msp-cw holds acme, globex, initech and umbrella; acme-snow is Acme's)."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config"


def edited(config_dir: Path, *replacements: tuple[str, str], links: str = "") -> Path:
    text = (config_dir / "psabridge.yaml").read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    if links:  # first under links:
        head, sep, rest = text.partition("\nlinks:")
        first_line_end = rest.index("\n") + 1
        text = head + sep + rest[:first_line_end] + links + rest[first_line_end:]
    path = config_dir / "test.yaml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(path, env={})
    return [str(p) for p in info.value.problems]


def line_of(path: Path, text: str) -> int:
    return next(i for i, row in enumerate(path.read_text().splitlines(), 1) if text in row)


def test_the_shipped_links_stay_within_their_tenants() -> None:
    settings = load_settings(ROOT / "config" / "psabridge.yaml", env={})
    assert [link.to.tenant for link in settings.links] == ["acme", "globex"]


def test_a_link_filtered_only_by_queue_from_a_connection_of_several_clients_is_rejected(config_dir: Path) -> None:
    path = edited(
        config_dir,
        links="  - name: cw-escalations-to-acme\n"
        "    from: {connection: msp-cw, where: {queue: Acme Escalations}}\n"
        "    to: {connection: acme-snow}\n",
    )
    line = line_of(path, "from: {connection: msp-cw, where: {queue: Acme Escalations}}")
    assert problems_of(path) == [
        f"{path}:{line} links[0].from: link 'cw-escalations-to-acme' can copy any client's ticket of msp-cw (it holds "
        "several tenants) into tenant 'acme''s acme-snow: select by tenant with from.tenant: acme"
    ]


def test_a_link_selecting_the_targets_tenant_is_accepted_and_another_tenant_is_not(config_dir: Path) -> None:
    good = edited(
        config_dir,
        links="  - {name: cw-to-acme, from: {connection: msp-cw, tenant: acme}, to: {connection: acme-snow}}\n"
        "  - {name: cw-to-acme-q, from: {connection: msp-cw, where: {tenant: acme, queue: X}}, "
        "to: {connection: acme-snow}}\n",
    )
    assert [link.name for link in load_settings(good, env={}).links][:2] == ["cw-to-acme", "cw-to-acme-q"]
    bad = edited(
        config_dir,
        links="  - {name: cw-to-acme, from: {connection: msp-cw, where: {tenant: [acme, globex]}}, "
        "to: {connection: acme-snow}}\n",
    )
    [problem] = problems_of(bad)
    assert "links[0].to: link 'cw-to-acme' would copy tenant 'globex''s tickets of msp-cw into tenant 'acme''s " in (
        problem
    )


def test_a_link_whose_to_tenant_names_another_client_is_rejected(config_dir: Path) -> None:
    path = edited(config_dir, (SHIPPED_LINK, "to: {connection: msp-cw, queue: Acme Service, tenant: globex}"))
    line = line_of(path, "tenant: globex}")
    assert problems_of(path) == [
        f"{path}:{line} links[0].to.tenant: link 'acme-snow-to-cw' would copy tenant 'acme''s tickets of acme-snow "
        "into tenant 'globex''s msp-cw: a link never crosses tenants"
    ]


def test_a_link_into_a_connection_of_several_clients_must_name_the_company(config_dir: Path) -> None:
    path = edited(config_dir, (SHIPPED_LINK, "to: {connection: msp-cw, queue: Acme Service}"))
    [problem] = problems_of(path)
    assert "links[0].to.tenant: link 'acme-snow-to-cw' writes into msp-cw, which holds several tenants' companies" in (
        problem
    )


def test_undefined_tenants_are_rejected_wherever_they_are_named_all_in_one_pass(config_dir: Path) -> None:
    path = edited(
        config_dir,
        (
            "    tenant: acme\n    base_url: http://127.0.0.1:8703",
            "    tenant: acmee\n    base_url: http://127.0.0.1:8703",
        ),
        ("GlobexLogistics: globex,", "GlobexLogistics: globx,"),
        (SHIPPED_LINK, "to: {connection: msp-cw, queue: Acme Service, tenant: hooli}"),
    )
    found = problems_of(path)
    defined = "(acme, globex, initech, umbrella)"
    line = line_of(path, "GlobexLogistics: globx")
    assert f"{path}:{line} connections[0].tenants.GlobexLogistics: tenant 'globx' " in "\n".join(found)
    assert sum(f"is not defined under tenants: {defined}" in p for p in found) == 3, found
    assert any("connections[2].tenant: tenant 'acmee' is not defined" in p for p in found)
    assert any("links[0].to.tenant: tenant 'hooli' is not defined" in p for p in found)
    assert any("names tenant 'hooli', which has no company in msp-cw's tenants" in p for p in found)


def test_config_check_exits_2_naming_the_crossing_link(config_dir: Path) -> None:
    path = edited(config_dir, (SHIPPED_LINK, "to: {connection: msp-cw, queue: Acme Service, tenant: globex}"))
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "a link never crosses tenants" in result.output


def test_a_change_window_naming_an_undefined_tenant_is_a_rules_problem(tmp_path: Path) -> None:
    from psabridge.rules import RulesFileError, load_rules

    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  recent_changes:\n    change_windows:\n"
        "      - {name: GPO push, start: 2026-04-18T22:00:00Z, end: 2026-04-19T02:00:00Z, tenants: [acme, hooli]}\n"
    )
    with pytest.raises(RulesFileError) as info:
        load_rules(path, tenants=["acme", "globex"])
    assert [str(p) for p in info.value.problems] == [
        f"{path}:4 rules.recent_changes.change_windows[0].tenants[1]: tenant 'hooli' is not under the settings' "
        "tenants: (acme, globex)"
    ]
    assert load_rules(ROOT / "config" / "rules.yaml", tenants=["acme", "globex"]) is not None
