"""A fast, deterministic, vendor-neutral ticket generator: SeedTickets that vendor simulators turn into records.

``generate_tickets(world, count, anchor=...)`` gives the same tickets for the same world seed, count, anchor,
tenants, hand-off queue and salt. The first tickets follow a fixed showcase plan, so even a handful covers every
checklist scenario (multi-user outage, identity-verified and unverified password resets, a printer that breaks the
day after Patch Tuesday, a complete hand-off and a bare "please assist" ...); the rest are drawn at random from the
templates in scenarios.py. Tickets come back ordered by creation time, so a vendor that numbers them in order gets
ids that grow with time, as real systems do.
"""

from __future__ import annotations

import gc
import random
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from psabridge_sandbox.scenarios import EVENT_ID, HEX_CODE, TEMPLATES, Scenario, Template
from psabridge_sandbox.vocabulary import Kind, Level, NoteKind, Priority, Source, Status
from psabridge_sandbox.world import Asset, Contact, Queue, Technician, Tenant, World

__all__ = ["SeedNote", "SeedTicket", "SeedTimeEntry", "generate_tickets", "patch_tuesdays"]

WINDOW = timedelta(days=120)
"""How far back seed tickets are created, before the anchor."""


@dataclass(frozen=True, slots=True)
class SeedNote:
    """A note on a seed ticket. ``author_ref`` is a technician identifier or the requester's e-mail."""

    kind: NoteKind
    author: str
    author_ref: str
    text: str
    created_at: datetime
    by_requester: bool = False


@dataclass(frozen=True, slots=True)
class SeedTimeEntry:
    """Time a technician logged against a seed ticket."""

    minutes: int
    technician: Technician
    started_at: datetime
    note: str
    billable: bool


@dataclass(frozen=True, slots=True)
class SeedTicket:
    """One vendor-neutral ticket of the seed world. Times are timezone-aware UTC."""

    number: int  # 1..count in creation order
    template: str
    tenant: Tenant
    requester: Contact
    summary: str
    description: str  # in the user's words
    priority: Priority  # intended priority of the checklist's SLA matrix
    impact: Level
    urgency: Level
    kind: Kind
    category: str
    subcategory: str
    source: Source
    status: Status
    queue: Queue
    tier: int
    assignee: Technician | None
    asset: Asset | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    notes: tuple[SeedNote, ...]
    time_entries: tuple[SeedTimeEntry, ...]
    error_texts: tuple[str, ...]  # verbatim error messages, also quoted in the description or notes
    identity_verified: bool | None  # for password resets: True verified (and how), None not noted
    verified_by: str | None
    scenarios: frozenset[Scenario]

    @property
    def error_codes(self) -> tuple[str, ...]:
        """The Windows event ids and hex codes inside the error texts, e.g. ``Event ID 4625``, ``0x80070005``."""
        found: list[str] = []
        for text in self.error_texts:
            found.extend(EVENT_ID.findall(text))
            found.extend(HEX_CODE.findall(text))
        return tuple(dict.fromkeys(found))


def patch_tuesdays(start: date, end: date) -> list[date]:
    """Microsoft's Patch Tuesdays (second Tuesday of each month) from ``start`` to ``end`` inclusive."""
    found: list[date] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        first = date(year, month, 1)
        tuesday = first + timedelta(days=(1 - first.weekday()) % 7 + 7)
        if start <= tuesday <= end:
            found.append(tuesday)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


Escalation = Literal["complete", "bare", "none"]
Resolution = Literal["good", "poor"]


@dataclass(frozen=True)
class _Plan:
    """Forced choices for one showcase ticket; None leaves a choice to chance."""

    template: str
    status: Status
    escalation: Escalation = "none"
    resolution: Resolution | None = None
    time: bool | None = None
    vip: bool = False
    patch: bool = False
    verified: bool | None = None


# The first tickets of every generation: together they exercise each checklist scenario at least once.
SHOWCASE: tuple[_Plan, ...] = (
    _Plan("m365_outage", Status.IN_PROGRESS, escalation="complete", vip=True),
    _Plan("network_outage", Status.CLOSED, escalation="complete", resolution="good", time=True),
    _Plan("password_reset", Status.CLOSED, resolution="good", time=True, verified=True),
    _Plan("password_reset", Status.CLOSED, resolution="good", time=False, vip=True, verified=False),
    _Plan("printer_mapping", Status.RESOLVED, resolution="good", time=True, patch=True),
    _Plan("outlook_profile", Status.CLOSED, resolution="poor", time=False),
    _Plan("vpn", Status.IN_PROGRESS, escalation="bare"),
    _Plan("phishing", Status.IN_PROGRESS, escalation="complete"),
    _Plan("slow_after_update", Status.CLOSED, resolution="poor", time=True, patch=True),
    _Plan("wifi_degraded", Status.ON_HOLD, escalation="bare"),
    _Plan("new_user", Status.ASSIGNED),
    _Plan("app_crash", Status.CLOSED, escalation="complete", resolution="good", time=True),
    _Plan("access_denied", Status.NEW),
    _Plan("disk_alert", Status.NEW),
    _Plan("ransomware", Status.IN_PROGRESS, escalation="complete"),
    _Plan("account_lockout", Status.CLOSED, resolution="good", time=False),
)

_TOPIC_QUEUE = {
    "network": "Networking",
    "messaging": "Messaging/M365",
    "security": "Security",
    "infrastructure": "Infrastructure",
    "general": "Infrastructure",
}
_LEVELS: dict[Priority, tuple[tuple[Level, Level], ...]] = {
    # (impact, urgency) chosen so that ServiceNow's derivation (impact x urgency -> priority) gives the intended
    # priority: (1,1)=1, (1,2)/(2,1)=2, (1,3)/(2,2)/(3,1)=3, (2,3)/(3,2)=4, (3,3)=5 (VENDOR-APIS.md 3.4).
    Priority.P1: ((Level.HIGH, Level.HIGH),),
    Priority.P2: ((Level.MEDIUM, Level.HIGH), (Level.MEDIUM, Level.HIGH), (Level.HIGH, Level.MEDIUM)),
    Priority.P3: ((Level.MEDIUM, Level.MEDIUM), (Level.MEDIUM, Level.MEDIUM), (Level.LOW, Level.HIGH)),
    Priority.P4: ((Level.LOW, Level.MEDIUM), (Level.MEDIUM, Level.LOW), (Level.LOW, Level.LOW)),
}
_RESOLVE_HOURS = {Priority.P1: (1, 8), Priority.P2: (2, 30), Priority.P3: (4, 96), Priority.P4: (8, 168)}
_PRIORITY_TAG = {
    Priority.P1: Scenario.P1_OUTAGE,
    Priority.P2: Scenario.P2_USER_BLOCKED,
    Priority.P3: Scenario.P3_DEGRADED,
    Priority.P4: Scenario.P4_REQUEST,
}
_ERROR_LINES = (' It says "{e}"', " The error is: {e}", " I took a screenshot, it says: {e}", " Message: {e}")
_POOR = ("Rebooted and it worked", "Rebooted and it worked.", "rebooted, working now", "Fixed.")
_BARE = ("please assist", "Please assist.", "pls assist", "Escalating - please assist")
_VERIFY_HOW = (
    "callback to the number on file",
    "Teams DM to the user's known account (second channel)",
    "manager verification",
)
_TIME_NOTES = (
    "Remote session via ScreenConnect",
    "Phone call with the user",
    "Diagnosis in RMM",
    "Documented in IT Glue and tested with the user",
    "Vendor call",
)
_OPEN_WEIGHTS_RECENT = ((Status.NEW, 45), (Status.ASSIGNED, 25), (Status.IN_PROGRESS, 30))
_OPEN_WEIGHTS_DAYS = (
    (Status.NEW, 10),
    (Status.ASSIGNED, 15),
    (Status.IN_PROGRESS, 30),
    (Status.ON_HOLD, 10),
    (Status.RESOLVED, 20),
    (Status.CLOSED, 15),
)
_OPEN_WEIGHTS_OLD = (
    (Status.CLOSED, 82),
    (Status.RESOLVED, 5),
    (Status.CANCELLED, 3),
    (Status.ON_HOLD, 5),
    (Status.IN_PROGRESS, 5),
)
_DONE = (Status.RESOLVED, Status.CLOSED, Status.CANCELLED)


_TOPICS = ("network", "messaging", "security", "infrastructure", "general")
_BIT = {scenario: 1 << index for index, scenario in enumerate(Scenario)}
_TAG_SETS: dict[int, frozenset[Scenario]] = {}


def _tags(mask: int) -> frozenset[Scenario]:
    """The scenario set of a bit mask (cached: a few hundred distinct sets cover 100,000 tickets)."""
    found = _TAG_SETS.get(mask)
    if found is None:
        found = _TAG_SETS[mask] = frozenset(s for s, bit in _BIT.items() if mask & bit)
    return found


def _cumulative(weights: list[float]) -> list[float]:
    total = 0.0
    out: list[float] = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _mask(scenarios: frozenset[Scenario] | set[Scenario]) -> int:
    mask = 0
    for scenario in scenarios:
        mask |= _BIT[scenario]
    return mask


@dataclass(frozen=True)
class _Prepared:
    """A template with what the generator needs precomputed."""

    template: Template
    mask: int  # its tags and its priority's tag
    error_sets: tuple[tuple[tuple[str, ...], int], ...]  # (texts, EVENT_ID/HEX mask)


def _prepare(template: Template) -> _Prepared:
    sets = []
    for texts in template.errors:
        mask = 0
        if any(EVENT_ID.search(text) for text in texts):
            mask |= _BIT[Scenario.EVENT_ID_ERROR]
        if any(HEX_CODE.search(text) for text in texts):
            mask |= _BIT[Scenario.HEX_ERROR]
        sets.append((texts, mask))
    return _Prepared(template, _mask(template.tags) | _BIT[_PRIORITY_TAG[template.priority]], tuple(sets))


_PREPARED = tuple(_prepare(t) for t in TEMPLATES)
_BY_KEY = {p.template.key: p for p in _PREPARED}
_TEMPLATE_CUM = _cumulative([t.weight for t in TEMPLATES])
_STATUS_TABLES = tuple(
    (tuple(s for s, _ in table), _cumulative([w for _, w in table]))
    for table in (_OPEN_WEIGHTS_RECENT, _OPEN_WEIGHTS_DAYS, _OPEN_WEIGHTS_OLD)
)


class _Context:
    """Lookups built once per generation, so each ticket costs only a few random draws."""

    def __init__(self, world: World, tenants: tuple[str, ...], handoff: Queue | None, anchor: datetime) -> None:
        self.anchor = anchor
        self.tenants = tuple(world.tenant(key) for key in tenants)
        self.contacts = {t.key: world.contacts_of(t.key) for t in self.tenants}
        self.tenant_cum = _cumulative([len(self.contacts[t.key]) for t in self.tenants])
        self.vips = {t.key: tuple(c for c in self.contacts[t.key] if c.vip) for t in self.tenants}
        self.vip_tenants = tuple(t for t in self.tenants if self.vips[t.key])
        self.personal: dict[int, Asset] = {}
        self.by_kind: dict[tuple[str, str], tuple[Asset, ...]] = {}
        for tenant in self.tenants:
            kinds: dict[str, list[Asset]] = {}
            for asset in world.assets_of(tenant.key):
                if asset.owner is not None:
                    self.personal[asset.owner] = asset
                kinds.setdefault(asset.kind, []).append(asset)
            for kind, assets in kinds.items():
                self.by_kind[tenant.key, kind] = tuple(assets)
        self.tier1 = tuple(t for t in world.technicians if t.tier == 1)
        self.by_topic = {
            topic: tuple(t for t in world.technicians if t.tier > 1 and topic in t.topics) or self.tier1
            for topic in _TOPICS
        }
        self.service_desk = world.queue("Service Desk")
        self.topic_queue = {topic: world.queue(name) for topic, name in _TOPIC_QUEUE.items()}
        self.handoff = handoff
        first_day = (anchor - WINDOW).date()
        days = (d + timedelta(days=1) for d in patch_tuesdays(first_day, anchor.date()))
        self.patch_days = tuple(d for d in days if d < anchor.date())
        self.patch_set = frozenset(self.patch_days)


def generate_tickets(
    world: World,
    count: int,
    *,
    anchor: datetime,
    tenants: tuple[str, ...] | None = None,
    handoff_queue: str | None = None,
    salt: str = "",
) -> list[SeedTicket]:
    """Generate ``count`` seed tickets created in the 120 days before ``anchor``, ordered by creation time.

    Args:
        world: the seed world (its seed seeds the tickets too).
        count: how many tickets, from a handful to 100,000 or more.
        anchor: "now" for the seed data (timezone-aware); nothing is created or updated after it.
        tenants: tenant keys to draw requesters from (default: every tenant).
        handoff_queue: a client hand-off queue (e.g. "MSP Support"); about a third of that client's tickets are put
            there, as a client's ITSM hands work to the MSP.
        salt: varies the tickets between vendors that share a world and seed (use the service name).
    """
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    if count < 0:
        raise ValueError("count must not be negative")
    anchor = anchor.astimezone(UTC).replace(microsecond=0)
    handoff = world.queue(handoff_queue) if handoff_queue else None
    ctx = _Context(world, tenants or tuple(t.key for t in world.tenants), handoff, anchor)
    rng = random.Random(f"psabridge-tickets:{world.seed}:{salt}")
    # About ten objects per ticket and no reference cycles: the cyclic garbage collector would only walk the growing
    # heap again and again (a third of the time for 100,000 tickets), so it rests while we generate.
    collecting = gc.isenabled()
    gc.disable()
    try:
        tickets = [_ticket(ctx, rng, SHOWCASE[i] if i < len(SHOWCASE) else None) for i in range(count)]
    finally:
        if collecting:
            gc.enable()
    tickets.sort(key=lambda t: t.created_at)
    for number, ticket in enumerate(tickets, start=1):
        # Numbers follow creation order, known only after sorting; the ticket is not shared yet, so setting the
        # field of the frozen dataclass here is safe (dataclasses itself does the same in __init__).
        object.__setattr__(ticket, "number", number)
    return tickets


# Hot-path constants: module globals are cheaper to read than enum members, and ints than enum hashes.
_NEW = Status.NEW
_CLOSED = Status.CLOSED
_RESOLVED = Status.RESOLVED
_CANCELLED = Status.CANCELLED
_IN_PROGRESS = Status.IN_PROGRESS
_ON_HOLD = Status.ON_HOLD
_INTERNAL = NoteKind.INTERNAL
_PUBLIC = NoteKind.PUBLIC
_RESOLUTION = NoteKind.RESOLUTION
_B_CLOSED_WITHOUT_TIME = _BIT[Scenario.CLOSED_WITHOUT_TIME]
_B_CLOSED_WITH_TIME = _BIT[Scenario.CLOSED_WITH_TIME]
_B_ESCALATION_BARE = _BIT[Scenario.ESCALATION_BARE]
_B_ESCALATION_COMPLETE = _BIT[Scenario.ESCALATION_COMPLETE]
_B_PASSWORD_RESET_UNVERIFIED = _BIT[Scenario.PASSWORD_RESET_UNVERIFIED]
_B_PASSWORD_RESET_VERIFIED = _BIT[Scenario.PASSWORD_RESET_VERIFIED]
_B_PATCH_TUESDAY = _BIT[Scenario.PATCH_TUESDAY]
_B_RESOLUTION_GOOD = _BIT[Scenario.RESOLUTION_GOOD]
_B_RESOLUTION_POOR = _BIT[Scenario.RESOLUTION_POOR]
_B_VIP_REQUESTER = _BIT[Scenario.VIP_REQUESTER]


def _ticket(ctx: _Context, rng: random.Random, plan: _Plan | None) -> SeedTicket:
    rnd = rng.random
    prepared = _BY_KEY[plan.template] if plan else _PREPARED[bisect(_TEMPLATE_CUM, rnd() * _TEMPLATE_CUM[-1])]
    template = prepared.template
    mask = prepared.mask

    # Who: VIPs appear by plan or now and then at random (only tenants that have VIPs can supply one).
    want_vip = plan.vip if plan else rnd() < 0.05
    if want_vip and ctx.vip_tenants:
        tenant = ctx.vip_tenants[int(rnd() * len(ctx.vip_tenants))]
        people = ctx.vips[tenant.key]
    else:
        tenant = ctx.tenants[bisect(ctx.tenant_cum, rnd() * ctx.tenant_cum[-1])]
        people = ctx.contacts[tenant.key]
    requester = people[int(rnd() * len(people))]
    if requester.vip:
        mask |= _B_VIP_REQUESTER
    if template.asset == "none":
        asset = None
    elif template.asset == "personal":
        asset = ctx.personal.get(requester.id)
    else:
        choices = ctx.by_kind.get((tenant.key, _ASSET_KIND.get(template.asset, template.asset)), ())
        asset = choices[int(rnd() * len(choices))] if choices else None

    # When, and where the ticket stands now.
    anchor = ctx.anchor
    created, status = _when(ctx, rnd, template, plan)
    if created.date() in ctx.patch_set:
        mask |= _B_PATCH_TUESDAY
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    if status in _DONE:
        low, high = _RESOLVE_HOURS[template.priority]
        took = min((low + (high - low) * rnd()) * 3600, (anchor - created).total_seconds() * 0.9)
        done = created + timedelta(seconds=int(max(took, 60)))
        if status is _CLOSED:
            resolved_at = done
            closed_at = min(done + timedelta(seconds=int(rnd() * 72 * 3600)), anchor)
        elif status is _RESOLVED:
            resolved_at = done
        else:
            closed_at = done
    end = resolved_at or closed_at or anchor  # notes come before the resolution, and never after the anchor

    # Words: the user's description with the exact error text, as they would quote it.
    low_n, high_n = template.users
    n = low_n + int(rnd() * (high_n - low_n + 1))
    raw_errors, error_mask = prepared.error_sets[int(rnd() * len(prepared.error_sets))]
    mask |= error_mask
    values = {
        "first": requester.first_name,
        "phone": requester.phone,
        "title": requester.title,
        "site": requester.site,
        "domain": tenant.domain,
        "asset": asset.name if asset else tenant.short,
        "app": tenant.app,
        "app_exe": tenant.app_exe,
        "n": n,
        "kb": 1000 + int(rnd() * 9000),
    }
    errors = tuple(e.format_map(values) if "{" in e else e for e in raw_errors)
    joined_errors = " | ".join(errors)
    values["error_line"] = _ERROR_LINES[int(rnd() * 4)].format(e=" / ".join(errors)) if errors else ""
    summary = template.summaries[int(rnd() * len(template.summaries))].format_map(values)[:100]
    description = template.descriptions[int(rnd() * len(template.descriptions))].format_map(values)
    levels = _LEVELS[template.priority]
    impact, urgency = levels[int(rnd() * len(levels))]
    source = template.sources[int(rnd() * len(template.sources))]

    # Routing: Tier 1 keeps what is in scope; the rest goes to the topic queue, with a complete hand-off or not.
    escalation: Escalation
    if plan:
        escalation = plan.escalation
    elif status is _NEW or rnd() >= (0.1 if template.tier1 else 0.7):
        escalation = "none"
    else:
        escalation = "complete" if rnd() < 0.65 else "bare"
    escalated = escalation != "none"
    queue = ctx.topic_queue[template.topic] if escalated else ctx.service_desk
    handoff = ctx.handoff
    if handoff is not None and handoff.tenant in (None, tenant.key) and rnd() < 0.35:
        queue = handoff
    tier = max(queue.tier, 2 if escalated else 1)
    tier1_tech = ctx.tier1[int(rnd() * len(ctx.tier1))]
    specialists = ctx.by_topic[template.topic]
    assignee = None if status is _NEW else specialists[int(rnd() * len(specialists))] if escalated else tier1_tech
    worker = assignee or tier1_tech

    # The timeline: identity check, triage, acknowledgement, hand-off, customer reply, resolution.
    notes: list[SeedNote] = []
    clock = created

    def step(low_min: float, high_min: float) -> datetime:
        nonlocal clock
        clock = min(clock + timedelta(seconds=int((low_min + (high_min - low_min) * rnd()) * 60)), end)
        return clock

    verified: bool | None = None
    verified_by: str | None = None
    if template.key == "password_reset":
        if (plan.verified if plan and plan.verified is not None else rnd() < 0.6) is True:
            verified, verified_by = True, _VERIFY_HOW[int(rnd() * 3)]
            text = f"Identity verified by {verified_by} before the reset ({requester.phone})."
            mask |= _B_PASSWORD_RESET_VERIFIED
        else:  # "without identity verification noted": nothing on the ticket says it was checked
            text = f"Caller asked for a password reset; reset done as requested by {requester.name}."
            mask |= _B_PASSWORD_RESET_UNVERIFIED
        if status is not _NEW:
            notes.append(SeedNote(_INTERNAL, tier1_tech.name, tier1_tech.identifier, text, step(2, 10)))
    if status is not _NEW:
        triage = f"Triage with {requester.first_name}: {n} user(s) affected."
        if errors:
            triage += " Error captured: " + joined_errors
        notes.append(SeedNote(_INTERNAL, tier1_tech.name, tier1_tech.identifier, triage, step(3, 20)))
        ack = f"Hi {requester.first_name}, thanks for reporting this. We are looking into it and will update you."
        notes.append(SeedNote(_PUBLIC, tier1_tech.name, tier1_tech.identifier, ack, step(1, 15)))
    if escalation == "complete":
        text = (
            f"Escalating to {queue.name} (Tier {tier}).\n"
            f"User impact: {template.impact.format_map(values)}\n"
            f"Repro steps: {template.repro.format_map(values)}\n"
            f"Error text: {joined_errors or 'none shown'}\n"
            f"Already tried: {template.tried.format_map(values)}\n"
            f"Asset: {asset.name + ' ' + asset.rmm_url if asset else 'n/a'}"
        )
        notes.append(SeedNote(_INTERNAL, tier1_tech.name, tier1_tech.identifier, text, step(15, 120)))
        mask |= _B_ESCALATION_COMPLETE
    elif escalation == "bare":
        text = _BARE[int(rnd() * len(_BARE))]
        notes.append(SeedNote(_INTERNAL, tier1_tech.name, tier1_tech.identifier, text, step(15, 120)))
        mask |= _B_ESCALATION_BARE
    if status is _ON_HOLD:
        notes.append(SeedNote(_INTERNAL, worker.name, worker.identifier, "Waiting for the user.", step(10, 60)))
    if status is not _NEW and status is not _CANCELLED and rnd() < 0.3:
        reply = _REPLIES[int(rnd() * len(_REPLIES))]
        notes.append(SeedNote(_PUBLIC, requester.name, requester.email, reply, step(10, 240), True))
    if resolved_at is not None:
        good = plan.resolution == "good" if plan and plan.resolution else rnd() < 0.75
        if good:
            text = template.fixes[int(rnd() * len(template.fixes))].format_map(values)
            mask |= _B_RESOLUTION_GOOD
        else:
            text = _POOR[int(rnd() * len(_POOR))]
            mask |= _B_RESOLUTION_POOR
        notes.append(SeedNote(_RESOLUTION, worker.name, worker.identifier, text, resolved_at))

    # Time logged: most closed tickets have some, some have none (closure hygiene).
    entries: list[SeedTimeEntry] = []
    if status is _CLOSED or status is _RESOLVED:
        with_time = plan.time if plan and plan.time is not None else rnd() < 0.8
    else:
        with_time = (status is _IN_PROGRESS or status is _ON_HOLD) and rnd() < 0.5
    if with_time:
        span = max(((resolved_at or anchor) - created).total_seconds(), 60.0)
        for _ in range(1 + int(rnd() * 3)):
            started = created + timedelta(seconds=int((0.05 + 0.85 * rnd()) * span))
            minutes = _MINUTES[int(rnd() * len(_MINUTES))]
            note = _TIME_NOTES[int(rnd() * len(_TIME_NOTES))]
            entries.append(SeedTimeEntry(minutes, worker, started, note, rnd() < 0.9))
        entries.sort(key=_started)
    if status is _CLOSED:
        mask |= _B_CLOSED_WITH_TIME if entries else _B_CLOSED_WITHOUT_TIME
    notes.sort(key=_created)

    updated = created
    for stamp in (notes[-1].created_at if notes else None, entries[-1].started_at if entries else None, closed_at):
        if stamp is not None and stamp > updated:
            updated = stamp
    return SeedTicket(
        number=0,
        template=template.key,
        tenant=tenant,
        requester=requester,
        summary=summary,
        description=description,
        priority=template.priority,
        impact=impact,
        urgency=urgency,
        kind=template.kind,
        category=template.category,
        subcategory=template.subcategory,
        source=source,
        status=status,
        queue=queue,
        tier=tier,
        assignee=assignee,
        asset=asset,
        created_at=created,
        updated_at=min(updated, anchor),
        resolved_at=resolved_at,
        closed_at=closed_at,
        notes=tuple(notes),
        time_entries=tuple(entries),
        error_texts=errors,
        identity_verified=verified,
        verified_by=verified_by,
        scenarios=_tags(mask),
    )


_ASSET_KIND = {"cloud": "cloud_service"}
_REPLIES = ("Still happening this morning.", "Any update?", "Thanks, I'll be at my desk.")
_MINUTES = (15, 15, 30, 30, 45, 60, 90, 120)


def _started(entry: SeedTimeEntry) -> datetime:
    return entry.started_at


def _created(note: SeedNote) -> datetime:
    return note.created_at


def _when(ctx: _Context, rnd: Callable[[], float], template: Template, plan: _Plan | None) -> tuple[datetime, Status]:
    """Creation time and current status, consistent with each other."""
    anchor = ctx.anchor
    on_patch_day = plan.patch if plan else template.patch_sensitive and rnd() < 0.45
    if on_patch_day and ctx.patch_days:
        day = ctx.patch_days[int(rnd() * len(ctx.patch_days))]
        # 12:00-17:00 UTC: the morning in the Americas, the afternoon in Europe.
        offset = timedelta(seconds=12 * 3600 + int(rnd() * 5 * 3600))
        created = min(datetime(day.year, day.month, day.day, tzinfo=UTC) + offset, anchor - timedelta(minutes=5))
    elif plan and plan.status in _DONE:
        created = anchor - timedelta(seconds=int((7 + 53 * rnd()) * 86400))
    elif plan:
        created = anchor - timedelta(seconds=int((0.5 + 29.5 * rnd()) * 3600))
    else:
        created = anchor - timedelta(seconds=int(_WINDOW_S * rnd() ** 2.2) + 60)
    if plan:
        return created, plan.status
    age = (anchor - created).total_seconds()
    statuses, cum = _STATUS_TABLES[0 if age < 4 * 3600 else 1 if age < 3 * 86400 else 2]
    return created, statuses[bisect(cum, rnd() * cum[-1])]


_WINDOW_S = WINDOW.total_seconds()
