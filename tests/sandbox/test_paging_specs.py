"""The PagerDuty and Opsgenie simulators answer as the vendors' published descriptions say (specs/ in the package):
every 202, 400, 422, 401, 429 and 5xx body validates against its schema, and a spec-valid request is accepted."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import psabridge_sandbox
from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.credentials import OG_API_KEY, PD_ROUTING_KEY
from psabridge_sandbox.registry import build_simulator

from .conftest import AsgiClient

SPECS = Path(psabridge_sandbox.__file__).parent / "specs"
GENIE = {"Authorization": f"GenieKey {OG_API_KEY}"}
STORM = {"profile": "none", "storm_rate": 1.0, "storm_seconds": 60}
BROKEN = {"profile": "none", "error_rate": 1.0, "error_statuses": [503]}


@cache
def spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPECS / name).read_text(encoding="utf-8"))
    return loaded


def pd(*path: str) -> dict[str, Any]:
    node: Any = spec("pagerduty-events-v2.openapiv3.json")
    for part in path:
        node = node[part]
    return {**node, "components": spec("pagerduty-events-v2.openapiv3.json")["components"]}


PD_REQUEST = pd("paths", "/enqueue", "post", "requestBody", "content", "application/json", "schema")
PD_SUCCESS = pd("components", "responses", "Success", "content", "application/json", "schema")
PD_ERROR = pd("components", "responses", "Error", "content", "application/json", "schema")


def og(name: str) -> dict[str, Any]:
    return {"$ref": f"#/definitions/{name}", "definitions": spec("opsgenie-alert.json")["definitions"]}


@pytest.fixture
def pagerduty(clock: FakeClock) -> AsgiClient:
    return AsgiClient(build_simulator("pagerduty", clock=clock))


@pytest.fixture
def opsgenie(clock: FakeClock) -> AsgiClient:
    return AsgiClient(build_simulator("opsgenie", clock=clock))


def test_the_descriptions_own_example_event_is_accepted_202(pagerduty: AsgiClient) -> None:
    example = spec("pagerduty-events-v2.openapiv3.json")["paths"]["/enqueue"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]["event"]["value"]
    event = {**example, "routing_key": PD_ROUTING_KEY}
    jsonschema.validate(event, PD_REQUEST)
    answer = pagerduty.post("/v2/enqueue", json=event)
    assert answer.status_code == 202
    jsonschema.validate(answer.json(), PD_SUCCESS)
    assert answer.json() == {"status": "success", "message": "Event processed", "dedup_key": "srv01/mysql"}


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"routing_key": PD_ROUTING_KEY, "event_action": "trigger", "links": [{"text": "no href"}],
          "payload": {"summary": "s", "source": "x", "severity": "info"}}, "'links[0].href' is missing or blank"),
        ({"routing_key": PD_ROUTING_KEY, "event_action": "trigger", "images": [{}],
          "payload": {"summary": "s", "source": "x", "severity": "info"}}, "'images[0].src' is missing or blank"),
        ({"routing_key": PD_ROUTING_KEY, "event_action": "trigger",
          "payload": {"summary": "s", "source": "x", "severity": "info", "timestamp": "yesterday"}},
         "'payload.timestamp' is not an ISO 8601 date-time"),
    ],
)  # fmt: skip
def test_events_the_description_forbids_get_its_400_body(
    pagerduty: AsgiClient, event: dict[str, Any], error: str
) -> None:
    if "timestamp" in event["payload"]:  # the description names the format; JSON Schema does not assert it
        assert pd("components", "schemas", "Payload")["properties"]["timestamp"]["format"] == "date-time"
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(event, PD_REQUEST)
    answer = pagerduty.post("/v2/enqueue", json=event)
    assert answer.status_code == 400
    jsonschema.validate(answer.json(), PD_ERROR)
    assert error in answer.json()["errors"]


def test_pagerduty_429_and_5xx_bodies_are_its_error_object(pagerduty: AsgiClient) -> None:
    event = {
        "routing_key": PD_ROUTING_KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "info"},
    }
    for profile, status in ((STORM, 429), (BROKEN, 503)):
        assert pagerduty.put("/_sandbox/faults", json=profile).status_code == 200
        answer = pagerduty.post("/v2/enqueue", json=event)
        assert answer.status_code == status
        jsonschema.validate(answer.json(), PD_ERROR)
        pagerduty.put("/_sandbox/faults", json={"profile": "none"})
    assert pagerduty.get("/_sandbox/state").json()["incidents"] == []


def test_opsgenie_answers_are_its_success_and_error_responses(opsgenie: AsgiClient) -> None:
    body = {"message": "P1 #493", "alias": "psabridge:msp-cw:493#1", "priority": "P1", "details": {"k": "v"}}
    jsonschema.validate(body, og("CreateAlertPayload"))
    created = opsgenie.post("/v2/alerts", json=body, headers=GENIE)
    assert created.status_code == 202
    jsonschema.validate(created.json(), og("SuccessResponse"))
    status = opsgenie.get(f"/v2/alerts/requests/{created.json()['requestId']}", headers=GENIE)
    jsonschema.validate(status.json(), og("GetRequestStatusResponse"))
    close = {"source": "psabridge", "note": "resolved with the ticket"}
    jsonschema.validate(close, og("CloseAlertPayload"))
    closed = opsgenie.post("/v2/alerts/psabridge:msp-cw:493%231/close?identifierType=alias", json=close, headers=GENIE)
    assert closed.status_code == 202
    jsonschema.validate(closed.json(), og("SuccessResponse"))
    for answer, status_code in (
        (opsgenie.post("/v2/alerts", json={"message": "x"}), 401),
        (opsgenie.post("/v2/alerts", json={"message": "x", "details": {"n": 1}}, headers=GENIE), 422),
        (opsgenie.post("/v2/alerts", content=b"{oops", headers=GENIE), 400),
    ):
        assert answer.status_code == status_code
        jsonschema.validate(answer.json(), og("ErrorResponse"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"message": "x", "details": {"n": 1}}, og("CreateAlertPayload"))
    assert opsgenie.put("/_sandbox/faults", json=STORM).status_code == 200
    throttled = opsgenie.post("/v2/alerts", json=body, headers=GENIE)
    assert throttled.status_code == 429
    jsonschema.validate(throttled.json(), og("ErrorResponse"))
    [alert] = opsgenie.get("/_sandbox/state").json()["alerts"]
    assert alert["status"] == "closed" and alert["count"] == 1
