"""Checklist step "Set the ticket priority and SLA": the contract's targets, their due times, warnings and breaches.

Targets come per contract tier and priority (``tiers:``): response, optionally a resolution plan (ConnectWise and
Autotask have one), and resolution, each counted in the tenant's business calendar or in wall-clock time. Which
canonical statuses pause which clock is set per tier (``pauses:``). The rules, each one tested (tests/rules/):

- **Recomputed from the history every time.** The due times follow from the ticket's creation, its status
  transitions and its priority now: a priority change recomputes every clock from creation with the new
  priority's targets (as Zammad, Znuny/OTRS and GLPI do), and nothing but the announced milestones is remembered.
- **Response** is met by the vendor's own first-response time, the first public note by someone other than the
  requester (psabridge's own notes never count), or the first status change by a person (not by psabridge).
- **Resolution** is met when the ticket is resolved, closed or cancelled. A reopen (``reopen``) either ``restart``s
  the resolution clock at the reopen, or lets it ``continue`` with the time it spent done not counting. The
  **plan** clock is met by the vendor's resolution-plan time, or by the resolution.
- **Pauses.** Time in a pausing status does not count (``sla_clock``: the business time inside a pause is added
  back). While a clock is paused its due time reads "if it resumed now" and no wake-up is set: leaving the pause is
  a change that evaluates the ticket anyway. This is Request Tracker's ExcludeTimeOnIgnoredStatuses and GLPI's
  waiting state for resolution; like GLPI, the default tiers do not pause the response clock.
- **Milestones.** A clock warns at each share of ``warn_at`` (50 % and 75 % by default) and is breached at 100 %.
  Each milestone is a finding instance (clock, resolution cycle, priority, share), so the engine announces it once
  in the combined note; the rule's state keeps the highest milestone raised per clock, cycle and priority, so a pause
  that lowers the share never announces an earlier milestone again. ``wake_at`` is the next milestone of a running
  clock, so a quiet ticket is announced on time.
- **The vendor's own SLA wins** (``use_vendor``): where the mapping reads a due time the vendor computes (ConnectWise,
  Autotask with an SLA, ServiceNow's ``sla_due``, Freshservice's ``fr_due_by``/``due_by``), that clock is the vendor's:
  breached after its due time, warned at shares of the wall time to it. psabridge computes only the clocks the vendor
  does not, and writes its due times back where the vendor lets a client set them and has no SLA of its own
  (``write_due_dates``, Autotask by default); elsewhere the warnings and breaches are announced in the note.
- **No silent defaults.** A ticket whose tenant has no contract tier (or one ``tiers:`` lacks), or no calendar (or
  one ``calendars:`` lacks) when a target counts business time, gets a finding instead of a guessed target: the
  seed's "confirm the client's contract tier in the PSA before committing a response time".

The SLA state for the canonical ticket (``Ticket.sla``, vendor figures merged with psabridge's, the computed fields
listed) is in the rule's saved state under ``sla``; ``sla_of(evaluation)`` reads it for the store.

What it cannot see: SLA terms the contract states but the config does not, time a ticket spent waiting that its
status does not show (a technician who forgets to set "waiting on customer"), and response given by phone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, field_validator

from psabridge.model import NoteKind, Priority, SetFields, SlaClockName, SlaState, SlaStatus, Status, System, Ticket
from psabridge.rules.base import (
    DONE_STATUSES,
    Code,
    Finding,
    Proposal,
    Rule,
    RuleInput,
    RuleOutcome,
    RuleSettings,
    TenantView,
    Transition,
)
from psabridge.rules.calendar import WALL_CLOCK, BusinessCalendar, duration_us, from_us, to_us
from psabridge.rules.sla_clock import Clock, due_us, elapsed_us, merge_pauses
from psabridge.rules.text import TicketText
from psabridge.settings import parse_duration

__all__ = [
    "CLOCKS",
    "ClockReading",
    "PriorityTargets",
    "SlaReport",
    "SlaRule",
    "SlaSettings",
    "TierTargets",
    "compute_sla",
    "sla_of",
]

STEP = "Set the ticket priority and SLA"
CLOCKS: tuple[SlaClockName, ...] = ("response", "plan", "resolution")
_DONE = frozenset(s.value for s in DONE_STATUSES)
_ON_HOLD = [Status.ON_HOLD]


def _business_duration(value: Any) -> timedelta:
    parsed = parse_duration(value)
    if parsed <= timedelta(0):
        raise ValueError(f"{value!r} is not a target: give a positive duration such as 30m, 4h or 16h")
    return parsed


Target = Annotated[timedelta, BeforeValidator(_business_duration)]
"""A target: 30m, 4h, 16h (hours of business time for business clocks: 16h is two 8-hour days)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorityTargets(_Section):
    """The targets of one priority in one tier."""

    response: Target | None = Field(default=None, description="first response within")
    plan: Target | None = Field(default=None, description="resolution plan within (ConnectWise, Autotask)")
    resolution: Target | None = Field(default=None, description="resolved within")
    clock: Clock | None = Field(default=None, description="business or wall; default: the tier's clock")


def _default_pauses() -> dict[SlaClockName, list[Status]]:
    return {"response": [], "plan": list(_ON_HOLD), "resolution": list(_ON_HOLD)}


class TierTargets(_Section):
    """One contract tier: its targets per priority, its clock, and which statuses pause which clock."""

    clock: Clock = Field(default="business", description="business (the tenant's calendar) or wall (24x7)")
    targets: dict[Priority, PriorityTargets] = Field(default_factory=dict, description="per priority")
    pauses: dict[SlaClockName, list[Status]] = Field(
        default_factory=_default_pauses,
        description="canonical statuses that pause each clock (on_hold: waiting on the customer or a vendor)",
    )


def _default_tiers() -> dict[str, TierTargets]:
    def row(response: str, resolution: str, plan: str | None = None, clock: Clock | None = None) -> PriorityTargets:
        return PriorityTargets.model_validate({"response": response, "plan": plan, "resolution": resolution,
                                               "clock": clock})  # fmt: skip

    return {
        "gold": TierTargets(
            targets={
                Priority.P1: row("15m", "4h", "1h", "wall"),
                Priority.P2: row("30m", "8h", "2h"),
                Priority.P3: row("2h", "24h"),
                Priority.P4: row("4h", "40h"),
            }
        ),
        "silver": TierTargets(
            targets={
                Priority.P1: row("30m", "8h", "2h", "wall"),
                Priority.P2: row("1h", "16h", "4h"),
                Priority.P3: row("4h", "40h"),
                Priority.P4: row("8h", "80h"),
            }
        ),
        "bronze": TierTargets(
            targets={
                Priority.P1: row("1h", "8h"),
                Priority.P2: row("2h", "24h"),
                Priority.P3: row("8h", "40h"),
                Priority.P4: row("16h", "80h"),
            }
        ),
    }


class SlaSettings(RuleSettings):
    """Settings of the SLA step."""

    tiers: dict[str, TierTargets] = Field(
        default_factory=_default_tiers, description="contract tier (the tenant's contract_tier) -> targets"
    )
    warn_at: list[float] = Field(
        default_factory=lambda: [0.5, 0.75], description="warn when these shares of a target are used (breach at 1)"
    )
    reopen: Literal["restart", "continue"] = Field(
        default="restart",
        description="a reopened ticket's resolution clock: restart at the reopen, or continue (done time not counted)",
    )
    use_vendor: bool = Field(default=True, description="a due time the vendor computes wins over psabridge's")
    write_due_dates: list[System] = Field(
        default_factory=lambda: [System.AUTOTASK],
        description="vendors whose tickets get psabridge's due times written back when the vendor has no SLA of its "
        "own (the mapping's sla outbound says which fields)",
    )

    @field_validator("warn_at")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        for share in value:
            if not 0 < share < 1:
                raise ValueError(f"{share} is not a share of a target: give numbers between 0 and 1, e.g. 0.5, 0.75")
        return sorted(set(value))


# --- the computation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockReading:
    """One SLA clock of a ticket at a moment.

    Attributes:
        name: response, plan or resolution.
        source: ``vendor`` (the vendor's due time) or ``psabridge`` (computed from the tier's target).
        start: when the clock started (creation; the reopen for a restarted resolution).
        target: the target (psabridge's clocks), or None.
        clock: business or wall (psabridge's clocks), or None.
        due: the due time ("if it resumed now" while paused).
        met_at: when it was met, or None while it runs.
        used: the time counted so far (to ``met_at`` or now).
        share: ``used`` as a share of the target (of the wall time to ``due`` for a vendor's clock).
        paused: the ticket is in a status that pauses this clock.
        state: ok, warning, breached or paused.
        cycle: the resolution cycle (1, and one more per reopen when the clock restarts).
        moments: the milestone moments (share -> instant) of a running clock, breach (1.0) included.
    """

    name: SlaClockName
    source: Literal["vendor", "psabridge"]
    start: datetime
    target: timedelta | None
    clock: Clock | None
    due: datetime
    met_at: datetime | None
    used: timedelta
    share: float
    paused: bool
    state: SlaStatus
    cycle: int
    moments: tuple[tuple[float, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class SlaReport:
    """What ``compute_sla`` found: the clocks, the merged SLA state, and why anything is missing."""

    clocks: tuple[ClockReading, ...]
    sla: SlaState | None
    priority: Priority | None
    tier: str | None
    calendar: BusinessCalendar | None
    problems: tuple[tuple[str, str], ...] = ()  # (finding code, message)
    trace: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Timeline:
    """The ticket's status over its life: (start, end, canonical status) segments up to now."""

    segments: tuple[tuple[datetime, datetime, str | None], ...]
    reopens: tuple[datetime, ...]  # when it went from done back to open
    closes: tuple[datetime, ...]  # when it went from open to done

    def pauses(self, statuses: Iterable[str], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        wanted = set(statuses)
        found = []
        for a, b, status in self.segments:
            if status in wanted and b > start and a < end:
                found.append((max(a, start), min(b, end)))
        return found

    def status_at(self, moment: datetime) -> str | None:
        for a, b, status in self.segments:
            if a <= moment < b:
                return status
        return self.segments[-1][2] if self.segments else None


def _timeline(ticket: Ticket, transitions: Sequence[Transition], created: datetime, now: datetime) -> _Timeline:
    changes = sorted((t for t in transitions if t.field == "status"), key=lambda t: t.at)
    current = ticket.status.value if ticket.status is not None else None
    status = changes[0].before if changes else current
    segments: list[tuple[datetime, datetime, str | None]] = []
    reopens: list[datetime] = []
    closes: list[datetime] = []
    cursor = created
    for change in changes:
        at = max(change.at, created)
        if at > cursor:
            segments.append((cursor, at, status))
            cursor = at
        was_done, is_done = change.before in _DONE, change.after in _DONE
        if was_done and not is_done and change.after is not None:
            reopens.append(at)
        elif is_done and not was_done:
            closes.append(at)
        status = change.after
    end = max(now, cursor)
    if end > cursor:
        segments.append((cursor, end, status))
    return _Timeline(tuple(segments), tuple(reopens), tuple(closes))


def _is_requester(author: str | None, ticket: Ticket) -> bool:
    requester = ticket.requester
    if requester is None or author is None:
        return False
    name = author.strip().lower()
    return name in {(requester.name or "").strip().lower(), (requester.email or "").strip().lower()} - {""}


def _first_response(
    ticket: Ticket, text: TicketText, transitions: Sequence[Transition], created: datetime, vendor: SlaState | None
) -> tuple[datetime | None, str]:
    """When the ticket was first answered, and by what."""
    found: list[tuple[datetime, str]] = []
    if vendor is not None and vendor.responded_at is not None:
        found.append((vendor.responded_at, "the vendor's first-response time"))
    for note in text.human_notes:  # psabridge's own notes are left out
        if (
            note.kind is NoteKind.PUBLIC
            and note.created_at is not None
            and note.created_at >= created
            and note.author
            and not _is_requester(note.author, ticket)
        ):
            found.append((note.created_at, f"a public reply by {note.author}"))
            break
    for change in sorted(transitions, key=lambda t: t.at):
        if change.field == "status" and change.by == "human" and change.before != change.after and change.at >= created:
            found.append((change.at, f"status {change.before} -> {change.after} by a person"))
            break
    if not found:
        return None, ""
    return min(found)


def _milestones(announced: Mapping[str, JsonValue] | None, key: str) -> float:
    if announced is None:
        return 0.0
    value = announced.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def compute_sla(
    ticket: Ticket,
    *,
    settings: SlaSettings,
    tenant: TenantView,
    calendars: Mapping[str, BusinessCalendar],
    now: datetime,
    transitions: Sequence[Transition] = (),
    text: TicketText | None = None,
    priority: Priority | None = None,
    written: Mapping[str, JsonValue] | None = None,
    explain: bool = True,
) -> SlaReport:
    """Every SLA clock of ``ticket`` at ``now`` and the merged SLA state (pure).

    Args:
        ticket: the canonical ticket (its ``sla`` holds the vendor's figures, as the mapping read them).
        settings: the SLA rule's settings for the ticket's tenant.
        tenant: the ticket's client (its contract tier and calendar).
        calendars: the compiled calendars by name.
        now: the moment to read the clocks at (aware).
        transitions: the ticket's recorded transitions.
        text: the ticket's prepared text (built when not given).
        priority: the priority to use (default: the ticket's; the rule passes a correction of the priority rule).
        written: due times psabridge wrote to the vendor (clock -> ISO time): a vendor figure equal to one is ours.
        explain: build the report's trace lines (False: ``SlaReport.trace`` is empty, nothing else differs).
    """
    text = text or TicketText(ticket)
    priority = priority or ticket.priority
    created = ticket.created_at
    trace: list[str] = []
    problems: list[tuple[str, str]] = []
    vendor = ticket.sla.vendor_part() if ticket.sla is not None else None
    if vendor is not None and written:
        # A due time the vendor holds because psabridge wrote it is ours: recomputed, never taken for the vendor's.
        ours = {
            f"{name}_due": None
            for name in CLOCKS
            if (value := getattr(vendor, f"{name}_due")) is not None and written.get(name) == value.isoformat()
        }
        if ours:
            vendor = vendor.model_copy(update=ours)
    if created is None:
        return SlaReport((), vendor, priority, tenant.contract_tier, None, (), ("no creation time: no SLA clock",))
    calendar = calendars.get(tenant.calendar) if tenant.calendar else None
    tier_name = tenant.contract_tier
    tier = settings.tiers.get(tier_name) if tier_name else None
    who = tenant.name or tenant.key or "the ticket's client"
    if tenant.key is None:
        problems.append(("no_contract", "The ticket belongs to no configured client, so it has no contract tier."))
    elif tier_name is None:
        problems.append(("no_contract", f"{who} has no contract tier in psabridge's settings."))
    elif tier is None:
        problems.append(
            (
                "unknown_tier",
                f"{who}'s contract tier {tier_name!r} has no SLA targets "
                f"(tiers: {', '.join(settings.tiers) or 'none'}).",
            )
        )
    targets = tier.targets.get(priority) if tier is not None and priority is not None else None
    if tier is not None and priority is None:
        trace.append("no priority: no psabridge targets")
    needs_calendar = tier is not None and any((row.clock or tier.clock) == "business" for row in tier.targets.values())
    if tenant.key is not None and needs_calendar and calendar is None:
        if tenant.calendar is None:
            problems.append(("no_calendar", f"{who} has no business calendar in psabridge's settings."))
        else:
            problems.append(
                (
                    "no_calendar",
                    f"{who}'s calendar {tenant.calendar!r} is not defined (calendars: "
                    f"{', '.join(calendars) or 'none'}).",
                )
            )
    if vendor is None and targets is None and not explain:
        # No vendor figures and no psabridge targets (the client has no contract tier, or the tier none for this
        # priority): there is no clock to read; what follows only times the clocks and explains them.
        return SlaReport((), None, priority, tier_name, calendar, tuple(problems))
    timeline = _timeline(ticket, transitions, created, now)
    done_now = ticket.status is not None and ticket.status.value in _DONE
    # Resolution cycle: the current life of the ticket (a reopen restarts it under ``restart``).
    restart = settings.reopen == "restart"
    reopened_at = timeline.reopens[-1] if timeline.reopens else None
    cycle = len(timeline.reopens) + 1 if restart else 1
    resolution_start = reopened_at if restart and reopened_at is not None else created
    resolved_at: datetime | None = None
    if done_now:
        closes = [c for c in timeline.closes if c >= resolution_start]
        if closes:
            resolved_at = closes[-1]
        elif vendor is not None and vendor.resolved_at is not None and vendor.resolved_at >= resolution_start:
            resolved_at = vendor.resolved_at
        else:
            resolved_at = ticket.closed_at or ticket.updated_at or now
    responded_at, responded_by = _first_response(ticket, text, transitions, created, vendor)
    if responded_at is None and resolved_at is not None:
        responded_at, responded_by = resolved_at, "the resolution"
    if responded_at is not None and explain:
        trace.append(f"responded {responded_at.isoformat()} ({responded_by})")
    planned_at = vendor.planned_at if vendor is not None else None
    planned_at = planned_at or (timeline.closes[0] if timeline.closes else None) or resolved_at
    met: dict[SlaClockName, datetime | None] = {"response": responded_at, "plan": planned_at,
                                                "resolution": resolved_at}  # fmt: skip
    starts: dict[SlaClockName, datetime] = {"response": created, "plan": created, "resolution": resolution_start}
    readings: list[ClockReading] = []
    for name in CLOCKS:
        vendor_due = getattr(vendor, f"{name}_due") if vendor is not None else None
        clock_cycle = cycle if name == "resolution" else 1
        if vendor_due is not None and settings.use_vendor:
            readings.append(_vendor_clock(name, starts[name], vendor_due, met[name], now, clock_cycle, settings))
            continue
        target = getattr(targets, name) if targets is not None else None
        if target is None or tier is None:
            continue
        kind: Clock = (targets.clock if targets is not None else None) or tier.clock
        if kind == "business" and calendar is None:
            trace.append(f"{name}: no calendar, not computed")
            continue
        pausing = [s.value for s in tier.pauses.get(name, [])]
        readings.append(
            _our_clock(
                name,
                starts[name],
                target,
                kind,
                calendar,
                timeline,
                pausing,
                met[name],
                now,
                clock_cycle,
                settings,
                created,
                restart,
            )
        )
    sla = _merged(vendor, readings, met, priority, tier_name, calendar)
    return SlaReport(
        tuple(readings), sla, priority, tier_name, calendar, tuple(problems), tuple(trace) if explain else ()
    )


def _share(used: timedelta, whole: timedelta) -> float:
    return used / whole if whole > timedelta(0) else 1.0


def _state(share: float, met: bool, late: bool, paused: bool, warn: float) -> SlaStatus:
    """A met clock is breached only when it was met after its due time; a running one from its due time on."""
    if met:
        return SlaStatus.BREACHED if late else SlaStatus.OK
    if share >= 1.0:
        return SlaStatus.BREACHED
    if paused:
        return SlaStatus.PAUSED
    return SlaStatus.WARNING if share >= warn else SlaStatus.OK


def _vendor_clock(
    name: SlaClockName,
    start: datetime,
    due_at: datetime,
    met_at: datetime | None,
    now: datetime,
    cycle: int,
    settings: SlaSettings,
) -> ClockReading:
    stop = met_at or now
    whole = due_at - start
    used = max(stop - start, timedelta(0))
    share = _share(used, whole) if stop <= due_at else max(1.0, _share(used, whole))
    moments: tuple[tuple[float, datetime], ...] = ()
    if met_at is None:
        moments = tuple((s, start + whole * s) for s in (*settings.warn_at, 1.0))
    warn = settings.warn_at[0] if settings.warn_at else 1.0
    state = _state(share, met_at is not None, met_at is not None and met_at > due_at, False, warn)
    return ClockReading(name, "vendor", start, None, None, due_at, met_at, used, share, False, state, cycle, moments)


def _our_clock(
    name: SlaClockName,
    start: datetime,
    target: timedelta,
    kind: Clock,
    calendar: BusinessCalendar | None,
    timeline: _Timeline,
    pausing: list[str],
    met_at: datetime | None,
    now: datetime,
    cycle: int,
    settings: SlaSettings,
    created: datetime,
    restart: bool,
) -> ClockReading:
    stop = met_at or now
    pauses = timeline.pauses(pausing, start, max(stop, start))
    if name == "resolution" and not restart:  # continue: the time the ticket spent done before a reopen is paused
        done_spans = timeline.pauses(_DONE, created, max(stop, created))
        pauses.extend((a, b) for a, b in done_spans if met_at is None or b <= met_at)
    # Microseconds on the clock's timeline, the pauses merged once for every reading of this clock.
    line = WALL_CLOCK if kind == "wall" or calendar is None else calendar.timeline
    spans = merge_pauses(pauses)
    begin, length = to_us(start, "start"), duration_us(target, "target")
    due_at = from_us(due_us(line, begin, length, spans))
    used = timedelta(microseconds=elapsed_us(line, begin, to_us(stop, "now"), spans))
    share = _share(used, target)
    paused = met_at is None and timeline.status_at(now - timedelta(microseconds=1)) in set(pausing)
    moments: tuple[tuple[float, datetime], ...] = ()
    if met_at is None and not paused:
        warned = [(s, from_us(due_us(line, begin, round(length * s), spans))) for s in settings.warn_at]
        moments = (*warned, (1.0, due_at))
    warn = settings.warn_at[0] if settings.warn_at else 1.0
    state = _state(share, met_at is not None, met_at is not None and met_at > due_at, paused, warn)
    return ClockReading(name, "psabridge", start, target, kind, due_at, met_at, used, share, paused, state, cycle,
                        moments)  # fmt: skip


_RANK = {SlaStatus.OK: 0, SlaStatus.PAUSED: 1, SlaStatus.WARNING: 2, SlaStatus.BREACHED: 3}


def _merged(
    vendor: SlaState | None,
    readings: Sequence[ClockReading],
    met: Mapping[SlaClockName, datetime | None],
    priority: Priority | None,
    tier: str | None,
    calendar: BusinessCalendar | None,
) -> SlaState | None:
    """The vendor's figures with psabridge's added; the fields psabridge filled are listed in ``computed``.

    The overall ``state`` is the worst of the vendor's and psabridge's clocks.
    """
    base: dict[str, Any] = vendor.model_dump() if vendor is not None else {}
    computed: list[str] = []

    def put(field: str, value: Any) -> None:
        if value is not None and base.get(field) is None:
            base[field] = value
            computed.append(field)

    ours = [r for r in readings if r.source == "psabridge"]
    for reading in ours:
        put(f"{reading.name}_due", reading.due)
        put(f"{reading.name}_target", reading.target)
        put("clock", reading.clock)
    if ours:
        put("policy", f"{tier} {priority.value}" if tier and priority else None)
        put("calendar", calendar.name if calendar is not None and any(r.clock == "business" for r in ours) else None)
    at = {"response": "responded_at", "plan": "planned_at", "resolution": "resolved_at"}
    for reading in readings:
        put(at[reading.name], met.get(reading.name))
        put(f"{reading.name}_state", reading.state)
    if readings:
        worst = max((r.state for r in readings), key=_RANK.__getitem__)
        vendor_state = vendor.state if vendor is not None else None
        if (vendor_state is None or _RANK[worst] > _RANK[vendor_state]) and base.get("state") != worst:
            base["state"] = worst
            computed.append("state")
    if not computed:
        return vendor
    base["computed"] = tuple(dict.fromkeys(computed))
    base["computed_at"] = None
    return SlaState.model_validate(base)


# --- the rule ----------------------------------------------------------------------------------------------------


def _local(moment: datetime, calendar: BusinessCalendar | None, tenant: TenantView) -> str:
    """``moment`` as the client reads it, in the calendar's zone (else the tenant's): ``Thu 14 May 2026 13:00 EDT``."""
    zone: ZoneInfo | None = calendar.zone if calendar is not None else None
    if zone is None:
        try:
            zone = ZoneInfo(tenant.timezone)
        except (ValueError, ZoneInfoNotFoundError):
            zone = None
    shown = moment.astimezone(zone) if zone is not None else moment
    return shown.strftime("%a %d %b %Y %H:%M %Z")


def _span(value: timedelta) -> str:
    minutes = round(value.total_seconds() / 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if hours else f"{rest}m"


_LABEL = {"response": "First response", "plan": "Resolution plan", "resolution": "Resolution"}


class SlaRule(Rule[SlaSettings]):
    """Each SLA clock is tracked against its target; its warnings and breaches are announced once, on time."""

    id: ClassVar[str] = "sla"
    step: ClassVar[str] = STEP
    settings_model = SlaSettings
    codes: ClassVar[dict[str, Code]] = {
        "no_contract": Code("warning", "the client has no contract tier: confirm it before committing a response time"),
        "unknown_tier": Code("warning", "the client's contract tier has no SLA targets in the rules file"),
        "no_calendar": Code("warning", "the client has no business calendar (or one the rules file lacks)"),
        "response_warning": Code("warning", "the first-response target is running out"),
        "response_breached": Code("error", "the first-response target was missed"),
        "plan_warning": Code("warning", "the resolution-plan target is running out"),
        "plan_breached": Code("error", "the resolution-plan target was missed"),
        "resolution_warning": Code("warning", "the resolution target is running out"),
        "resolution_breached": Code("error", "the resolution target was missed"),
        "due_dates": Code("info", "psabridge's due times are written to the vendor", effect="set", actionable=True),
    }

    def evaluate(self, data: RuleInput[SlaSettings]) -> RuleOutcome:
        """Read every clock, raise the milestones reached, propose the due times where they are written back."""
        settings, ticket, tenant = data.settings, data.ticket, data.tenant
        state = data.state or {}
        announced = state.get("announced")
        announced = announced if isinstance(announced, dict) else {}
        written = state.get("written")
        written = written if isinstance(written, dict) else {}
        corrected = data.context.corrections.get("priority")
        priority = Priority(corrected) if corrected is not None and corrected in Priority.__members__ else None
        priority = priority or ticket.priority
        report = compute_sla(
            ticket,
            settings=settings,
            tenant=tenant,
            calendars=data.context.calendars,
            now=data.now,
            transitions=data.transitions,
            text=data.text,
            priority=priority,
            written=written,
            explain=data.explain,
        )
        trace = list(report.trace)
        if corrected and priority is not ticket.priority and data.explain:
            trace.append(f"priority {priority} (the priority rule's correction)")
        findings: list[Finding] = [
            self.finding(code, message, advice=_CONTRACT_ADVICE, evidence=_tenant_evidence(tenant))
            for code, message in report.problems
        ]
        new_announced: dict[str, JsonValue] = dict(announced)
        wake_at: datetime | None = None
        for reading in report.clocks:
            key = f"{reading.name}:{reading.cycle}:{priority.value if priority else '-'}"
            reached = _reached(reading, settings)
            # A clock met in time raises nothing more; one still running keeps the highest milestone announced, so a
            # pause that lowers its share never announces an earlier one again.
            raised = 0.0 if reading.met_at is not None and reached < 1.0 else max(_milestones(announced, key), reached)
            if raised >= 1.0 and reading.state is not SlaStatus.BREACHED:
                raised = max(s for s in (0.0, *settings.warn_at) if s <= reading.share)  # a breach undone (priority)
            if data.explain:
                trace.append(
                    f"{reading.name}: {reading.source}, due {reading.due.isoformat()}, {reading.share:.0%} used, "
                    f"{reading.state.value}" + (f", met {reading.met_at.isoformat()}" if reading.met_at else "")
                )
            if raised > 0:
                new_announced[key] = raised
                findings.append(self._milestone(reading, raised, key, priority, report.calendar, tenant))
            for _share_, moment in reading.moments:
                if moment > data.now and _share_ > raised and (wake_at is None or moment < wake_at):
                    wake_at = moment
        actions: list[Proposal] = []
        new_written = dict(written)
        if ticket.system in settings.write_due_dates:
            proposal, due_finding, wrote = self._write_back(data, report, priority)
            if proposal is not None and due_finding is not None:
                findings.append(due_finding)
                actions.append(proposal)
                new_written.update(wrote)
        new_state: dict[str, JsonValue] = {}
        if new_announced:
            new_state["announced"] = new_announced
        if new_written:
            new_state["written"] = new_written
        if report.sla is not None:
            new_state["sla"] = report.sla.model_dump(mode="json", exclude_defaults=True)
        return RuleOutcome(
            findings=tuple(findings),
            actions=tuple(actions),
            state=new_state if new_state or data.state else None,
            wake_at=wake_at,
            trace=tuple(trace),
        )

    def _milestone(
        self,
        reading: ClockReading,
        raised: float,
        key: str,
        priority: Priority | None,
        calendar: BusinessCalendar | None,
        tenant: TenantView,
    ) -> Finding:
        label = _LABEL[reading.name]
        where = (
            f"{_span(reading.target)} {reading.clock}-clock target"
            if reading.target is not None
            else "the vendor's SLA"
        )
        due_text = _local(reading.due, calendar, tenant)
        evidence: dict[str, JsonValue] = {
            "clock": reading.name,
            "source": reading.source,
            "start": reading.start.isoformat(),
            "due": reading.due.isoformat(),
            "met_at": reading.met_at.isoformat() if reading.met_at else None,
            "used": reading.used.total_seconds(),
            "share": round(reading.share, 4),
            "target": reading.target.total_seconds() if reading.target is not None else None,
            "priority": priority.value if priority else None,
            "cycle": reading.cycle,
        }
        if raised >= 1.0:
            when = f"was due {due_text}" + (f", met {_local(reading.met_at, calendar, tenant)}" if reading.met_at
                                            else "")  # fmt: skip
            return self.finding(
                f"{reading.name}_breached",
                f"{label} SLA breached ({where}): {when}.",
                advice="Escalate per the escalation matrix and tell the client what happens next; record why in the "
                "ticket for SLA reporting.",
                evidence=evidence,
                severity="critical" if priority is Priority.P1 else None,
                instance=f"{key}:100",
            )
        state = "paused" if reading.paused else f"{reading.share:.0%} used"
        return self.finding(
            f"{reading.name}_warning",
            f"{label} due {due_text}: {raised:.0%} of the {where} reached ({state}).",
            advice="Respond or update the client before the due time, or set the ticket on hold if it waits on them.",
            evidence=evidence,
            instance=f"{key}:{round(raised * 100)}",
        )

    def _write_back(
        self, data: RuleInput[SlaSettings], report: SlaReport, priority: Priority | None
    ) -> tuple[Proposal | None, Finding | None, dict[str, JsonValue]]:
        ticket = data.ticket
        if ticket.status is not None and ticket.status.value in _DONE:
            return None, None, {}
        if ticket.sla is not None and (vendor := ticket.sla.vendor_part()) is not None and vendor.policy is not None:
            return None, None, {}  # the vendor has an SLA of its own: its figures are not ours to set
        ours = {r.name: r for r in report.clocks if r.source == "psabridge" and r.name != "plan"}
        if not ours:
            return None, None, {}
        fields = {f"{name}_due": r.due.isoformat() for name, r in ours.items()}
        wrote: dict[str, JsonValue] = {name: r.due.isoformat() for name, r in ours.items()}
        action = SetFields(
            ticket_key=ticket.key,
            target=ticket.connection,
            origin=f"rules.{self.id}",
            reason=f"SLA: {report.tier} {priority.value if priority else ''} due times".strip(),
            fields={"sla": dict(fields)},
        )
        shown = "; ".join(
            f"{_LABEL[name].lower()} by {_local(r.due, report.calendar, data.tenant)}" for name, r in ours.items()
        )
        finding = self.finding(
            "due_dates",
            f"SLA committed for {report.tier} {priority.value if priority else ''}: {shown}.",
            evidence={"due": dict(fields), "tier": report.tier, "priority": priority.value if priority else None},
            instance=",".join(f"{k}={v}" for k, v in sorted(fields.items())),
        )
        return Proposal("due_dates", action, key="sla"), finding, wrote


def _reached(reading: ClockReading, settings: SlaSettings) -> float:
    """The highest milestone (warning share, or 1.0 for a breach) the clock has reached."""
    if reading.state is SlaStatus.BREACHED:
        return 1.0
    if reading.met_at is not None:
        return 0.0
    reached = [s for s in settings.warn_at if reading.share >= s]
    return max(reached) if reached else 0.0


def _tenant_evidence(tenant: TenantView) -> dict[str, JsonValue]:
    return {"tenant": tenant.key, "contract_tier": tenant.contract_tier, "calendar": tenant.calendar}


_CONTRACT_ADVICE = (
    "Confirm the client's contract tier in the PSA before committing a response time, then set the tenant's "
    "contract_tier and calendar in psabridge's settings (and the tier's targets in the rules file)."
)


def sla_of(states: Mapping[str, Any]) -> SlaState | None:
    """The SLA state the rule computed, from its saved state (``Evaluation.results``' outcome, or the store's).

    Args:
        states: the SLA rule's state (``{"sla": {...}, ...}``).
    """
    data = states.get("sla")
    return SlaState.model_validate(data) if isinstance(data, dict) else None
