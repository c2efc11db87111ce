from __future__ import annotations

import json

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
