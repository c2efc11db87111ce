"""`psabridge rules sla|check|explain`: SLA clocks and calendars, validating the rules, explaining a ticket.

``rules sla`` answers from the rules file's ``calendars:`` (and, with ``--ticket``, from the store); ``rules check``
validates the rules file against the settings (tenants' calendars and contract tiers, the paging notifiers, the
routing matrix's queues) and, with ``--live``, resolves every routing queue through each vendor's metadata;
``rules explain`` (cli/rules_explain.py) shows every rule on one stored ticket and writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from psabridge.cli import mapping_cmd, rules_explain
from psabridge.cli.common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, die, load, parse_instant
from psabridge.errors import PsaBridgeError
from psabridge.mapping import MappingRegistry
from psabridge.model import System, Ticket
from psabridge.rules import RuleSet, RulesFileError, TenantView, load_rules
from psabridge.rules.paging import PagingSettings
from psabridge.rules.routing import RoutingSettings, queue_name
from psabridge.rules.sla import ClockReading, SlaSettings, compute_sla
from psabridge.rules.sla_clock import Clock, due, elapsed
from psabridge.settings import Settings, parse_duration
from psabridge.store import Database, tickets
from psabridge.yamlsource import Problem, YamlError, format_loc, load_yaml

app = typer.Typer(
    help="The checklist rules: SLA clocks and calendars, checking the rules file, explaining a ticket.",
    no_args_is_help=True,
)
app.command("explain")(rules_explain.explain)

_PAGERS = ("pagerduty", "opsgenie")
_CHANNELS = ("slack", "teams")


def _pause(value: str) -> tuple[datetime, datetime]:
    start, sep, end = value.partition("/")
    if not sep:
        raise typer.BadParameter(f"pause {value!r} is not START/END (two ISO times joined by /)")
    begin, finish = parse_instant(start, "pause start"), parse_instant(end, "pause end")
    if finish < begin:
        raise typer.BadParameter(f"pause {value!r} ends before it starts")
    return begin, finish


def _rules(settings: Settings) -> RuleSet:
    if settings.rules is None:
        die("the settings name no rules file (rules:); calendars and SLA targets live there", EXIT_CONFIG)
    try:
        return load_rules(settings.rules, tenants=settings.tenants)
    except RulesFileError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(exc.problems)} problem(s) in {settings.rules}", err=True)
        raise typer.Exit(EXIT_CONFIG) from exc


def _iso(moment: datetime | None, zone: Any = UTC) -> str | None:
    return moment.astimezone(zone).isoformat() if moment is not None else None


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" + (f".{value.microseconds:06d}" if value.microseconds else "")


# --- rules sla -------------------------------------------------------------------------------------------------------


@app.command("sla")
def sla(
    calendar: Annotated[
        str | None, typer.Option("--calendar", help="A calendar of the rules file's calendars:.")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="When the clock starts (ISO time with offset).")] = None,
    target: Annotated[str | None, typer.Option("--target", help="The target: 30m, 4h, 16h (business time).")] = None,
    pause: Annotated[
        list[str] | None, typer.Option("--pause", help="A paused interval START/END (repeatable).")
    ] = None,
    clock: Annotated[str, typer.Option("--clock", help="business (the calendar) or wall (24x7).")] = "business",
    ticket: Annotated[
        str | None, typer.Option("--ticket", help="Show a stored ticket's SLA clocks instead (key or number).")
    ] = None,
    now: Annotated[str | None, typer.Option("--now", help="Read the clocks at this time (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print when a target is due over a business calendar, and the business time elapsed up to now.

    Example: psabridge rules sla --calendar us-east-business --start 2026-12-24T15:00:00-05:00 --target 8h
    --pause 2026-12-24T16:00:00-05:00/2026-12-28T09:00:00-05:00. With --ticket KEY|NUMBER it shows that stored
    ticket's clocks (response, plan, resolution) as the SLA rule reads them.
    """
    settings = load(config, quiet_logging=True)
    rules = _rules(settings)
    moment = parse_instant(now, "--now") if now else datetime.now(UTC)
    if ticket is not None:
        _ticket_clocks(settings, rules, ticket, moment, as_json)
        return
    if calendar is None or start is None or target is None:
        die("give --calendar, --start and --target (or --ticket)", EXIT_CONFIG)
    found = rules.calendars.get(calendar)
    if found is None:
        known = ", ".join(rules.calendars) or "none"
        die(f"no calendar {calendar!r} in {settings.rules} (calendars: {known})", EXIT_CONFIG)
    if clock not in ("business", "wall"):
        raise typer.BadParameter(f"--clock {clock!r} is not business or wall")
    begun = parse_instant(start, "--start")
    try:
        length = parse_duration(target)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    pauses = [_pause(p) for p in pause or []]
    kind: Clock = "business" if clock == "business" else "wall"
    due_at = due(found, begun, length, pauses, clock=kind)
    spent = elapsed(found, begun, moment, pauses, clock=kind)
    report = {
        "calendar": calendar,
        "timezone": found.settings.timezone,
        "clock": kind,
        "start": begun.isoformat(),
        "target": _span(length),
        "target_seconds": length.total_seconds(),
        "pauses": [[a.isoformat(), b.isoformat()] for a, b in pauses],
        "due_utc": _iso(due_at),
        "due_local": _iso(due_at, found.zone),
        "now": moment.astimezone(UTC).isoformat(),
        "elapsed": _span(spent),
        "elapsed_seconds": spent.total_seconds(),
        "remaining_seconds": max((length - spent).total_seconds(), 0.0),
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"calendar  {calendar} ({found.settings.timezone}), {kind} clock")
    typer.echo(f"start     {begun.isoformat()}")
    typer.echo(f"target    {report['target']}" + (f", {len(pauses)} pause(s)" if pauses else ""))
    typer.echo(f"due       {report['due_utc']}  ({report['due_local']} local)")
    typer.echo(f"elapsed   {report['elapsed']} of business time by {report['now']}")


def _ticket_clocks(settings: Settings, rules: RuleSet, ref: str, moment: datetime, as_json: bool) -> None:
    db = Database(settings.database)
    try:
        with db.session() as session:
            keys = tickets.find_ticket_keys(session, ref)
            if len(keys) > 1:
                die(f"{ref!r} names {len(keys)} tickets ({', '.join(keys[:5])}): give the key", EXIT_FAILED)
            stored = tickets.load_ticket(session, keys[0]) if keys else None
    except PsaBridgeError as exc:
        die(f"cannot read the store: {exc}", EXIT_FAILED)
    finally:
        db.dispose()
    if stored is None:
        die(f"no stored ticket {ref!r}", EXIT_FAILED)
    tenant = settings.tenants.get(stored.tenant) if stored.tenant else None
    view = TenantView.of(stored.tenant, **tenant.model_dump()) if tenant is not None else TenantView()
    sla_settings = rules.settings("sla", view.key)
    assert isinstance(sla_settings, SlaSettings)
    # The store keeps no transitions yet (the evaluate actor records them): the clocks read the ticket as it is.
    report = compute_sla(stored, settings=sla_settings, tenant=view, calendars=rules.calendars, now=moment)
    zone = report.calendar.zone if report.calendar is not None else UTC
    vendor = stored.sla.vendor_part() if stored.sla is not None else None
    clocks = [_clock_json(c, zone) for c in report.clocks]
    data = {
        "ticket": stored.key,
        "number": stored.number,
        "tenant": view.key,
        "contract_tier": report.tier,
        "calendar": report.calendar.name if report.calendar is not None else view.calendar,
        "priority": report.priority.value if report.priority else None,
        "now": moment.astimezone(UTC).isoformat(),
        "clocks": clocks,
        "problems": [{"code": code, "message": message} for code, message in report.problems],
        "vendor_sla": vendor.model_dump(mode="json", exclude_defaults=True) if vendor is not None else None,
        "transitions": "none recorded: the clocks read the ticket as stored",
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(
        f"{stored.key} ({stored.number or '-'}): tenant {view.key or '-'}, tier {report.tier or '-'}, "
        f"calendar {data['calendar'] or '-'}, priority {data['priority'] or '-'}"
    )
    for code, message in report.problems:
        typer.echo(f"  ! {code}: {message}")
    if not report.clocks:
        typer.echo("  no SLA clock (no targets for this tier and priority, and no vendor due times)")
    for c in clocks:
        met = f", met {c['met_at']}" if c["met_at"] else ""
        typer.echo(
            f"  {c['clock']:<10} {c['state']:<8} due {c['due_local']} ({c['source']}), {c['share']:.0%} used{met}"
        )
    typer.echo(f"  ({data['transitions']})")


def _clock_json(reading: ClockReading, zone: Any) -> dict[str, Any]:
    return {
        "clock": reading.name,
        "source": reading.source,
        "state": reading.state.value,
        "start": _iso(reading.start),
        "target": _span(reading.target) if reading.target is not None else None,
        "kind": reading.clock,
        "due_utc": _iso(reading.due),
        "due_local": _iso(reading.due, zone),
        "met_at": _iso(reading.met_at),
        "elapsed": _span(reading.used),
        "share": round(reading.share, 4),
        "paused": reading.paused,
    }


# --- rules check -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    """The rules and settings files with the line of every key, for problems found here."""

    rules: Any
    settings: Any

    def rules_problem(self, loc: tuple[str | int, ...], message: str) -> Problem:
        return Problem(self.rules.file, self.rules.line_of(loc), format_loc(loc), message)

    def settings_problem(self, loc: tuple[str | int, ...], message: str) -> Problem:
        return Problem(self.settings.file, self.settings.line_of(loc), format_loc(loc), message)


@app.command("check")
def check(
    live: Annotated[
        bool, typer.Option("--live", help="Also resolve every routing queue through each vendor's metadata.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Validate the rules file against the settings; exit 2 on any problem (1 when --live finds one).

    Checks: the rules file itself (file, line and field of each problem); every tenant's calendar is defined under
    calendars: and its contract tier under rules.sla.tiers; the paging rule's pager and channel name notifiers of
    the right kind; the routing matrix names queues for known connections and vendors. With --live each enabled
    connection's connector loads the vendor's boards, queues or groups and every queue name is resolved as the
    write-back would resolve it.
    """
    settings = load(config, quiet_logging=True)
    rules = _rules(settings)
    assert settings.rules is not None
    assert settings.source is not None
    try:
        located = _Located(load_yaml(settings.rules), load_yaml(settings.source))
    except YamlError as exc:
        die(str(exc), EXIT_CONFIG)
    problems = [*_tenant_problems(settings, rules, located), *_notifier_problems(settings, rules, located)]
    problems.extend(_queue_problems(settings, rules, located))
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in the rules set-up", err=True)
        raise typer.Exit(EXIT_CONFIG)
    routing = rules.settings("routing")
    assert isinstance(routing, RoutingSettings)
    typer.echo(
        f"ok: {settings.rules}: {len(rules.calendars)} calendar(s), {len(settings.tenants)} tenant(s), "
        f"{len(routing.routes)} route(s) to {len(routing.queues)} queue(s)"
    )
    if live:
        _check_live(settings, rules, located)


def _scopes(settings: Settings, rules: RuleSet) -> list[tuple[str | None, tuple[str | int, ...]]]:
    """The default settings and each tenant's override, with where each is written in the rules file."""
    return [(None, ("rules",)), *((t, ("tenants", t, "rules")) for t in rules.document.tenants)]


def _tenant_problems(settings: Settings, rules: RuleSet, located: _Located) -> list[Problem]:
    out: list[Problem] = []
    for key, tenant in settings.tenants.items():
        if tenant.calendar is not None and tenant.calendar not in rules.calendars:
            known = ", ".join(rules.calendars) or "none"
            out.append(
                located.settings_problem(
                    ("tenants", key, "calendar"),
                    f"calendar {tenant.calendar!r} is not under calendars: in {settings.rules} ({known})",
                )
            )
        sla_settings = rules.settings("sla", key)
        assert isinstance(sla_settings, SlaSettings)
        if tenant.contract_tier is not None and tenant.contract_tier not in sla_settings.tiers:
            tiers = ", ".join(sla_settings.tiers) or "none"
            out.append(
                located.settings_problem(
                    ("tenants", key, "contract_tier"),
                    f"contract tier {tenant.contract_tier!r} has no targets under rules.sla.tiers ({tiers})",
                )
            )
    return out


def _notifier_problems(settings: Settings, rules: RuleSet, located: _Located) -> list[Problem]:
    kinds = {n.name: n.kind for n in settings.notifiers}
    out: list[Problem] = []
    for tenant, where in _scopes(settings, rules):
        paging = rules.settings("paging", tenant)
        assert isinstance(paging, PagingSettings)
        for field, wanted in (("pager", _PAGERS), ("channel", _CHANNELS)):
            name = getattr(paging, field)
            if name is None or (tenant is not None and getattr(rules.settings("paging"), field) == name):
                continue
            kind = kinds.get(name)
            if kind is None:
                message = f"no notifier {name!r} in {settings.source} (notifiers: {', '.join(kinds) or 'none'})"
            elif kind not in wanted:
                message = f"notifier {name!r} is {kind}; a {field} must be {' or '.join(wanted)}"
            else:
                continue
            out.append(located.rules_problem((*where, "paging", field), message))
    return out


def _queue_problems(settings: Settings, rules: RuleSet, located: _Located) -> list[Problem]:
    allowed = {c.name for c in settings.connections} | {s.value for s in System} | {"default"}
    out: list[Problem] = []
    for tenant, where in _scopes(settings, rules):
        routing = rules.settings("routing", tenant)
        assert isinstance(routing, RoutingSettings)
        for queue, names in routing.queues.items():
            if isinstance(names, str):
                continue
            for key in names:
                if key not in allowed and (tenant is None or key not in _default_queue_keys(rules, queue)):
                    out.append(
                        located.rules_problem(
                            (*where, "routing", "queues", queue, key),
                            f"{key!r} is neither a connection nor a vendor (connections: "
                            f"{', '.join(c.name for c in settings.connections) or 'none'}; or default)",
                        )
                    )
    return out


def _default_queue_keys(rules: RuleSet, queue: str) -> set[str]:
    routing = rules.settings("routing")
    assert isinstance(routing, RoutingSettings)
    names = routing.queues.get(queue)
    return set(names) if isinstance(names, dict) else set()


def _check_live(settings: Settings, rules: RuleSet, located: _Located) -> None:
    registry = MappingRegistry(settings.connections)
    failed = 0
    for conn in settings.connections:
        if not conn.enabled:
            continue
        try:
            connector = mapping_cmd.connector_factory(conn)
            try:
                metadata = connector.metadata(refresh=True)
            finally:
                connector.close()
            mapper, context = registry.mapper(conn.name), registry.context(conn.name)
        except PsaBridgeError as exc:
            typer.echo(f"[{conn.name}] cannot load the vendor's metadata: {exc}", err=True)
            failed += 1
            continue
        probe = Ticket(connection=conn.name, system=conn.system, external_id="probe", tenant=conn.tenant)
        checked: set[str] = set()
        for tenant, where in _scopes(settings, rules):
            if tenant is not None and conn.tenant not in (None, tenant):
                continue
            routing = rules.settings("routing", tenant)
            assert isinstance(routing, RoutingSettings)
            for queue, names in routing.queues.items():
                name = queue_name(names, probe)
                if name is None or name in checked:  # a tenant's settings repeat the defaults' names
                    continue
                checked.add(name)
                result = mapper.outbound({"queue": name}, context, metadata)
                errors = [p.message for p in result.problems if p.severity == "error"]
                if errors:
                    failed += 1
                    loc = (*where, "routing", "queues", queue)
                    typer.echo(f"[{conn.name}] {located.rules_problem(loc, '; '.join(errors))}", err=True)
        typer.echo(f"[{conn.name}] {len(checked)} queue name(s) resolved against {conn.system.value}'s metadata")
    if failed:
        typer.echo(f"{failed} problem(s) against the vendors", err=True)
        raise typer.Exit(EXIT_FAILED)
