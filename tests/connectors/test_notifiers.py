"""The notifiers over the sandbox's PagerDuty, Opsgenie and chat simulators, through the shared HTTP layer: 202s,
400s refused at once with the vendor's words, 429 and 5xx retried, a lost answer, masked logs, and the request
bodies checked against the vendors' published descriptions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from pydantic import SecretStr

import psabridge_sandbox
from psabridge.connectors.http import HttpRuntime
from psabridge.connectors.notifier import Notifier, PageEvent, get_notifier
from psabridge.errors import AuthError, ConfigError, PermanentError, RetryLaterError
from psabridge.settings import Credentials, NotifierSettings
from psabridge_sandbox.credentials import OG_API_KEY, PD_ROUTING_KEY
from psabridge_sandbox.registry import build_simulator

from .scripted import LOST, PASS, REFUSED, ScriptedTransport, answer
from .serving import serve

KEY = "psabridge:msp-cw:493#1"


@pytest.fixture(scope="module")
def roots() -> Iterator[dict[str, str]]:
    with (
        serve(build_simulator("pagerduty")) as pagerduty,
        serve(build_simulator("opsgenie")) as opsgenie,
        serve(build_simulator("chat")) as chat,
    ):
        yield {"pagerduty": pagerduty, "opsgenie": opsgenie, "chat": chat}


def state(root: str) -> dict[str, Any]:
    return dict(httpx.get(f"{root}/_sandbox/state", timeout=5).json())


def requests_seen(root: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{root}/_sandbox/requests", timeout=5).json()["requests"])


class Made:
    def __init__(self, notifier: Notifier, transport: ScriptedTransport, sleeps: list[float]) -> None:
        self.notifier, self.transport, self.sleeps = notifier, transport, sleeps


_OPEN: list[Notifier] = []


@pytest.fixture(autouse=True)
def close_notifiers() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def make(kind: str, base_url: str, **secrets: str) -> Made:
    settings = NotifierSettings(name=f"{kind}-{uuid.uuid4().hex[:6]}", kind=kind, base_url=base_url)  # type: ignore[arg-type]
    settings._credentials = Credentials({k: SecretStr(v) for k, v in secrets.items()})
    transport = ScriptedTransport(httpx.HTTPTransport())
    sleeps: list[float] = []
    runtime = HttpRuntime(transport=transport, sleep=sleeps.append, namespace=f"test-{uuid.uuid4().hex[:8]}")
    notifier = get_notifier(settings, runtime=runtime)
    _OPEN.append(notifier)
    return Made(notifier, transport, sleeps)


def trigger(key: str = KEY) -> PageEvent:
    return PageEvent("trigger", key, "P1 #493: email down for the whole Boston office", source="msp-cw:493")


@cache
def pagerduty_spec() -> dict[str, Any]:
    path = Path(psabridge_sandbox.__file__).parent / "specs" / "pagerduty-events-v2.openapiv3.json"
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


def pd_schema(*path: str) -> dict[str, Any]:
    """A schema of the PagerDuty description with its components, for jsonschema (OpenAPI 3 refs resolve)."""
    spec = pagerduty_spec()
    node: Any = spec
    for part in path:
        node = node[part]
    return {**node, "components": spec["components"]}


@cache
def opsgenie_spec() -> dict[str, Any]:
    path = Path(psabridge_sandbox.__file__).parent / "specs" / "opsgenie-alert.json"
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


def og_valid(name: str, instance: Any) -> None:
    spec = opsgenie_spec()
    jsonschema.validate(instance, {"$ref": f"#/definitions/{name}", "definitions": spec["definitions"]})


# --- PagerDuty -------------------------------------------------------------------------------------------------------


def test_a_pagerduty_page_is_queued_202_with_a_body_the_description_allows(roots: dict[str, str]) -> None:
    made = make("pagerduty", roots["pagerduty"], routing_key=PD_ROUTING_KEY)
    answer_ = made.notifier.page(trigger("psabridge:a#1"))
    assert answer_ == {"status": "success", "message": "Event processed", "dedup_key": "psabridge:a#1"}
    success = pd_schema("components", "responses", "Success", "content", "application/json", "schema")
    jsonschema.validate(answer_, success)
    [event] = [e for e in state(roots["pagerduty"])["events"] if e["dedup_key"] == "psabridge:a#1"]
    request = pd_schema("paths", "/enqueue", "post", "requestBody", "content", "application/json", "schema")
    jsonschema.validate({k: v for k, v in event.items() if k != "received_at"}, request)
    assert event["payload"]["source"] == "msp-cw:493" and event["payload"]["severity"] == "critical"


def test_the_same_key_pages_once_and_a_resolved_key_pages_again(roots: dict[str, str]) -> None:
    made = make("pagerduty", roots["pagerduty"], routing_key=PD_ROUTING_KEY)
    for _ in range(3):  # a retry, a second worker
        made.notifier.page(trigger("psabridge:b#1"))
    made.notifier.page(PageEvent("resolve", "psabridge:b#1", "resolved"))
    made.notifier.page(trigger("psabridge:b#1"))  # the same key after a resolve: a new incident
    incidents = [i for i in state(roots["pagerduty"])["incidents"] if i["dedup_key"] == "psabridge:b#1"]
    assert [i["status"] for i in incidents] == ["resolved", "triggered"]


def test_a_pagerduty_400_is_refused_at_once_with_pagerdutys_words(roots: dict[str, str]) -> None:
    made = make("pagerduty", roots["pagerduty"], routing_key="0" * 32)  # a routing key PagerDuty does not know
    with pytest.raises(PermanentError) as info:
        made.notifier.page(trigger("psabridge:c#1"))
    assert info.value.status == 400
    assert info.value.vendor_message == "Event object is invalid: Invalid routing key"
    assert made.transport.seen == ["pass POST /v2/enqueue"]  # never retried
    assert made.sleeps == []


@pytest.mark.parametrize("failure", [answer(429), answer(503, b'{"status":"error","message":"busy"}'), LOST, REFUSED])
def test_429_5xx_and_network_errors_are_retried_with_backoff_and_page_once(roots: dict[str, str], failure: Any) -> None:
    key = f"psabridge:d-{uuid.uuid4().hex[:6]}#1"
    made = make("pagerduty", roots["pagerduty"], routing_key=PD_ROUTING_KEY)
    made.transport.add([failure, failure])
    assert made.notifier.page(trigger(key))["status"] == "success"
    assert len(made.transport.seen) == 3 and len(made.sleeps) == 2
    assert 0.5 <= made.sleeps[0] <= 1.0 and 1.0 <= made.sleeps[1] <= 1.5  # exponential backoff with jitter
    incidents = [i for i in state(roots["pagerduty"])["incidents"] if i["dedup_key"] == key]
    assert len(incidents) == 1  # a lost answer's retry is de-duplicated by its key


def test_pagerdutys_429_without_retry_after_waits_a_minute_once_retries_run_out(roots: dict[str, str]) -> None:
    made = make("pagerduty", roots["pagerduty"], routing_key=PD_ROUTING_KEY)
    made.transport.add([answer(429)] * 10)
    with pytest.raises(RetryLaterError) as info:
        made.notifier.page(trigger("psabridge:e#1"))
    assert getattr(info.value, "retry_after", None) == 60.0


def test_a_missing_routing_key_is_a_config_error(roots: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="routing_key"):
        make("pagerduty", roots["pagerduty"]).notifier.page(trigger())


# --- Opsgenie --------------------------------------------------------------------------------------------------------


def test_opsgenie_creates_by_alias_and_closes_by_alias_with_bodies_the_description_allows(
    roots: dict[str, str],
) -> None:
    made = make("opsgenie", roots["opsgenie"], api_key=OG_API_KEY)
    alias = f"psabridge:acme-snow:{uuid.uuid4().hex[:6]}#1"  # ':' and '#': percent-encoded in the close path
    created = made.notifier.page(trigger(alias))
    og_valid("SuccessResponse", created)
    assert created["result"] == "Request will be processed"
    made.notifier.page(trigger(alias))  # de-duplicated: counted up
    closed = made.notifier.page(PageEvent("resolve", alias, "resolved", source="acme-snow:x"))
    og_valid("SuccessResponse", closed)
    [alert] = [a for a in state(roots["opsgenie"])["alerts"] if a["alias"] == alias]
    assert alert["status"] == "closed" and alert["count"] == 2 and alert["priority"] == "P1"
    # The whole alias reached Opsgenie ('#' percent-encoded, not taken for a fragment).
    sent = [r for r in requests_seen(roots["opsgenie"]) if r["path"].endswith("/close")]
    assert [(r["path"], r["query"]) for r in sent if alias in r["path"]] == [
        (f"/v2/alerts/{alias}/close", "identifierType=alias")
    ]


def test_opsgenie_errors_have_the_described_shape_and_a_bad_key_is_not_retried(roots: dict[str, str]) -> None:
    made = make("opsgenie", roots["opsgenie"], api_key="wrong")
    with pytest.raises(AuthError) as info:
        made.notifier.page(trigger("psabridge:f#1"))
    assert info.value.vendor_message == "Could not authenticate"
    assert made.transport.seen == ["pass POST /v2/alerts"]
    body = httpx.post(
        f"{roots['opsgenie']}/v2/alerts", json={"alias": "x"}, headers={"Authorization": f"GenieKey {OG_API_KEY}"}
    )
    assert body.status_code == 422
    og_valid("ErrorResponse", body.json())


# --- chat ------------------------------------------------------------------------------------------------------------


def test_a_slack_post_is_sent_once_and_its_secret_url_is_never_logged(
    roots: dict[str, str], captured_logs: list[dict[str, Any]]
) -> None:
    channel = f"incident-{uuid.uuid4().hex[:6]}"
    made = make("slack", roots["chat"], webhook_url=f"{roots['chat']}/hooks/{channel}")
    logs = captured_logs
    assert made.notifier.post("P1 #493: email down") == {"status": 200, "body": "ok"}
    assert [m["text"] for m in state(roots["chat"])["messages"] if m["channel"] == channel] == ["P1 #493: email down"]
    [line] = [entry for entry in logs if entry["event"] == "http.request"]
    assert line["path"] == "/***" and channel not in json.dumps(logs)


def test_a_chat_5xx_is_retried_but_a_lost_answer_is_not_posted_twice(roots: dict[str, str]) -> None:
    channel = f"incident-{uuid.uuid4().hex[:6]}"
    made = make("slack", roots["chat"], webhook_url=f"{roots['chat']}/hooks/{channel}")
    made.transport.add([answer(503), PASS])
    made.notifier.post("after a 503")
    made.transport.add([LOST])
    with pytest.raises(RetryLaterError) as info:
        made.notifier.post("answer lost")
    assert not info.value.details.get("refused")  # it may have landed: the outbox will not post it again
    texts = [m["text"] for m in state(roots["chat"])["messages"] if m["channel"] == channel]
    assert texts == ["after a 503", "answer lost"]
    assert made.transport.seen == [f"answer POST /hooks/{channel}", f"pass POST /hooks/{channel}",
                                   f"lost POST /hooks/{channel}"]  # fmt: skip


def test_a_teams_post_is_a_message_card(roots: dict[str, str]) -> None:
    made = make("teams", f"{roots['chat']}/webhookb2/acme-incidents")
    assert made.notifier.post("P1 #493") == {"status": 200, "body": "1"}
    [message] = [m for m in state(roots["chat"])["messages"] if m["channel"] == "acme-incidents"]
    assert message["payload"]["@type"] == "MessageCard" and message["text"] == "P1 #493"


def test_a_channel_cannot_page_and_a_pager_cannot_post(roots: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="cannot page"):
        make("slack", roots["chat"]).notifier.page(trigger())
    with pytest.raises(ConfigError, match="not a chat channel"):
        make("pagerduty", roots["pagerduty"], routing_key=PD_ROUTING_KEY).notifier.post("x")
