"""Integration harness: the vendor simulators on loopback, and psabridge as real processes (`psabridge serve`
receiving their webhooks and polling on its schedule, `psabridge worker` on Redis, PostgreSQL as the store)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

from psabridge.store import Database, upgrade
from psabridge.store.models import DeadLetter, InboxDelivery, Link, OutboxAction
from psabridge_sandbox.configout import write_config
from psabridge_sandbox.credentials import (
    AT_INTEGRATION_CODE,
    AT_SECRET,
    AT_USERNAME,
    FS_API_KEY,
    FS_WEBHOOK_SECRET,
    SN_WEBHOOK_SECRET,
)
from psabridge_sandbox.people import WRITES, People
from psabridge_sandbox.runner import SandboxRunner
from tests.conftest import ROOT

CW_SIGNING_KEY = "cw-callback-signing-key"
PSABRIDGE = [str(Path(sys.executable).with_name("psabridge"))]  # the console script of this environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class Vendors(People):
    """The simulators, driven as people would (their REST APIs) and inspected through the control plane."""

    def __init__(self, runner: SandboxRunner) -> None:
        super().__init__(runner.infos["servicenow"], runner.infos["connectwise"])
        self.runner = runner
        self.at_root = runner.infos["autotask"].url
        self.fs_root = runner.infos["freshservice"].url
        self.at = AutotaskPeople(runner.infos["autotask"].base_url)
        self.fs = FreshservicePeople(runner.infos["freshservice"].base_url)

    @property
    def roots(self) -> dict[str, str]:
        """Each vendor's simulator root."""
        return {"servicenow": self.sn_root, "connectwise": self.cw_root, "autotask": self.at_root,
                "freshservice": self.fs_root}  # fmt: skip

    def close(self) -> None:
        super().close()
        self.at.close()
        self.fs.close()

    def writes(self) -> dict[str, list[dict[str, Any]]]:
        """Every write each simulator recorded (people's and psabridge's), by vendor."""
        found = {}
        for name, root in self.roots.items():
            recorded = httpx.get(f"{root}/_sandbox/requests", timeout=10).json()["requests"]
            found[name] = [r for r in recorded if r["method"] in WRITES and "/query" not in r["path"]]
        return found

    def send_webhooks_to(self, receiver: str, connections: tuple[str, ...] = ("acme-snow", "msp-cw")) -> None:
        """Register the receiver with the simulators whose webhooks the sandbox's control plane sets up (Autotask's
        are entities of its API: without them its changes are found by polling)."""
        for root, connection, secret in (
            (self.sn_root, "acme-snow", SN_WEBHOOK_SECRET),
            (self.cw_root, "msp-cw", CW_SIGNING_KEY),
            (self.fs_root, "globex-fs", FS_WEBHOOK_SECRET),
        ):
            if connection not in connections:
                continue
            url = f"{receiver}/webhooks/{connection}"
            httpx.post(f"{root}/_sandbox/webhooks", json={"url": url, "secret": secret}, timeout=10).raise_for_status()

    def faults(self, **profile: Any) -> None:
        for root in (self.sn_root, self.cw_root):
            httpx.put(f"{root}/_sandbox/faults", json=profile, timeout=10).raise_for_status()


class AutotaskPeople:
    """A technician at the MSP's Autotask: every change is made as their resource (ImpersonationResourceId)."""

    TECHNICIAN = 29682901  # seed technician 1 (psabridge_sandbox.autotask_data.resource_of(1))
    INITECH = 1001
    NETWORKING = 29683490

    def __init__(self, base_url: str) -> None:
        zone = httpx.get(f"{base_url}/v1.0/zoneInformation", params={"user": AT_USERNAME}, timeout=10).json()["url"]
        headers = {"ApiIntegrationCode": AT_INTEGRATION_CODE, "UserName": AT_USERNAME, "Secret": AT_SECRET,
                   "ImpersonationResourceId": str(self.TECHNICIAN)}  # fmt: skip
        self.http = httpx.Client(base_url=zone.rstrip("/") + "/V1.0/", headers=headers, timeout=10)

    def close(self) -> None:
        self.http.close()

    def open_ticket(self, title: str, *, priority: int = 2) -> int:
        """A new ticket of Initech in the Networking queue; its id."""
        body = {"companyID": self.INITECH, "title": title, "description": f"{title}: reported by phone.",
                "status": 1, "priority": priority, "queueID": self.NETWORKING}  # fmt: skip
        return int(self.http.post("Tickets", json=body).raise_for_status().json()["itemId"])

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        return dict(self.http.get(f"Tickets/{ticket_id}").raise_for_status().json()["item"])

    def update(self, ticket_id: int, **fields: Any) -> None:
        self.http.patch("Tickets", json={"id": ticket_id, **fields}).raise_for_status()

    def note(self, ticket_id: int, text: str) -> None:
        body = {"title": "Note", "description": text, "noteType": 1, "publish": 2}
        self.http.post(f"Tickets/{ticket_id}/Notes", json=body).raise_for_status()

    def notes(self, ticket_id: int) -> list[str]:
        items = self.http.get(f"Tickets/{ticket_id}/Notes").raise_for_status().json()["items"]
        return [str(n.get("description", "")) for n in items]


class FreshservicePeople:
    """An agent at a client's Freshservice (a seed agent, not the one behind our API key)."""

    AGENT = 21000322001  # seed agent 1 (psabridge_sandbox.freshservice_records.AGENT_BASE + 1)

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/api/v2/", auth=(FS_API_KEY, "X"), timeout=10)

    def close(self) -> None:
        self.http.close()

    def group(self, name: str) -> int:
        groups = self.http.get("groups").raise_for_status().json()["groups"]
        return int(next(g["id"] for g in groups if g["name"] == name))

    def open_ticket(self, title: str, *, priority: int = 2, group: str = "MSP Escalations") -> int:
        """A new ticket for ``group``; its id."""
        body = {"subject": title, "description": f"<p>{title}: reported by phone.</p>", "status": 2,
                "priority": priority, "email": "dana@globex.example", "group_id": self.group(group)}  # fmt: skip
        return int(self.http.post("tickets", json=body).raise_for_status().json()["ticket"]["id"])

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        return dict(self.http.get(f"tickets/{ticket_id}").raise_for_status().json()["ticket"])

    def update(self, ticket_id: int, **fields: Any) -> None:
        self.http.put(f"tickets/{ticket_id}", json=fields).raise_for_status()

    def note(self, ticket_id: int, text: str) -> None:
        body = {"body": f"<p>{text}</p>", "private": True, "user_id": self.AGENT}
        self.http.post(f"tickets/{ticket_id}/notes", json=body).raise_for_status()

    def notes(self, ticket_id: int) -> list[str]:
        found = self.http.get(f"tickets/{ticket_id}/conversations").raise_for_status().json()["conversations"]
        return [str(c.get("body_text") or c.get("body", "")) for c in found]


class Bridge:
    """psabridge as an operator runs it: a config file, `serve` (receiver + schedule) and `worker` processes."""

    def __init__(
        self,
        folder: Path,
        vendors: Vendors,
        *,
        database: str,
        broker: str,
        namespace: str,
        poll_every: str = "1h",
        connections: tuple[str, ...] = ("acme-snow", "msp-cw"),
        links: tuple[dict[str, Any], ...] | None = None,
    ) -> None:
        self.folder = folder
        self.vendors = vendors
        self.database = database
        self.broker = broker
        self.namespace = namespace
        self.port = free_port()
        self.config = folder / "psabridge.yaml"
        write_config(self.config, vendors.runner.infos, world=vendors.runner.world, host="127.0.0.1",
                     webhook_port=self.port)  # fmt: skip
        data = yaml.safe_load(self.config.read_text())
        data.update(database=database, broker=broker, namespace=namespace)
        data["log"] = {"level": "warning", "format": "json"}
        data["connections"] = [c for c in data["connections"] if c["name"] in connections]
        for conn in data["connections"]:
            conn["poll_every"] = poll_every
        self.connections = connections
        if links is None:
            links = tuple(lk for lk in data["links"] if lk["name"] == "acme-snow-to-cw")
        data["links"] = list(links)
        data["notifiers"] = []
        self.config.write_text(yaml.safe_dump(data, sort_keys=False))
        upgrade(database)
        self.db = Database(database)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []

    @property
    def receiver(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        self._logs.append(log)
        proc = subprocess.Popen(
            [*PSABRIDGE, *args, "--config", str(self.config)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a SIGKILL takes the whole worker down, nothing else
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.processes[name] = proc
        return proc

    def serve(self) -> None:
        self.start("serve", "serve", "--port", str(self.port))
        wait_for("the webhook receiver", self._receiver_up, timeout=30)
        self.vendors.send_webhooks_to(self.receiver, self.connections)

    def _receiver_up(self) -> bool:
        try:
            return httpx.get(f"{self.receiver}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def worker(self, threads: int = 4) -> None:
        self.start("worker", "worker", "--threads", str(threads))

    def kill(self, name: str) -> None:
        proc = self.processes.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def reconcile(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PSABRIDGE, "reconcile", "--json", *args, "--config", str(self.config)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.processes.clear()
        for log in self._logs:
            log.close()
        self.db.dispose()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.folder.glob("*.log")))

    # --- the store ---------------------------------------------------------------------------------------------------

    def links(self) -> list[Link]:
        with self.db.session() as s:
            return list(s.scalars(sa.select(Link)))

    def link_of(self, sys_id: str) -> Link | None:
        return next((lk for lk in self.links() if lk.source_key == f"acme-snow:{sys_id}"), None)

    def mirror_of(self, sys_id: str) -> str:
        link = wait_for(f"the mirror of {sys_id}", lambda: self._created(sys_id))
        return str(link.target_external_id)

    def _created(self, sys_id: str) -> Link | None:
        link = self.link_of(sys_id)
        return link if link is not None and link.state == "created" else None

    def busy(self) -> dict[str, int]:
        """Work the store says is unfinished."""
        with self.db.session() as s:
            outbox = s.scalar(sa.select(sa.func.count()).where(OutboxAction.status.in_(("pending", "sending"))))
            inbox = s.scalar(sa.select(sa.func.count()).where(InboxDelivery.status.in_(("received", "queued"))))
        return {"write_backs": int(outbox or 0), "deliveries": int(inbox or 0)}

    def dead_letters(self) -> list[DeadLetter]:
        with self.db.session() as s:
            return list(s.scalars(sa.select(DeadLetter)))

    def settle(self, timeout: float = 90.0, quiet: float = 2.0) -> None:
        """Wait until nothing is unfinished and neither simulator saw a request for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = json.dumps(self._request_counts())
        since = time.monotonic()
        while True:
            time.sleep(0.25)
            now = json.dumps(self._request_counts())
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet and not any(self.busy().values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the bridge did not settle: {self.busy()}\n{self.logs()}")

    def in_flight(self) -> dict[str, int]:
        """Work anywhere that can still lead to a write: open rows in the store, webhooks the simulators have not
        delivered yet, messages in the broker's queues (queued, delayed or being worked on)."""
        found = self.busy()
        found["webhooks"] = sum(
            d["outcome"] == "pending"
            for root in self.vendors.roots.values()
            for d in httpx.get(f"{root}/_sandbox/webhooks", timeout=10).json().get("deliveries", [])
        )
        found["messages"] = self._messages()
        return found

    def _messages(self) -> int:
        """Messages Dramatiq's Redis broker holds for our queues (``<ns>:<queue>.msgs``, and ``.DQ`` for delayed)."""
        import redis

        from psabridge.sync.broker import queue_names

        client = redis.Redis.from_url(self.broker, socket_timeout=5)
        try:
            prefix = f"{self.namespace}-dramatiq"
            queues = queue_names(self.connections)
            return sum(int(client.hlen(f"{prefix}:{q}{dq}.msgs")) for q in queues for dq in ("", ".DQ"))
        finally:
            client.close()

    def quiesce(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until nothing is in flight anywhere (see in_flight) and two looks in a row saw the same vendor
        requests: from then on nothing can be written without something new happening. Returns the writes then."""
        deadline = time.monotonic() + timeout
        last: tuple[str, str] | None = None
        while True:
            looked = (json.dumps(self._request_counts()), json.dumps(self.in_flight(), sort_keys=True))
            if looked == last and not any(json.loads(looked[1]).values()):
                return self.vendors.writes()
            last = looked
            if time.monotonic() > deadline:
                raise AssertionError(f"still in flight after {timeout:.0f}s: {self.in_flight()}\n{self.logs()}")
            time.sleep(0.25)

    def _request_counts(self) -> list[int]:
        roots = self.vendors.roots.values()
        return [int(httpx.get(f"{root}/_sandbox", timeout=10).json()["recorded"]) for root in roots]
