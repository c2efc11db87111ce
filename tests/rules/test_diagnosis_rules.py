"""Steps 6-9 of the checklist: recent changes, knowledge base, tier scope, escalation hand-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psabridge.model import Kind, Status
from psabridge.rules import Knowledge, PriorFix, TenantView, Transition
from psabridge.rules.base import ConnectionView
from psabridge.rules.recent_changes import patch_tuesday

from .helpers import NOW, codes, note, run_rule, ticket

# --- recent changes ----------------------------------------------------------------------------------------------


def test_patch_tuesday_is_the_second_tuesday() -> None:
    assert patch_tuesday(2026, 5).isoformat() == "2026-05-12"
    assert patch_tuesday(2026, 9).isoformat() == "2026-09-08"  # the 1st is a Tuesday: the 8th is the second
    assert patch_tuesday(2026, 3).isoformat() == "2026-03-10"


def test_a_ticket_opened_after_patch_tuesday_is_flagged_in_the_tenants_timezone() -> None:
    after = ticket(created_at=datetime(2026, 5, 13, 14, 0, tzinfo=UTC))  # 10:00 in New York, the day after
    outcome = run_rule("recent_changes", after)
    assert codes(outcome) == ["after_patch_tuesday"]
    finding = outcome.findings[0]
    assert finding.severity == "info"
    assert finding.evidence == {
        "patch_tuesday": "2026-05-12",
        "opened_local": "2026-05-13",
        "days_after": 1,
        "timezone": "America/New_York",
    }
    assert finding.message == "Opened on 2026-05-13, 1 day after Patch Tuesday (2026-05-12)."
    assert "ACME-LT-0042" in finding.advice


def test_timezone_decides_the_day_and_the_window_has_an_end() -> None:
    # 02:00 UTC on the 13th is still Patch Tuesday evening in New York (day 0: not flagged) ...
    evening = ticket(created_at=datetime(2026, 5, 13, 2, 0, tzinfo=UTC))
    assert run_rule("recent_changes", evening).findings == ()
    # ... but already the day after in Berlin.
    berlin = TenantView.of("globex", name="Globex", timezone="Europe/Berlin")
    assert codes(run_rule("recent_changes", evening, tenant=berlin)) == ["after_patch_tuesday"]
    late = ticket(created_at=datetime(2026, 5, 16, 14, 0, tzinfo=UTC))  # 4 days after
    assert run_rule("recent_changes", late).findings == ()
    assert codes(run_rule("recent_changes", late, settings={"patch_tuesday": {"days_after": 4}})) == [
        "after_patch_tuesday"
    ]
    assert run_rule("recent_changes", ticket(kind=Kind.SERVICE_REQUEST, created_at=evening.created_at)).findings == ()


def test_a_configured_change_window_is_named() -> None:
    window = {
        "name": "Conditional Access: block legacy auth",
        "reference": "CHG0030012",
        "start": "2026-05-09T02:00:00Z",
        "end": "2026-05-09T04:00:00Z",
        "tenants": ["acme"],
    }
    opened = ticket(created_at=datetime(2026, 5, 10, 12, 0, tzinfo=UTC))
    outcome = run_rule("recent_changes", opened, settings={"change_windows": [window]})
    assert codes(outcome) == ["after_change"]
    finding = outcome.findings[0]
    assert finding.message == (
        "Opened 32 hours after the change 'Conditional Access: block legacy auth' (CHG0030012) "
        "(2026-05-09T02:00+00:00 to 2026-05-09T04:00+00:00)."
    )
    assert finding.instance == "Conditional Access: block legacy auth"
    other = TenantView.of("globex", timezone="Europe/Berlin")
    assert run_rule("recent_changes", opened, settings={"change_windows": [window]}, tenant=other).findings == ()
    too_late = ticket(created_at=datetime(2026, 5, 12, 5, 0, tzinfo=UTC))
    assert run_rule("recent_changes", too_late, settings={"change_windows": [window]}).findings == ()


# --- knowledge ---------------------------------------------------------------------------------------------------

FIX_OWN = PriorFix(
    "msp-cw:900",
    "#900",
    "acme",
    "Outlook stuck",
    "Rebuilt the profile; KB 1077",
    ("KB 1077",),
    datetime(2026, 4, 2, tzinfo=UTC),
)
FIX_OTHER = PriorFix(
    "msp-cw:901",
    "#901",
    "globex",
    "Outlook profile",
    "Cleared the autodiscover cache on GLBX-LT-9",
    ("KB 4567",),
    datetime(2026, 4, 20, tzinfo=UTC),
)


def test_prior_fixes_are_suggested_with_the_other_clients_warning() -> None:
    known = Knowledge('text:"loading profile"', (FIX_OTHER, FIX_OWN), repeats=2)
    outcome = run_rule("knowledge", ticket(), knowledge=known)
    assert codes(outcome) == ["prior_fixes"]
    finding = outcome.findings[0]
    assert finding.message.splitlines() == [
        '2 earlier ticket(s) with the same error (text:"loading profile") were resolved:',
        "- #901 (other client globex), 2026-04-20: 'Outlook profile': Cleared the autodiscover cache on GLBX-LT-9 "
        "[KB 4567]",
        "- #900, 2026-04-02: 'Outlook stuck': Rebuilt the profile; KB 1077 [KB 1077]",
        "Tickets of other clients are shown in this internal note only: never pass them to the requester.",
    ]
    assert finding.evidence == {
        "signature": 'text:"loading profile"',
        "tickets": ["msp-cw:901", "msp-cw:900"],
        "other_clients": 1,
    }


def test_a_clients_own_system_sees_only_kb_ids_of_other_clients_or_nothing() -> None:
    known = Knowledge('text:"loading profile"', (FIX_OTHER,), repeats=2)
    client = ConnectionView("acme-snow", None, client_owned=True)
    finding = run_rule("knowledge", ticket(), knowledge=known, connection=client).findings[0]
    assert "GLBX" not in finding.message and "globex" not in finding.message
    assert "- another client's ticket (2026-04-20) was fixed with KB 4567" in finding.message
    hidden = run_rule(
        "knowledge", ticket(), knowledge=known, connection=client, settings={"other_clients_in_client_systems": "hide"}
    )
    assert hidden.findings == ()


def test_configured_articles_match_codes_or_words() -> None:
    settings = {"articles": [{"id": "KB 1077", "title": "Outlook profile rebuild", "codes": ["0x8004010f"]}]}
    outcome = run_rule("knowledge", ticket(error_codes=("0x8004010F",)), settings=settings)
    assert codes(outcome) == ["article_match"]
    assert outcome.findings[0].message == "Configured KB article(s) cover this: KB 1077 'Outlook profile rebuild'."
    by_words = {"articles": [{"id": "KB 2", "title": "Profiles", "words": ["loading profile"]}]}
    assert codes(run_rule("knowledge", ticket(), settings=by_words)) == ["article_match"]
    assert run_rule("knowledge", ticket(status=Status.CLOSED), settings=by_words).findings == ()


def test_the_third_repeat_without_an_article_asks_for_one() -> None:
    third = Knowledge("0x8004010F", (), repeats=3)
    outcome = run_rule("knowledge", ticket(error_codes=("0x8004010F",)), knowledge=third)
    assert codes(outcome) == ["write_article"]
    finding = outcome.findings[0]
    assert finding.step == "Update the knowledge base article"
    assert finding.severity == "warning"
    assert finding.message == "This is repeat 3 of the error 0x8004010F within 90 days, and no KB article covers it."
    assert run_rule("knowledge", ticket(), knowledge=Knowledge("0x8004010F", (), repeats=2)).findings == ()
    cited = Knowledge("0x8004010F", (FIX_OWN,), repeats=5)  # a prior fix cites KB 1077: an article exists
    assert codes(run_rule("knowledge", ticket(), knowledge=cited)) == ["prior_fixes"]


# --- tier scope --------------------------------------------------------------------------------------------------


def test_network_work_at_tier_1_is_flagged_and_security_is_an_error() -> None:
    network = ticket(summary="VPN won't connect", description="The VPN spins and fails from home.", tier=1)
    finding = run_rule("tier_scope", network).findings[0]
    assert finding.code == "out_of_scope"
    assert finding.severity == "warning"
    assert finding.evidence == {"tier": 1, "queue": "Service Desk", "matched": ["vpn"], "security": False}
    phishing = ticket(summary="I clicked a link in a DocuSign email", description="Then typed my password in Outlook.")
    finding = run_rule("tier_scope", phishing).findings[0]
    assert finding.severity == "error"
    assert finding.evidence["matched"] == ["clicked a link"]
    assert "security queue" in finding.advice


def test_tier_1_work_and_escalated_tickets_are_not_flagged() -> None:
    outlook = ticket(description="Outlook cannot connect to the server, stuck on loading profile.")
    assert run_rule("tier_scope", outlook).findings == ()
    escalated = ticket(summary="VPN down", description="VPN fails", tier=2, queue="Networking")
    assert run_rule("tier_scope", escalated).findings == ()
    by_queue = ticket(summary="VPN down", description="VPN fails", tier=None, queue="Help Desk")
    assert codes(run_rule("tier_scope", by_queue)) == ["out_of_scope"]
    by_category = ticket(summary="Slow", description="It is slow", category="Network", queue="Service Desk")
    assert run_rule("tier_scope", by_category).findings[0].evidence["matched"] == ["category network"]


# --- hand-off ----------------------------------------------------------------------------------------------------

RAISED = (Transition("tier", "1", "2", NOW - timedelta(hours=1), "human"),)
COMPLETE = (
    "Escalating to Networking (Tier 2).\nUser impact: 1 remote user cannot reach Dentrix\n"
    "Repro steps: connect FortiClient on home Wi-Fi\nError text: Error 809\nAlready tried: reinstalled FortiClient\n"
    "Asset: ACME-LT-0042 https://rmm.example/42"
)


def test_a_bare_please_assist_lists_exactly_what_is_missing() -> None:
    bare = ticket(tier=2, queue="Networking", error_codes=(), asset=None, notes=(note("please assist", minutes=20),))
    outcome = run_rule("handoff", bare, transitions=RAISED)
    assert codes(outcome) == ["bare"]
    finding = outcome.findings[0]
    assert finding.severity == "error"
    assert finding.message == (
        "The hand-off is a bare 'please assist': it bounces back. Missing: reproduction steps; the error text; what "
        "was already tried; the asset (RMM / CMDB link); the user impact."
    )
    assert finding.evidence["missing"] == ["repro", "error", "tried", "asset", "impact"]
    assert finding.instance == "escalation-1"


def test_notes_before_the_escalation_do_not_count() -> None:
    early = note("Tried a reboot; impact: one user; repro: open Outlook", minutes=120)
    late = note("Please assist.", minutes=10)
    outcome = run_rule("handoff", ticket(tier=2, notes=(early, late)), transitions=RAISED)
    assert outcome.findings[0].evidence["missing"] == ["repro", "tried", "impact"]
    first_seen = run_rule("handoff", ticket(tier=2, notes=(early, late)))  # no transition: every note counts
    assert first_seen.findings == ()


def test_a_complete_hand_off_passes_and_a_partial_one_is_incomplete() -> None:
    assert run_rule("handoff", ticket(tier=2, notes=(note(COMPLETE, minutes=5),)), transitions=RAISED).findings == ()
    partial = note("Escalating: tried reinstalling FortiClient, asset ACME-LT-0042", minutes=5)
    outcome = run_rule("handoff", ticket(tier=2, notes=(partial,)), transitions=RAISED)
    assert codes(outcome) == ["incomplete"]
    assert outcome.findings[0].message == "The hand-off is missing reproduction steps; the user impact."
    assert run_rule("handoff", ticket(tier=1)).findings == ()
    moved = (Transition("queue", "Service Desk", "Networking", NOW - timedelta(hours=1)),)
    assert codes(run_rule("handoff", ticket(tier=1, notes=(note("pls assist", minutes=5),)), transitions=moved)) == [
        "bare"
    ]
