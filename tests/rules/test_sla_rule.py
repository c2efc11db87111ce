"""The SLA rule with fixed clocks: due times over weekends, holidays, lunch gaps, zones and DST, pauses, out-of-hours
creation, priority changes and reopens; milestones announced once and woken up for; vendor figures; no silent
defaults. Every due time is worked out by hand in the comment beside it (calendars in sla_helpers.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from psabridge.model import Note, NoteKind, Party, Priority, SetFields, SlaState, SlaStatus, Status, System
from psabridge.rules import StoredFinding, Transition
from psabridge.rules.engine import Evaluation
from psabridge.rules.sla import sla_of

from .sla_helpers import BERLIN, NY, at, codes, make, result_of, rules_for, run, tenant, utc


def state_of(evaluation: Evaluation) -> SlaState:
    outcome = result_of(evaluation).outcome
    assert outcome.state is not None
    found = sla_of(outcome.state)
    assert found is not None
    return found


def status(before: str, after: str, moment: datetime, by: str = "human") -> Transition:
    return Transition("status", before, after, moment, by)  # type: ignore[arg-type]


def stored(evaluation: Evaluation) -> tuple[StoredFinding, ...]:
    """What the store keeps after ``evaluation`` (its note announced what it lists)."""
    return tuple(
        StoredFinding(r.finding.rule, r.finding.code, r.occurrence, r.finding.instance, r.noted)
        for r in evaluation.findings
    )


# --- due times through the rule --------------------------------------------------------------------------------------


def test_a_weekend_does_not_count() -> None:
    # Fri 15 May 2026 15:00 EDT; Friday closes at 16:00. Response 2h: 1h Friday + Mon 08:00-09:00.
    # Resolution 8h: 1h Friday, Mon 08-12 (4h), lunch, 13-16 (3h): Mon 16:00 EDT.
    evaluation = run(make(at(NY, 2026, 5, 15, 15, 0)), at(NY, 2026, 5, 15, 15, 30))
    sla = state_of(evaluation)
    assert sla.response_due == at(NY, 2026, 5, 18, 9, 0)
    assert sla.resolution_due == at(NY, 2026, 5, 18, 16, 0)
    assert sla.policy == "gold P2" and sla.calendar == "us-east" and sla.clock == "business"
    assert sla.response_target == timedelta(hours=2) and sla.state is SlaStatus.OK
    assert set(sla.computed) >= {"response_due", "resolution_due", "policy", "calendar", "response_target"}
    # The 50% response milestone (1h of business time) runs out exactly at Friday's close: due at that moment.
    assert evaluation.wake_at == at(NY, 2026, 5, 15, 16, 0)
    assert codes(evaluation) == []


def test_a_holiday_is_a_whole_day_off() -> None:
    # Thu 24 Dec 2026 16:00 EST: 1h that day, Christmas (Fri) off, the weekend, Mon 28 Dec 08:00-09:00.
    evaluation = run(make(at(NY, 2026, 12, 24, 16, 0)), at(NY, 2026, 12, 24, 16, 5))
    assert state_of(evaluation).response_due == at(NY, 2026, 12, 28, 9, 0)
    assert state_of(evaluation).response_due == utc(2026, 12, 28, 14, 0)


def test_the_lunch_break_is_skipped() -> None:
    # Mon 18 May 2026 11:00 EDT, response 2h: 11:00-12:00, lunch, 13:00-14:00.
    evaluation = run(make(at(NY, 2026, 5, 18, 11, 0)), at(NY, 2026, 5, 18, 11, 1))
    assert state_of(evaluation).response_due == at(NY, 2026, 5, 18, 14, 0)


def test_a_ticket_created_out_of_hours_starts_at_the_next_opening() -> None:
    # Tue 19 May 2026 02:00 EDT, P3 response 4h: the clock starts at 08:00, due 12:00 (GLPI #687: never zero).
    evaluation = run(make(at(NY, 2026, 5, 19, 2, 0), Priority.P3), at(NY, 2026, 5, 19, 3, 0))
    sla = state_of(evaluation)
    assert sla.response_due == at(NY, 2026, 5, 19, 12, 0)
    assert sla.resolution_due == at(NY, 2026, 5, 20, 15, 0)  # 16h: Tue 08-17 (9h), Wed 08-15 (7h)


def test_the_calendar_zone_is_used_whatever_the_server_zone(foreign_server_zone: str) -> None:
    # Berlin 09-17: Mon 18 May 2026 16:00 CEST, response 2h: 1h Monday, Tue 09:00-10:00 CEST (08:00Z).
    assert foreign_server_zone == "Asia/Kathmandu"
    evaluation = run(make(at(BERLIN, 2026, 5, 18, 16, 0)), at(BERLIN, 2026, 5, 18, 16, 30),
                     tenant=tenant("berlin"))  # fmt: skip
    assert state_of(evaluation).response_due == utc(2026, 5, 19, 8, 0)
    later = run(make(at(BERLIN, 2026, 5, 18, 16, 0)), utc(2026, 5, 19, 7, 30), tenant=tenant("berlin"))
    [warning] = [r.finding for r in later.findings if r.finding.code == "response_warning"]
    assert "Tue 19 May 2026 10:00 CEST" in warning.message  # the client's local time, in the calendar's zone


@pytest.mark.parametrize(
    ("calendar", "zone", "created", "due_utc"),
    [
        # A 24h business target over whole days is 24 real hours, whatever the clock does (Znuny's convention).
        ("ny-days", "America/New_York", (2026, 3, 7, 12, 0), (2026, 3, 8, 17, 0)),  # spring forward: 13:00 EDT
        ("ny-days", "America/New_York", (2026, 10, 31, 12, 0), (2026, 11, 1, 16, 0)),  # fall back: 11:00 EST
        ("sydney-days", "Australia/Sydney", (2026, 4, 4, 12, 0), (2026, 4, 5, 1, 0)),  # DST ends: 11:00 AEST
        ("sydney-days", "Australia/Sydney", (2026, 10, 3, 12, 0), (2026, 10, 4, 2, 0)),  # DST starts: 13:00 AEDT
        ("sao-paulo-days", "America/Sao_Paulo", (2018, 11, 3, 12, 0), (2018, 11, 4, 15, 0)),  # midnight gap
    ],
)
def test_dst_days_count_their_real_hours(
    calendar: str, zone: str, created: tuple[int, ...], due_utc: tuple[int, ...]
) -> None:
    start = at(ZoneInfo(zone), *created)
    evaluation = run(make(start), start + timedelta(minutes=5), tenant=tenant(calendar, "days"))
    assert state_of(evaluation).resolution_due == utc(*due_utc)


def test_a_pause_over_a_night_and_a_weekend_adds_back_only_its_business_time() -> None:
    # P3 resolution 16h from Thu 14 May 2026 14:00 EDT: unpaused due Mon 18 May 14:00. On hold Fri 15:30 to Mon 10:00
    # holds 0.5h (Fri 15:30-16:00) + 2h (Mon 08-10) of business time: due Mon 16:30 EDT.
    created = at(NY, 2026, 5, 14, 14, 0)
    ticket = make(created, Priority.P3)
    plain = run(ticket, at(NY, 2026, 5, 18, 11, 0))
    assert state_of(plain).resolution_due == at(NY, 2026, 5, 18, 14, 0)
    moves = (
        status("in_progress", "on_hold", at(NY, 2026, 5, 15, 15, 30)),
        status("on_hold", "in_progress", at(NY, 2026, 5, 18, 10, 0)),
    )
    paused = run(ticket, at(NY, 2026, 5, 18, 11, 0), transitions=moves)
    assert state_of(paused).resolution_due == at(NY, 2026, 5, 18, 16, 30)
    # The response clock is not paused by default (GLPI: waiting does not extend time to own).
    assert state_of(paused).response_due == state_of(plain).response_due


def test_while_paused_the_due_time_reads_as_if_resumed_now_and_no_wake_up_is_set() -> None:
    # Put on hold (by a person: that is also the response) Fri 15 May 08:30. Resolution ran Thu 14-17 (3h) and Fri
    # 08:00-08:30: 12.5h left "from now" (Fri 11:00): Fri 11-16 (5h), Mon 08-12 (4h), 13:00-16:30.
    created = at(NY, 2026, 5, 14, 14, 0)
    on_hold = (status("in_progress", "on_hold", at(NY, 2026, 5, 15, 8, 30)),)
    evaluation = run(make(created, Priority.P3, status=Status.ON_HOLD), at(NY, 2026, 5, 15, 11, 0),
                     transitions=on_hold)  # fmt: skip
    sla = state_of(evaluation)
    assert sla.resolution_state is SlaStatus.PAUSED and sla.state is SlaStatus.PAUSED
    assert sla.response_state is SlaStatus.OK and sla.responded_at == at(NY, 2026, 5, 15, 8, 30)
    assert sla.resolution_due == at(NY, 2026, 5, 18, 16, 30)
    assert evaluation.wake_at is None  # leaving the pause is a change that evaluates the ticket


def test_a_priority_change_recomputes_every_clock_from_creation() -> None:
    # Created Mon 18 May 2026 09:00 EDT as P4 (response 8h); raised to P1 at 10:00 (response 15m wall): due 09:15,
    # so the ticket is already breached at 10:05.
    created = at(NY, 2026, 5, 18, 9, 0)
    raised = (Transition("priority", "P4", "P1", at(NY, 2026, 5, 18, 10, 0)),)
    evaluation = run(make(created, Priority.P1), at(NY, 2026, 5, 18, 10, 5), transitions=raised)
    sla = state_of(evaluation)
    assert sla.response_due == at(NY, 2026, 5, 18, 9, 15)
    assert sla.resolution_due == at(NY, 2026, 5, 18, 13, 0)  # P1 resolution 4h wall-clock
    assert sla.response_state is SlaStatus.BREACHED and sla.state is SlaStatus.BREACHED
    [breach] = [r.finding for r in evaluation.findings if r.finding.code == "response_breached"]
    assert breach.severity == "critical"  # a P1 breach
    assert breach.instance == "response:1:P1:100"
    as_p4 = run(make(created, Priority.P4), at(NY, 2026, 5, 18, 9, 59))
    assert state_of(as_p4).response_due == at(NY, 2026, 5, 19, 9, 0)  # 8h: Mon 09-12, 13-17, Tue 08-09
    assert codes(as_p4, "sla") == []


def test_a_reopen_restarts_the_resolution_clock_or_lets_it_continue() -> None:
    # P2 resolution 8h from Mon 18 May 09:00 EDT; answered at 09:05; resolved Mon 15:00; reopened Tue 10:00.
    created = at(NY, 2026, 5, 18, 9, 0)
    history = (
        status("new", "in_progress", at(NY, 2026, 5, 18, 9, 5)),
        status("in_progress", "resolved", at(NY, 2026, 5, 18, 15, 0)),
        status("resolved", "in_progress", at(NY, 2026, 5, 19, 10, 0)),
    )
    now = at(NY, 2026, 5, 19, 11, 0)
    restarted = state_of(run(make(created), now, transitions=history))
    # restart: 8h from Tue 10:00: Tue 10-17 (7h), Wed 08-09.
    assert restarted.resolution_due == at(NY, 2026, 5, 20, 9, 0)
    assert restarted.responded_at == at(NY, 2026, 5, 18, 9, 5) and restarted.response_state is SlaStatus.OK
    continued = state_of(run(make(created), now, rules_for({"sla": {"reopen": "continue"}}), transitions=history))
    # continue: Mon 09-12, 13-15 ran (5h); the done time (Mon 15:00 to Tue 10:00) does not count; 3h from Tue 10:00.
    assert continued.resolution_due == at(NY, 2026, 5, 19, 13, 0)


def test_resolved_in_time_is_ok_and_resolved_late_is_breached() -> None:
    created = at(NY, 2026, 5, 18, 9, 0)
    early = (status("new", "in_progress", at(NY, 2026, 5, 18, 9, 5)),
             status("in_progress", "resolved", at(NY, 2026, 5, 18, 11, 0)))  # fmt: skip
    ok = run(make(created, status=Status.RESOLVED), at(NY, 2026, 5, 25, 9, 0), transitions=early)
    assert state_of(ok).resolution_state is SlaStatus.OK and state_of(ok).resolved_at == at(NY, 2026, 5, 18, 11, 0)
    assert codes(ok, "sla") == [] and ok.wake_at is None
    late = (early[0], status("in_progress", "resolved", at(NY, 2026, 5, 20, 11, 0)))
    breached = run(make(created, status=Status.RESOLVED), at(NY, 2026, 5, 25, 9, 0), transitions=late)
    assert codes(breached, "sla") == ["resolution_breached"]
    assert "met Wed 20 May 2026 11:00 EDT" in breached.findings[0].finding.message


# --- what counts as the response -------------------------------------------------------------------------------------


def _reply(author: str, minutes: int, kind: NoteKind = NoteKind.PUBLIC, text: str = "Looking at it now.") -> Note:
    return Note(kind=kind, author=author, text=text, created_at=at(NY, 2026, 5, 18, 9, 0) + timedelta(minutes=minutes))


def test_the_response_is_a_technicians_public_reply_or_a_persons_status_change_never_our_own() -> None:
    created, now = at(NY, 2026, 5, 18, 9, 0), at(NY, 2026, 5, 18, 12, 30)
    notes = (
        _reply("Mary Okafor", 5),  # the requester writing again
        _reply("psabridge", 10, NoteKind.INTERNAL, "psabridge checklist: 1 item to look at"),  # our own note
        _reply("Dana Whitfield", 20, NoteKind.INTERNAL),  # internal: the client did not hear back
        _reply("Dana Whitfield", 40),  # the technician's public reply
    )
    answered = state_of(run(make(created, notes=notes), now))
    assert answered.responded_at == at(NY, 2026, 5, 18, 9, 40) and answered.response_state is SlaStatus.OK
    ours = (status("new", "assigned", at(NY, 2026, 5, 18, 9, 2), by="bridge"),)
    by_us = state_of(run(make(created, notes=notes[:3]), now, transitions=ours))
    assert by_us.responded_at is None and by_us.response_state is SlaStatus.BREACHED  # 2h ran out at 11:00
    by_person = state_of(run(make(created), now, transitions=(status("new", "assigned", at(NY, 2026, 5, 18, 9, 3)),)))
    assert by_person.responded_at == at(NY, 2026, 5, 18, 9, 3)


# --- milestones ------------------------------------------------------------------------------------------------------


def test_each_milestone_is_announced_once_and_woken_up_for() -> None:
    # P3 response 4h from Mon 18 May 09:00 EDT: 50% at 11:00, 75% at 12:00 (3h ends exactly at lunch), 100% at
    # 14:00 (one hour after lunch).
    created = at(NY, 2026, 5, 18, 9, 0)
    ticket = make(created, Priority.P3)
    quiet = run(ticket, at(NY, 2026, 5, 18, 10, 0))
    assert codes(quiet) == [] and quiet.wake_at == at(NY, 2026, 5, 18, 11, 0)
    first = run(ticket, quiet.wake_at, states={"sla": result_of(quiet).outcome.state or {}})
    assert codes(first, "sla") == ["response_warning"]
    assert first.findings[0].finding.instance == "response:1:P3:50" and first.note is not None
    assert first.wake_at == at(NY, 2026, 5, 18, 12, 0)
    again = run(ticket, at(NY, 2026, 5, 18, 11, 40), states={"sla": result_of(first).outcome.state or {}},
                findings=stored(first))  # fmt: skip
    assert again.actions == () and codes(again, "sla") == ["response_warning"]
    lunch = run(ticket, at(NY, 2026, 5, 18, 12, 30), states={"sla": result_of(again).outcome.state or {}},
                findings=stored(again))  # fmt: skip
    assert lunch.findings[0].finding.instance == "response:1:P3:75" and lunch.findings[0].occurrence == 2
    assert lunch.note is not None and "75% of the 4h00m business-clock target" in lunch.note.text
    assert lunch.wake_at == at(NY, 2026, 5, 18, 14, 0)
    late = run(ticket, at(NY, 2026, 5, 18, 14, 0), states={"sla": result_of(lunch).outcome.state or {}},
               findings=stored(lunch))  # fmt: skip
    assert codes(late, "sla") == ["response_breached"] and late.note is not None
    late_state = result_of(late).outcome.state or {}
    assert late_state["announced"] == {"response:1:P3": 1.0}  # resolution: 4h of 16h used, nothing to announce
    assert late.wake_at == at(NY, 2026, 5, 19, 9, 0)  # the resolution clock's 50% (8h: Mon 09-12, 13-17, Tue 08-09)


def test_a_share_that_drops_never_announces_an_earlier_milestone_again() -> None:
    created = at(NY, 2026, 5, 18, 9, 0)
    # The state says 75% of the P3 response clock was announced; a reading of 60% keeps that milestone.
    state: dict[str, Any] = {"announced": {"response:1:P3": 0.75}}
    evaluation = run(make(created, Priority.P3), at(NY, 2026, 5, 18, 11, 24), states={"sla": state})
    [finding] = [r.finding for r in evaluation.findings]
    assert finding.instance == "response:1:P3:75"
    assert evaluation.wake_at == at(NY, 2026, 5, 18, 14, 0)  # the 50% and 75% moments are not woken up for again


def test_a_clock_met_in_time_withdraws_its_warning() -> None:
    created = at(NY, 2026, 5, 18, 9, 0)
    state: dict[str, Any] = {"announced": {"response:1:P3": 0.5}}
    answered = (status("new", "in_progress", at(NY, 2026, 5, 18, 11, 30)),)
    evaluation = run(make(created, Priority.P3), at(NY, 2026, 5, 18, 11, 45), states={"sla": state},
                     transitions=answered)  # fmt: skip
    assert codes(evaluation, "sla") == []


# --- the vendor's own figures, write-back, and no silent defaults ----------------------------------------------------


def test_a_due_time_the_vendor_computes_wins() -> None:
    created = at(NY, 2026, 5, 18, 9, 0)
    vendor = SlaState(response_due=at(NY, 2026, 5, 18, 9, 30), resolution_due=at(NY, 2026, 5, 19, 17, 0))
    ticket = make(created, sla=vendor, system=System.FRESHSERVICE, connection="globex-fs")
    evaluation = run(ticket, at(NY, 2026, 5, 18, 9, 45))
    sla = state_of(evaluation)
    assert sla.response_due == vendor.response_due and sla.resolution_due == vendor.resolution_due
    assert "response_due" not in sla.computed and sla.response_state is SlaStatus.BREACHED
    assert codes(evaluation, "sla") == ["response_breached"]
    assert "the vendor's SLA" in evaluation.findings[0].finding.message
    assert sla.vendor_part() == vendor  # what psabridge added is told apart from the vendor's figures
    mine = run(ticket, at(NY, 2026, 5, 18, 9, 45), rules_for({"sla": {"use_vendor": False}}))
    assert codes(mine, "sla") == []  # psabridge's own 2h business target: 45 minutes used
    assert state_of(mine).response_due == vendor.response_due  # the vendor's figure is kept, never overwritten


def test_due_times_are_written_back_where_the_vendor_has_no_sla_of_its_own() -> None:
    created = at(NY, 2026, 5, 18, 9, 0)
    autotask = make(created, system=System.AUTOTASK, connection="partner-at")
    evaluation = run(autotask, at(NY, 2026, 5, 18, 9, 10))
    [write] = [a for a in evaluation.actions if isinstance(a, SetFields)]
    assert write.fields == {
        "sla": {"response_due": "2026-05-18T15:00:00+00:00", "resolution_due": "2026-05-19T13:00:00+00:00"}
    }
    assert write.occurrence_key is not None and write.occurrence_key.startswith("sla:sla:1")
    assert codes(evaluation, "sla") == ["due_dates"]
    assert evaluation.note is not None and "SLA committed for gold P2" in evaluation.note.text
    with_sla = autotask.model_copy(update={"sla": SlaState(policy="Standard SLA")})
    assert [a for a in run(with_sla, at(NY, 2026, 5, 18, 9, 10)).actions if isinstance(a, SetFields)] == []
    connectwise = make(created)  # ConnectWise is not among write_due_dates: announced in the note instead
    assert [a for a in run(connectwise, at(NY, 2026, 5, 18, 9, 10)).actions if isinstance(a, SetFields)] == []


def test_our_written_due_time_coming_back_is_ours_not_the_vendors() -> None:
    created = at(NY, 2026, 5, 18, 9, 0)
    echoed = SlaState(response_due=at(NY, 2026, 5, 18, 11, 0), resolution_due=at(NY, 2026, 5, 19, 9, 0))
    autotask = make(created, system=System.AUTOTASK, connection="partner-at", sla=echoed, priority=Priority.P1)
    state = {"written": {"response": "2026-05-18T15:00:00+00:00", "resolution": "2026-05-19T13:00:00+00:00"}}
    evaluation = run(autotask, at(NY, 2026, 5, 18, 9, 5), states={"sla": state})
    sla = state_of(evaluation)
    assert sla.response_due == at(NY, 2026, 5, 18, 9, 15)  # recomputed for P1, not taken for the vendor's
    [write] = [a for a in evaluation.actions if isinstance(a, SetFields)]
    assert write.fields["sla"] == {
        "response_due": "2026-05-18T13:15:00+00:00",
        "resolution_due": "2026-05-18T17:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("view", "code", "words"),
    [
        (tenant(tier=None), "no_contract", "Acme Dental has no contract tier"),
        (tenant(tier=None, key=None, calendar=None), "no_contract", "belongs to no configured client"),
        (tenant(tier="platinum"), "unknown_tier", "contract tier 'platinum' has no SLA targets"),
        (tenant(calendar=None), "no_calendar", "Acme Dental has no business calendar"),
        (tenant(calendar="mars-office"), "no_calendar", "calendar 'mars-office' is not defined"),
    ],
)
def test_a_missing_contract_tier_or_calendar_is_a_finding_not_a_default(view: Any, code: str, words: str) -> None:
    evaluation = run(make(at(NY, 2026, 5, 18, 9, 0)), at(NY, 2026, 5, 18, 9, 5), tenant=view)
    [finding] = [r.finding for r in evaluation.findings if r.finding.code == code]
    assert words in finding.message
    assert "confirm the client's contract tier" in finding.advice.lower()
    assert sla_of(result_of(evaluation).outcome.state or {}) is None  # no guessed target, no state


def test_wall_clock_targets_need_no_calendar() -> None:
    # P1 targets are wall-clock: a tenant without a calendar still gets them (and the no_calendar finding).
    evaluation = run(make(at(NY, 2026, 5, 18, 9, 0), Priority.P1), at(NY, 2026, 5, 18, 9, 5), tenant=tenant(None))
    sla = state_of(evaluation)
    assert sla.response_due == at(NY, 2026, 5, 18, 9, 15) and sla.clock == "wall"
    assert "no_calendar" in codes(evaluation, "sla")


def test_the_priority_rules_correction_sets_the_targets() -> None:
    # The priority rule (effect set) corrects the outage from P3 to P1: the SLA uses P1's targets at once.
    rules = rules_for({"priority": {"effects": {"understated": "set"}}}, only=("priority", "sla"))
    evaluation = run(make(at(NY, 2026, 5, 18, 9, 0), Priority.P3), at(NY, 2026, 5, 18, 9, 5), rules)
    assert state_of(evaluation).response_due == at(NY, 2026, 5, 18, 9, 15)
    assert any("the priority rule's correction" in line for line in result_of(evaluation).outcome.trace)


def test_a_ticket_with_no_creation_time_has_no_clock() -> None:
    evaluation = run(make(at(NY, 2026, 5, 18, 9, 0), created_at=None), at(NY, 2026, 5, 18, 9, 5))
    assert codes(evaluation, "sla") == [] and evaluation.wake_at is None
    assert result_of(evaluation).outcome.trace == ("no creation time: no SLA clock",)


def test_requester_party_name_matching_is_case_blind() -> None:
    created = at(NY, 2026, 5, 18, 9, 0)
    notes = (_reply("MARY.OKAFOR@ACME.EXAMPLE", 5),)
    requester = Party(name="Mary Okafor", email="mary.okafor@acme.example")
    sla = state_of(run(make(created, notes=notes, requester=requester), at(NY, 2026, 5, 18, 9, 30)))
    assert sla.responded_at is None


def test_the_sla_state_is_outside_the_content_hash_and_survives_an_unchanged_ingest() -> None:
    ticket = make(at(NY, 2026, 5, 18, 9, 0))
    computed = state_of(run(ticket, at(NY, 2026, 5, 18, 9, 5)))
    assert ticket.model_copy(update={"sla": computed}).content_hash() == ticket.content_hash()
    vendor = SlaState(policy="Standard SLA", responded_at=at(NY, 2026, 5, 18, 9, 3))
    kept = computed.over(vendor)  # the next ingest brings the vendor's figures: ours stay where it has none
    assert kept is not None and kept.policy == "Standard SLA" and kept.responded_at == vendor.responded_at
    assert kept.response_due == computed.response_due and "response_due" in kept.computed
    assert "policy" not in kept.computed and kept.vendor_part() == vendor
    assert SlaState().over(vendor) == vendor and computed.over(None) is not None
