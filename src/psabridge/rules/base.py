"""The rule contract: what a rule reads (``RuleInput``), what it returns (``RuleOutcome``), and the ``Rule`` base class.

Everything here is a plain immutable record, not pydantic: the engine evaluates thousands of tickets per second per
core and these records are built on every evaluation. Records built once per finding or per ticket are frozen slotted
dataclasses; the two built by every rule on every evaluation (``RuleInput``, ``RuleOutcome``) are NamedTuples, which
cost a third of a frozen dataclass to build. Only a rule's settings are a pydantic model (``RuleSettings``), because
they come from config/rules.yaml and are built once per load.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Generic, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from psabridge.model import Action, Status, System, Ticket

if TYPE_CHECKING:
    from psabridge.rules.calendar import BusinessCalendar
    from psabridge.rules.text import TicketText

__all__ = [
    "DONE_STATUSES",
    "NO_CONTEXT",
    "NO_KNOWLEDGE",
    "NO_TENANT",
    "SEVERITY_RANK",
    "STANDALONE",
    "TRACKED_FIELDS",
    "By",
    "Code",
    "ConnectionView",
    "Effect",
    "Finding",
    "Knowledge",
    "LedgerEntry",
    "LinkRole",
    "LinkView",
    "PriorFix",
    "Proposal",
    "Rule",
    "RuleContext",
    "RuleInput",
    "RuleOutcome",
    "RuleSettings",
    "Severity",
    "State",
    "TenantView",
    "Transition",
    "closures",
    "escalations",
    "is_set",
    "reopens",
    "vip_reason",
]

Severity = Literal["info", "warning", "error", "critical"]
SEVERITY_RANK: Mapping[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}
Effect = Literal["note", "set", "report"]
"""What a finding does: ``note`` goes into the one combined internal note; ``set`` also sends the rule's proposed
action (a field change, a follow-up task); ``report`` is stored only (``psabridge findings``, ``rules explain``)."""
By = Literal["bridge", "human"]
LinkRole = Literal["standalone", "source", "target"]
State = dict[str, JsonValue]
"""A rule's saved state: small JSON, kept per ticket and rule between evaluations."""

TRACKED_FIELDS: tuple[str, ...] = ("status", "priority", "queue", "assignee", "tier")
"""The fields whose changes are recorded as transitions."""
DONE_STATUSES = frozenset({Status.RESOLVED, Status.CLOSED, Status.CANCELLED})


# --- what the impure side loads --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a tracked field (status, priority, queue, assignee, tier), as ingest recorded it.

    ``before`` and ``after`` are the canonical values as strings (``in_progress``, ``P1``, ``2``, an assignee's
    external id or name); ``by`` says whether psabridge's own write caused it (``bridge``) or anyone else (``human``).
    """

    field: str
    before: str | None
    after: str | None
    at: datetime
    by: By = "human"


@dataclass(frozen=True, slots=True)
class TenantView:
    """The MSP client a ticket belongs to, from the settings' ``tenants:`` (``TenantView()`` when it has none)."""

    key: str | None = None
    name: str | None = None
    contract_tier: str | None = None
    calendar: str | None = None
    timezone: str = "UTC"
    vip: frozenset[str] = frozenset()  # lower-cased e-mail addresses

    @classmethod
    def of(
        cls,
        key: str | None,
        *,
        name: str | None = None,
        contract_tier: str | None = None,
        calendar: str | None = None,
        timezone: str = "UTC",
        vip: tuple[str, ...] | list[str] = (),
    ) -> TenantView:
        """A view with the VIP addresses normalised (e.g. from ``settings.tenants[key]``'s fields)."""
        return cls(key, name, contract_tier, calendar, timezone, frozenset(v.strip().lower() for v in vip))


@dataclass(frozen=True, slots=True)
class LinkView:
    """Whether the ticket is a mirror: ``source`` (others mirror it), ``target`` (a mirror), or ``standalone``."""

    role: LinkRole = "standalone"
    peer: str | None = None  # the other side's ticket key
    link: str | None = None  # the link's name in the settings


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """The connection the ticket lives in.

    ``client_owned`` is true for a connection that belongs to one client (``tenant:`` in the settings, e.g. the
    client's own ServiceNow): its internal notes are read by that client's staff, so other clients' data never goes
    there.
    """

    name: str = ""
    system: System | None = None
    client_owned: bool = False


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A value psabridge itself set on this ticket: which field, what value (as a string), when, by which action."""

    field: str
    value: str | None
    set_at: datetime
    origin: str = ""


@dataclass(frozen=True, slots=True)
class PriorFix:
    """A resolved ticket in the store that showed the same error signature (for the knowledge-base step)."""

    ticket_key: str
    number: str | None
    tenant: str | None
    summary: str
    resolution: str
    kb_ids: tuple[str, ...] = ()
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What the store knows about the ticket's error signature, loaded by the impure side.

    Attributes:
        signature: ``error_signature(ticket)``, the key the fixes were looked up by (None: the ticket records no error).
        prior_fixes: resolved tickets (any client of the MSP) with that signature, newest first, this ticket excluded.
        repeats: how many tickets (this one included) showed the signature within the knowledge rule's
            ``repeat_window``.
    """

    signature: str | None = None
    prior_fixes: tuple[PriorFix, ...] = ()
    repeats: int = 0


NO_TENANT = TenantView()
"""The view of a ticket that belongs to no configured tenant."""
STANDALONE = LinkView()
"""The link view of a ticket that is not mirrored."""
NO_KNOWLEDGE = Knowledge()
"""Knowledge of a ticket with no error signature (or none looked up)."""


# --- settings --------------------------------------------------------------------------------------------------------


class RuleSettings(BaseModel):
    """What every rule's settings have: whether it runs, and what each of its findings does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    effects: dict[str, Effect] = Field(
        default_factory=dict,
        description="finding code -> note | set | report (codes left out take the rule's default)",
    )


S = TypeVar("S", bound=RuleSettings)


# --- what a rule returns ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Code:
    """One kind of finding a rule can raise, with its defaults.

    Attributes:
        severity: the default severity (a rule may raise it, e.g. for a VIP requester).
        summary: one line saying what the finding means (for the README, ``rules explain`` and the note's wording).
        effect: what it does unless the rules file says otherwise.
        actionable: the rule proposes an action with it, so ``set`` is allowed.
        holds_progress: while it is open, no rule may move the ticket's status forward (the identity hold).
        step: the checklist step it belongs to, when not the rule's own.
    """

    severity: Severity
    summary: str
    effect: Effect = "note"
    actionable: bool = False
    holds_progress: bool = False
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a rule found wrong or missing on a ticket.

    Attributes:
        code: stable id within the rule (``unverified``); ``rule`` and ``code`` together name the finding.
        rule: the rule's id.
        step: the checklist step, verbatim from the checklist.
        severity: info, warning, error or critical.
        message: what is wrong, in words a technician understands.
        advice: what to do about it.
        evidence: what the rule relied on (matched words, values, times), JSON-safe.
        instance: which occurrence of the problem this is as the rule sees it (e.g. ``closure-2``); when it differs
            from the stored finding's, the finding counts as a new occurrence (noted again, acted on again).
    """

    code: str
    rule: str
    step: str
    severity: Severity
    message: str
    advice: str = ""
    evidence: dict[str, JsonValue] = field(default_factory=dict)
    instance: str = ""


@dataclass(frozen=True, slots=True)
class Proposal:
    """An action a rule proposes with one of its findings; the engine decides whether it goes out.

    ``key`` names the change for the idempotency key (default: ``field=value`` of a SetFields, else the finding's
    code); the engine adds the rule and the finding's occurrence and sets the action's ``occurrence_key``.
    """

    finding: str
    action: Action
    key: str = ""


class RuleOutcome(NamedTuple):
    """What one rule made of one ticket (a NamedTuple: built by every rule on every evaluation).

    Attributes:
        findings: what it found (empty: nothing wrong).
        actions: actions it proposes, each tied to one of its findings.
        state: its new saved state, or None to leave the saved state as it is.
        wake_at: when it wants to look at the ticket again even if nothing changes (aware UTC), or None.
        trace: short lines saying what it looked at and decided, for ``psabridge rules explain``.
    """

    findings: tuple[Finding, ...] = ()
    actions: tuple[Proposal, ...] = ()
    state: State | None = None
    wake_at: datetime | None = None
    trace: tuple[str, ...] = ()


NO_OUTCOME = RuleOutcome()
"""The outcome of a rule that found nothing, proposes nothing and keeps its state (shared: built once)."""


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule may read besides its ticket: config compiled once per load, and what earlier rules decided.

    The engine builds one per evaluation and fills ``found`` and ``corrections`` as the rules run, so a rule sees
    exactly the rules before it in checklist order (the routing rule reads the tier-scope finding, the paging rule a
    priority the priority rule corrects).

    Attributes:
        calendars: the rules file's business calendars (``calendars:``), compiled, by name.
        settings: every rule's settings for the ticket's tenant, by rule id (the routing rule reads the hand-off
            rule's, the paging rule's; the rule's own are ``RuleInput.settings``).
        found: the findings of the rules before this one in this evaluation, by rule id.
        corrections: canonical fields the rules before this one change in this evaluation, as text: only changes that
            go out (their finding's effect is ``set``, and no person changed the field after psabridge set it).
    """

    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    settings: Mapping[str, RuleSettings] = field(default_factory=dict)
    found: Mapping[str, tuple[Finding, ...]] = field(default_factory=dict)
    corrections: Mapping[str, str] = field(default_factory=dict)

    def finding(self, rule: str, code: str) -> Finding | None:
        """The finding ``code`` of the earlier rule ``rule`` in this evaluation, if it raised one."""
        for found in self.found.get(rule, ()):
            if found.code == code:
                return found
        return None


NO_CONTEXT = RuleContext()
"""The context of a rule evaluated on its own: no calendars, no earlier rules."""


class RuleInput(NamedTuple, Generic[S]):
    """Everything one rule may read about one ticket; built by the engine from an ``EvaluationInput``.

    Attributes:
        ticket: the canonical ticket as stored now.
        text: its normalised words, shared by every rule of the evaluation.
        before: the copy at the previous evaluation, or None (first seen).
        transitions: every recorded change of status, priority, queue, assignee and tier, oldest first.
        tenant: the client it belongs to.
        link: its mirror role.
        connection: the connection it lives in.
        ledger: values psabridge itself set on this ticket, oldest first.
        knowledge: prior fixes and repeats of its error signature.
        now: the evaluation time (aware UTC).
        state: this rule's saved state from earlier evaluations, or None.
        settings: this rule's settings, with the tenant's overrides applied.
        context: the compiled calendars and what the rules before this one decided in this evaluation.
        explain: whether the caller reads the trace (``rules explain``); when False the rule may leave
            ``RuleOutcome.trace`` empty and skip building it (the engine drops it anyway), and nothing else may differ.
    """

    ticket: Ticket
    text: TicketText
    before: Ticket | None
    transitions: tuple[Transition, ...]
    tenant: TenantView
    link: LinkView
    connection: ConnectionView
    ledger: tuple[LedgerEntry, ...]
    knowledge: Knowledge
    now: datetime
    state: State | None
    settings: S
    context: RuleContext = NO_CONTEXT
    explain: bool = True


class Rule(ABC, Generic[S]):
    """One checklist step that software can check.

    A subclass sets ``id`` (stable, used in config and in the store), ``step`` (the checklist step's title, verbatim),
    ``settings_model`` (its typed settings) and ``codes`` (the findings it can raise), and implements ``evaluate``,
    a pure function of its ``RuleInput``.
    """

    id: ClassVar[str]
    step: ClassVar[str]
    settings_model: ClassVar[type[RuleSettings]]
    codes: ClassVar[Mapping[str, Code]]

    @abstractmethod
    def evaluate(self, data: RuleInput[S]) -> RuleOutcome:
        """Judge ``data.ticket`` (pure: no I/O, no clock but ``data.now``)."""

    def problems(self, settings: S) -> Iterable[tuple[tuple[str | int, ...], str]]:
        """What is wrong in valid ``settings`` as a whole (a name one part gives that another does not define).

        Each problem is (its path within the rule's settings, message); the rules file reports it with file and line.
        """
        return ()

    def finding(
        self,
        code: str,
        message: str,
        *,
        advice: str = "",
        evidence: dict[str, JsonValue] | None = None,
        severity: Severity | None = None,
        instance: str = "",
    ) -> Finding:
        """A finding of this rule with ``code``'s step and default severity."""
        spec = self.codes[code]
        return Finding(
            code=code,
            rule=self.id,
            step=spec.step or self.step,
            severity=severity or spec.severity,
            message=message,
            advice=advice,
            evidence=evidence if evidence is not None else {},
            instance=instance,
        )


# --- reading transitions ---------------------------------------------------------------------------------------------

_DONE_VALUES = frozenset(s.value for s in DONE_STATUSES)


def closures(transitions: tuple[Transition, ...]) -> int:
    """How many times the ticket went from open to resolved, closed or cancelled."""
    return sum(
        1
        for t in transitions
        if t.field == "status" and t.after in _DONE_VALUES and (t.before is None or t.before not in _DONE_VALUES)
    )


def reopens(transitions: tuple[Transition, ...]) -> int:
    """How many times the ticket was reopened (from resolved, closed or cancelled back to an open status)."""
    return sum(
        1
        for t in transitions
        if t.field == "status" and t.before in _DONE_VALUES and t.after is not None and t.after not in _DONE_VALUES
    )


def escalations(
    transitions: tuple[Transition, ...], into_queue: Callable[[str], bool] = lambda queue: False
) -> tuple[Transition, ...]:
    """The transitions that raised the ticket's tier (``1`` -> ``2``) or moved it into a queue ``into_queue`` takes."""
    found = []
    for t in transitions:
        if t.field == "tier":
            try:
                raised = int(t.after or 0) > int(t.before or 0)
            except ValueError:
                raised = False
            if raised:
                found.append(t)
        elif t.field == "queue" and t.after and t.before != t.after and into_queue(t.after):
            found.append(t)
    return tuple(found)


def is_set(value: JsonValue | None) -> bool:
    """Whether a custom field's value says yes: anything but empty, null, false, "false", "no" and 0."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "n")
    return value not in (None, False, 0) and value != [] and value != {}


def vip_reason(ticket: Ticket, tenant: TenantView) -> str | None:
    """Why the requester is a VIP (``flagged VIP in <system>``, ``listed VIP of <tenant>``), or None."""
    requester = ticket.requester
    if requester is None:
        return None
    if requester.vip:
        return f"flagged VIP in {ticket.system.value}"
    if requester.email and requester.email.strip().lower() in tenant.vip:
        return f"listed VIP of {tenant.name or tenant.key}"
    return None
