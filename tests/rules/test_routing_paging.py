"""The routing rule (the escalation matrix, hand-off gaps, breach escalation, located config problems) and the paging
rule (one page per incident and life, corrections, resolution, no silent skip), through the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from psabridge.model import PageOnCall, PostToChannel, Priority, RouteToQueue, Status, System
from psabridge.rules import LedgerEntry, LinkView, StoredFinding, Transition, build_rules
from psabridge.rules.base import ConnectionView
from psabridge.rules.engine import Evaluation

from .sla_helpers import NY, at, codes, make, result_of, rules_for, run, tenant

CREATED = at(NY, 2026, 5, 18, 9, 0)
NOW = at(NY, 2026, 5, 18, 9, 20)
VPN = "The VPN keeps dropping for me since this morning; the firewall shows the tunnel flapping."
ROUTING = ("tier_scope", "handoff", "routing")
PAGING_ON = {
    "pager": "pagerduty",
    "channel": "incident",
    "ticket_links": {"connectwise": "https://cw.example/{external_id}"},
}


def actions(evaluation: Evaluation, kind: type[Any]) -> list[Any]:
    return [a for a in evaluation.actions if isinstance(a, kind)]


# --- routing ---------------------------------------------------------------------------------------------------------


def test_an_out_of_scope_tier1_ticket_is_routed_by_the_matrix_and_the_note_names_the_hand_off_gaps() -> None:
    ticket = make(CREATED, Priority.P3, description=VPN, summary="VPN drops")
    evaluation = run(ticket, NOW, rules_for(only=ROUTING))
    [move] = actions(evaluation, RouteToQueue)
    assert (move.queue, move.target, move.tier) == ("Networking", "msp-cw", None)
    assert move.occurrence_key == "routing:queue=Networking:1"
    [finding] = [r.finding for r in evaluation.findings if r.finding.rule == "routing"]
    assert finding.message.startswith("Escalate to Networking (network): the ticket is in Service Desk.")
    assert "The hand-off still lacks reproduction steps; the error text; what was already tried" in finding.message
    assert evaluation.note is not None and "Escalate to Networking" in evaluation.note.text


def test_the_first_matching_route_wins_and_security_goes_first() -> None:
    ticket = make(CREATED, Priority.P2, summary="Clicked a link", description="I clicked a link in a phishing email "
                  "and now the network drive shows ransomware notes.")  # fmt: skip
    [move] = actions(run(ticket, NOW, rules_for(only=ROUTING)), RouteToQueue)
    assert move.queue == "Security"


def test_queue_names_per_vendor_and_connection_and_the_default() -> None:
    queues = {
        "networking": {"connectwise": "NOC", "acme-snow": "ACME Network", "default": "Networking"},
        **{name: name.title() for name in ("security", "messaging", "infrastructure")},
    }
    rules = rules_for({"routing": {"queues": queues}}, only=ROUTING)
    base: dict[str, Any] = {"description": VPN, "summary": "VPN drops"}
    cw = actions(run(make(CREATED, Priority.P3, **base), NOW, rules), RouteToQueue)
    snow = make(CREATED, Priority.P3, connection="acme-snow", system=System.SERVICENOW, external_id="x", **base)
    owned = ConnectionView("acme-snow", System.SERVICENOW, client_owned=True)
    sn = actions(run(snow, NOW, rules, connection=owned), RouteToQueue)
    at_ = make(CREATED, Priority.P3, connection="partner-at", system=System.AUTOTASK, external_id="7", **base)
    autotask = actions(run(at_, NOW, rules), RouteToQueue)
    assert [a[0].queue for a in (cw, sn, autotask)] == ["NOC", "ACME Network", "Networking"]


def test_a_clients_own_system_is_not_routed_unless_the_matrix_names_it() -> None:
    snow = make(CREATED, Priority.P3, connection="acme-snow", system=System.SERVICENOW, external_id="x",
                description=VPN)  # fmt: skip
    owned = ConnectionView("acme-snow", System.SERVICENOW, client_owned=True)
    evaluation = run(snow, NOW, rules_for(only=ROUTING), connection=owned)
    assert actions(evaluation, RouteToQueue) == []
    assert "acme-snow is the client's own" in " ".join(result_of(evaluation, "routing").outcome.trace)


def test_a_ticket_already_in_the_queue_or_one_a_person_moved_back_is_left_alone() -> None:
    there = make(CREATED, Priority.P3, description=VPN, queue="Networking", tier=1)
    assert actions(run(there, NOW, rules_for(only=ROUTING)), RouteToQueue) == []
    moved_back = make(CREATED, Priority.P3, description=VPN)
    ledger = (LedgerEntry("queue", "Networking", at(NY, 2026, 5, 18, 9, 5), "rules.routing"),)
    history = (Transition("queue", "Networking", "Service Desk", at(NY, 2026, 5, 18, 9, 10), "human"),)
    evaluation = run(moved_back, NOW, rules_for(only=ROUTING), ledger=ledger, transitions=history)
    assert actions(evaluation, RouteToQueue) == []
    [finding] = [r.finding for r in evaluation.findings if r.finding.rule == "routing"]
    assert "psabridge leaves the queue as it is: a person changed it after psabridge set it" in finding.message


def test_a_matrix_row_naming_no_queue_is_a_config_error_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  routing:\n"
        "    routes:\n"
        "      - name: network\n"
        "        when: {keywords: [vpn]}\n"
        "        queue: netwrking\n"
        "    breach: {tier_queues: {2: tier2}}\n"
        "tenants:\n"
        "  acme:\n"
        "    rules:\n"
        "      routing:\n"
        "        routes: [{name: x, when: {tiers: [1]}, queue: nowhere}]\n"
    )
    rules, problems = build_rules(path, tenants=["acme"])
    assert rules is None
    known = "infrastructure, messaging, networking, security"
    assert [str(p) for p in problems] == [
        f"{path}:7 rules.routing.breach.tier_queues[2]: unknown queue 'tier2'; queues: {known}",
        f"{path}:6 rules.routing.routes[0].queue: unknown queue 'netwrking'; queues: {known}",
        f"{path}:12 tenants.acme.rules.routing.routes[0].queue: unknown queue 'nowhere'; queues: {known}",
    ]


def test_a_route_needs_a_condition(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  routing:\n    routes:\n      - {name: all, when: {}, queue: networking}\n")
    _, problems = build_rules(path)
    assert [p.line for p in problems] == [4]
    assert "a route needs at least one condition" in str(problems[0])


def test_an_sla_breach_routes_to_the_next_tiers_queue_posts_and_pages_once() -> None:
    rules = rules_for(
        {"routing": {"breach": {"tier_queues": {2: "networking"}}}, "paging": PAGING_ON},
        only=("sla", "routing"),
    )
    # P2 response 2h business from Mon 09:00: breached at 11:00; read at 11:30.
    evaluation = run(make(CREATED, Priority.P2), at(NY, 2026, 5, 18, 11, 30), rules)
    assert "breach_escalation" in codes(evaluation, "routing")
    [move] = actions(evaluation, RouteToQueue)
    [posted] = actions(evaluation, PostToChannel)
    [paged] = actions(evaluation, PageOnCall)
    assert move.queue == "Networking" and posted.target == "incident" and paged.target == "pagerduty"
    assert paged.dedup_key == "psabridge:msp-cw:493#1:response_breached" and paged.severity == "error"
    assert "SLA breach (response) #493" in posted.text and "First response SLA breached" in posted.text
    again = run(make(CREATED, Priority.P2), at(NY, 2026, 5, 18, 11, 45), rules, findings=_stored(evaluation))
    assert [a.occurrence_key for a in again.actions if a.type != "add_note"] == [
        a.occurrence_key for a in evaluation.actions if a.type != "add_note"
    ]  # the same breach: the same occurrences, so the outbox writes nothing twice
    assert again.note is None


def _stored(evaluation: Evaluation) -> tuple[StoredFinding, ...]:
    return tuple(
        StoredFinding(r.finding.rule, r.finding.code, r.occurrence, r.finding.instance, r.noted)
        for r in evaluation.findings
    )


# --- paging ----------------------------------------------------------------------------------------------------------


def paging_rules(**settings: Any) -> Any:
    return rules_for({"paging": {**PAGING_ON, **settings}}, only=("paging",))


def test_a_p1_pages_once_and_posts_number_summary_client_and_link() -> None:
    evaluation = run(make(CREATED, Priority.P1), NOW, paging_rules())
    [paged] = actions(evaluation, PageOnCall)
    [posted] = actions(evaluation, PostToChannel)
    assert (paged.event, paged.dedup_key, paged.severity) == ("trigger", "psabridge:msp-cw:493#1", "critical")
    assert paged.summary == "P1 #493: Email down for the whole Boston office"
    assert posted.text.splitlines() == [
        "P1 incident #493: Email down for the whole Boston office",
        "Client: Acme Dental",
        "Ticket: https://cw.example/493",
    ]
    assert result_of(evaluation, "paging").outcome.state == {"paged": [1]}
    second = run(make(CREATED, Priority.P1), NOW, paging_rules(), findings=_stored(evaluation),
                 states={"paging": {"paged": [1]}})  # fmt: skip
    assert [a.idempotency_key() for a in second.actions] == [
        a.idempotency_key() for a in evaluation.actions if a.type != "add_note"
    ]  # a re-evaluation sends the same occurrences: the outbox writes them once
    assert codes(run(make(CREATED, Priority.P2), NOW, paging_rules())) == []


def test_a_mirror_pair_pages_under_its_source_ticket() -> None:
    mirror = make(CREATED, Priority.P1)
    rules = rules_for({"paging": PAGING_ON}, only=("paging",), guardrails={"evaluate_mirrors_on": "target"})
    link = LinkView("target", "acme-snow:9f1c", "acme-snow-to-cw")
    [paged] = actions(run(mirror, NOW, rules, link=link), PageOnCall)
    assert paged.dedup_key == "psabridge:acme-snow:9f1c#1"
    assert run(mirror, NOW, paging_rules(), link=link).evaluated is False  # default: the source side only


def test_resolving_resolves_the_page_and_a_reopen_as_p1_pages_again_with_a_new_key() -> None:
    closed = (Transition("status", "in_progress", "resolved", at(NY, 2026, 5, 18, 10, 0)),)
    resolved = run(make(CREATED, Priority.P1, status=Status.RESOLVED), NOW, paging_rules(), transitions=closed,
                   states={"paging": {"paged": [1]}})  # fmt: skip
    [resolve] = actions(resolved, PageOnCall)
    assert (resolve.event, resolve.dedup_key) == ("resolve", "psabridge:msp-cw:493#1")
    assert actions(resolved, PostToChannel) == []
    reopened = (*closed, Transition("status", "resolved", "in_progress", at(NY, 2026, 5, 18, 11, 0)))
    again = run(make(CREATED, Priority.P1), NOW, paging_rules(), transitions=reopened,
                states={"paging": {"paged": [1]}})  # fmt: skip
    [paged] = actions(again, PageOnCall)
    assert paged.dedup_key == "psabridge:msp-cw:493#2" and paged.event == "trigger"
    assert result_of(again, "paging").outcome.state == {"paged": [1, 2]}
    never_paged = run(make(CREATED, Priority.P1, status=Status.CLOSED), NOW, paging_rules(), transitions=closed)
    assert actions(never_paged, PageOnCall) == []  # nothing to resolve


def test_a_paged_incident_stays_paged_when_its_priority_is_lowered() -> None:
    evaluation = run(make(CREATED, Priority.P2), NOW, paging_rules(), states={"paging": {"paged": [1]}})
    assert codes(evaluation, "paging") == ["p1"]
    assert [a.dedup_key for a in actions(evaluation, PageOnCall)] == ["psabridge:msp-cw:493#1"]


def test_the_priority_rules_correction_pages_when_it_goes_out() -> None:
    outage = make(CREATED, Priority.P3)  # "None of us can send email": the priority rule says P1
    noted = run(outage, NOW, rules_for({"paging": PAGING_ON}, only=("priority", "paging")))
    assert actions(noted, PageOnCall) == []  # the correction is only noted (effect note): no page
    corrected = rules_for(
        {"priority": {"effects": {"understated": "set"}}, "paging": PAGING_ON}, only=("priority", "paging")
    )
    evaluation = run(outage, NOW, corrected)
    [paged] = actions(evaluation, PageOnCall)
    assert paged.summary.startswith("P1 #493")
    [finding] = [r.finding for r in evaluation.findings if r.finding.rule == "paging"]
    assert "priority corrected to P1 by the priority rule" in finding.message
    ledger = (LedgerEntry("priority", "P1", at(NY, 2026, 5, 18, 9, 1), "rules.priority"),)
    people = (Transition("priority", "P1", "P3", at(NY, 2026, 5, 18, 9, 2), "human"),)
    fought = run(outage, NOW, corrected, ledger=ledger, transitions=people)
    assert actions(fought, PageOnCall) == []  # a person set it back: the correction does not go out, nor the page


def test_a_p1_without_a_pager_is_a_finding_never_a_silent_skip() -> None:
    evaluation = run(make(CREATED, Priority.P1), NOW, rules_for(only=("paging",)))
    assert codes(evaluation, "paging") == ["no_pager"] and evaluation.actions[0].type == "add_note"
    assert "nobody was paged" in evaluation.findings[0].finding.message


@pytest.mark.parametrize(
    ("link", "expected"),
    [({}, "Ticket: msp-cw:493 (connectwise)"), ({"msp-cw": "https://x/{number}"}, "Ticket: https://x/#493")],
)
def test_the_ticket_link_comes_from_the_connection_or_vendor_template(link: dict[str, str], expected: str) -> None:
    rules = rules_for({"paging": {**PAGING_ON, "ticket_links": link}}, only=("paging",))
    [posted] = actions(run(make(CREATED, Priority.P1), NOW, rules, tenant=tenant()), PostToChannel)
    assert expected in posted.text.splitlines()
