#!/usr/bin/env python3
"""Rules benchmark: pure checklist evaluations per second per core over a realistic MSP ticket set.

Usage: python3 run.py bench rules [--tickets N] [--seconds S] [--seed N]

The intended corpus is the vendor sandbox's seeded tickets; the sandbox is moving into its own package, so this
script builds the same kind of world itself, as canonical tickets, without importing it: the sandbox's four clients
(their timezones and VIPs), its ticket kinds in its proportions (M365 and network outages, password resets with
and without a recorded identity check, printers after Patch Tuesday, VPN, Wi-Fi, app crashes, phishing, requests,
monitoring alerts), in its words (the user's description with the quoted error, triage and acknowledgement notes,
complete and bare "please assist" hand-offs, good and "Rebooted and it worked" resolutions, time entries on most
closed tickets) and its status mix over 120 days (most old tickets closed). Error codes are added the way ingest
adds them (``enrich``) before timing, as they are stored.

Two figures, each evaluations per CPU second in one thread (evaluation is pure and holds no lock, so throughput
scales with worker processes), on the evaluate step's fast path (``explain=False``: no trace lines): ``first``
evaluates each ticket as first seen (no stored findings: most tickets get a combined note), ``again`` re-evaluates
them with the first pass's findings stored and noted (the steady state after a change: nothing new to announce).
Also printed: ``explain`` (the first pass with every trace line, as ``rules explain`` runs it), findings per ticket,
the share of tickets that got a note, the most frequent findings, and ``enrich`` (ingest's error-code extraction)
per second.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psabridge.model import (
    Asset,
    Kind,
    Level,
    Note,
    NoteKind,
    Party,
    Priority,
    Source,
    Status,
    System,
    Ticket,
    TimeEntry,
)
from psabridge.rules import (
    Evaluation,
    EvaluationInput,
    Knowledge,
    RuleSet,
    StoredFinding,
    TenantView,
    enrich,
    error_signature,
    evaluate_ticket,
)
from psabridge.rules.loader import load_rules

ANCHOR = datetime(2026, 5, 20, 15, 0, tzinfo=UTC)
RULES_FILE = Path(__file__).resolve().parent.parent / "config" / "rules.yaml"
CONTRACTS = {  # contract tier and calendar, as config/psabridge.yaml gives them (for the shipped rules file)
    "acme": ("gold", "us-east-business"),
    "globex": ("silver", "eu-business"),
    "initech": ("bronze", "us-central-business"),
    "umbrella": ("gold", "24x7"),
}

TENANTS = {  # as the sandbox world and config/psabridge.yaml
    "acme": ("Acme Dental", "America/New_York", "ceo@acme.example", "Helen Marsh", "acme.example", "ACME", "Dentrix"),
    "globex": (
        "Globex Logistics",
        "Europe/Berlin",
        "cfo@globex.example",
        "Rainer Vogt",
        "globex.example",
        "GLBX",
        "SAP GUI",
    ),
    "initech": ("Initech", "America/Chicago", None, None, "initech.example", "INIT", "QuickBooks"),
    "umbrella": (
        "Umbrella Health",
        "UTC",
        "cmo@umbrella.example",
        "Alicia Moreno",
        "umbrella.example",
        "UMB",
        "Epic Hyperspace",
    ),
}
CONNECTIONS = (
    ("msp-cw", System.CONNECTWISE),
    ("partner-at", System.AUTOTASK),
    ("acme-snow", System.SERVICENOW),
    ("globex-fs", System.FRESHSERVICE),
)
FIRST = ("James", "Mary", "Robert", "Patricia", "Wei", "Fatima", "Lukas", "Sofia", "Aisha", "Mateo", "Noah", "Karen")
LAST = ("Smith", "Okafor", "Schneider", "Garcia", "Chen", "Novak", "Haddad", "Brown", "Rossi", "Kim")
TECHS = ("Dana Whitfield", "Marcus Oyelaran", "Priya Raman", "Ethan Brandt", "Samir Haddad", "Viktor Lindqvist")

# key, kind, priority, tier-1 work?, category, asset kind, weight, users (low, high), summaries, descriptions,
# error sets, repro, tried, impact, fixes, queue when escalated
TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "key": "m365_outage",
        "kind": Kind.INCIDENT,
        "priority": Priority.P1,
        "tier1": False,
        "category": "Email",
        "asset": "cloud",
        "weight": 2,
        "users": (6, 40),
        "queue": "Messaging/M365",
        "summaries": ("Nobody at {site} can send or receive email", "Outlook disconnected for the whole office"),
        "descriptions": (
            "None of us at {site} can send or receive email since about 8:15. Outlook just says "
            "'Disconnected' and Teams chat won't load either. At least {n} people affected.{error_line}",
            "Email is down for everyone here. I restarted my computer twice, so did {n} others.{error_line}",
        ),
        "errors": (
            ("Sending and receiving reported error (0x800CCC0E): Outlook cannot connect to the server.",),
            ("We couldn't sign you in. Error code: 0xCAA70004",),
        ),
        "repro": "Open Outlook on any workstation at the site: status bar shows Disconnected",
        "tried": "Restarted Outlook on three PCs, checked service health, flushed DNS",
        "impact": "{n} users at {site} cannot send or receive email",
        "fixes": (
            "Root cause: the autodiscover CNAME was changed at the registrar. Restored autodiscover CNAME per M365 "
            "admin center (Settings > Domains); verified with `Resolve-DnsName autodiscover.{domain}`; KB {kb}.",
        ),
    },
    {
        "key": "network_outage",
        "kind": Kind.INCIDENT,
        "priority": Priority.P1,
        "tier1": False,
        "category": "Network",
        "asset": "firewall",
        "weight": 2,
        "users": (8, 60),
        "queue": "Networking",
        "summaries": ("Internet down for the whole office at {site}", "No network at {site} - nobody can work"),
        "descriptions": (
            "Nobody at {site} can get on the internet or the shared drive. It started around 7:40. About {n} "
            "people here.{error_line}",
            "Whole office is offline! Chrome says no internet on every PC.{error_line}",
        ),
        "errors": (
            ("DNS_PROBE_FINISHED_NO_INTERNET",),
            ("Event ID 4202: The system detected that network adapter was disconnected",),
        ),
        "repro": "Ping 8.8.8.8 from any desk at the site fails; {asset} shows wan1 down in the RMM",
        "tried": "Power-cycled the ISP modem, checked {asset} in RMM (wan1 link down)",
        "impact": "{n} users at {site} have no internet, VoIP or file shares",
        "fixes": (
            "ISP circuit down. Failed {asset} over to the LTE backup via `config system link-monitor`; KB {kb}.",
        ),
    },
    {
        "key": "password_reset",
        "kind": Kind.SERVICE_REQUEST,
        "priority": Priority.P2,
        "tier1": True,
        "category": "Account",
        "asset": "personal",
        "weight": 4,
        "users": (1, 1),
        "queue": "Service Desk",
        "summaries": ("Password reset", "Forgot my password", "Password expired, can't log in"),
        "descriptions": (
            "Hi, I forgot my password after the long weekend and can't log in. Can you reset it please?{error_line}",
            "My password expired and it won't let me change it from home.{error_line}",
        ),
        "errors": (("Your password has expired and must be changed.",), ()),
        "repro": "n/a",
        "tried": "n/a",
        "impact": "1 user cannot log in",
        "fixes": (
            "Reset password in ADUC with 'User must change password at next logon', synced with "
            "`Start-ADSyncSyncCycle -PolicyType Delta`, user signed in while on the phone; KB {kb}.",
        ),
    },
    {
        "key": "mfa_reenroll",
        "kind": Kind.SERVICE_REQUEST,
        "priority": Priority.P2,
        "tier1": True,
        "category": "Account",
        "asset": "personal",
        "weight": 2,
        "users": (1, 1),
        "queue": "Service Desk",
        "summaries": ("New phone - Authenticator not working",),
        "descriptions": (
            "I got a new phone and now I can't get into Outlook or Teams because the Authenticator codes "
            "are on the old one.{error_line}",
        ),
        "errors": (("AADSTS50076: you must use multi-factor authentication to access this resource.",),),
        "repro": "Sign-in prompts for MFA on the old device",
        "tried": "Verified identity; checked registered methods",
        "impact": "1 user locked out of M365",
        "fixes": ("Verified identity by callback, required re-registration of MFA in Entra ID; KB {kb}.",),
    },
    {
        "key": "outlook_profile",
        "kind": Kind.INCIDENT,
        "priority": Priority.P3,
        "tier1": True,
        "category": "Email",
        "asset": "personal",
        "weight": 3,
        "users": (1, 1),
        "queue": "Messaging/M365",
        "summaries": ("Outlook stuck on 'Loading profile'", "Outlook keeps asking for my password"),
        "descriptions": (
            "Outlook has been stuck on Loading Profile all morning. Webmail works fine.{error_line}",
            "Outlook keeps popping up asking for my password over and over.{error_line}",
        ),
        "errors": (
            ("Cannot open your default e-mail folders. 0x8004010F: The Outlook data file cannot be accessed.",),
        ),
        "repro": "Open Outlook in the user's session on {asset}; works in a new local profile",
        "tried": "Ran Outlook in safe mode (/safe), repaired Office",
        "impact": "1 user without Outlook",
        "fixes": (
            "Cleared Outlook autodiscover cache via Ctrl+right-click -> Test E-mail AutoConfiguration, then rebuilt "
            "the profile (Control Panel > Mail > Show Profiles); KB {kb}.",
        ),
    },
    {
        "key": "printer_mapping",
        "kind": Kind.INCIDENT,
        "priority": Priority.P3,
        "tier1": True,
        "category": "Hardware",
        "asset": "printer",
        "weight": 3,
        "users": (1, 1),
        "queue": "Service Desk",
        "patch": True,
        "summaries": ("Can't print to the front desk printer", "Printer disappeared from my computer"),
        "descriptions": (
            "Since this morning I can't print to {asset}, it just says the printer can't be connected. "
            "Everyone else can print.{error_line}",
        ),
        "errors": (("Windows cannot connect to the printer. Operation failed with error 0x0000011b.",),),
        "repro": "Add the printer from Settings > Printers fails with the same error",
        "tried": "Restarted the print spooler, removed and re-added the printer",
        "impact": "1 user cannot print",
        "fixes": (
            "0x0000011b after the monthly update: installed the v4 driver and re-added the queue with "
            "`Add-Printer -ConnectionName \\\\{asset}`; KB {kb}.",
        ),
    },
    {
        "key": "vpn",
        "kind": Kind.INCIDENT,
        "priority": Priority.P2,
        "tier1": False,
        "category": "Network",
        "asset": "vpn_gateway",
        "weight": 2.5,
        "users": (1, 1),
        "queue": "Networking",
        "patch": True,
        "summaries": ("VPN won't connect from home",),
        "descriptions": (
            "I'm working from home and the VPN just spins and then fails. I can't get to {app} at all.{error_line}",
        ),
        "errors": (
            ("Error 809: The network connection between your computer and the VPN server could not be established.",),
            ("Credential or SSLVPN configuration is wrong (-7200)",),
        ),
        "repro": "Connect FortiClient from the user's laptop on home Wi-Fi; works on a phone hotspot",
        "tried": "Reinstalled FortiClient 7.2",
        "impact": "1 remote user cannot reach {app}",
        "fixes": (
            "Home router blocks UDP 4500. Switched the FortiClient profile to SSL-VPN on TCP 443 via EMS; tested "
            "from the user's session; KB {kb}.",
        ),
    },
    {
        "key": "wifi_degraded",
        "kind": Kind.INCIDENT,
        "priority": Priority.P3,
        "tier1": False,
        "category": "Network",
        "asset": "access_point",
        "weight": 2,
        "users": (2, 12),
        "queue": "Networking",
        "summaries": ("Wireless keeps dropping at {site}",),
        "descriptions": (
            "The Wi-Fi in the back rooms at {site} keeps dropping and video calls freeze. It has been like "
            "this for a few days for {n} of us.{error_line}",
        ),
        "errors": (("Event ID 8002: WLAN AutoConfig service failed to connect to a wireless network.",), ()),
        "repro": "Walk test: RSSI below -75 dBm near the back rooms",
        "tried": "Rebooted {asset}",
        "impact": "{n} users with slow, dropping Wi-Fi",
        "fixes": ("Neighbouring network on channel 36; pinned {asset} to channel 149 in Aruba Central; KB {kb}.",),
    },
    {
        "key": "app_crash",
        "kind": Kind.INCIDENT,
        "priority": Priority.P3,
        "tier1": False,
        "category": "Software",
        "asset": "personal",
        "weight": 2,
        "users": (1, 1),
        "queue": "Infrastructure",
        "patch": True,
        "summaries": ("{app} crashes when opening a record",),
        "descriptions": ("{app} closes by itself every time I open a record. It started this week.{error_line}",),
        "errors": (
            ("Event ID 1000: Faulting application name: app.exe, Exception code: 0xc0000005",),
            ("Event ID 1026: .NET Runtime - Exception Info: System.IO.FileLoadException",),
        ),
        "repro": "Open any record in {app} on {asset}: crash after ~3 seconds",
        "tried": "Repaired {app} install",
        "impact": "1 user cannot use {app}",
        "fixes": (
            "Vendor known issue with the new graphics driver; rolled back the driver via Device Manager; KB {kb}.",
        ),
    },
    {
        "key": "phishing",
        "kind": Kind.INCIDENT,
        "priority": Priority.P2,
        "tier1": False,
        "category": "Security",
        "asset": "personal",
        "weight": 1.5,
        "users": (1, 1),
        "queue": "Security",
        "summaries": ("I clicked a link in a DocuSign email",),
        "descriptions": (
            "I got a DocuSign email about an invoice and I clicked it and typed my password before I "
            "realised it looked wrong.{error_line}",
        ),
        "errors": (("Event ID 4625: An account failed to log on. Logon Type 3",),),
        "repro": "Sign-in log in Entra ID shows foreign IP sign-ins",
        "tried": "Revoked sessions (`Revoke-MgUserSignInSession`), reset password with identity check",
        "impact": "1 user; risk of mailbox compromise",
        "fixes": ("Reset password, revoked refresh tokens, removed the forwarding inbox rule; KB {kb}.",),
    },
    {
        "key": "new_user",
        "kind": Kind.SERVICE_REQUEST,
        "priority": Priority.P4,
        "tier1": True,
        "category": "Account",
        "asset": "none",
        "weight": 2,
        "users": (1, 1),
        "queue": "Service Desk",
        "summaries": ("New starter on Monday",),
        "descriptions": ("We have a new starter Monday at {site}. Please set up email, {app} access and a laptop.",),
        "errors": ((),),
        "repro": "n/a",
        "tried": "n/a",
        "impact": "request",
        "fixes": ("Created the account from the 'New starter' template, assigned M365 Business Premium; KB {kb}.",),
    },
    {
        "key": "disk_alert",
        "kind": Kind.ALERT,
        "priority": Priority.P3,
        "tier1": False,
        "category": "Server",
        "asset": "server",
        "weight": 2,
        "users": (1, 1),
        "queue": "Infrastructure",
        "source": Source.MONITORING,
        "summaries": ("RMM alert: C: below 10% free on {asset}",),
        "descriptions": ("Automated alert from RMM: volume C: on {asset} has 7.8 GB free (6%).{error_line}",),
        "errors": (("Event ID 2013: The C: disk is at or near capacity.",),),
        "repro": "n/a (monitoring)",
        "tried": "Ran the RMM disk-cleanup script",
        "impact": "no users yet",
        "fixes": ("WinSxS and IIS logs: `Dism /Online /Cleanup-Image /StartComponentCleanup`; 41 GB free; KB {kb}.",),
    },
)
ERROR_LINES = (' It says "{e}"', " The error is: {e}", " Message: {e}")
POOR = ("Rebooted and it worked", "rebooted, working now", "Fixed.")
BARE = ("please assist", "Please assist.", "Escalating - please assist")
SOURCES = (Source.PHONE, Source.EMAIL, Source.PORTAL, Source.CHAT)


def _pick(rng: random.Random, items: tuple[Any, ...]) -> Any:
    return items[int(rng.random() * len(items))]


def corpus(count: int, seed: int) -> list[tuple[Ticket, TenantView]]:
    """``count`` canonical tickets of the seed world, with their tenants."""
    rng = random.Random(seed)
    weights = [t["weight"] for t in TEMPLATES]
    views = {k: TenantView.of(k, name=v[0], timezone=v[1], vip=[v[2]] if v[2] else []) for k, v in TENANTS.items()}
    out = []
    for number in range(1, count + 1):
        tpl = rng.choices(TEMPLATES, weights)[0]
        tenant = _pick(rng, tuple(TENANTS))
        _name, _tz, vip_mail, vip_name, domain, short, app = TENANTS[tenant]
        vip = vip_mail is not None and rng.random() < 0.05
        first, last = vip_name.split() if vip and vip_name else (_pick(rng, FIRST), _pick(rng, LAST))
        email = vip_mail if vip else f"{first.lower()}.{last.lower()}@{domain}"
        age = timedelta(seconds=int(120 * 86400 * rng.random() ** 2.2) + 60)
        created = ANCHOR - age
        if tpl.get("patch") and rng.random() < 0.45:
            month = created.replace(day=1)
            tuesday = month + timedelta(days=(1 - month.weekday()) % 7 + 7)
            created = min(tuesday.replace(hour=13) + timedelta(days=1), ANCHOR - timedelta(minutes=5))
        if age < timedelta(hours=4):
            status = rng.choices((Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS), (45, 25, 30))[0]
        elif age < timedelta(days=3):
            status = rng.choices(
                (Status.NEW, Status.IN_PROGRESS, Status.ON_HOLD, Status.RESOLVED, Status.CLOSED), (10, 30, 10, 20, 15)
            )[0]
        else:
            status = rng.choices((Status.CLOSED, Status.RESOLVED, Status.CANCELLED, Status.ON_HOLD), (82, 5, 3, 5))[0]
        n = rng.randint(*tpl["users"])
        asset = None if tpl["asset"] == "none" else f"{short}-{tpl['asset'][:2].upper()}-{rng.randint(1, 400):04d}"
        values = {
            "site": "Midtown Clinic",
            "n": n,
            "asset": asset or short,
            "app": app,
            "domain": domain,
            "kb": rng.randint(1000, 9999),
            "phone": "+1 212 555 0100",
        }
        errors = _pick(rng, tpl["errors"])
        values["error_line"] = _pick(rng, ERROR_LINES).format(e=" / ".join(errors)) if errors else ""
        escalated = status is not Status.NEW and rng.random() < (0.1 if tpl["tier1"] else 0.7)
        bare = escalated and rng.random() < 0.35
        tech = _pick(rng, TECHS)
        notes: list[Note] = []
        clock = created

        def at(minutes: float) -> datetime:
            nonlocal clock
            clock = min(clock + timedelta(minutes=minutes), ANCHOR)
            return clock

        if tpl["key"] == "password_reset" and status is not Status.NEW:
            text = (
                "Identity verified by callback to the number on file before the reset."
                if rng.random() < 0.6
                else f"Caller asked for a password reset; reset done as requested by {first} {last}."
            )
            notes.append(Note(kind=NoteKind.INTERNAL, author=tech, text=text, created_at=at(5)))
        if status is not Status.NEW:
            triage = f"Triage with {first}: {n} user(s) affected." + (
                " Error captured: " + " | ".join(errors) if errors else ""
            )
            notes.append(Note(kind=NoteKind.INTERNAL, author=tech, text=triage, created_at=at(10)))
            notes.append(
                Note(
                    kind=NoteKind.PUBLIC,
                    author=tech,
                    created_at=at(5),
                    text=f"Hi {first}, thanks for reporting this. We are looking into it.",
                )
            )
        if escalated:
            text = (
                _pick(rng, BARE)
                if bare
                else (
                    f"Escalating to {tpl['queue']} (Tier 2).\nUser impact: {tpl['impact'].format_map(values)}\n"
                    f"Repro steps: {tpl['repro'].format_map(values)}\n"
                    f"Error text: {' | '.join(errors) or 'none shown'}\n"
                    f"Already tried: {tpl['tried'].format_map(values)}\nAsset: {asset or 'n/a'}"
                )
            )
            notes.append(Note(kind=NoteKind.INTERNAL, author=tech, text=text, created_at=at(60)))
        done = status in (Status.RESOLVED, Status.CLOSED)
        if done:
            text = _pick(rng, tpl["fixes"]).format_map(values) if rng.random() < 0.75 else _pick(rng, POOR)
            notes.append(Note(kind=NoteKind.RESOLUTION, author=tech, text=text, created_at=at(120)))
        entries = ()
        if (done and rng.random() < 0.8) or (status is Status.IN_PROGRESS and rng.random() < 0.5):
            entries = tuple(
                TimeEntry(
                    minutes=_pick(rng, (15, 30, 45, 60)),
                    who=tech,
                    started_at=at(30),
                    note="Remote session via ScreenConnect",
                )
                for _ in range(rng.randint(1, 3))
            )
        connection, system = _pick(rng, CONNECTIONS)
        priority = tpl["priority"] if rng.random() < 0.92 else _pick(rng, tuple(Priority))  # some logged wrong
        impact, urgency = {
            Priority.P1: (Level.HIGH, Level.HIGH),
            Priority.P2: (Level.MEDIUM, Level.HIGH),
            Priority.P3: (Level.MEDIUM, Level.MEDIUM),
            Priority.P4: (Level.LOW, Level.MEDIUM),
        }[priority]
        ticket = Ticket(
            connection=connection,
            system=system,
            external_id=str(100000 + number),
            number=f"#{number}",
            tenant=tenant,
            summary=_pick(rng, tpl["summaries"]).format_map(values),
            description=_pick(rng, tpl["descriptions"]).format_map(values),
            status=status,
            priority=priority,
            impact=impact,
            urgency=urgency,
            kind=tpl["kind"],
            category=tpl["category"],
            source=tpl.get("source", _pick(rng, SOURCES)),
            requester=Party(name=f"{first} {last}", email=email, vip=vip),
            assignee=None if status is Status.NEW else Party(name=tech),
            queue=tpl["queue"] if escalated else "Service Desk",
            tier=2 if escalated else 1,
            asset=Asset(name=asset) if asset else None,
            notes=tuple(notes),
            time_entries=entries,
            created_at=created,
            updated_at=max(clock, created),
            closed_at=clock if status is Status.CLOSED else None,
        )
        out.append((ticket, views[tenant]))
    return out


def _rate(work: Callable[[], int], seconds: float) -> float:
    work()  # warm up
    done = 0
    started = time.process_time()
    while (spent := time.process_time() - started) < seconds:
        done += work()
    return done / spent


def _again(first: list[EvaluationInput], results: list[Evaluation]) -> list[EvaluationInput]:
    """The re-evaluation of each ticket: the first pass's findings stored and noted, its states saved."""
    return [
        replace(
            data,
            states=result.states,
            findings=tuple(
                StoredFinding(
                    r.finding.rule,
                    r.finding.code,
                    r.occurrence,
                    r.finding.instance,
                    noted=True,
                    message=r.finding.message,
                )
                for r in result.findings
            ),
        )
        for data, result in zip(first, results, strict=True)
    ]


def main() -> None:
    """Build the corpus, time both passes and ``enrich``, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    raw = corpus(args.tickets, args.seed)
    rules = RuleSet.default()
    tickets = [(enrich(t), tenant) for t, tenant in raw]
    first = [
        EvaluationInput(ticket=t, now=ANCHOR, tenant=tenant, knowledge=Knowledge(error_signature(t)))
        for t, tenant in tickets
    ]
    results = [evaluate_ticket(data, rules) for data in first]
    again = _again(first, results)
    notes_again = sum(1 for data in again if evaluate_ticket(data, rules).note is not None)
    # The shipped rules file with the tenants' contract tiers and calendars: every SLA clock runs.
    shipped = load_rules(RULES_FILE, tenants=TENANTS)
    contracted = {
        key: replace(view, contract_tier=CONTRACTS[key][0], calendar=CONTRACTS[key][1])
        for key, view in {data.tenant.key: data.tenant for data in first}.items()
        if key is not None
    }
    shipped_first = [replace(data, tenant=contracted[data.tenant.key or ""]) for data in first]
    shipped_again = _again(shipped_first, [evaluate_ticket(data, shipped) for data in shipped_first])

    def run(batch: list[EvaluationInput], ruleset: RuleSet = rules, *, explain: bool = False) -> Callable[[], int]:
        def go() -> int:
            for data in batch:
                evaluate_ticket(data, ruleset, explain=explain)
            return len(batch)

        return go

    def enriching() -> int:
        for ticket, _ in raw:
            enrich(ticket)
        return len(raw)

    counts = Counter(f"{r.finding.rule}.{r.finding.code}" for result in results for r in result.findings)
    print(
        json.dumps(
            {
                "bench": "rules",
                "tickets": len(first),
                "rules": len(rules.rules),
                "first_per_s": round(_rate(run(first), args.seconds)),
                "again_per_s": round(_rate(run(again), args.seconds)),
                "explain_per_s": round(_rate(run(first, explain=True), args.seconds / 2)),
                "shipped_first_per_s": round(_rate(run(shipped_first, shipped), args.seconds)),
                "shipped_again_per_s": round(_rate(run(shipped_again, shipped), args.seconds)),
                "enrich_per_s": round(_rate(enriching, args.seconds / 2)),
                "findings_per_ticket": round(sum(len(r.findings) for r in results) / len(results), 2),
                "noted_share": round(sum(1 for r in results if r.note is not None) / len(results), 3),
                "notes_on_again": notes_again,
                "top_findings": dict(counts.most_common(8)),
            }
        )
    )


if __name__ == "__main__":
    main()
