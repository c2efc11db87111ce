"""Benchmark: the webhook receiver under uvicorn on loopback, with forged ConnectWise callbacks and a huge body.

Usage: python3 run.py bench webhooks [--flood 60] [--rounds 5] [--key-delay 0.2] [--huge-mb 400]

The receiver runs as `serve` runs it (uvicorn, the real ConnectWise connector, SQLite, a recording queue). The
ConnectWise key server is an in-process transport that takes ``--key-delay`` seconds to answer a key id it does not
know (a forged one), as a remote ConnectWise would. Prints one JSON line: the latency of a real signed callback alone
and while ``--flood`` forged callbacks (each naming another key id) are in flight, the key fetches and ticket API
requests the floods caused, the answer to a ``--huge-mb`` chunked POST and how much this process's peak RSS grew
while the receiver refused it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from psabridge.connectors.connectwise import ConnectWiseConnector
from psabridge.connectors.http import HttpRuntime
from psabridge.log import configure_logging
from psabridge.mapping import MappingRegistry
from psabridge.settings import ConnectionSettings, Credentials, Settings
from psabridge.store import Database, upgrade
from psabridge.sync.context import SyncContext
from psabridge.sync.locks import locks_for
from psabridge.webhooks.app import create_app

ROOT = Path(__file__).resolve().parent.parent
HOST = "cw.bench"
KEY_ID = "6b1f0c2e-0d5a-4c0f-8a63-1f2e3d4c5b6a"
SIGNING_KEY = "bench-signing-key"


class Keys:
    """ConnectWise's key endpoint: answers the real key at once, a forged id after ``delay`` seconds (404)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.fetches = 0
        self.other = 0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if not request.url.path.endswith("/system/callbackkey/index.rails"):
                self.other += 1
                return httpx.Response(500)
            self.fetches += 1
        if request.url.params.get("id") == KEY_ID:
            return httpx.Response(200, json={"signing_key": SIGNING_KEY})
        time.sleep(self.delay)
        return httpx.Response(404, json={"code": "NotFound", "message": "Callback key not found"})


def callback(key_id: str, key: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({
        "MessageId": str(uuid.uuid4()), "Action": "updated", "Type": "ticket", "ID": 493, "Entity": "{}",
        "Metadata": {"key_url": f"https://{HOST}/v4_6_release/system/callbackkey/index.rails?id={key_id}"},
    }).encode()  # fmt: skip
    digest = hmac.new(hashlib.sha256(key.encode()).digest(), body, hashlib.sha256).digest()
    return body, {"Content-Type": "application/json", "x-content-signature": base64.b64encode(digest).decode()}


def context(folder: Path, keys: Keys) -> SyncContext:
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    settings = Settings(
        database=url,
        broker="embedded",
        connections=[{
            "name": "msp-cw", "system": "connectwise", "base_url": f"https://{HOST}/v4_6_release/apis/3.0",
            "mapping": str(ROOT / "config" / "mappings" / "connectwise.yaml"),
            "credentials": {"company": "msp", "public_key": "p", "private_key": "k", "client_id": "c"},
        }],
    )  # fmt: skip
    conn = settings.connections[0]
    conn._credentials = Credentials({k: SecretStr(v) for k, v in conn.credentials.items()})
    db = Database(url)

    class Queue:
        def ingest(self, connection: str, external_id: str) -> None: ...
        def dispatch(self, outbox_id: int) -> None: ...
        def poll(self, connection: str) -> None: ...

    def build(settings: ConnectionSettings) -> ConnectWiseConnector:
        runtime = HttpRuntime(namespace=f"bench{uuid.uuid4().hex[:8]}", transport=httpx.MockTransport(keys))
        return ConnectWiseConnector(settings, runtime=runtime)

    return SyncContext(settings=settings, db=db, mappings=MappingRegistry(settings.connections),
                       locks=locks_for("embedded", db), queue=Queue(), connector_factory=build)  # fmt: skip


async def measure(base: str, args: argparse.Namespace, keys: Keys) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.flood + 10)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def real() -> tuple[float, int]:
            body, headers = callback(KEY_ID, SIGNING_KEY)
            started = time.perf_counter()
            answer = await client.post("/webhooks/msp-cw", content=body, headers=headers)
            return time.perf_counter() - started, answer.status_code

        await real()  # the real key is fetched once and cached
        alone = [await real() for _ in range(args.rounds)]
        during: list[tuple[float, int]] = []
        forged_statuses: list[int] = []
        for round_ in range(args.rounds):
            forged = [callback(f"forged-{round_}-{n}", "a guess") for n in range(args.flood)]
            tasks = [asyncio.create_task(client.post("/webhooks/msp-cw", content=b, headers=h)) for b, h in forged]
            await asyncio.sleep(0.05)  # the flood is in flight
            during.append(await real())
            forged_statuses += [r.status_code for r in await asyncio.gather(*tasks)]

        async def huge() -> AsyncIterator[bytes]:
            for _ in range(args.huge_mb * 16):
                yield b" " * 65_536

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        json_type = {"Content-Type": "application/json"}
        try:
            status: int | str = (await client.post("/webhooks/msp-cw", content=huge(), headers=json_type)).status_code
        except httpx.HTTPError as exc:  # the receiver answered 413 and closed while we were still sending
            status = type(exc).__name__
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "real_callback_alone_ms": round(statistics.median(t for t, _ in alone) * 1000, 1),
        "real_callback_during_flood_ms": round(statistics.median(t for t, _ in during) * 1000, 1),
        "real_statuses": sorted({s for _, s in alone + during}),
        "flood": args.flood,
        "rounds": args.rounds,
        "forged_statuses": sorted(set(forged_statuses)),
        "key_fetches": keys.fetches,
        "ticket_api_requests": keys.other,
        "huge_body_mb": args.huge_mb,
        "huge_body_answer": status,
        "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
    }


def main(argv: list[str]) -> int:
    """Serve the receiver on a loopback port, measure, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--key-delay", type=float, default=0.2)
    parser.add_argument("--huge-mb", type=int, default=400)
    args = parser.parse_args(argv)
    configure_logging("error", "json")
    keys = Keys(args.key_delay)
    with tempfile.TemporaryDirectory() as folder:
        ctx = context(Path(folder), keys)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise SystemExit("the receiver did not start")
            time.sleep(0.05)
        try:
            figures = asyncio.run(measure(f"http://127.0.0.1:{port}", args, keys))
        finally:
            server.should_exit = True
            thread.join(30)
            ctx.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
