from __future__ import annotations

import re

import httpx
import pytest

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.credentials import OG_API_KEY, PD_ROUTING_KEY
from psabridge_sandbox.registry import build_simulator

from .conftest import AsgiClient

GENIE = {"Authorization": f"GenieKey {OG_API_KEY}"}


def trigger(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "routing_key": PD_ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "psabridge:msp-cw:493",
        "payload": {"summary": "P1: email down at Acme", "source": "psabridge", "severity": "critical"},
    }
    event.update(overrides)
    return event


# --- PagerDuty ------------------------------------------------------------------------------------------------------


@pytest.fixture
def pagerduty(clock: FakeClock) -> AsgiClient:
    return AsgiClient(build_simulator("pagerduty", clock=clock))


def test_pagerduty_trigger_acknowledge_resolve(pagerduty: AsgiClient) -> None:
    accepted = pagerduty.post("/v2/enqueue", json=trigger())
    assert accepted.status_code == 202
    assert accepted.json() == {"status": "success", "message": "Event processed", "dedup_key": "psabridge:msp-cw:493"}
    ack = {"routing_key": PD_ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "psabridge:msp-cw:493"}
    assert pagerduty.post("/v2/enqueue", json=ack).status_code == 202
    assert pagerduty.post("/v2/enqueue", json={**ack, "event_action": "resolve"}).status_code == 202
    # Asynchronous API: resolving an unknown alert is accepted too.
    assert (
        pagerduty.post("/v2/enqueue", json={**ack, "event_action": "resolve", "dedup_key": "nope"}).status_code == 202
    )
    state = pagerduty.get("/_sandbox/state").json()
    assert [e["event_action"] for e in state["events"]] == ["trigger", "acknowledge", "resolve", "resolve"]
    alert = state["alerts"]["psabridge:msp-cw:493"]
    assert alert["status"] == "resolved" and [h["action"] for h in alert["history"]] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert "nope" not in state["alerts"]
    recorded = pagerduty.get("/_sandbox/requests").json()["requests"]
    assert {r["principal"] for r in recorded} == {PD_ROUTING_KEY}


def test_pagerduty_makes_up_a_dedup_key_when_a_trigger_has_none(pagerduty: AsgiClient) -> None:
    event = trigger()
    del event["dedup_key"]
    key = pagerduty.post("/v2/enqueue", json=event).json()["dedup_key"]
    assert re.fullmatch(r"[0-9a-f]{32}", key)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (trigger(payload={"source": "x", "severity": "critical"}), "'payload.summary' is missing or blank"),
        (trigger(payload={"summary": "x", "source": "x", "severity": "fatal"}), "'payload.severity' is invalid"),
        (trigger(payload=None), "'payload' is missing or blank"),
        (trigger(event_action="explode"), "'event_action'"),
        ({"routing_key": PD_ROUTING_KEY, "event_action": "resolve"}, "'dedup_key' is required"),
        (trigger(routing_key="0123456789abcdef0123456789abcdef"), "Invalid routing key"),
        (trigger(routing_key=""), "'routing_key' is missing or blank"),
    ],
)
def test_pagerduty_invalid_events(pagerduty: AsgiClient, event: dict[str, object], error: str) -> None:
    response = pagerduty.post("/v2/enqueue", json=event)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "invalid event" and body["message"] == "Event object is invalid"
    assert any(e.startswith(error) for e in body["errors"])
    assert pagerduty.get("/_sandbox/state").json()["events"] == []


def test_pagerduty_unparsable_body(pagerduty: AsgiClient) -> None:
    response = pagerduty.post("/v2/enqueue", content=b"{not json")
    assert response.status_code == 400
    assert response.json() == {
        "status": "Unrecognized object",
        "message": "Event object format is unrecognized",
        "errors": ["JSON parse error"],
    }


def test_pagerduty_throttles_per_routing_key(pagerduty: AsgiClient, clock: FakeClock) -> None:
    async def flood(client: httpx.AsyncClient) -> list[int]:
        return [(await client.post("/v2/enqueue", json=trigger())).status_code for _ in range(121)]

    statuses = pagerduty.run(flood)
    assert statuses[:120] == [202] * 120 and statuses[120] == 429
    assert pagerduty.post("/v2/enqueue", json=trigger()).json()["status"] == "throttle exceeded"
    clock.advance(60)
    assert pagerduty.post("/v2/enqueue", json=trigger()).status_code == 202


# --- Opsgenie -------------------------------------------------------------------------------------------------------


@pytest.fixture
def opsgenie() -> AsgiClient:
    return AsgiClient(build_simulator("opsgenie"))


def test_opsgenie_needs_its_genie_key(opsgenie: AsgiClient) -> None:
    for headers in ({}, {"Authorization": "GenieKey wrong"}, {"Authorization": f"Bearer {OG_API_KEY}"}):
        response = opsgenie.post("/v2/alerts", json={"message": "x"}, headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["message"] == "Could not authenticate" and "requestId" in body and "took" in body


def test_opsgenie_create_and_close_by_alias_asynchronously(opsgenie: AsgiClient) -> None:
    created = opsgenie.post("/v2/alerts", json={"message": "P1 Acme email down", "alias": "msp-cw:493"}, headers=GENIE)
    assert created.status_code == 202
    body = created.json()
    assert body["result"] == "Request will be processed" and isinstance(body["took"], float)
    status = opsgenie.get(f"/v2/alerts/requests/{body['requestId']}", headers=GENIE).json()["data"]
    assert status["isSuccess"] and status["action"] == "Create" and status["alias"] == "msp-cw:493"
    again = opsgenie.post("/v2/alerts", json={"message": "P1 Acme email down", "alias": "msp-cw:493"}, headers=GENIE)
    assert (
        opsgenie.get(f"/v2/alerts/requests/{again.json()['requestId']}", headers=GENIE).json()["data"]["status"]
        == "Alert is deduplicated"
    )

    closed = opsgenie.post("/v2/alerts/msp-cw:493/close?identifierType=alias", json={"note": "fixed"}, headers=GENIE)
    assert closed.status_code == 202
    [alert] = opsgenie.get("/_sandbox/state").json()["alerts"]
    assert alert["status"] == "closed" and alert["count"] == 2
    # Closing what is not open is still accepted; the request status tells the truth.
    missing = opsgenie.post("/v2/alerts/msp-cw:493/close?identifierType=alias", headers=GENIE)
    assert missing.status_code == 202
    outcome = opsgenie.get(f"/v2/alerts/requests/{missing.json()['requestId']}", headers=GENIE).json()["data"]
    assert not outcome["isSuccess"] and outcome["status"] == "Alert does not exist"
    assert opsgenie.get("/v2/alerts/requests/unknown", headers=GENIE).status_code == 404


def test_opsgenie_semantic_and_syntax_errors(opsgenie: AsgiClient) -> None:
    empty = opsgenie.post("/v2/alerts", json={"alias": "a"}, headers=GENIE)
    assert empty.status_code == 422
    assert empty.json()["message"] == "Request body is not processable. Please check the errors."
    assert empty.json()["errors"] == {"message": "Message can not be empty."}
    assert opsgenie.post("/v2/alerts", json={"message": "x", "priority": "P9"}, headers=GENIE).status_code == 422
    assert opsgenie.post("/v2/alerts/x/close?identifierType=name", headers=GENIE).status_code == 422
    assert opsgenie.post("/v2/alerts", content=b"{oops", headers=GENIE).status_code == 400
    assert opsgenie.get("/_sandbox/state").json()["alerts"] == []


# --- chat -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def chat() -> AsgiClient:
    return AsgiClient(build_simulator("chat"))


def test_slack_style_incoming_webhook(chat: AsgiClient) -> None:
    ok = chat.post("/hooks/incident", json={"text": "P1 ticket 493: Acme email down"})
    assert (ok.status_code, ok.text, ok.headers["content-type"].split(";")[0]) == (200, "ok", "text/plain")
    form = chat.post("/hooks/incident", data={"payload": '{"text": "from a form"}'})
    assert form.text == "ok"
    invalid = chat.post("/hooks/incident", content=b"{oops")
    assert (invalid.status_code, invalid.text) == (400, "invalid_payload")
    no_text = chat.post("/hooks/incident", json={"username": "bot"})
    assert (no_text.status_code, no_text.text) == (400, "no_text")
    assert chat.post("/hooks/incident", json={"blocks": [{"type": "section"}]}).status_code == 200
    messages = chat.get("/_sandbox/state").json()["messages"]
    assert [(m["channel"], m["text"]) for m in messages] == [
        ("incident", "P1 ticket 493: Acme email down"),
        ("incident", "from a form"),
        ("incident", ""),
    ]


def test_teams_style_incoming_webhook(chat: AsgiClient) -> None:
    ok = chat.post("/webhookb2/abc@def/IncomingWebhook/1/2", json={"@type": "MessageCard", "text": "P1 ticket 493"})
    assert (ok.status_code, ok.text) == (200, "1")
    card = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive"}]}
    assert chat.post("/webhookb2/abc", json=card).text == "1"
    missing = chat.post("/webhookb2/abc", json={"@type": "MessageCard"})
    assert (missing.status_code, missing.text) == (400, "Summary or Text is required.")
    assert chat.post("/webhookb2/abc", content=b"nope").status_code == 400
    assert [m["style"] for m in chat.get("/_sandbox/state").json()["messages"]] == ["teams", "teams"]
