"""The ServiceNow simulator write side through a plain client: updates, notes, time worked, limits, notifications."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from psabridge_sandbox.clock import FakeClock
from psabridge_sandbox.credentials import SN_USERNAME, SN_WEBHOOK_SECRET
from psabridge_sandbox.world import World
from tests.sandbox.conftest import ANCHOR
from tests.sandbox.servicenow_client import AGENT, TABLE, make, valid

INCIDENTS = f"{TABLE}/incident"


def some_incident(client: Any, query: str = "state=2") -> dict[str, Any]:
    found = client.get(INCIDENTS, params={"sysparm_query": query, "sysparm_limit": 1}).json()["result"]
    assert found, query
    return dict(found[0])


def test_patch_changes_only_the_fields_sent_and_counts_the_update(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20)
    before = some_incident(client)
    clock.advance(90)

    response = client.patch(f"{INCIDENTS}/{before['sys_id']}", json={"short_description": "Printer on fire"})

    assert response.status_code == 200
    valid("IncidentResult", response.json())
    after = response.json()["result"]
    assert after["short_description"] == "Printer on fire"
    assert int(after["sys_mod_count"]) == int(before["sys_mod_count"]) + 1
    assert after["sys_updated_by"] == SN_USERNAME
    assert after["sys_updated_on"] == "2026-11-20 15:01:30"
    unchanged = {k: v for k, v in after.items() if k not in {"short_description", *_BOOKKEEPING}}
    assert unchanged == {k: v for k, v in before.items() if k not in {"short_description", *_BOOKKEEPING}}


_BOOKKEEPING = {"sys_mod_count", "sys_updated_by", "sys_updated_on"}


def test_put_is_a_partial_update_too(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20)
    before = some_incident(client)

    after = client.put(f"{INCIDENTS}/{before['sys_id']}", json={"description": "More detail"}).json()["result"]

    assert after["description"] == "More detail"
    assert after["short_description"] == before["short_description"]
    assert after["caller_id"] == before["caller_id"]


def test_priority_is_derived_from_impact_and_urgency_and_cannot_be_written(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20)
    incident = some_incident(client)

    critical = client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"impact": "1", "urgency": "1", "priority": "5"})
    planning = client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"impact": 3, "urgency": 3})
    only_priority = client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"priority": "1"})

    assert critical.json()["result"]["priority"] == "1"
    assert planning.json()["result"]["priority"] == "5"
    assert (planning.json()["result"]["impact"], planning.json()["result"]["urgency"]) == ("3", "3")
    assert only_priority.json()["result"]["priority"] == "5"
    assert only_priority.json()["result"]["sys_mod_count"] == planning.json()["result"]["sys_mod_count"]


def test_a_write_that_changes_nothing_is_no_update(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20)
    incident = some_incident(client)

    same = client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"state": incident["state"], "u_nothing": "x"})

    assert same.status_code == 200
    assert same.json()["result"] == incident


def test_unknown_choice_values_are_stored_as_sent(world: World, clock: FakeClock) -> None:
    # The Table API does not check choice lists: a stale mapping value lands silently, so the connector must check
    _, client = make(world, clock, tickets=20)
    incident = some_incident(client)

    after = client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"state": "42", "category": "nonsense"})

    assert after.status_code == 200
    assert (after.json()["result"]["state"], after.json()["result"]["category"]) == ("42", "nonsense")


def test_resolving_and_closing_stamp_who_and_when(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20)
    incident = some_incident(client)
    body = {"state": "6", "close_code": "Solution provided", "close_notes": "Replaced the toner."}

    resolved = client.patch(f"{INCIDENTS}/{incident['sys_id']}", json=body).json()["result"]
    clock.advance(60)
    closed = client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"state": "7"}).json()["result"]

    integration = client.get(f"{TABLE}/sys_user", params={"sysparm_query": f"user_name={SN_USERNAME}"})
    me = integration.json()["result"][0]["sys_id"]
    assert (resolved["resolved_at"], resolved["resolved_by"]["value"]) == ("2026-11-20 15:00:00", me)
    assert resolved["active"] == "true" and resolved["incident_state"] == "6"
    assert (closed["closed_at"], closed["active"], closed["resolved_at"]) == (
        "2026-11-20 15:01:00",
        "false",
        "2026-11-20 15:00:00",
    )


def test_a_data_policy_can_require_close_information(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20, close_info_mandatory=True)
    incident = some_incident(client)

    refused = client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"state": "6"})
    accepted = client.patch(
        f"{INCIDENTS}/{incident['sys_id']}", json={"state": "6", "close_code": "User error", "close_notes": "Typo."}
    )

    assert refused.status_code == 403
    valid("Error", refused.json())
    assert refused.json()["error"]["message"] == "Operation Failed"
    assert "Resolution code, Resolution notes" in refused.json()["error"]["detail"]
    assert accepted.status_code == 200


def test_work_notes_and_comments_become_journal_rows_and_read_back_empty(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20)
    incident = some_incident(client)

    updated = client.patch(
        f"{INCIDENTS}/{incident['sys_id']}", json={"work_notes": "Checked the spooler.", "comments": "On it!"}
    ).json()["result"]
    journal = client.get(
        f"{TABLE}/sys_journal_field",
        params={"sysparm_query": f"element_id={incident['sys_id']}^ORDERBYDESCsys_created_on", "sysparm_limit": 2},
    ).json()

    assert updated["work_notes"] == updated["comments"] == ""
    assert int(updated["sys_mod_count"]) == int(incident["sys_mod_count"]) + 1
    valid("JournalList", journal)
    written = {(r["element"], r["value"], r["sys_created_by"]) for r in journal["result"]}
    assert written == {("work_notes", "Checked the spooler.", SN_USERNAME), ("comments", "On it!", SN_USERNAME)}


def test_a_post_creates_an_incident_with_a_number_and_location(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20)
    caller = client.get(f"{TABLE}/sys_user", params={"sysparm_query": "email=ceo@acme.example"}).json()["result"][0]

    response = client.post(
        INCIDENTS,
        json={
            "short_description": "New from the MSP",
            "caller_id": caller["sys_id"],
            "impact": "2",
            "urgency": "1",
            "correlation_id": "[psabridge:abc12345]",
            "comments": "Opened on your behalf.",
            "number": "INC9999999",
        },
    )

    assert response.status_code == 201
    valid("IncidentResult", response.json())
    created = response.json()["result"]
    assert response.headers["Location"] == f"http://sandbox.test/api/now/table/incident/{created['sys_id']}"
    assert created["number"] == "INC9999999"  # the number may be given on insert
    assert (created["priority"], created["state"], created["sys_mod_count"]) == ("2", "1", "0")
    assert created["sys_created_by"] == SN_USERNAME
    found = client.get(INCIDENTS, params={"sysparm_query": "correlation_id=[psabridge:abc12345]"}).json()["result"]
    assert [r["sys_id"] for r in found] == [created["sys_id"]]
    journal = client.get(f"{TABLE}/sys_journal_field", params={"sysparm_query": f"element_id={created['sys_id']}"})
    assert [r["value"] for r in journal.json()["result"]] == ["Opened on your behalf."]


def test_time_worked_is_posted_to_task_time_worked(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=20)
    incident = some_incident(client)

    response = client.post(
        f"{TABLE}/task_time_worked",
        json={"task": incident["sys_id"], "time_worked": "1970-01-01 01:30:00", "comments": "Remote session"},
    )
    listed = client.get(f"{TABLE}/task_time_worked", params={"sysparm_query": f"task={incident['sys_id']}"}).json()

    assert response.status_code == 201
    valid("TimeWorkedResult", response.json())
    created = response.json()["result"]
    assert created["time_worked"] == "1970-01-01 01:30:00"
    me = client.get(f"{TABLE}/sys_user", params={"sysparm_query": f"user_name={SN_USERNAME}"}).json()["result"][0]
    assert created["user"]["value"] == me["sys_id"]  # the user defaults to whoever logs the time
    valid("TimeWorkedList", listed)
    assert created["sys_id"] in {r["sys_id"] for r in listed["result"]}


def test_reference_tables_are_read_only_for_the_integration(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=5)
    user = client.get(f"{TABLE}/sys_user", params={"sysparm_limit": 1}).json()["result"][0]

    update = client.patch(f"{TABLE}/sys_user/{user['sys_id']}", json={"name": "Mallory"})
    insert = client.post(f"{TABLE}/sys_user_group", json={"name": "Shadow IT"})

    assert (update.status_code, insert.status_code) == (403, 403)
    assert update.json()["error"]["detail"] == "ACL Exception Update Failed due to security constraints"
    assert insert.json()["error"]["detail"] == "ACL Exception Insert Failed due to security constraints"


@pytest.mark.parametrize("body", [b"{not json", b'"a string"'])
def test_a_body_that_is_not_a_json_object_is_a_400(world: World, clock: FakeClock, body: bytes) -> None:
    _, client = make(world, clock, tickets=5)
    incident = some_incident(client, "ORDERBYnumber")

    response = client.patch(
        f"{INCIDENTS}/{incident['sys_id']}", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    valid("Error", response.json())


def test_the_rate_limit_rule_answers_429_with_retry_after_and_its_headers(world: World, clock: FakeClock) -> None:
    sn, client = make(world, clock, tickets=5, rate_limit=3)

    answers = [client.get(INCIDENTS, params={"sysparm_limit": 1}) for _ in range(4)]
    clock.advance(3600)
    later = client.get(INCIDENTS, params={"sysparm_limit": 1})

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    valid("Error", refused.json())
    assert refused.json()["error"]["message"] == "Rate limit exceeded"
    assert int(refused.headers["Retry-After"]) == 3600
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Rule"] == sn.rule_id
    assert int(refused.headers["X-RateLimit-Reset"]) == int(ANCHOR.timestamp()) + 3600  # the first request leaves
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert later.status_code == 200


# --- change notifications ---------------------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver behind httpx.MockTransport."""

    def __init__(self) -> None:
        self.received: list[httpx.Request] = []
        self._lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.received.append(request)
        return httpx.Response(200)


def test_a_change_by_someone_else_is_notified_with_the_shared_secret(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    sn, client = make(world, clock, tickets=10, transport=httpx.MockTransport(receiver.handle))
    sn.simulator.webhooks.subscribe("http://psabridge.test/webhooks/acme-snow", secret=SN_WEBHOOK_SECRET)
    incident = some_incident(client, "ORDERBYnumber")

    client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"work_notes": "Called the user."}, auth=AGENT)
    created = client.post(INCIDENTS, json={"short_description": "Walk-in"}, auth=AGENT).json()["result"]
    assert sn.simulator.webhooks.flush(5)

    assert len(receiver.received) == 2
    update, insert = (json.loads(r.content) for r in receiver.received)
    for request, body in zip(receiver.received, (update, insert), strict=True):
        assert request.headers["X-Webhook-Secret"] == SN_WEBHOOK_SECRET
        assert request.headers["Content-Type"] == "application/json"
        valid("ChangeNotification", body)
    assert (update["sys_id"], update["operation"], update["sys_updated_by"]) == (
        incident["sys_id"],
        "update",
        AGENT[0],
    )
    assert update["sys_mod_count"] == str(int(incident["sys_mod_count"]) + 1)
    assert (insert["sys_id"], insert["operation"], insert["number"]) == (created["sys_id"], "insert", created["number"])


def test_changes_by_the_integration_user_are_not_notified(world: World, clock: FakeClock) -> None:
    # the business rule's loop guard: gs.getUserName() != 'psabridge.integration' (VENDOR-APIS 3.7)
    receiver = Receiver()
    sn, client = make(world, clock, tickets=10, transport=httpx.MockTransport(receiver.handle))
    sn.simulator.webhooks.subscribe("http://psabridge.test/webhooks/acme-snow", secret=SN_WEBHOOK_SECRET)
    incident = some_incident(client, "ORDERBYnumber")

    client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"comments": "Mirrored from the MSP."})
    client.post(INCIDENTS, json={"short_description": "Mirror"})
    assert sn.simulator.webhooks.flush(5)

    assert receiver.received == []
    assert sn.simulator.webhooks.deliveries() == []


def test_records_changed_while_paging_are_notified_as_the_engineers_changes(world: World, clock: FakeClock) -> None:
    receiver = Receiver()
    sn, client = make(world, clock, tickets=50, faults="churn", transport=httpx.MockTransport(receiver.handle))
    sn.simulator.webhooks.subscribe("http://psabridge.test/hook", secret="s3cret")

    client.get(INCIDENTS, params={"sysparm_limit": 10})
    assert sn.simulator.webhooks.flush(5)

    bodies = [json.loads(r.content) for r in receiver.received]
    assert {b["operation"] for b in bodies} == {"update", "insert"}
    assert all(b["sys_updated_by"] != SN_USERNAME for b in bodies)
    assert all(r.headers["X-Webhook-Secret"] == "s3cret" for r in receiver.received)


def test_the_control_plane_shows_what_was_written(world: World, clock: FakeClock) -> None:
    _, client = make(world, clock, tickets=10)
    incident = some_incident(client, "ORDERBYnumber")
    client.patch(f"{INCIDENTS}/{incident['sys_id']}", json={"work_notes": "note [psabridge:k1k2k3k4]"})
    client.post(f"{TABLE}/task_time_worked", json={"task": incident["sys_id"], "time_worked": "1970-01-01 00:15:00"})

    state = client.get("/_sandbox/state").json()

    assert [i["sys_id"] for i in state["incidents"]] == [incident["sys_id"]]
    assert [j["value"] for j in state["journal"]] == ["note [psabridge:k1k2k3k4]"]
    assert [t["task"] for t in state["time_worked"]] == [incident["sys_id"]]
