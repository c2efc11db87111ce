"""Secrets at rest: a vendor that echoes our request headers (``Authorization: Basic ...``) in its error bodies leaves
no credential in the store, in ``status --json``, in ``dlq list`` output or in inbox rows; the SQLite store and the
config files psabridge writes are readable by their owner only."""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from psabridge.cli import app
from psabridge.errors import PsaBridgeError
from psabridge.model import AddNote
from psabridge.settings import load_settings
from psabridge.store import Database, inbox, outbox, upgrade
from psabridge.sync.context import build_context
from psabridge.sync.deadletters import record_dead_letter
from psabridge.sync.outbox import dispatch_action
from psabridge.sync.policy import DeadJob, error_record
from psabridge.sync.poll import poll_connection
from psabridge.webhooks.stored import stored_headers

from .conftest import RecordingQueue

API_KEY = "fs-Secret-ApiKey-7f3a9c"
HOOK_SECRET = "hook-Secret-91be22"
BASIC = base64.b64encode(f"{API_KEY}:X".encode()).decode()  # Freshservice: the API key as the Basic user
SECRETS = (API_KEY, BASIC, HOOK_SECRET, "dbPassw0rd-x")


class _Echo(BaseHTTPRequestHandler):
    """A vendor whose every error body repeats the request's headers (as some proxies and API gateways do)."""

    def _answer(self) -> None:
        echoed = sorted(self.headers.items(), key=lambda item: item[0].lower() != "authorization")
        body = ("invalid request; you sent:\n" + "\n".join(f"{k}: {v}" for k, v in echoed)).encode()
        self.send_response(400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def echoing_vendor() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_vendor_echoing_our_credentials_leaves_them_nowhere(tmp_path: Path, echoing_vendor: str) -> None:
    config = tmp_path / "psabridge.yaml"
    config.write_text(
        "database: sqlite:///store/psabridge.db\nbroker: embedded\ntenants: {acme: {name: Acme}}\n"
        "connections:\n  - name: acme-fs\n    system: freshservice\n    tenant: acme\n"
        f"    base_url: {echoing_vendor}\n"
        "    credentials: {api_key_env: FS_KEY, webhook_secret_env: FS_HOOK}\n"
    )
    env = {"FS_KEY": API_KEY, "FS_HOOK": HOOK_SECRET}
    settings = load_settings(config, env=env)
    upgrade(settings.database)
    ctx = build_context(settings, RecordingQueue())
    try:
        # A poll fails on the echoed 400: the run row keeps the error
        with pytest.raises(PsaBridgeError) as polled:
            poll_connection(ctx, "acme-fs")
        assert BASIC in (polled.value.vendor_message or "") + str(polled.value)  # the vendor did echo it
        # A write-back fails the same way and is dead-lettered, as the worker does
        with ctx.unit() as s:
            [row] = outbox.enqueue_new(
                s, [AddNote(ticket_key="acme-fs:12", target="acme-fs", origin="rule:test", text="hello")], now=ctx.now()
            )
        with pytest.raises(PsaBridgeError) as sent:
            dispatch_action(ctx, row.id)
        job = DeadJob("m1", "dispatch", "dispatch", (row.id,), {"target": "acme-fs"}, error_record(sent.value), 1)
        record_dead_letter(ctx, job)
        # A webhook delivery with the shared secret header, whose ingest died on the echo
        with ctx.unit() as s:
            headers = stored_headers({"X-Webhook-Secret": HOOK_SECRET, "Authorization": f"Basic {BASIC}"})
            inbox.record_delivery(s, "acme-fs", "d1", external_id="12", event="updated", headers=headers)
        ingest_job = DeadJob("m2", "ingest", "ingest", ("acme-fs", "12"), {}, error_record(polled.value), 4)
        record_dead_letter(ctx, ingest_job)
    finally:
        ctx.close()

    # Then no table holds any secret, in any column
    db = Database(settings.database)
    try:
        metadata = sa.MetaData()
        metadata.reflect(db.engine)
        with db.engine.connect() as conn:
            dump = "\n".join(repr(tuple(r)) for table in metadata.sorted_tables for r in conn.execute(sa.select(table)))
    finally:
        db.dispose()
    assert "invalid request" in dump and "***" in dump  # the errors are kept, masked
    assert not [secret for secret in SECRETS if secret in dump]
    # nor does any output an operator reads
    runner = CliRunner(env={**env, "PSABRIDGE_CONFIG": str(config)})
    status = runner.invoke(app, ["status", "--json"])
    letters = runner.invoke(app, ["dlq", "list", "--json"])
    shown = runner.invoke(app, ["dlq", "show", "1"])
    for result in (status, letters, shown):
        assert result.exit_code == 0, result.output
        assert not [secret for secret in SECRETS if secret in result.output]
    assert json.loads(status.output)["acme-fs"]["last_run"]["error"]
    # and the store itself is its owner's alone
    store = Path(settings.database[len("sqlite:///") :])
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_invalid_urls_are_not_echoed_with_their_password(tmp_path: Path) -> None:
    config = tmp_path / "psabridge.yaml"
    config.write_text(
        "database: mysql://bridge:dbPassw0rd-x@db/psa\nbroker: kafka://u:dbPassw0rd-x@k:9092\n"
        "connections:\n  - {name: a, system: freshservice, base_url: 'ftp://u:dbPassw0rd-x@fs'}\n"
    )
    result = CliRunner().invoke(app, ["config", "check", "--config", str(config)])
    assert result.exit_code == 2
    assert "'mysql://***@db/psa' is not a database URL" in result.output
    assert "'kafka://***@k:9092' is not a broker" in result.output
    assert "'ftp://***@fs' is not an http(s) URL" in result.output
    assert "dbPassw0rd-x" not in result.output


def test_the_sandbox_config_and_its_urls_file_are_written_for_the_owner_only(tmp_path: Path) -> None:
    from psabridge_sandbox.configout import _write

    for name in ("psabridge.yaml", "sandbox-urls.json"):
        _write(tmp_path / name, "x: 1\n")
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_a_settings_dump_masks_the_database_and_broker_passwords(tmp_path: Path) -> None:
    config = tmp_path / "psabridge.yaml"
    config.write_text("database: postgresql://bridge:dbPassw0rd-x@db/psa\nbroker: redis://:dbPassw0rd-x@r:6379/0\n")
    dump = load_settings(config, env={}).safe_dump()
    assert (dump["database"], dump["broker"]) == ("postgresql+psycopg://***@db/psa", "redis://***@r:6379/0")
