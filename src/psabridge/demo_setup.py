"""The demo's MSP as configuration: four clients on their tiers and calendars, two links, pagers, a rules file.

The sandbox's connections and notifiers come from its own writer (``psabridge_sandbox.configout``); the links, the
rules file and one tight SLA target (so that an SLA warning happens during the demo) come from here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from psabridge.files import write_private
from psabridge.settings import Settings, load_settings

if TYPE_CHECKING:
    from psabridge_sandbox.runner import SandboxRunner

__all__ = ["MORNING_LINKS", "QUIET_TARGET", "demo_rules", "write_demo_config"]

QUIET_TARGET = 40
"""Seconds of first-response target for Initech's (bronze) P3 tickets here: warned at half of it, during the demo."""

# ServiceNow -> ConnectWise (Acme hands tickets to the MSP in its own ServiceNow) and Freshservice -> Autotask
# (Globex's escalations land in the partner's Autotask). The mirror owns status, the source owns priority. (The
# sample config/psabridge.yaml, psabridge_sandbox.configout.DEMO_LINKS, mirrors Globex into ConnectWise instead.)
_OWN = {"status": "to", "priority": "from", "notes": "both", "time_entries": "to"}
MORNING_LINKS: list[dict[str, Any]] = [
    {
        "name": "acme-snow-to-cw",
        "from": {"connection": "acme-snow", "where": {"queue": "MSP Support"}},
        "to": {"connection": "msp-cw", "queue": "Acme Service", "tenant": "acme"},
        "own": _OWN,
    },
    {
        "name": "globex-fs-to-at",
        "from": {"connection": "globex-fs", "where": {"queue": "MSP Escalations"}},
        "to": {"connection": "partner-at", "queue": "Service Desk", "tenant": "globex"},
        "own": _OWN,
    },
]

# The calendars of config/rules.yaml (the clients' own: us-east, us-central, eu and 24x7), as the tenants name them.
_CALENDARS: dict[str, Any] = {
    "us-east-business": {
        "timezone": "America/New_York",
        "hours": {
            "mon": ["08:00-12:00", "13:00-17:00"],
            "tue": ["08:00-17:00"],
            "wed": ["08:00-17:00"],
            "thu": ["08:00-17:00"],
            "fri": ["08:00-16:00"],
        },
        "holidays": ["2026-12-25", "2027-01-01"],
        "holidays_from": {"country": "US", "subdivision": "NY"},
    },
    "us-central-business": {
        "timezone": "America/Chicago",
        "hours": {day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays_from": {"country": "US", "subdivision": "IL"},
    },
    "eu-business": {
        "timezone": "Europe/Berlin",
        "hours": {
            **{day: ["08:00-12:30", "13:30-17:00"] for day in ("mon", "tue", "wed", "thu")},
            "fri": ["08:00-14:00"],
        },
        "holidays": ["2026-12-24", "2026-12-31"],
        "holidays_from": {"country": "DE", "subdivision": "BE"},
    },
    "24x7": {"timezone": "UTC", "hours": "always"},
}


def demo_rules() -> dict[str, Any]:
    """The demo's rules file: the checklist's defaults, config/rules.yaml's calendars and contract tiers.

    Except bronze's P3 and P4 first-response targets, which are seconds of wall-clock time so that a quiet ticket is
    warned while the demo runs (any run, whatever the hour: a business clock would not tick at night).
    """
    pauses = {"response": [], "plan": ["on_hold"], "resolution": ["on_hold"]}
    tiers = {
        "gold": {
            "clock": "business",
            "targets": {
                "P1": {"response": "15m", "plan": "1h", "resolution": "4h", "clock": "wall"},
                "P2": {"response": "30m", "plan": "2h", "resolution": "8h"},
                "P3": {"response": "2h", "resolution": "24h"},
                "P4": {"response": "4h", "resolution": "40h"},
            },
            "pauses": pauses,
        },
        "silver": {
            "clock": "business",
            "targets": {
                "P1": {"response": "30m", "plan": "2h", "resolution": "8h", "clock": "wall"},
                "P2": {"response": "1h", "plan": "4h", "resolution": "16h"},
                "P3": {"response": "4h", "resolution": "40h"},
                "P4": {"response": "8h", "resolution": "80h"},
            },
            "pauses": pauses,
        },
        "bronze": {
            "clock": "business",
            "targets": {
                "P1": {"response": "1h", "resolution": "8h"},
                "P2": {"response": "2h", "resolution": "24h"},
                "P3": {"response": f"{QUIET_TARGET}s", "resolution": "40h", "clock": "wall"},
                "P4": {"response": f"{2 * QUIET_TARGET}s", "resolution": "80h", "clock": "wall"},
            },
            "pauses": pauses,
        },
    }
    return {
        "version": 1,
        "calendars": _CALENDARS,
        "rules": {
            "sla": {"tiers": tiers, "warn_at": [0.5, 0.75]},
            "paging": {"pager": "pagerduty", "channel": "incident-channel"},
        },
        # Globex pages through Opsgenie (whose REST API Atlassian shuts down on 2027-04-05); the others PagerDuty.
        "tenants": {"globex": {"rules": {"paging": {"pager": "opsgenie"}}}},
    }


def write_demo_config(folder: Path, runner: SandboxRunner, *, webhook_port: int) -> Settings:
    """Write the demo's configuration, rules file and secrets into ``folder`` (a fresh store: old files removed)."""
    from psabridge_sandbox.configout import write_config

    folder = folder.resolve()
    for leftover in folder.glob("psabridge.db*"):
        leftover.unlink()
    shutil.rmtree(folder / "sandbox-secrets", ignore_errors=True)
    path = write_config(
        folder / "psabridge.yaml", runner.infos, world=runner.world, host="127.0.0.1", webhook_port=webhook_port
    )
    rules = folder / "rules.yaml"
    rules.write_text(
        "# Written by `psabridge demo`: the checklist's defaults; bronze's P3/P4 first response in seconds (see\n"
        "# psabridge.demo_setup) so that a quiet ticket's SLA warning happens while the demo runs.\n"
        + yaml.safe_dump(demo_rules(), sort_keys=False, allow_unicode=True, width=120),
        encoding="utf-8",
    )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["log"] = {"level": "warning", "format": "console"}
    data["links"] = MORNING_LINKS
    data["rules"] = rules.name
    header = "".join(line + "\n" for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    note = (
        "# Written by `psabridge demo`: links ServiceNow -> ConnectWise and Freshservice -> Autotask; the rules in\n"
        "# rules.yaml beside it. Every vendor keeps the sandbox's default limits (Freshservice on its Growth plan).\n"
    )
    # the config names the secrets' files; it is the owner's alone, like the store (issue 13, secrets at rest)
    write_private(path, header + note + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))
    return load_settings(path)
