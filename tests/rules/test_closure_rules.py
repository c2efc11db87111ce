"""Steps 10-14 of the checklist: documented fix, fix tested, resolution note, time and category, satisfaction."""

from __future__ import annotations

from datetime import timedelta

from psabridge.model import AddNote, Kind, NoteKind, Party, Priority, Status, Ticket
from psabridge.rules import Transition

from .helpers import NOW, codes, note, resolved, run_rule, ticket


def fixed(text: str, **overrides: object) -> Ticket:
    """A closed ticket whose resolution note is ``text`` (tested with the user, time logged)."""
    notes = (
        note("User confirmed it works in their session.", minutes=100),
        note(text, NoteKind.RESOLUTION, minutes=90),
    )
    return resolved(notes=notes, **overrides)


# --- documented fix ----------------------------------------------------------------------------------------------


def test_a_deviation_without_a_reason_is_flagged() -> None:
    outcome = run_rule("documented_fix", fixed("Used a workaround instead of the KB steps; KB 1077."))
    assert codes(outcome) == ["deviation_unexplained"]
    assert outcome.findings[0].evidence == {
        "matched": "instead of",
        "note_kind": "resolution",
        "author": "Dana Whitfield",
    }
    with_reason = fixed("Used a workaround instead of the KB steps because the KB predates Outlook 2024; KB 1077.")
    assert run_rule("documented_fix", with_reason).findings == ()
    assert run_rule("documented_fix", resolved()).findings == ()


def test_registry_and_gpo_changes_need_a_recorded_peer_review() -> None:
    outcome = run_rule("documented_fix", fixed("Set HKLM\\...\\SchUseStrongCrypto=1 via regedit and a GPO; KB 1."))
    assert codes(outcome) == ["unreviewed_change"]
    assert outcome.findings[0].evidence == {"matched": ["regedit", "hklm", "gpo"]}
    reviewed = fixed("Set SchUseStrongCrypto in the registry; peer reviewed by Viktor; KB 1.")
    assert run_rule("documented_fix", reviewed).findings == ()
    assert run_rule("documented_fix", ticket()).trace == ("no resolution yet",)


# --- fix tested --------------------------------------------------------------------------------------------------


def test_a_resolve_without_a_test_with_the_user_is_flagged() -> None:
    untested = resolved(notes=(note("Fixed the profile; KB 1077. Try it now and let me know.", NoteKind.RESOLUTION),))
    outcome = run_rule("fix_tested", untested)
    assert codes(outcome) == ["untested"]
    finding = outcome.findings[0]
    assert finding.message == (
        "Resolved with no test in the user's session recorded ('try it now and let me know' is not a test)."
    )
    assert finding.evidence == {"status": "closed", "handed_over": "try it now and let me know"}


def test_a_test_note_or_the_requesters_own_reply_confirms() -> None:
    assert run_rule("fix_tested", resolved()).findings == ()
    reply = note("Works now, thanks!", NoteKind.PUBLIC, author="Mary Okafor")
    by_reply = resolved(notes=(note("Rebuilt the profile; KB 1077", NoteKind.RESOLUTION), reply))
    assert run_rule("fix_tested", by_reply).trace == ("the requester confirmed: 'works now'",)
    stranger = note("Works now, thanks!", NoteKind.PUBLIC, author="Someone Else")
    assert codes(run_rule("fix_tested", resolved(notes=(stranger,)))) == ["untested"]
    assert run_rule("fix_tested", resolved(kind=Kind.ALERT, notes=())).findings == ()
    assert run_rule("fix_tested", ticket()).findings == ()


# --- resolution note ---------------------------------------------------------------------------------------------


def test_rebooted_and_it_worked_is_flagged_with_guidance() -> None:
    outcome = run_rule("resolution_note", fixed("Rebooted and it worked"))
    assert codes(outcome) == ["trivial"]
    finding = outcome.findings[0]
    assert finding.severity == "error"
    assert (
        finding.message
        == "The resolution note 'Rebooted and it worked' documents nothing a technician can reuse (score 0/4)."
    )
    assert "Test E-mail AutoConfiguration; KB 4567" in finding.advice
    assert finding.evidence["missing"] == ["cause", "system", "action", "kb"]


def test_the_score_names_what_is_missing() -> None:
    outcome = run_rule("resolution_note", fixed("Rebuilt the Outlook profile because the OST was corrupt."))
    assert codes(outcome) == ["incomplete"]
    finding = outcome.findings[0]
    assert finding.message == (
        "The resolution note scores 3/4 (KCS: cause, system, setting or command, KB id); it does not name the KB "
        "article id."
    )
    assert finding.evidence["has"] == ["cause", "system", "action"]
    assert finding.evidence["kb_ids"] == []
    complete = run_rule("resolution_note", resolved())
    assert complete.findings == ()
    assert complete.trace == ("resolution scores 4/4: cause yes, system yes, action yes, kb yes",)


def test_a_command_or_an_asset_counts_and_a_missing_note_is_an_error() -> None:
    by_command = fixed("Ran `gpupdate /force` on ACME-LT-0042; KB 2211.")
    assert run_rule("resolution_note", by_command).findings == ()
    missing = run_rule("resolution_note", resolved(notes=()))
    assert codes(missing) == ["missing"]
    assert missing.findings[0].message == "The ticket is closed with no resolution note."
    assert run_rule("resolution_note", ticket()).findings == ()


# --- closure -----------------------------------------------------------------------------------------------------


def test_closing_without_time_or_category_is_flagged() -> None:
    outcome = run_rule("closure", resolved(time_entries=(), kind=None))
    assert codes(outcome) == ["no_time", "no_category"]
    no_time, no_category = outcome.findings
    assert no_time.message == "The ticket is closed with no time logged."
    assert no_time.evidence == {"time_entries": 0, "minutes": 0}
    assert no_category.message == (
        "The ticket is closed without a resolution category (incident, service_request, problem, change)."
    )
    alert = run_rule("closure", resolved(kind=Kind.ALERT)).findings[0]
    assert alert.message.startswith("The ticket is closed with resolution category 'alert', which is not a resolution")


def test_closure_reads_a_custom_category_field_and_only_closed_tickets() -> None:
    settings = {"category_field": "resolution_type", "categories": ["Incident", "Request", "Problem"]}
    assert run_rule("closure", resolved(custom={"resolution_type": "request"}), settings=settings).findings == ()
    wrong = run_rule("closure", resolved(custom={"resolution_type": "other"}), settings=settings)
    assert wrong.findings[0].evidence == {
        "category": "other",
        "from": "custom field 'resolution_type'",
        "accepted": ["Incident", "Request", "Problem"],
    }
    assert run_rule("closure", resolved(status=Status.RESOLVED, time_entries=())).findings == ()
    assert run_rule("closure", resolved()).findings == ()


# --- satisfaction ------------------------------------------------------------------------------------------------


def test_the_survey_field_is_checked_after_the_grace_and_woken_for_before() -> None:
    settings = {"survey_field": "smileback_sent", "grace": "1h"}
    fresh = resolved(closed_at=NOW - timedelta(minutes=20))
    waiting = run_rule("satisfaction", fresh, settings=settings)
    assert waiting.findings == ()
    assert waiting.wake_at == NOW + timedelta(minutes=40)
    late = run_rule("satisfaction", resolved(), settings=settings)
    assert codes(late) == ["survey_unconfirmed"]
    assert late.findings[0].evidence == {
        "field": "smileback_sent",
        "value": None,
        "closed_at": (NOW - timedelta(hours=2)).isoformat(),
    }
    sent = run_rule("satisfaction", resolved(custom={"smileback_sent": True}), settings=settings)
    assert sent.findings == ()
    assert sent.trace == ("survey sent (smileback_sent = True)",)
    assert run_rule("satisfaction", resolved()).trace == (
        "no survey_field configured: the CSAT trigger cannot be confirmed",
    )


def test_a_ticket_closed_without_a_close_time_remembers_when_it_was_seen_closed() -> None:
    settings = {"survey_field": "smileback_sent"}
    first = run_rule("satisfaction", resolved(closed_at=None), settings=settings)
    assert first.state == {"closed_seen_at": NOW.isoformat()}
    assert first.wake_at == NOW + timedelta(hours=1)
    later = run_rule(
        "satisfaction", resolved(closed_at=None), settings=settings, state=first.state, now=NOW + timedelta(hours=2)
    )
    assert codes(later) == ["survey_unconfirmed"]
    assert later.state is None
    reopened = run_rule("satisfaction", ticket(), settings=settings, state=first.state)
    assert reopened.state == {}


def test_vips_and_p1s_get_a_personal_follow_up_per_closure() -> None:
    vip = resolved(requester=Party(name="Helen Marsh", email="ceo@acme.example"))
    outcome = run_rule("satisfaction", vip)
    assert codes(outcome) == ["follow_up"]
    finding = outcome.findings[0]
    assert finding.message == (
        "Follow up personally with Helen Marsh (VIP requester (listed VIP of Acme Dental)), in addition to the "
        "automated survey."
    )
    assert finding.instance == "closure-1"
    (proposal,) = outcome.actions
    assert isinstance(proposal.action, AddNote)
    assert proposal.action.text.startswith("psabridge checklist: follow-up task\nFollow up personally with Helen")
    assert proposal.key == "closure-1"
    p1 = resolved(priority=Priority.P1)
    closed_twice = (
        Transition("status", "in_progress", "closed", NOW - timedelta(days=3)),
        Transition("status", "closed", "in_progress", NOW - timedelta(days=2)),
        Transition("status", "in_progress", "closed", NOW - timedelta(hours=2)),
    )
    again = run_rule("satisfaction", p1, transitions=closed_twice)
    assert again.findings[0].evidence == {"requester": "Mary Okafor", "why": ["P1 incident"]}
    assert again.findings[0].instance == "closure-2"
    assert run_rule("satisfaction", resolved()).findings == ()
