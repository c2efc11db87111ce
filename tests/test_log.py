from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from psabridge.log import MASK, configure_logging, get_logger, mask_secrets, sanitize_url


def test_secret_query_parameters_and_userinfo_are_masked() -> None:
    url = "https://user:pw@acme.example/api?sysparm_limit=10&api_key=abc123&token=t0k"
    clean = sanitize_url(url)
    assert "abc123" not in clean and "t0k" not in clean and "pw@" not in clean
    assert "sysparm_limit=10" in clean
    assert clean.startswith("https://***@acme.example/api?")


def test_nested_structures_are_masked_by_key_and_by_pattern() -> None:
    event = {
        "headers": {"Authorization": "Basic cHNhOnNlY3JldA==", "clientId": "5f2f8f0e", "Accept": "application/json"},
        "body": "password=hunter2&user=bob",
        "Secret": "at-secret",
        "signing_key": "k",
        "note": "Authorization: Bearer abcdefghijklmnop",
        "value": SecretStr("x"),
    }
    masked = mask_secrets(event)
    assert masked["headers"] == {"Authorization": MASK, "clientId": MASK, "Accept": "application/json"}
    assert masked["body"] == "password=***&user=bob"
    assert masked["Secret"] == MASK and masked["signing_key"] == MASK
    assert masked["note"] == "Authorization: Bearer ***"
    assert masked["value"] == MASK


def test_json_log_lines_never_carry_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    get_logger("test").info(
        "request", url="https://x.example/t?api_key=SEKRIT", headers={"x-hook-signature": "sha1=abc"}, status=200
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "request"
    assert record["status"] == 200
    assert "SEKRIT" not in line and "sha1=abc" not in line
    assert record["headers"]["x-hook-signature"] == MASK


def _json_lines(err: str) -> list[dict[str, Any]]:
    """Every stderr line parsed as JSON (fails on any line that is not: the `--json >> log` set-up needs that)."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_a_dramatiq_worker_traceback_is_one_masked_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    import dramatiq

    from psabridge.sync.broker import BrokerOptions, build_broker

    configure_logging("info", "json")
    broker = build_broker("embedded", lambda _job: None, BrokerOptions(max_retries=0))

    @dramatiq.actor(broker=broker, queue_name="log-test")
    def explode() -> None:
        raise RuntimeError("vendor said: Authorization: Basic c2VjcmV0LXVzZXI6cGFzcw==")

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        explode.send()
        broker.join("log-test", timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    err = capsys.readouterr().err
    records = _json_lines(err)
    [failed] = [r for r in records if "exception" in r]
    assert failed["logger"].startswith("dramatiq") and failed["level"] == "error"
    assert "Traceback" in failed["exception"] and "RuntimeError" in failed["exception"]
    assert "c2VjcmV0LXVzZXI6cGFzcw" not in err and "Basic ***" in failed["exception"]


def test_uvicorn_records_are_json_lines_too(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    configure_logging("info", "json")
    logging.getLogger("uvicorn.error").error("boom at https://psabridge:hunter2@db.test/x", exc_info=ValueError("x"))
    [record] = _json_lines(capsys.readouterr().err)
    assert record["logger"] == "uvicorn.error" and record["event"].startswith("boom at")
    assert "hunter2" not in json.dumps(record) and "ValueError" in record["exception"]
