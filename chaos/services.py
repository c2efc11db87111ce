"""The run's own services: a Redis it may restart, a fresh PostgreSQL database, the sandbox in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import redis
import sqlalchemy as sa

from psabridge_sandbox.runner import ServiceInfo

__all__ = ["OwnRedis", "Sandbox", "drop_database", "fresh_database"]

POSTGRES_SERVER = os.environ.get("PSABRIDGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PSABRIDGE = str(Path(sys.executable).with_name("psabridge"))


def _until(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"chaos: {what} did not happen within {timeout:.0f}s")
        time.sleep(0.2)


class OwnRedis:
    """``redis-server --port P --save '' --appendonly no``: ours alone, so restarting it disturbs nobody else."""

    def __init__(self, port: int, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("chaos: redis-server is not on PATH (install Redis)")
        self.port = port
        self.log = folder / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                   "no", "--daemonize", "no"]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        _until(f"redis-server on port {self.port}", self.pings, 20)

    def pings(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """SIGKILL: every queued message is gone (no persistence), as in a crash."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        time.sleep(1)
        self.start()


def fresh_database() -> str:
    """A new, empty PostgreSQL database of the run's own (``chaos_<hex>``) beside the test server's ``test``."""
    name = f"chaos_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


class Sandbox:
    """``psabridge sandbox serve`` in a subprocess of its own; ``runner`` stands in for a SandboxRunner's infos."""

    def __init__(self, folder: Path, *, port_base: int, tickets: int, seed: int, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.args = ["sandbox", "serve", "--tickets", str(tickets), "--seed", str(seed), "--port-base",
                     str(port_base), "--urls-file", str(folder / "urls.json")]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.runner = SimpleNamespace(infos={})

    def start(self, timeout: float = 120) -> None:
        log = (self.folder / "sandbox.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own console script
            [PSABRIDGE, *self.args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )  # fmt: skip
        log.close()
        _until("the sandbox", self._ready, timeout)
        data = json.loads((self.folder / "urls.json").read_text())
        self.runner.infos = {
            name: ServiceInfo(name, entry["url"], entry["base_url"], entry["credentials"], True)
            for name, entry in data.items()
        }

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"chaos: the sandbox exited ({self.proc.returncode}); see {self.folder}/sandbox.log")
        return "sandbox ready" in (self.folder / "sandbox.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
