"""What `sandbox serve` writes: the services' URLs (--urls-file) and a psabridge configuration (--config-out).

The configuration is complete and points at the sandbox: SQLite beside it, the embedded broker, one connection per
vendor with the mapping psabridge ships for that vendor (``builtin:<system>``, which an installed psabridge finds in
its own package data), the notifiers and the demo's links; the credentials are secret files beside it, never inline.
The sandbox writes this file as text in psabridge's configuration format and imports nothing of psabridge.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from psabridge_sandbox.credentials import SECRET_FILES
from psabridge_sandbox.registry import SECRETS_DIR, SERVICES
from psabridge_sandbox.runner import ServiceInfo
from psabridge_sandbox.world import World

__all__ = ["DEMO_LINKS", "sandbox_config", "write_config", "write_urls"]

# The demo's mirror links, exactly as config/psabridge.yaml has them.
DEMO_LINKS: list[dict[str, Any]] = [
    {
        "name": "acme-snow-to-cw",
        "from": {"connection": "acme-snow", "where": {"queue": "MSP Support"}},
        "to": {"connection": "msp-cw", "queue": "Acme Service", "tenant": "acme"},
        "own": {"status": "to", "priority": "from", "notes": "both", "time_entries": "to"},
    },
    {
        "name": "globex-fs-to-cw",
        "from": {"connection": "globex-fs", "where": {"queue": "MSP Escalations"}},
        "to": {"connection": "msp-cw", "queue": "Globex Service", "tenant": "globex"},
        "own": {"status": "to", "priority": "from", "notes": "both", "time_entries": "to"},
    },
]


def sandbox_config(
    infos: Mapping[str, ServiceInfo], *, world: World, host: str, webhook_port: int, limits: bool = True
) -> dict[str, Any]:
    """The configuration as data: every service of the registry, running or not, in registry order.

    With ``limits`` False (a sandbox whose rate limits are lifted) the connections keep no vendor limits either
    (``rate_budget: {vendor_limits: false}``), so psabridge measures its own cost.
    """
    connections: list[dict[str, Any]] = []
    notifiers: list[dict[str, Any]] = []
    for spec in SERVICES:
        info = infos[spec.name]
        entry = spec.entry(info.base_url, host)
        if spec.role == "connection":
            entry["mapping"] = f"builtin:{entry['system']}"  # the default mapping psabridge ships for the vendor
            entry["poll_every"] = "2m"
            if not limits:
                entry["rate_budget"] = {"vendor_limits": False}
            connections.append(entry)
        else:
            notifiers.append(entry)
    tenants: dict[str, Any] = {}
    for tenant in world.tenants:
        tenants[tenant.key] = {
            "name": tenant.name,
            "contract_tier": tenant.contract_tier,
            "calendar": tenant.calendar,
            "timezone": tenant.timezone,
        }
        if tenant.vip:
            tenants[tenant.key]["vip"] = list(tenant.vip)
    return {
        "database": "sqlite:///psabridge.db",
        "broker": "embedded",
        "log": {"level": "info", "format": "auto"},
        "webhooks": {"host": host, "port": webhook_port},
        "tenants": tenants,
        "connections": connections,
        "links": DEMO_LINKS,
        "notifiers": notifiers,
    }


def write_config(
    path: Path,
    infos: Mapping[str, ServiceInfo],
    *,
    world: World,
    host: str,
    webhook_port: int = 8700,
    limits: bool = True,
) -> Path:
    """Write the configuration and its secret files (``sandbox-secrets/`` beside it, readable by the owner only)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    secrets = path.parent / SECRETS_DIR
    secrets.mkdir(mode=0o700, exist_ok=True)
    for name, value in SECRET_FILES.items():
        _write(secrets / name, value, mode=0o600)
    data = sandbox_config(infos, world=world, host=host, webhook_port=webhook_port, limits=limits)
    stopped = [name for name, info in infos.items() if not info.running]
    header = [
        "# Written by `psabridge sandbox serve`: psabridge on the embedded default, pointed at the sandbox.",
        f"# Secrets are files under {SECRETS_DIR}/ beside this file. Relative paths are relative to this folder.",
    ]
    if not limits:
        header.append("# The sandbox serves without rate limits: so do the connections (rate_budget.vendor_limits).")
    if stopped:
        header.append(f"# Not running (no simulator registered yet): {', '.join(stopped)}.")
    _write(path, "\n".join(header) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))
    return path


def write_urls(path: Path, infos: Mapping[str, ServiceInfo]) -> Path:
    """Write ``{service: {url, base_url, credentials}}`` for the running services (atomically)."""
    data = {name: info.as_dict() for name, info in infos.items() if info.running}
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, json.dumps(data, indent=2) + "\n")
    return path


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file.

    Readable by the owner only unless ``mode`` says otherwise, from the first byte on: the config names the secret
    files and the URLs file holds the credentials each simulator accepts.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    if temporary.exists():
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
