"""The rules engine: ``evaluate_ticket(EvaluationInput, RuleSet) -> Evaluation``, pure and deterministic.

It runs every enabled rule (settings with the tenant's overrides, and a ``RuleContext``: the compiled calendars,
every rule's settings, and the findings and outgoing field corrections of the rules before it), numbers each
finding's occurrence against the findings stored earlier, then applies the guardrails, each explained in the trace:

1. mirror pairs are evaluated once, on ``guardrails.evaluate_mirrors_on`` (the other side gets an empty evaluation);
2. each finding's effect: ``note`` (into the combined note), ``set`` (the rule's proposed action goes out too),
   ``report`` (stored only); an action of a finding without effect ``set`` is withheld (reason ``effect``);
3. never fight a human: a field psabridge set (the ledger) that a person changed afterwards (a ``human``
   transition after the ledger's time, or, for an untracked field, a value that differs from the ledger's) is
   dropped from every later change, for good (``human_changed``);
4. the identity hold: while a finding that holds progress is open, no change may move the status forward
   (``identity_hold``);
5. hands-off (configured statuses and tags, or the store's flag) and ``act_since`` (the ticket last changed before
   it): evaluated, findings stored, nothing written (``hands_off``, ``act_since``; ``Evaluation.would_write`` counts
   what would have gone out);
6. the findings to announce (effect ``note`` or ``set``, not noted yet or a new occurrence) become ONE internal
   ``AddNote``, listing findings announced earlier that are now resolved; no note when nothing is new.

Every action carries an ``occurrence_key``: rule, change and the finding's occurrence for a rule's action,
``checklist-note`` and a digest of the (finding, occurrence) set it announces for the note. A finding's occurrence
is 1 when first seen and goes up when it comes back after being resolved, or when the rule reports a new
``instance`` of it, so running everything again writes nothing twice and a genuine repeat acts again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from psabridge.model import Action, AddNote, NoteKind, SetFields, Status, Ticket
from psabridge.rules.base import (
    NO_KNOWLEDGE,
    NO_OUTCOME,
    NO_TENANT,
    STANDALONE,
    TRACKED_FIELDS,
    ConnectionView,
    Effect,
    Finding,
    Knowledge,
    LedgerEntry,
    LinkView,
    Proposal,
    RuleContext,
    RuleInput,
    RuleOutcome,
    State,
    TenantView,
    Transition,
)
from psabridge.rules.note import NoteLine, ResolvedLine, compose_note
from psabridge.rules.ruleset import RuleSet
from psabridge.rules.text import TicketText

__all__ = [
    "NOTE_RULE",
    "Evaluation",
    "EvaluationInput",
    "FindingRecord",
    "ResolvedFinding",
    "RuleResult",
    "StoredFinding",
    "Withheld",
    "WithheldReason",
    "evaluate_ticket",
]

NOTE_RULE = "checklist-note"
"""The ``rule`` of the combined note in ``Withheld`` and its occurrence key; its action's origin is rules.<this>."""

WithheldReason = Literal["effect", "human_changed", "identity_hold", "hands_off", "act_since"]

_STATUS_RANK = {
    Status.NEW: 0,
    Status.ASSIGNED: 1,
    Status.IN_PROGRESS: 2,
    Status.ON_HOLD: 2,
    Status.RESOLVED: 3,
    Status.CLOSED: 4,
    Status.CANCELLED: 4,
}
_STATUS_BY_VALUE = {s.value: s for s in Status}
_DISABLED = RuleOutcome(trace=("disabled",))
_new_input = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (14 per ticket)


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding the store holds for the ticket from earlier evaluations.

    Attributes:
        occurrence: which occurrence it is (1 first).
        instance: the rule's instance of it (``Finding.instance``).
        noted: this occurrence was announced in a note.
        resolved: it no longer held at a later evaluation.
        resolution_noted: a note has said it was resolved.
        message: its last message (the note names a resolved finding by it).
    """

    rule: str
    code: str
    occurrence: int = 1
    instance: str = ""
    noted: bool = False
    resolved: bool = False
    resolution_noted: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class EvaluationInput:
    """Everything the engine needs about one ticket; the impure side loads it from the store.

    Attributes:
        ticket: the canonical ticket as stored now.
        now: the evaluation time (aware UTC).
        before: the copy at the previous evaluation, or None.
        transitions: every recorded transition of the ticket, oldest first.
        tenant: its client (``TenantView()`` when it has none).
        link: its mirror role.
        connection: its connection (default: named after ``ticket.connection``, not client-owned).
        states: each rule's saved state, by rule id.
        ledger: values psabridge set on it, oldest first.
        knowledge: prior fixes and repeats of its error signature.
        findings: the findings stored for it by earlier evaluations (rules other than the checklist's are ignored).
        act_since: writes happen only when the ticket last changed at or after this (None: no limit).
        hands_off: the store marks the ticket hands-off (besides the configured statuses and tags).
    """

    ticket: Ticket
    now: datetime
    before: Ticket | None = None
    transitions: tuple[Transition, ...] = ()
    tenant: TenantView = NO_TENANT
    link: LinkView = STANDALONE
    connection: ConnectionView | None = None
    states: Mapping[str, State] = field(default_factory=dict)
    ledger: tuple[LedgerEntry, ...] = ()
    knowledge: Knowledge = NO_KNOWLEDGE
    findings: tuple[StoredFinding, ...] = ()
    act_since: datetime | None = None
    hands_off: bool = False


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """A finding that holds now, as the store should keep it (upsert by ticket, rule and code).

    Attributes:
        new: first seen, or a new occurrence, in this evaluation.
        noted: this occurrence has been announced (earlier, or by this evaluation's note).
    """

    finding: Finding
    effect: Effect
    occurrence: int
    new: bool
    noted: bool


@dataclass(frozen=True, slots=True)
class ResolvedFinding:
    """A stored finding that no longer holds, or whose resolution this evaluation's note announces.

    ``newly``: resolved by this evaluation (else resolved earlier); ``announced``: the note lists it as resolved.
    """

    rule: str
    code: str
    occurrence: int
    newly: bool
    announced: bool


@dataclass(frozen=True, slots=True)
class Withheld:
    """An action that was not sent, and why."""

    action: Action
    rule: str
    finding: str
    reason: WithheldReason
    detail: str


class RuleResult(NamedTuple):
    """One rule's part of the evaluation (for ``rules explain``; a NamedTuple, as one is built per rule)."""

    rule: str
    step: str
    enabled: bool
    outcome: RuleOutcome
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What evaluating one ticket came to.

    Attributes:
        ticket_key: the ticket.
        evaluated: False when it was not evaluated (the other side of a mirror pair); then all else is empty.
        results: every rule's outcome, in checklist order.
        findings: the findings that hold now (store them).
        resolved: stored findings resolved now, or whose resolution the note announces (update them).
        actions: what goes to the outbox, each with its ``occurrence_key``, the combined note last.
        withheld: actions not sent, with the reason.
        states: each rule's new saved state, for the rules whose state changed.
        wake_at: the earliest time a rule wants to look again (aware UTC), or None.
        trace: what the engine decided, line by line.
    """

    ticket_key: str
    evaluated: bool = True
    results: tuple[RuleResult, ...] = ()
    findings: tuple[FindingRecord, ...] = ()
    resolved: tuple[ResolvedFinding, ...] = ()
    actions: tuple[Action, ...] = ()
    withheld: tuple[Withheld, ...] = ()
    states: Mapping[str, State] = field(default_factory=dict)
    wake_at: datetime | None = None
    trace: tuple[str, ...] = ()

    @property
    def would_write(self) -> int:
        """How many actions ``act_since`` held back (what a backfill would have written)."""
        return sum(1 for w in self.withheld if w.reason == "act_since")

    @property
    def note(self) -> AddNote | None:
        """The combined note, if one goes out."""
        for action in self.actions:
            if isinstance(action, AddNote) and action.origin == f"rules.{NOTE_RULE}":
                return action
        return None


@dataclass(slots=True)
class _Current:
    finding: Finding
    effect: Effect
    occurrence: int
    new: bool
    pending: bool  # to be announced
    noted: bool  # this occurrence was announced by an earlier note
    held: bool  # holds progress
    order: tuple[int, int]


def _by_order(c: _Current) -> tuple[int, int]:
    return c.order


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _human_change(name: str, data: EvaluationInput) -> str | None:
    """Why ``name`` must not be set again (a person changed it after psabridge did), or None."""
    last: LedgerEntry | None = None
    for entry in data.ledger:
        if entry.field == name and (last is None or entry.set_at >= last.set_at):
            last = entry
    if last is None:
        return None
    for t in data.transitions:
        if t.field == name and t.by == "human" and t.at > last.set_at:
            return (
                f"{name} was set to {last.value!r} by psabridge at {last.set_at.isoformat()} and changed by a person "
                f"to {t.after!r} at {t.at.isoformat()}"
            )
    if name not in TRACKED_FIELDS:
        current = _as_text(getattr(data.ticket, name, None))
        if current != last.value:
            return f"{name} was set to {last.value!r} by psabridge at {last.set_at.isoformat()} and is now {current!r}"
    return None


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def evaluate_ticket(data: EvaluationInput, rules: RuleSet, *, explain: bool = True) -> Evaluation:
    """Evaluate one ticket against the rule set: findings, actions, guardrails, the combined note (pure).

    ``explain=False`` is the fast path (the evaluate step): the engine and the rules (``RuleInput.explain``) build
    no trace lines, so ``Evaluation.trace`` and every ``RuleResult.outcome.trace`` are empty; everything else
    (findings, actions, withheld actions and their reasons, states, wake-ups) is the same as with ``explain=True``,
    the default, which ``rules explain`` and the tests read.
    """
    ticket = data.ticket
    guard = rules.guardrails
    role = data.link.role
    if role != "standalone" and role != guard.evaluate_mirrors_on:
        peer = f" ({data.link.peer})" if data.link.peer else ""
        return Evaluation(
            ticket_key=ticket.key,
            evaluated=False,
            trace=(
                f"not evaluated: mirror {role} of link {data.link.link!r}; mirror pairs are evaluated on their "
                f"{guard.evaluate_mirrors_on} side{peer}",
            ),
        )
    trace: list[str] = []
    text = TicketText(ticket)
    connection = data.connection or ConnectionView(ticket.connection, ticket.system)
    tenant_key = data.tenant.key
    results: list[RuleResult] = []
    current: dict[tuple[str, str], _Current] = {}
    proposals: list[tuple[str, Proposal]] = []
    failed: set[str] = set()  # a rule that failed keeps its stored findings as they are
    stored = {(s.rule, s.code): s for s in data.findings} if data.findings else {}
    wake_at: datetime | None = None
    states: dict[str, State] = {}
    found: dict[str, tuple[Finding, ...]] = {}
    corrections: dict[str, str] = {}
    # One context per evaluation, filled as the rules run: each rule sees the findings and corrections before it.
    context = RuleContext(rules.calendars, rules.settings_by_rule(tenant_key), found, corrections)
    # The fields every rule shares, once; each rule's input adds its state and settings (tuple.__new__ skips the
    # NamedTuple's Python-level constructor: this runs once per rule per ticket).
    shared = (
        ticket,
        text,
        data.before,
        data.transitions,
        data.tenant,
        data.link,
        connection,
        data.ledger,
        data.knowledge,
        data.now,
    )
    tail = (context, explain)
    for index, (rule, tuned) in enumerate(rules.lineup(tenant_key)):
        if tuned is None:
            results.append(RuleResult(rule.id, rule.step, False, _DISABLED if explain else NO_OUTCOME))
            continue
        saved = data.states.get(rule.id) if data.states else None
        try:
            outcome = rule.evaluate(_new_input(RuleInput, (*shared, saved, tuned.settings, *tail)))
            if outcome.trace and not explain:  # a rule that builds its trace regardless
                outcome = outcome._replace(trace=())
        except Exception as exc:  # noqa: BLE001 - one rule's bug must not stop the others; it is reported
            error = f"{type(exc).__name__}: {exc}"
            results.append(RuleResult(rule.id, rule.step, True, RuleOutcome(), error))
            trace.append(f"{rule.id}: failed ({error}); its stored findings are left as they are")
            failed.add(rule.id)
            continue
        results.append(_new_input(RuleResult, (rule.id, rule.step, True, outcome, None)))
        for finding in outcome.findings:
            slot = (rule.id, finding.code)
            spec = rule.codes.get(finding.code)
            if spec is None or finding.rule != rule.id:
                trace.append(f"{rule.id}: ignored finding {finding.rule}.{finding.code} (not one of its codes)")
                continue
            if slot in current:
                trace.append(f"{rule.id}: ignored a second {finding.code!r} finding")
                continue
            effect = tuned.effects[finding.code]
            before = stored.get(slot)
            if before is None:
                occurrence, new = 1, True
            elif before.resolved or before.instance != finding.instance:
                occurrence, new = before.occurrence + 1, True
            else:
                occurrence, new = before.occurrence, False
            noted_already = not new and before is not None and before.noted
            current[slot] = _Current(
                finding,
                effect,
                occurrence,
                new,
                pending=effect != "report" and not noted_already,
                noted=noted_already,
                held=spec.holds_progress,
                order=(index, tuned.order[finding.code]),
            )
            if explain:
                trace.append(
                    f"{rule.id}.{finding.code}: {finding.severity}, effect {effect}, occurrence {occurrence}"
                    + (" (new)" if new else "")
                )
        if outcome.findings:
            found[rule.id] = outcome.findings
        if outcome.actions:
            proposals.extend((rule.id, p) for p in outcome.actions)
            _note_corrections(rule.id, outcome.actions, current, data, corrections)
        if outcome.state is not None and outcome.state != saved:
            states[rule.id] = outcome.state
        if outcome.wake_at is not None:
            if outcome.wake_at <= data.now:
                trace.append(f"{rule.id}: wake-up {outcome.wake_at.isoformat()} is not in the future; ignored")
            elif wake_at is None or outcome.wake_at < wake_at:
                wake_at = outcome.wake_at

    # Guardrails that stop every write.
    blocked: tuple[WithheldReason, str] | None = None
    tags = {t.lower() for t in ticket.tags} & {t.lower() for t in guard.hands_off.tags} if ticket.tags else None
    if data.hands_off:
        blocked = ("hands_off", "the ticket is marked hands-off")
    elif ticket.status is not None and ticket.status in guard.hands_off.statuses:
        blocked = ("hands_off", f"status {ticket.status.value} is hands-off")
    elif tags:
        blocked = ("hands_off", f"tag {sorted(tags)[0]!r} is hands-off")
    elif data.act_since is not None:
        changed = ticket.updated_at or ticket.created_at
        if changed is None:
            blocked = ("act_since", f"the ticket has no change time to compare with act_since {data.act_since}")
        elif changed < data.act_since:
            blocked = (
                "act_since",
                f"last changed {changed.isoformat()}, before act_since {data.act_since.isoformat()}",
            )
    if blocked is not None:
        trace.append(f"writes: none ({blocked[0]}: {blocked[1]})")
    hold = [c for c in current.values() if c.held]

    actions: list[Action] = []
    withheld: list[Withheld] = []
    done: dict[tuple[str, str], list[str]] = {}
    for rule_id, proposal in proposals:
        entry = current.get((rule_id, proposal.finding))
        action = proposal.action
        if entry is None:
            trace.append(f"{rule_id}: dropped an action for finding {proposal.finding!r}, which it did not raise")
            continue
        if entry.effect != "set":
            withheld.append(
                Withheld(action, rule_id, proposal.finding, "effect", f"finding effect is {entry.effect}, not set")
            )
            continue
        key = proposal.key
        if isinstance(action, SetFields):
            fields = dict(action.fields)
            for name in sorted(fields):
                if _as_text(fields[name]) == _as_text(getattr(ticket, name, None)):
                    trace.append(f"{rule_id}: {name} is already {fields[name]!r}")
                    del fields[name]
                    continue
                why = _human_change(name, data)
                if why is not None:
                    withheld.append(Withheld(action, rule_id, proposal.finding, "human_changed", why))
                    trace.append(f"{rule_id}: not setting {name}: {why}")
                    done.setdefault((rule_id, proposal.finding), []).append(
                        f"psabridge leaves {name} as it is: a person changed it after psabridge set it."
                    )
                    del fields[name]
            if "status" in fields and hold:
                wanted = _STATUS_BY_VALUE.get(str(fields["status"]))
                now_rank = _STATUS_RANK[ticket.status] if ticket.status is not None else -1
                if wanted is None or _STATUS_RANK[wanted] > now_rank:
                    detail = (
                        f"status {fields['status']} held while {hold[0].finding.rule}.{hold[0].finding.code} is open"
                    )
                    withheld.append(Withheld(action, rule_id, proposal.finding, "identity_hold", detail))
                    trace.append(f"{rule_id}: {detail}")
                    del fields["status"]
            if not fields:
                continue
            if fields != action.fields:
                action = action.model_copy(update={"fields": fields})
            key = key or ",".join(f"{k}={_as_text(v)}" for k, v in sorted(fields.items()))
        key = key or proposal.finding
        action = action.model_copy(update={"occurrence_key": f"{rule_id}:{key}:{entry.occurrence}"})
        if blocked is not None:
            withheld.append(Withheld(action, rule_id, proposal.finding, blocked[0], blocked[1]))
            continue
        actions.append(action)
        done.setdefault((rule_id, proposal.finding), []).append(_describe(action))

    # The combined note.
    ordered = sorted(current.values(), key=_by_order) if len(current) > 1 else list(current.values())
    pending = [c for c in ordered if c.pending]
    order = rules.order
    resolving: list[tuple[StoredFinding, bool]] = []  # (stored finding, resolved by this evaluation)
    for s in data.findings:
        if s.rule not in order or (s.rule, s.code) in current:
            continue
        if not s.resolved and s.rule not in failed:
            resolving.append((s, True))
        elif s.resolved and s.noted and not s.resolution_noted:
            resolving.append((s, False))
    resolving.sort(key=lambda item: (order[item[0].rule], item[0].code))
    announced = False
    if pending:
        to_list = [s for s, _ in resolving if s.noted]
        still_open = sum(1 for c in current.values() if c.noted)
        lines = [
            NoteLine(c.finding, "; ".join(done.get((c.finding.rule, c.finding.code), ())), c.held) for c in pending
        ]
        text_ = compose_note(
            ticket,
            lines,
            [ResolvedLine(_step(rules, s), s.message or f"{s.rule}.{s.code}") for s in to_list],
            still_open,
            rules.note,
        )
        digest = _digest([f"{c.finding.rule}.{c.finding.code}#{c.occurrence}" for c in pending])
        note = AddNote(
            ticket_key=ticket.key,
            target=ticket.connection,
            origin=f"rules.{NOTE_RULE}",
            reason=f"checklist: {len(pending)} finding(s) to announce",
            text=text_,
            kind=NoteKind.INTERNAL,
            occurrence_key=f"{NOTE_RULE}:{digest}",
        )
        if blocked is not None:
            withheld.append(Withheld(note, NOTE_RULE, "", blocked[0], blocked[1]))
        else:
            actions.append(note)
            announced = True
            if explain:
                trace.append(f"note: {len(pending)} finding(s), {len(to_list)} resolved listed")
    elif explain:
        trace.append("note: nothing new to announce")

    records = tuple(
        FindingRecord(
            c.finding,
            c.effect,
            c.occurrence,
            c.new,
            noted=c.noted or (announced and c.pending),
        )
        for c in ordered
    )
    resolved = tuple(
        ResolvedFinding(s.rule, s.code, s.occurrence, newly, announced=announced and s.noted)
        for s, newly in resolving
        if newly or announced
    )
    if explain:
        trace.extend(f"{r.rule}.{r.code}: resolved" for r in resolved if r.newly)
    return Evaluation(
        ticket_key=ticket.key,
        results=tuple(results),
        findings=records,
        resolved=resolved,
        actions=tuple(actions),
        withheld=tuple(withheld),
        states=states,
        wake_at=wake_at,
        trace=tuple(trace) if explain else (),
    )


def _note_corrections(
    rule_id: str,
    actions: tuple[Proposal, ...],
    current: dict[tuple[str, str], _Current],
    data: EvaluationInput,
    corrections: dict[str, str],
) -> None:
    """Record the field changes of a rule's proposals that go out (effect ``set``, no person changed the field)."""
    for proposal in actions:
        entry = current.get((rule_id, proposal.finding))
        if entry is None or entry.effect != "set" or not isinstance(proposal.action, SetFields):
            continue
        for name, value in proposal.action.fields.items():
            text = _as_text(value)
            if text is not None and name not in corrections and _human_change(name, data) is None:
                corrections[name] = text


def _step(rules: RuleSet, stored: StoredFinding) -> str:
    compiled = rules.rule(stored.rule)
    spec = compiled.rule.codes.get(stored.code)
    return (spec.step if spec is not None else None) or compiled.rule.step


def _describe(action: Action) -> str:
    if isinstance(action, SetFields):
        return "psabridge set " + ", ".join(f"{k} to {_as_text(v)}" for k, v in sorted(action.fields.items())) + "."
    if isinstance(action, AddNote):
        return "psabridge added a follow-up task note."
    return f"psabridge sent {action.type}."
