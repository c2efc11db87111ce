"""`psabridge rules explain`: every rule on one stored ticket, fired or not and why, what it would write; no writes.

The inputs are loaded by the evaluate step's own loader (``sync.evaluate.evaluation_input``) in a read-only session
and evaluated by the pure engine at ``--at`` (default: now), so explain shows exactly what the evaluate step would do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, die, load, parse_instant
from psabridge.errors import BugError, PsaBridgeError
from psabridge.model import Action, AddNote, PageOnCall, PostToChannel, RouteToQueue, SetFields
from psabridge.rules import Evaluation, FindingRecord, RulesFileError, enrich, evaluate_ticket
from psabridge.rules.base import Finding
from psabridge.settings import Settings
from psabridge.store import tickets
from psabridge.sync.context import SyncContext, build_context
from psabridge.sync.evaluate import evaluation_input

__all__ = ["explain", "explain_json"]


class _NoQueue:
    """Explain queues nothing: any call is a bug."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise BugError("rules explain must not queue work")

    ingest = dispatch = evaluate = poll = notify = _refuse


def explain(
    ticket: Annotated[
        str, typer.Option("--ticket", help="The ticket: its key, human number (INC0010001, #1234) or id.")
    ],
    connection: Annotated[
        str | None, typer.Option("--connection", help="Look the ticket up in this connection only.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="Evaluate as at this ISO time (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Explain the checklist on one stored ticket; writes nothing, to the store or to any vendor.

    Every rule, whether it fired and why (its evidence), the actions it would take, actions withheld and why (effect,
    never fight a human, identity hold, hands-off, act_since), and when it would look again.

    Example: psabridge rules explain --ticket INC0010001; --at 2026-12-28T10:00:00-05:00 evaluates at that moment
    (an SLA clock's warning, a satisfaction check an hour after closing).
    """
    settings = load(config, quiet_logging=True)
    moment = parse_instant(at, "--at").astimezone(UTC) if at else datetime.now(UTC)
    try:
        ctx = build_context(settings, _NoQueue())
    except RulesFileError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        die(f"{len(exc.problems)} problem(s) in {settings.rules}", EXIT_CONFIG)
    try:
        evaluation, number = _evaluate(ctx, settings, ticket, connection, moment)
    except PsaBridgeError as exc:
        die(f"cannot read the store: {exc}", EXIT_FAILED)
    finally:
        ctx.close()
    report = explain_json(evaluation, number=number, at=moment)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    _print(report)


def _evaluate(
    ctx: SyncContext, settings: Settings, ref: str, connection: str | None, moment: datetime
) -> tuple[Evaluation, str | None]:
    if connection is not None:
        settings.connection(connection)  # an unknown name is a ConfigError naming the connections
    rules = ctx.rules.rules()
    with ctx.db.session() as session:
        keys = tickets.find_ticket_keys(session, ref)
        if connection is not None:
            keys = [k for k in keys if k.startswith(f"{connection}:")]
        if not keys:
            where = f" in {connection}" if connection else ""
            die(f"no stored ticket {ref!r}{where} (give its key, human number or vendor id)", EXIT_FAILED)
        if len(keys) > 1:
            die(f"{ref!r} names {len(keys)} tickets ({', '.join(keys[:5])}): give --connection or the key", EXIT_FAILED)
        stored = tickets.load_ticket(session, keys[0])
        if stored is None:
            die(f"no stored ticket {keys[0]!r}", EXIT_FAILED)
        ticket = enrich(stored)
        data = evaluation_input(ctx, session, ticket, rules, moment)
        session.rollback()  # read only
    return evaluate_ticket(data, rules), ticket.number


def explain_json(evaluation: Evaluation, *, number: str | None, at: datetime) -> dict[str, Any]:
    """The evaluation as `rules explain --json` prints it."""
    stored = {(f.finding.rule, f.finding.code): f for f in evaluation.findings}
    rules = []
    for result in evaluation.results:
        outcome = result.outcome
        fired = bool(outcome.findings)
        rules.append(
            {
                "rule": result.rule,
                "step": result.step,
                "enabled": result.enabled,
                "fired": fired,
                "error": result.error,
                "findings": [_finding(f, stored.get((f.rule, f.code))) for f in outcome.findings],
                "proposed": [{"finding": p.finding, **_action(p.action)} for p in outcome.actions],
                "wake_at": _iso(outcome.wake_at),
                "trace": list(outcome.trace),
            }
        )
    return {
        "ticket": evaluation.ticket_key,
        "number": number,
        "at": at.isoformat(),
        "evaluated": evaluation.evaluated,
        "fired": [r["rule"] for r in rules if r["fired"]],
        "rules": rules,
        "actions": [_action(a) for a in evaluation.actions],
        "withheld": [
            {"rule": w.rule, "finding": w.finding, "reason": w.reason, "detail": w.detail, **_action(w.action)}
            for w in evaluation.withheld
        ],
        "resolved": [
            {"rule": r.rule, "code": r.code, "occurrence": r.occurrence, "newly": r.newly, "announced": r.announced}
            for r in evaluation.resolved
        ],
        "wake_at": _iso(evaluation.wake_at),
        "would_write": evaluation.would_write,
        "trace": list(evaluation.trace),
    }


def _finding(f: Finding, record: FindingRecord | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": f.code,
        "severity": f.severity,
        "message": f.message,
        "advice": f.advice,
        "evidence": dict(f.evidence),
    }
    if record is not None:
        out.update(effect=record.effect, occurrence=record.occurrence, new=record.new, noted=record.noted)
    return out


def _action(action: Action) -> dict[str, Any]:
    """What an action would do, in one line, with its type, target and occurrence key."""
    if isinstance(action, AddNote):
        what = f"{action.kind.value} note"
    elif isinstance(action, SetFields):
        what = "set " + ", ".join(f"{k}={getattr(v, 'value', v)}" for k, v in action.fields.items())
    elif isinstance(action, RouteToQueue):
        what = f"route to queue {action.queue}"
    elif isinstance(action, PageOnCall):
        what = f"page {action.target}"
    elif isinstance(action, PostToChannel):
        what = f"post to {action.target}"
    else:
        what = action.type
    out: dict[str, Any] = {"type": action.type, "what": what, "target": action.target, "origin": action.origin,
                           "occurrence_key": action.occurrence_key}  # fmt: skip
    if isinstance(action, AddNote):
        out["text"] = action.text
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _print(report: dict[str, Any]) -> None:
    typer.echo(f"{report['number'] or '-'}  {report['ticket']}  as at {report['at']}")
    if not report["evaluated"]:
        typer.echo("  not evaluated: " + "; ".join(report["trace"]))
        return
    fired = report["fired"]
    typer.echo(f"  {len(fired)} of {len(report['rules'])} rules fired" + (f": {', '.join(fired)}" if fired else ""))
    for rule in report["rules"]:
        if not rule["enabled"]:
            typer.echo(f"\n  {rule['rule']}  (disabled)  {rule['step']}")
            continue
        state = "FAILED" if rule["error"] else "fired" if rule["fired"] else "ok"
        typer.echo(f"\n  {rule['rule']}  {state}  {rule['step']}")
        if rule["error"]:
            typer.echo(f"    error: {rule['error']}")
        for f in rule["findings"]:
            extra = f", effect {f['effect']}, occurrence {f['occurrence']}" if "effect" in f else ""
            seen = (" (new)" if f.get("new") else ", already noted" if f.get("noted") else "") if extra else ""
            typer.echo(f"    [{f['severity']}] {f['code']}{extra}{seen}: {f['message']}")
            if f["evidence"]:
                typer.echo(
                    "      evidence: "
                    + "; ".join(f"{k}={json.dumps(v, default=str)}" for k, v in f["evidence"].items())
                )
        for p in rule["proposed"]:
            typer.echo(f"    proposes: {p['what']} (with {p['finding']})")
        for line in rule["trace"]:
            typer.echo(f"    · {line}")
        if rule["wake_at"]:
            typer.echo(f"    looks again at {rule['wake_at']}")
    typer.echo("\n  would write:" if report["actions"] else "\n  would write: nothing")
    for a in report["actions"]:
        typer.echo(f"    {a['what']} -> {a['target']} ({a['origin']})")
        if "text" in a:
            typer.echo("      | " + "\n      | ".join(a["text"].splitlines()))
    for w in report["withheld"]:
        typer.echo(f"  withheld: {w['what']} ({w['rule']}.{w['finding']}): {w['reason']}: {w['detail']}")
    for r in report["resolved"]:
        typer.echo(f"  resolved: {r['rule']}.{r['code']}" + (" (announced in the note)" if r["announced"] else ""))
    if report["trace"]:
        typer.echo("  the engine decided:")
        for line in report["trace"]:
            typer.echo(f"    · {line}")
    typer.echo(f"  next look: {report['wake_at'] or 'none (only on the next change)'}")
    if report["would_write"]:
        typer.echo(f"  act_since held back {report['would_write']} write(s)")
