"""The evaluate step, the checklist's only impure part: load a ticket's inputs, run the rules, store and queue.

Ingest records that a ticket needs evaluating (a real change: not unchanged, not stale, not our own echo) in the
transaction that stores the change, and queues ``evaluate`` after the commit; the scheduler's sweep does the same for
a due wake-up, and recovery for a ticket still pending after a crash. ``evaluate_stored`` then, under the ticket's
lock, in one transaction, does what ``psabridge.rules``' docstring prescribes::

    load        the ticket (error codes enriched), the copy last evaluated (``before``), its transitions, each rule's
                state, the ledger, the stored findings, knowledge (resolved tickets sharing its error signature),
                its tenant, link and connection views, act_since (the connection's first sync by default)
    evaluate    rules.engine.evaluate_ticket (pure)
    store       findings and resolutions, rule states, the SLA state (tickets.set_sla, only when more than its
                computed_at changed), one wake-up row, the evaluation record (what it saw, its signature, what
                act_since held back) and "up to date" unless a change arrived meanwhile
    outbox      the actions, each keyed by its occurrence (model.Action.occurrence_key): running everything again
                writes nothing twice, and a genuine second occurrence gets a new key, so it acts again

After the commit the new outbox rows go to their queues (``queue_actions``: pages and posts to ``notify``). A mirror
pair is evaluated once: the engine's guardrail returns ``evaluated=False`` for the other side, and nothing is stored
for it but "up to date".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psabridge.log import get_logger
from psabridge.model import SlaState, Ticket
from psabridge.rules import (
    ConnectionView,
    Evaluation,
    EvaluationInput,
    Knowledge,
    LinkView,
    PriorFix,
    RuleSet,
    TenantView,
    TicketText,
    enrich,
    error_signature,
    evaluate_ticket,
)
from psabridge.rules.knowledge import KnowledgeSettings
from psabridge.rules.sla import SlaRule, sla_of
from psabridge.store import Session, evaluations, findings, ledger, links, outbox, sync_state, tickets, transitions
from psabridge.store.evaluations import EvaluationRecord
from psabridge.sync.context import SyncContext
from psabridge.sync.outbox import queue_actions

__all__ = ["EvaluateResult", "evaluate_stored", "evaluation_input", "wake_due"]

_log = get_logger("psabridge.rules")

@dataclass(frozen=True)
class EvaluateResult:
    """What evaluating one stored ticket did.

    Attributes:
        key: the ticket.
        evaluated: the rules ran on it (False: not stored or deleted, up to date already, or the other side of a
            mirror pair).
        evaluation: the engine's result (None when the ticket is not stored).
        outbox_ids: the outbox rows this evaluation wrote (new ones only: a repeat writes none).
        up_to_date: no change arrived while it ran (else another evaluation follows).
    """

    key: str
    evaluated: bool
    evaluation: Evaluation | None = None
    outbox_ids: tuple[int, ...] = ()
    up_to_date: bool = True


def evaluate_stored(ctx: SyncContext, key: str, *, force: bool = False, dry_run: bool = False) -> EvaluateResult:
    """Evaluate the stored ticket ``key`` at the context's time; store the result and queue its actions.

    A ticket that does not need evaluating (a duplicate message, recovery queueing one already done) is left alone
    unless ``force``: one query, before the ticket's lock is taken, and nothing written.

    Raises:
        RulesFileError: the rules file never loaded (a ConfigError: not retried; the ticket stays pending).
        RetryLaterError: the ticket's lock was busy (retried).
    """
    rules = ctx.rules.rules()
    if not force and not _needed(ctx, key):
        return EvaluateResult(key, evaluated=False)
    with ctx.locks.hold(key):
        now = ctx.now()
        with ctx.unit(dry_run=dry_run) as session:
            record = evaluations.evaluation_record(session, key)
            if record.needed_since is None and not force:  # evaluated meanwhile, by another job
                return EvaluateResult(key, evaluated=False)
            stored = tickets.load_ticket(session, key, live=True)
            if stored is None:  # not stored, or gone from its vendor: nothing is evaluated or written for it
                evaluations.clear_needed(session, key, seen=record.changes)
                return EvaluateResult(key, evaluated=False)
            ticket = enrich(stored)
            data = evaluation_input(ctx, session, ticket, rules, now, record=record)
            result = evaluate_ticket(data, rules, explain=False)  # traces are for `rules explain` only
            if not result.evaluated:
                evaluations.clear_needed(session, key, seen=record.changes)
                return EvaluateResult(key, evaluated=False, evaluation=result)
            up_to_date = _store(session, key, ticket, data, result, record, now)
            new = outbox.enqueue_new(session, result.actions, now=now)
    if not dry_run:
        queue_actions(ctx, new)
        if not up_to_date:  # a change arrived while this ran: its own evaluate message follows (or recovery's)
            _log.debug("changed while evaluated", ticket=key)
    _log.debug("evaluated", ticket=key, findings=len(result.findings), actions=len(result.actions))
    return EvaluateResult(key, True, result, tuple(row.id for row in new), up_to_date)


def _needed(ctx: SyncContext, key: str) -> bool:
    """Whether the ticket waits for an evaluation (read without its lock; checked again under it)."""
    with ctx.db.session() as session:
        return evaluations.evaluation_record(session, key).needed_since is not None


def evaluation_input(
    ctx: SyncContext,
    session: Session,
    ticket: Ticket,
    rules: RuleSet,
    now: datetime,
    *,
    record: EvaluationRecord | None = None,
) -> EvaluationInput:
    """Everything the engine needs about ``ticket`` (as stored, enriched), loaded from the store (no writes).

    ``rules explain`` uses it as well: the same inputs the evaluate step would use at ``now``.
    """
    key = ticket.key
    record = record or evaluations.evaluation_record(session, key)
    settings = ctx.settings
    tenant = TenantView()
    if ticket.tenant and ticket.tenant in settings.tenants:
        tenant = TenantView.of(ticket.tenant, **settings.tenants[ticket.tenant].model_dump())
    conn = settings.connection(ticket.connection)
    first_synced = sync_state.first_synced_at(session, conn.name)
    return EvaluationInput(
        ticket=ticket,
        now=now,
        before=record.before,
        transitions=transitions.transitions_of(session, key),
        tenant=tenant,
        link=_link_view(session, key),
        connection=ConnectionView(conn.name, conn.system, client_owned=conn.tenant is not None),
        states=evaluations.rule_states(session, key),
        ledger=ledger.ledger_of(session, key),
        knowledge=_knowledge(session, ticket, rules, tenant.key, now),
        findings=findings.stored_findings(session, key),
        act_since=rules.act_since(conn.name, first_synced),
        hands_off=record.hands_off,
    )


def _link_view(session: Session, key: str) -> LinkView:
    for pair in links.links_of(session, key):
        if pair.source_key == key:
            return LinkView("source", pair.target_key, pair.name)
        if pair.target_key == key:
            return LinkView("target", pair.source_key, pair.name)
    return LinkView()


def _knowledge(session: Session, ticket: Ticket, rules: RuleSet, tenant: str | None, now: datetime) -> Knowledge:
    """Prior fixes (resolved tickets with the same error signature, any client) and how often it repeated."""
    signature = error_signature(ticket)
    if signature is None:
        return Knowledge()
    settings = rules.settings("knowledge", tenant)
    assert isinstance(settings, KnowledgeSettings)
    fixes = []
    since = now - settings.search_window
    for prior in evaluations.signature_fixes(session, signature, since=since, exclude=ticket.key):
        text = TicketText(prior)
        fixes.append(
            PriorFix(
                prior.key,
                prior.number,
                prior.tenant,
                prior.summary,
                text.resolution,
                text.kb_ids,
                prior.closed_at or prior.updated_at,
            )
        )
    repeats = evaluations.signature_count(session, signature, since=now - settings.repeat_window, include=ticket.key)
    return Knowledge(signature, tuple(fixes), repeats)


def _store(
    session: Session,
    key: str,
    ticket: Ticket,
    data: EvaluationInput,
    result: Evaluation,
    record: EvaluationRecord,
    now: datetime,
) -> bool:
    """Store what one evaluation found, in the caller's transaction; True when no change arrived meanwhile.

    The findings and rule states ``data`` holds were read in this transaction, under the ticket's lock: not again.
    """
    findings.save_evaluation(session, key, result.findings, result.resolved, now=now, stored=data.findings)
    evaluations.save_rule_states(session, key, result.states, now, held=data.states.keys())
    sla_result = next((r for r in result.results if r.rule == SlaRule.id), None)  # its state: the SLA
    state = sla_result.outcome.state if sla_result is not None else None
    computed = sla_of(state) if state else None
    if computed is not None and _sla_changed(ticket.sla, computed):
        tickets.set_sla(session, key, computed.model_copy(update={"computed_at": now}).model_dump(mode="json"))
    evaluations.set_wakeup(session, key, result.wake_at)
    return evaluations.record_evaluation(
        session,
        key,
        seen=record.changes,
        before=ticket,
        evaluated_at=now,
        signature=error_signature(ticket),
        would_write=result.would_write,
    )


def _sla_changed(stored: SlaState | None, computed: SlaState) -> bool:
    """Whether the SLA state differs from the stored one in anything but ``computed_at``.

    An unchanged state is not written again: that would be a needless UPDATE of the ticket row per evaluation.
    """
    if stored is None:
        return True
    return stored.model_copy(update={"computed_at": None}) != computed.model_copy(update={"computed_at": None})


def wake_due(ctx: SyncContext, *, limit: int = 10_000) -> list[str]:
    """Turn the wake-ups due now into pending evaluations (one transaction) and queue them after the commit.

    A crash between the commit and the queueing loses nothing: the tickets need evaluating, and recovery queues them.
    Returns the tickets queued.
    """
    with ctx.unit() as session:
        keys = evaluations.take_due_wakeups(session, ctx.now(), limit=limit)
    for key in keys:
        ctx.queue.evaluate(key)
    return keys
