"""`psabridge status` shows the budget each connector enforces (the vendor's limits by plan, under rate_budget)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from psabridge.cli import app

runner = CliRunner()


def test_status_shows_the_limits_the_connectors_enforce(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k")
    config = tmp_path / "psabridge.yaml"
    connections = [
        {"name": "fs", "system": "freshservice", "base_url": "https://x.freshservice.com",
         "credentials": {"api_key_file": "key"}, "options": {"plan": "pro"}},
        {"name": "at", "system": "autotask", "base_url": "https://webservices2.autotask.net/atservicesrest",
         "rate_budget": {"requests": 2000}},
    ]  # fmt: skip
    config.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'db.sqlite'}", "connections": connections}))

    result = runner.invoke(app, ["status", "--json", "--config", str(config)])

    assert result.exit_code == 0, result.output
    fresh, autotask = (json.loads(result.stdout)[name]["budget"] for name in ("fs", "at"))
    assert (fresh["limit"], fresh["concurrency"]) == (None, None)
    assert {w["name"]: (w["limit"], w["per_seconds"], w["remaining"]) for w in fresh["windows"]} == {
        "account": (400, 61, 400),
        "list_tickets": (120, 61, 120),
        "view_ticket": (140, 61, 140),
        "create_ticket": (140, 61, 140),
        "update_ticket": (140, 61, 140),
        "list_agents": (120, 61, 120),
        "list_requesters": (120, 61, 120),
    }
    assert {w["name"]: (w["limit"], w["per_seconds"]) for w in autotask["windows"]} == {
        "budget": (2000, 3600),
        "database": (10_000, 3600),
    }
    assert autotask["concurrency"] == 3

    text = runner.invoke(app, ["status", "--config", str(config)]).stdout
    assert "rate budget    account 400 of 400 per 61s left; list_tickets 120 of 120 per 61s left;" in text
    assert "budget 2000 of 2000 per 3600s left; database 10000 of 10000 per 3600s left; 3 in flight" in text
