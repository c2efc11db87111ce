"""`psabridge findings`: what the checklist (and the mapping) found on stored tickets, with evidence and advice."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from psabridge.cli.common import EXIT_FAILED, ConfigOption, die, load
from psabridge.errors import PsaBridgeError
from psabridge.store import Database, tickets, upgrade
from psabridge.store.finding_reports import FindingView, list_findings

__all__ = ["finding_json", "findings"]


def findings(
    ticket: Annotated[
        str | None, typer.Option("--ticket", help="Only this ticket: its key, human number (INC0010001, #1234) or id.")
    ] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Only this rule (identity, priority, ... or mapping).")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only tickets of this tenant (its key).")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only findings that still hold.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many findings, newest first.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (a list of findings).")] = False,
    config: ConfigOption = None,
) -> None:
    """List stored findings, newest first: ticket, rule and code, severity, state, message, evidence and advice.

    A finding is open while it holds; "noted" means psabridge's internal note on the ticket announced it. Rules'
    findings name their checklist step; `mapping` and `mirror` findings are vendor values no mapping covers and
    mirror problems. Exit 1 when --ticket names no stored ticket.
    """
    settings = load(config, quiet_logging=True)
    upgrade(settings.database)
    db = Database(settings.database)
    try:
        with db.session() as session:
            keys = tickets.find_ticket_keys(session, ticket) if ticket is not None else None
            if keys is not None and not keys:
                die(f"no stored ticket {ticket!r} (give its key, human number or vendor id)", EXIT_FAILED)
            found = list_findings(session, ticket_keys=keys, rule=rule, tenant=tenant, open_only=open_only, limit=limit)
    except PsaBridgeError as exc:
        die(f"cannot read the store: {exc}", EXIT_FAILED)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps([finding_json(f) for f in found], indent=2))
        return
    if not found:
        filters = _filters(ticket, rule, tenant, open_only)
        typer.echo(f"no findings ({filters})" if filters else "no findings")
        return
    last: str | None = None
    for f in found:
        if f.ticket_key != last:
            last = f.ticket_key
            typer.echo(f"{f.number or '-'}  {f.ticket_key}  (tenant {f.tenant or '-'})")
        state = "open" if f.is_open else f"resolved {f.resolved_at.isoformat()[:19] if f.resolved_at else ''}"
        noted = ", noted" if f.noted else ""
        effect = f", effect {f.effect}" if f.effect else ""
        typer.echo(f"  [{f.severity}] {f.rule}.{f.code}  {state}{noted}{effect}, occurrence {f.occurrence}")
        if f.step:
            typer.echo(f"      step: {f.step}")
        typer.echo(f"      {f.message}")
        if f.evidence:
            typer.echo(f"      evidence: {_evidence(f.evidence)}")
        if f.advice:
            typer.echo(f"      what to do: {f.advice}")
    if len(found) == limit:
        typer.echo(f"(the newest {limit}; --limit shows more)")


def finding_json(f: FindingView) -> dict[str, Any]:
    """A finding as `findings --json` prints it."""
    return {
        "ticket": f.ticket_key,
        "number": f.number,
        "connection": f.connection,
        "tenant": f.tenant,
        "rule": f.rule,
        "code": f.code,
        "step": f.step,
        "severity": f.severity,
        "effect": f.effect,
        "open": f.is_open,
        "noted": f.noted,
        "occurrence": f.occurrence,
        "message": f.message,
        "evidence": f.evidence,
        "advice": f.advice,
        "created_at": f.created_at.isoformat(),
        "updated_at": f.updated_at.isoformat(),
        "resolved_at": f.resolved_at.isoformat() if f.resolved_at else None,
    }


def _filters(ticket: str | None, rule: str | None, tenant: str | None, open_only: bool) -> str:
    parts = [f"{name} {value}" for name, value in (("ticket", ticket), ("rule", rule), ("tenant", tenant)) if value]
    return ", ".join([*parts, *(["open only"] if open_only else [])])


def _evidence(evidence: dict[str, Any]) -> str:
    return "; ".join(f"{key}={json.dumps(value, ensure_ascii=False, default=str)}" for key, value in evidence.items())
