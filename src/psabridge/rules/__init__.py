"""The help-desk checklist as pure rules: one call per ticket turns stored inputs into findings and actions.

The impure side (``sync.evaluate.evaluate_stored``, run by the ``evaluate`` actor) does this for a ticket that needs
evaluation::

    rules = registry.rules()                              # RulesRegistry(settings.rules, tenants=settings.tenants)
    data = EvaluationInput(
        ticket=ticket,                                    # as stored now (error codes already added: enrich(ticket))
        now=now,                                          # aware UTC
        before=previous_copy,                             # the copy at the previous evaluation, or None
        transitions=transitions,                          # Transition(field, before, after, at, by), oldest first
        tenant=TenantView.of(key, **settings.tenants[key].model_dump()),   # or TenantView() without a tenant
        link=LinkView(role, peer, link_name),             # standalone | source | target
        connection=ConnectionView(name, system, client_owned=conn.tenant is not None),
        states={rule_id: state, ...},                     # each rule's saved JSON state
        ledger=ledger,                                    # LedgerEntry(field, value, set_at, origin): what we set
        knowledge=Knowledge(signature, prior_fixes, repeats),   # see below
        findings=stored,                                  # StoredFinding(rule, code, occurrence, instance, noted, ...)
        act_since=rules.act_since(conn.name, first_synced_at),
        hands_off=store_flag,
    )
    result = evaluate_ticket(data, rules, explain=False)  # pure, deterministic; explain=False builds no trace lines
    # store:   result.findings (FindingRecord: upsert by ticket, rule, code), result.resolved (ResolvedFinding),
    #          result.states (per rule), result.wake_at (one durable wake-up row), result.would_write (summary)
    # enqueue: result.actions (each has occurrence_key; the one combined internal note is result.note)
    # explain: evaluate_ticket(data, rules) (explain=True, the default) gives the same evaluation with the trace:
    #          result.results (per rule: outcome with findings, proposals, trace, wake_at), result.withheld, .trace

After the evaluation: the SLA rule's new state holds the ticket's SLA state (``sla_of(result.outcome.state)`` for
the ``sla`` rule's ``RuleResult``), which goes to the canonical ticket with ``store.tickets.set_sla`` (outside the
content hash); ``result.wake_at`` is the next SLA milestone; the actions are handed to their queues with
``sync.outbox.queue_actions`` (pages and channel posts to ``notify``, the rest to ``dispatch``).

``Knowledge``: ``signature = error_signature(ticket)``; prior fixes are resolved tickets sharing it, across the MSP's
clients, within ``rules.settings("knowledge", tenant).search_window``; ``repeats`` counts tickets with it (this one
included) within ``repeat_window``. Ingest applies ``enrich(ticket)`` (``extract_error_codes``) before storing.

A mirror target (or source, per ``guardrails.evaluate_mirrors_on``) gets ``Evaluation(evaluated=False)``: store
nothing for it. ``Evaluation.withheld`` lists every action not sent and why: ``effect`` (the finding's effect is
not ``set``), ``human_changed`` (never fight a human), ``identity_hold``, ``hands_off``, ``act_since``.

Modules: ``base`` (the contract: RuleInput, RuleOutcome, Finding, Proposal, Code, Rule, the input views, and
RuleContext: the compiled calendars, every rule's settings and what the rules before one found and correct in the
same evaluation), ``text`` (word lists, the shared normalised text, error codes), ``calendar`` and ``sla_clock``
(business-time arithmetic), one module per checklist step (``identity``, ``issue_capture``, ``priority``, ``sla``,
``tagging``, ``error_codes``, ``recent_changes``, ``knowledge``, ``tier_scope``, ``documented_fix``, ``handoff``,
``routing``, ``paging``, ``fix_tested``, ``resolution_note``, ``closure``, ``satisfaction``), ``checklist``
(their order and settings), ``config`` (the rules.yaml model), ``ruleset`` (compiled per tenant), ``loader`` and
``registry`` (the file, hot-reloaded), ``note`` (the combined note's wording) and ``engine`` (evaluate_ticket and the
guardrails). The impure side is ``psabridge.sync.evaluate`` (the ``evaluate`` actor, on its own per-connection
queues); ingest only records that a ticket needs evaluating, in the transaction that stores the change.
"""

from __future__ import annotations

from psabridge.rules.base import (
    Code,
    ConnectionView,
    Finding,
    Knowledge,
    LedgerEntry,
    LinkView,
    PriorFix,
    Proposal,
    Rule,
    RuleInput,
    RuleOutcome,
    RuleSettings,
    TenantView,
    Transition,
)
from psabridge.rules.checklist import CHECKLIST
from psabridge.rules.config import RulesDocument
from psabridge.rules.engine import (
    Evaluation,
    EvaluationInput,
    FindingRecord,
    ResolvedFinding,
    RuleResult,
    StoredFinding,
    Withheld,
    evaluate_ticket,
)
from psabridge.rules.loader import RulesFileError, build_rules, load_rules, rules_schema
from psabridge.rules.registry import RulesRegistry
from psabridge.rules.ruleset import RuleSet
from psabridge.rules.text import TicketText, Words, enrich, error_signature, extract_error_codes

__all__ = [
    "CHECKLIST",
    "Code",
    "ConnectionView",
    "Evaluation",
    "EvaluationInput",
    "Finding",
    "FindingRecord",
    "Knowledge",
    "LedgerEntry",
    "LinkView",
    "PriorFix",
    "Proposal",
    "ResolvedFinding",
    "Rule",
    "RuleInput",
    "RuleOutcome",
    "RuleResult",
    "RuleSet",
    "RuleSettings",
    "RulesDocument",
    "RulesFileError",
    "RulesRegistry",
    "StoredFinding",
    "TenantView",
    "TicketText",
    "Transition",
    "Withheld",
    "Words",
    "build_rules",
    "enrich",
    "error_signature",
    "evaluate_ticket",
    "extract_error_codes",
    "load_rules",
    "rules_schema",
]
