from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from psabridge_sandbox.scenarios import EVENT_ID, HEX_CODE, Scenario
from psabridge_sandbox.tickets import SHOWCASE, WINDOW, SeedTicket, generate_tickets, patch_tuesdays
from psabridge_sandbox.vocabulary import NoteKind, Priority, Source, Status
from psabridge_sandbox.world import World, build_world

from .conftest import ANCHOR

ROOT = Path(__file__).resolve().parents[2]


def _with(tickets: list[SeedTicket], scenario: Scenario) -> list[SeedTicket]:
    return [t for t in tickets if scenario in t.scenarios]


# --- the world ------------------------------------------------------------------------------------------------------


def test_world_is_deterministic_per_seed() -> None:
    assert build_world(3) == build_world(3)
    assert build_world(3).contacts != build_world(4).contacts


def test_world_tenants_match_the_demo_configuration(world: World) -> None:
    config = yaml.safe_load((ROOT / "config" / "psabridge.yaml").read_text())
    for key, settings in config["tenants"].items():
        tenant = world.tenant(key)
        assert tenant.name == settings["name"]
        assert tenant.contract_tier == settings["contract_tier"]
        assert tenant.calendar == settings["calendar"]
        assert tenant.timezone == settings["timezone"]
        assert list(tenant.vip) == settings.get("vip", [])
    # ConnectWise company identifiers are how the demo maps companies to tenants.
    cw = next(c for c in config["connections"] if c["system"] == "connectwise")
    assert {world.tenant(key).identifier: key for key in cw["tenants"].values()} == cw["tenants"]


def test_world_has_vip_contacts_queues_assets_and_technicians(world: World) -> None:
    vips = [c for c in world.contacts if c.vip]
    assert {c.email for c in vips} == {"ceo@acme.example", "cfo@globex.example", "cmo@umbrella.example"}
    assert all(c.phone and "@" in c.email for c in world.contacts)
    assert len({c.email for c in world.contacts}) == len(world.contacts)
    names = {q.name for q in world.queues}
    assert {"MSP Support", "MSP Escalations", "Acme Service", "Globex Service"} <= names
    assert {"Networking", "Messaging/M365", "Security"} <= names
    assert {q.tier for q in world.queues} == {1, 2, 3}
    assert {t.tier for t in world.technicians} == {1, 2, 3}
    for tenant in world.tenants:
        kinds = {a.kind for a in world.assets_of(tenant.key)}
        assert {"server", "printer", "firewall", "vpn_gateway", "laptop"} <= kinds
        owned = {a.owner for a in world.assets_of(tenant.key) if a.owner is not None}
        assert owned == {c.id for c in world.contacts_of(tenant.key)}


# --- tickets --------------------------------------------------------------------------------------------------------


def test_patch_tuesdays_are_second_tuesdays() -> None:
    days = patch_tuesdays(date(2026, 1, 1), date(2026, 12, 31))
    assert len(days) == 12
    assert date(2026, 11, 10) in days and date(2026, 1, 13) in days
    assert all(d.weekday() == 1 and 8 <= d.day <= 14 for d in days)


def test_tickets_are_deterministic_for_seed_count_and_salt(world: World) -> None:
    first = generate_tickets(world, 300, anchor=ANCHOR)
    again = generate_tickets(build_world(0), 300, anchor=ANCHOR)
    assert first == again
    assert first != generate_tickets(world, 300, anchor=ANCHOR, salt="servicenow")
    assert first != generate_tickets(build_world(1), 300, anchor=ANCHOR)


def test_even_a_handful_covers_every_checklist_scenario(world: World) -> None:
    tickets = generate_tickets(world, len(SHOWCASE), anchor=ANCHOR)
    seen = Counter(s for t in tickets for s in t.scenarios)
    assert set(Scenario) - set(seen) == set()


def test_random_tickets_cover_every_scenario_too(world: World) -> None:
    tickets = generate_tickets(world, 3000, anchor=ANCHOR)[len(SHOWCASE) :]
    seen = Counter(s for t in tickets for s in t.scenarios)
    assert set(Scenario) - set(seen) == set()
    assert Counter(t.priority for t in tickets)[Priority.P1] > 50


@pytest.fixture(scope="module")
def tickets() -> list[SeedTicket]:
    return generate_tickets(build_world(0), 2000, anchor=ANCHOR)


def test_tickets_are_numbered_in_creation_order_and_times_are_consistent(tickets: list[SeedTicket]) -> None:
    assert [t.number for t in tickets] == list(range(1, len(tickets) + 1))
    assert all(a.created_at <= b.created_at for a, b in pairwise(tickets))
    for t in tickets:
        assert t.created_at.tzinfo is not None and t.created_at.utcoffset() == timedelta(0)
        assert ANCHOR - WINDOW <= t.created_at <= t.updated_at <= ANCHOR
        assert all(t.created_at <= n.created_at <= ANCHOR for n in t.notes)
        assert all(t.created_at <= e.started_at <= ANCHOR for e in t.time_entries)
        assert [n.created_at for n in t.notes] == sorted(n.created_at for n in t.notes)
        if t.status in (Status.CLOSED, Status.CANCELLED):
            assert t.closed_at is not None and t.created_at <= t.closed_at <= ANCHOR
        if t.status in (Status.RESOLVED, Status.CLOSED):
            assert t.resolved_at is not None
            assert [n.kind for n in t.notes].count(NoteKind.RESOLUTION) == 1
        if t.status not in (Status.RESOLVED, Status.CLOSED, Status.CANCELLED):
            assert t.closed_at is None and t.resolved_at is None
        if t.status is Status.NEW:
            assert t.assignee is None
        assert len(t.summary) <= 100 and "{" not in t.summary + t.description


def test_priorities_follow_the_sla_matrix(tickets: list[SeedTicket]) -> None:
    for t in _with(tickets, Scenario.P1_OUTAGE):
        assert t.priority is Priority.P1 and t.impact.value == "high" and t.urgency.value == "high"
        triage = [n.text for n in t.notes if n.text.startswith("Triage")]
        for text in triage:
            affected = re.search(r"(\d+) user\(s\) affected", text)
            assert affected and int(affected.group(1)) > 1  # multi-user
    assert {t.kind.value for t in _with(tickets, Scenario.P4_REQUEST)} == {"service_request"}
    assert all(t.source is Source.MONITORING for t in _with(tickets, Scenario.MONITORING_ALERT))


def test_password_resets_with_and_without_identity_verification(tickets: list[SeedTicket]) -> None:
    verified = _with(tickets, Scenario.PASSWORD_RESET_VERIFIED)
    unverified = _with(tickets, Scenario.PASSWORD_RESET_UNVERIFIED)
    assert verified and unverified
    for t in verified:
        assert t.identity_verified is True and t.verified_by
        if t.status is not Status.NEW:
            assert any(n.text.startswith("Identity verified by") for n in t.notes)
    for t in unverified:
        assert t.identity_verified is None and t.verified_by is None
        assert not any("verified" in n.text.lower() for n in t.notes)


def test_error_texts_carry_event_ids_and_hex_codes(tickets: list[SeedTicket]) -> None:
    for scenario, pattern in ((Scenario.EVENT_ID_ERROR, EVENT_ID), (Scenario.HEX_ERROR, HEX_CODE)):
        found = _with(tickets, scenario)
        assert found
        for t in found:
            assert any(pattern.search(e) for e in t.error_texts)
            # The user quotes the exact text in the description; the technician captures it in triage.
            assert any(e in t.description for e in t.error_texts)
    codes = {c for t in tickets for c in t.error_codes}
    assert {"Event ID 4625", "0x80070005", "0x800CCC0E"} <= codes


def _day_after_patch_tuesday(day: date) -> bool:
    tuesday = day - timedelta(days=1)
    return tuesday.weekday() == 1 and 8 <= tuesday.day <= 14


def test_day_after_patch_tuesday(tickets: list[SeedTicket]) -> None:
    found = _with(tickets, Scenario.PATCH_TUESDAY)
    assert len(found) > 20
    assert all(_day_after_patch_tuesday(t.created_at.date()) for t in found)
    others = [t for t in tickets if Scenario.PATCH_TUESDAY not in t.scenarios]
    assert not any(_day_after_patch_tuesday(t.created_at.date()) for t in others)
    # Patch-sensitive problems cluster there: printers (0x0000011b), slow updates, VPN, app crashes.
    assert Counter(t.template for t in found).most_common(1)[0][0] in {
        "printer_mapping",
        "slow_after_update",
        "vpn",
        "app_crash",
    }


def test_escalations_complete_and_bare(tickets: list[SeedTicket]) -> None:
    complete = _with(tickets, Scenario.ESCALATION_COMPLETE)
    bare = _with(tickets, Scenario.ESCALATION_BARE)
    assert complete and bare
    for t in complete:
        handoff = next(n.text for n in t.notes if n.text.startswith("Escalating to"))
        for part in ("User impact:", "Repro steps:", "Error text:", "Already tried:", "Asset:"):
            assert part in handoff
        assert t.tier >= 2
    for t in bare:
        assert any("assist" in n.text.lower() and len(n.text) < 30 for n in t.notes if n.kind is NoteKind.INTERNAL)
        assert not any(n.text.startswith("Escalating to") for n in t.notes)


def test_resolutions_good_and_poor_and_closure_hygiene(tickets: list[SeedTicket]) -> None:
    good = _with(tickets, Scenario.RESOLUTION_GOOD)
    poor = _with(tickets, Scenario.RESOLUTION_POOR)
    assert good and poor
    for t in good:
        note = next(n.text for n in t.notes if n.kind is NoteKind.RESOLUTION)
        assert re.search(r"KB \d{4}", note)
    for t in poor:
        note = next(n.text for n in t.notes if n.kind is NoteKind.RESOLUTION)
        assert len(note) < 30 and "KB" not in note
    with_time = _with(tickets, Scenario.CLOSED_WITH_TIME)
    without = _with(tickets, Scenario.CLOSED_WITHOUT_TIME)
    assert with_time and without
    assert all(t.status is Status.CLOSED and t.time_entries for t in with_time)
    assert all(t.status is Status.CLOSED and not t.time_entries for t in without)
    assert any(Scenario.RESOLUTION_POOR in t.scenarios for t in without)


def test_vip_requesters(tickets: list[SeedTicket]) -> None:
    vips = _with(tickets, Scenario.VIP_REQUESTER)
    assert vips
    assert all(t.requester.vip and t.requester.email in t.tenant.vip for t in vips)
    assert not any(t.requester.vip for t in tickets if t not in vips)


def test_topic_scenarios_name_their_problem(tickets: list[SeedTicket]) -> None:
    words = {Scenario.PRINTER_MAPPING: "print", Scenario.OUTLOOK_PROFILE: "outlook", Scenario.VPN: "vpn"}
    for scenario, word in words.items():
        found = _with(tickets, scenario)
        assert found
        assert all(word in (t.summary + t.description).lower() for t in found)
    security = _with(tickets, Scenario.SECURITY_INCIDENT)
    assert security and all(t.category == "Security" for t in security)
    assert all(t.queue.name in ("Security", "Service Desk") for t in security)
    assert {t.queue.name for t in _with(tickets, Scenario.ESCALATION_COMPLETE) if Scenario.NETWORK in t.scenarios} == {
        "Networking"
    }


def test_vendor_scoped_generation_uses_the_handoff_queue(world: World) -> None:
    tickets = generate_tickets(world, 400, anchor=ANCHOR, tenants=("acme",), handoff_queue="MSP Support", salt="sn")
    assert {t.tenant.key for t in tickets} == {"acme"}
    handed = [t for t in tickets if t.queue.name == "MSP Support"]
    assert 60 < len(handed) < 220
    assert not any(t.queue.role == "client_board" for t in tickets)
    assert set(Scenario) - {s for t in tickets for s in t.scenarios} == set()


def test_generation_refuses_naive_anchor(world: World) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_tickets(world, 1, anchor=ANCHOR.replace(tzinfo=None))
