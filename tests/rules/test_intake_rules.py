"""Steps 1-5 of the checklist: identity, issue capture, priority, tagging, error codes."""

from __future__ import annotations

from psabridge.model import Asset, Kind, Level, Party, Priority, SetFields, Source, Status

from .helpers import codes, note, run_rule, ticket

RESET = {
    "summary": "Password reset",
    "description": "I forgot my password after the long weekend and can't log in. Can you reset it please?",
    "kind": Kind.SERVICE_REQUEST,
    "priority": Priority.P2,
    "category": "Account",
    "error_codes": (),
}


# --- identity ----------------------------------------------------------------------------------------------------


def test_identity_flags_a_reset_with_no_verification_and_holds_progress() -> None:
    outcome = run_rule("identity", ticket(**RESET))
    assert codes(outcome) == ["unverified"]
    finding = outcome.findings[0]
    assert finding.severity == "error"
    assert finding.step == "Verify the caller's identity"
    assert finding.evidence == {
        "matched": "password reset",
        "in": "summary or description",
        "requester": "mary.okafor@acme.example",
        "vip": None,
        "verification_field": None,
    }
    assert "no identity verification is recorded" in finding.message
    assert "call back the number on file" in finding.advice


def test_identity_raises_severity_for_a_vip_and_names_the_pretext() -> None:
    vip = ticket(**RESET, requester=Party(name="Helen Marsh", email="CEO@acme.example"))
    finding = run_rule("identity", vip).findings[0]
    assert finding.severity == "critical"
    assert finding.evidence["vip"] == "listed VIP of Acme Dental"
    assert "executive impersonation" in finding.message


def test_identity_reset_already_done_without_verification_is_critical() -> None:
    done = ticket(**RESET, notes=(note("Caller asked for a password reset; reset done as requested by Mary."),))
    outcome = run_rule("identity", done)
    assert codes(outcome) == ["reset_unverified"]
    assert outcome.findings[0].severity == "critical"
    assert outcome.findings[0].evidence["done"] == "reset done"
    assert "security incident" in outcome.findings[0].advice


def test_identity_accepts_a_note_the_party_flag_or_a_configured_field() -> None:
    by_note = ticket(**RESET, notes=(note("Identity verified by callback to the number on file."),))
    assert run_rule("identity", by_note).findings == ()
    assert (
        run_rule("identity", by_note)
        .trace[0]
        .endswith("identity verified: note by Dana Whitfield: 'identity verified'")
    )
    flagged = ticket(**RESET, requester=Party(name="Mary", identity_verified=True, verified_by="callback"))
    assert run_rule("identity", flagged).findings == ()
    by_field = ticket(**RESET, custom={"id_check": "yes"})
    assert run_rule("identity", by_field, settings={"verification_field": "id_check"}).findings == ()
    not_set = ticket(**RESET, custom={"id_check": "no"})
    assert codes(run_rule("identity", not_set, settings={"verification_field": "id_check"})) == ["unverified"]


def test_identity_a_negated_verification_does_not_count() -> None:
    negated = ticket(**RESET, notes=(note("Caller could not verify identity: not verified."),))
    assert codes(run_rule("identity", negated)) == ["unverified"]


def test_identity_ignores_tickets_without_credential_work_and_reads_the_category() -> None:
    assert run_rule("identity", ticket()).findings == ()
    by_category = ticket(summary="Account keeps locking", description="Since this morning.", subcategory="Lockout")
    assert run_rule("identity", by_category).findings[0].evidence["in"] == "category"


# --- issue capture -----------------------------------------------------------------------------------------------


def test_issue_capture_lists_exactly_what_is_missing() -> None:
    vague = ticket(summary="Outlook", description="Outlook broken, please fix asap.", notes=())
    outcome = run_rule("issue_capture", vague)
    assert codes(outcome) == ["incomplete"]
    finding = outcome.findings[0]
    assert finding.severity == "warning"
    assert finding.evidence == {"missing": ["context", "reproducible", "users_affected"], "found": {}}
    assert finding.message == (
        "The issue is not fully captured: missing what the user was doing when it happened; whether it is "
        "reproducible (every time, now and then, only in one application); how many users are affected (just this "
        "user, a few, the whole site)."
    )


def test_issue_capture_missing_description_is_an_error_and_a_count_counts() -> None:
    bare = ticket(description="help", notes=(note("Triage: 12 users affected, every time since 8:15."),))
    finding = run_rule("issue_capture", bare).findings[0]
    assert finding.severity == "error"
    assert finding.evidence["missing"] == ["description"]
    assert finding.evidence["found"] == {
        "context": "since",
        "reproducible": "every time",
        "users_affected": "12 stated",
    }


def test_issue_capture_asks_requests_only_for_summary_and_description_and_skips_alerts() -> None:
    request = ticket(kind=Kind.SERVICE_REQUEST, summary="Install Visio", description="Please install Visio for me.")
    assert run_rule("issue_capture", request).findings == ()
    alert = ticket(kind=Kind.ALERT, source=Source.MONITORING, description="")
    assert run_rule("issue_capture", alert).findings == ()
    assert run_rule("issue_capture", ticket()).findings == ()


# --- priority ----------------------------------------------------------------------------------------------------

OUTAGE = {
    "summary": "Nobody at Midtown Clinic can send or receive email",
    "description": "None of us can send email since 8:15, Outlook says 'Disconnected'. At least 14 people affected.",
    "priority": Priority.P3,
}


def test_priority_flags_an_outage_logged_too_low_and_proposes_p1() -> None:
    outcome = run_rule("priority", ticket(**OUTAGE))
    assert codes(outcome) == ["understated"]
    finding = outcome.findings[0]
    assert finding.severity == "critical"
    assert finding.evidence["priority"] == "P3"
    assert finding.evidence["evidence"] == "P1"
    assert finding.evidence["because"] == "'none of us'"
    assert finding.message.startswith("Priority P3 is less urgent than the evidence: 'none of us', which is P1")
    (proposal,) = outcome.actions
    assert proposal.finding == "understated"
    assert isinstance(proposal.action, SetFields)
    assert proposal.action.fields == {"priority": "P1"}
    assert proposal.action.target == "msp-cw"
    assert proposal.action.origin == "rules.priority"


def test_priority_counts_blocked_users_as_multi_user_and_respects_single_user_words() -> None:
    many = ticket(summary="S: drive", description="Red X on the S: drive, 7 of us can't work.", priority=Priority.P2)
    assert run_rule("priority", many).findings[0].evidence["because"] == '7 users stated and "can\'t work"'
    one = ticket(description="I can't print to the front desk printer. Everyone else can print.", priority=Priority.P3)
    assert run_rule("priority", one).findings == ()


def test_priority_flags_overstated_requests_and_missing_priorities() -> None:
    request = ticket(kind=Kind.SERVICE_REQUEST, summary="Install Visio", description="Please install Visio.")
    outcome = run_rule("priority", request.model_copy(update={"priority": Priority.P1}))
    assert codes(outcome) == ["overstated"]
    assert outcome.actions[0].action.fields == {"priority": "P4"}  # type: ignore[union-attr]
    missing = run_rule("priority", ticket(**{**OUTAGE, "priority": None}))
    assert codes(missing) == ["missing"]
    assert missing.actions[0].action.fields == {"priority": "P1"}  # type: ignore[union-attr]


def test_priority_matrix_mismatch_and_closed_tickets() -> None:
    mismatch = ticket(priority=Priority.P3, impact=Level.HIGH, urgency=Level.HIGH)
    outcome = run_rule("priority", mismatch)
    assert codes(outcome) == ["matrix_mismatch"]
    assert outcome.findings[0].evidence["matrix"] == "P1"
    assert outcome.actions == ()
    assert run_rule("priority", ticket(priority=Priority.P3, impact=Level.MEDIUM, urgency=Level.MEDIUM)).findings == ()
    assert run_rule("priority", ticket(**OUTAGE, status=Status.CLOSED)).findings == ()


# --- tagging -----------------------------------------------------------------------------------------------------


def test_tagging_lists_missing_tags() -> None:
    bare = ticket(requester=None, asset=None, category=None, source=None)
    outcome = run_rule("tagging", bare)
    assert codes(outcome) == ["missing"]
    assert outcome.findings[0].evidence == {"missing": ["requester", "asset", "category", "source"], "kind": "incident"}
    assert outcome.findings[0].message == (
        "The ticket does not name the affected user (requester); the asset from the RMM / CMDB; a category; the "
        "source channel."
    )


def test_tagging_exempts_requests_from_assets_and_alerts_from_requesters() -> None:
    assert run_rule("tagging", ticket(kind=Kind.SERVICE_REQUEST, asset=None)).findings == ()
    assert run_rule("tagging", ticket(source=Source.MONITORING, requester=None)).findings == ()
    assert run_rule("tagging", ticket(asset=Asset())).findings[0].evidence["missing"] == ["asset"]


# --- error codes -------------------------------------------------------------------------------------------------


def test_error_codes_flags_an_error_mentioned_but_not_recorded() -> None:
    vague = ticket(description="I get an error when I open Outlook, every time.", error_codes=())
    outcome = run_rule("error_codes", vague)
    assert codes(outcome) == ["not_recorded"]
    assert outcome.findings[0].evidence == {"mentioned": "error*", "error_codes": []}
    assert "transposed digit" in outcome.findings[0].advice


def test_error_codes_is_satisfied_by_recorded_codes_and_skips_requests() -> None:
    assert run_rule("error_codes", ticket(error_codes=("0x8004010F",))).findings == ()
    calm = ticket(description="Outlook is slow to start.", error_codes=())
    assert run_rule("error_codes", calm).findings == ()
    request = ticket(kind=Kind.SERVICE_REQUEST, description="Error in my mailbox size, please add space.")
    assert run_rule("error_codes", request.model_copy(update={"error_codes": ()})).findings == ()
