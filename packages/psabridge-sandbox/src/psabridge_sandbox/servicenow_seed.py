"""ServiceNow seed data for the simulator: a client's users, groups, CIs, choices and incidents from the seed world.

Incidents come from the vendor-neutral SeedTickets, with their journal entries and time worked.

Choice values are the out-of-the-box incident choices (VENDOR-APIS 3.4; SNANS ``plugins/module_utils/incident.py``);
categories and subcategories come from the seed templates, stored lower-case as instances store choice values.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from datetime import timedelta

from psabridge_sandbox.scenarios import TEMPLATES, Scenario
from psabridge_sandbox.servicenow_records import Instance
from psabridge_sandbox.servicenow_schema import derive_priority, duration, stamp
from psabridge_sandbox.tickets import SeedTicket
from psabridge_sandbox.vocabulary import Level, NoteKind, Priority, Source, Status
from psabridge_sandbox.world import Queue, World

__all__ = ["INTEGRATION_NAME", "choice_value", "seed_incidents", "seed_reference"]

INTEGRATION_NAME = "psabridge Integration"

_CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "state": (
        ("1", "New"),
        ("2", "In Progress"),
        ("3", "On Hold"),
        ("6", "Resolved"),
        ("7", "Closed"),
        ("8", "Canceled"),
    ),
    "impact": (("1", "1 - High"), ("2", "2 - Medium"), ("3", "3 - Low")),
    "urgency": (("1", "1 - High"), ("2", "2 - Medium"), ("3", "3 - Low")),
    "severity": (("1", "1 - High"), ("2", "2 - Medium"), ("3", "3 - Low")),
    "priority": (
        ("1", "1 - Critical"),
        ("2", "2 - High"),
        ("3", "3 - Moderate"),
        ("4", "4 - Low"),
        ("5", "5 - Planning"),
    ),
    "hold_reason": (
        ("1", "Awaiting Caller"),
        ("3", "Awaiting Problem"),
        ("4", "Awaiting Vendor"),
        ("5", "Awaiting Change"),
    ),
    "contact_type": (
        ("email", "Email"),
        ("phone", "Phone"),
        ("self-service", "Self-service"),
        ("walk-in", "Walk-in"),
        ("chat", "Chat"),
        ("virtual_agent", "Virtual Agent"),
        ("alert", "Alert"),  # sandbox addition for monitoring-raised incidents (Event Management sets it)
    ),
    "close_code": tuple(
        (v, v)
        for v in (
            "Duplicate",
            "Known error",
            "No resolution provided",
            "Resolved by caller",
            "Resolved by change",
            "Resolved by problem",
            "Resolved by request",
            "Solution provided",
            "Workaround provided",
            "User error",
        )
    ),
    "approval": (("not requested", "Not Yet Requested"), ("requested", "Requested"), ("approved", "Approved")),
    "escalation": (("0", "Normal"), ("1", "Moderate"), ("2", "High"), ("3", "Overdue")),
}
_OOB_CATEGORIES = (("inquiry", "Inquiry / Help"), ("software", "Software"), ("hardware", "Hardware"))
_CATEGORIES_MORE = (("network", "Network"), ("database", "Database"))

_STATE = {
    Status.NEW: "1",
    Status.ASSIGNED: "1",  # ServiceNow has no "assigned" state: New with an assignee
    Status.IN_PROGRESS: "2",
    Status.ON_HOLD: "3",
    Status.RESOLVED: "6",
    Status.CLOSED: "7",
    Status.CANCELLED: "8",
}
_LEVEL = {Level.HIGH: "1", Level.MEDIUM: "2", Level.LOW: "3"}
_CONTACT_TYPE = {
    Source.PHONE: "phone",
    Source.EMAIL: "email",
    Source.PORTAL: "self-service",
    Source.CHAT: "chat",
    Source.WALK_IN: "walk-in",
    Source.MONITORING: "alert",
    Source.OTHER: "",
}
_SLA_HOURS = {Priority.P1: 4, Priority.P2: 8, Priority.P3: 24, Priority.P4: 72}


def choice_value(label: str) -> str:
    """The choice value for a seed label ("Exchange Online" -> "exchange online"), as instances store them."""
    return label.casefold()


def seed_reference(instance: Instance, world: World, tenants: Sequence[str], handoff: str | None) -> None:
    """Users, groups, companies, configuration items and choices of the client's instance."""
    users = instance.tables["sys_user"]
    refs = instance.refs
    company_rows = instance.tables["core_company"]
    msp = company_rows.insert({"name": "MSP Example", "vendor": "true", "website": "https://msp.example"}, notify=False)
    for key in tenants:
        tenant = world.tenant(key)
        row = company_rows.insert(
            {"name": tenant.name, "customer": "true", "website": f"https://{tenant.domain}"}, notify=False
        )
        refs.company = refs.company or str(row.id)

    def add_user(user_name: str, data: dict[str, str]) -> str:
        row = users.insert({"user_name": user_name, **data}, notify=False)
        refs.users[user_name] = str(row.id)
        return str(row.id)

    add_user(
        instance.integration_user, {"name": INTEGRATION_NAME, "first_name": "psabridge", "last_name": "Integration"}
    )
    for tech in world.technicians:
        user_name = f"{tech.first_name}.{tech.last_name}".lower()
        add_user(
            user_name,
            {"name": tech.name, "first_name": tech.first_name, "last_name": tech.last_name, "email": tech.email}
            | {"company": str(msp.id), "title": f"Tier {tech.tier} engineer", "time_zone": "GMT"},
        )
        refs.user_of_tech[tech.id] = refs.user_of_ref[tech.identifier] = user_name
    for key in tenants:
        for contact in world.contacts_of(key):
            user_name = contact.email.split("@", 1)[0]
            data = {"name": contact.name, "first_name": contact.first_name, "last_name": contact.last_name}
            data |= {
                "email": contact.email,
                "phone": contact.phone,
                "title": contact.title,
                "company": refs.company,
            }
            if contact.vip:
                data["vip"] = "true"
            add_user(user_name, data)
            refs.user_of_contact[contact.id] = refs.user_of_ref[contact.email] = user_name
    groups = instance.tables["sys_user_group"]
    for queue in world.queues:
        if _served(queue, tenants, handoff):
            row = groups.insert({"name": queue.name, "description": f"Tier {queue.tier} ({queue.topic})"}, notify=False)
            refs.groups[queue.name] = str(row.id)
    cis = instance.tables["cmdb_ci"]
    for key in tenants:
        for asset in world.assets_of(key):
            data = {"name": asset.name, "sys_class_name": _CI_CLASS.get(asset.kind, "cmdb_ci")}
            data |= {"serial_number": asset.serial, "short_description": asset.model, "company": refs.company}
            if asset.owner is not None and asset.owner in refs.user_of_contact:
                data["assigned_to"] = refs.users[refs.user_of_contact[asset.owner]]
            refs.cis[asset.id] = str(cis.insert(data, notify=False).id)
    _seed_choices(instance)
    for table in ("sys_user", "sys_user_group", "core_company", "cmdb_ci", "sys_choice"):
        for row in instance.tables[table].rows():
            instance.sync(table, row)
            row.data["sys_created_by"] = row.data["sys_updated_by"] = "admin"


def _seed_choices(instance: Instance) -> None:
    choices = instance.tables["sys_choice"]
    rows: list[tuple[str, str, str, str]] = []  # element, value, label, dependent value
    for element, pairs in _CHOICES.items():
        rows.extend((element, value, label, "") for value, label in pairs)
        if element == "state":
            rows.extend(("incident_state", value, label, "") for value, label in pairs)
    categories = dict(_OOB_CATEGORIES)
    subcategories: dict[tuple[str, str], str] = {}
    for template in TEMPLATES:
        category = choice_value(template.category)
        categories.setdefault(category, template.category)
        subcategories[category, choice_value(template.subcategory)] = template.subcategory
    for value, label in _CATEGORIES_MORE:
        categories.setdefault(value, label)
    rows.extend(("category", value, label, "") for value, label in categories.items())
    rows.extend(("subcategory", value, label, parent) for (parent, value), label in subcategories.items())
    sequence: dict[str, int] = {}
    for element, value, label, parent in rows:
        sequence[element] = sequence.get(element, 0) + 10
        data = {"name": "incident", "element": element, "value": value, "label": label}
        data |= {"sequence": str(sequence[element]), "dependent_value": parent}
        choices.insert(data, notify=False)
        instance.labels[element, value] = label


def seed_incidents(instance: Instance, tickets: Sequence[SeedTicket]) -> None:
    """Turn SeedTickets into incidents, journal entries and time worked (no webhooks).

    Several objects per record and no reference cycles: the cyclic garbage collector would only walk the growing heap
    again and again, so it rests meanwhile (as in tickets.generate_tickets).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        _seed_incidents(instance, tickets)
    finally:
        if collecting:
            gc.enable()


def _seed_incidents(instance: Instance, tickets: Sequence[SeedTicket]) -> None:
    incidents = instance.tables["incident"]
    worked = instance.tables["task_time_worked"]
    refs = instance.refs
    for ticket in tickets:
        data, version = _incident(instance, ticket)
        row = incidents.insert(data, created=ticket.created_at, updated=ticket.updated_at, notify=False)
        row.version = version
        instance.sync("incident", row)
        instance.seed_versions[row.id] = version
        sys_id = str(row.id)
        for note in ticket.notes:
            if note.kind is NoteKind.RESOLUTION:
                continue  # the resolution is close_notes on the incident, not a journal entry
            element = "work_notes" if note.kind is NoteKind.INTERNAL else "comments"
            user = refs.user_of_ref.get(note.author_ref, "system")
            instance.add_journal(sys_id, element, note.text, user, note.created_at)
        for entry in ticket.time_entries:
            user = refs.user_of_tech.get(entry.technician.id, "system")
            logged = entry.started_at + timedelta(minutes=entry.minutes)
            data = {"task": sys_id, "user": refs.users.get(user, ""), "time_worked": duration(entry.minutes)}
            data |= {"time_in": stamp(entry.started_at), "comments": entry.note}
            data |= {"sys_created_by": user, "sys_created_on": stamp(logged)}
            time_row = worked.insert(data, created=logged, notify=False)
            instance.time_of.setdefault(sys_id, []).append(time_row.id)
    instance.seed_counts = {name: len(table) for name, table in instance.tables.items()}


def _incident(instance: Instance, ticket: SeedTicket) -> tuple[dict[str, str], int]:
    refs = instance.refs
    caller = refs.user_of_contact.get(ticket.requester.id, "")
    assignee = refs.user_of_tech.get(ticket.assignee.id, "") if ticket.assignee else ""
    authors = [refs.user_of_ref.get(n.author_ref, "") for n in ticket.notes if not n.by_requester]
    if ticket.source in (Source.PORTAL, Source.EMAIL):
        opened_by = caller
    else:
        opened_by = next((a for a in authors if a), assignee or caller)
    impact, urgency = _LEVEL[ticket.impact], _LEVEL[ticket.urgency]
    state = _STATE[ticket.status]
    data: dict[str, str] = {
        "number": instance.next_number(),
        "short_description": ticket.summary,
        "description": ticket.description,
        "state": state,
        "incident_state": state,
        "impact": impact,
        "urgency": urgency,
        "severity": impact,
        "priority": derive_priority(impact, urgency),
        "caller_id": refs.users.get(caller, ""),
        "opened_by": refs.users.get(opened_by, ""),
        "opened_at": stamp(ticket.created_at),
        "company": refs.company,
        "category": choice_value(ticket.category),
        "subcategory": choice_value(ticket.subcategory),
        "contact_type": _CONTACT_TYPE[ticket.source],
        "sys_created_by": opened_by or "system",
        "sys_updated_by": (authors[-1] if authors else "") or opened_by or "system",
    }
    if ticket.queue.name in refs.groups:
        data["assignment_group"] = refs.groups[ticket.queue.name]
    if assignee:
        data["assigned_to"] = refs.users[assignee]
    if ticket.asset is not None and ticket.asset.id in refs.cis:
        data["cmdb_ci"] = refs.cis[ticket.asset.id]
    if ticket.status is Status.ON_HOLD:
        data["hold_reason"] = "1"
    if ticket.tier > 1:
        data["reassignment_count"] = "1"
    due = ticket.created_at + timedelta(hours=_SLA_HOURS[ticket.priority])
    data["sla_due"] = stamp(due)
    finished = ticket.resolved_at or ticket.closed_at or ticket.updated_at
    if finished > due:
        data["made_sla"] = "false"
    version = 1 + len(ticket.notes)
    resolution = next((n for n in ticket.notes if n.kind is NoteKind.RESOLUTION), None)
    if ticket.resolved_at is not None:
        resolver = refs.user_of_ref.get(resolution.author_ref, assignee) if resolution else assignee
        data["resolved_at"] = stamp(ticket.resolved_at)
        data["resolved_by"] = refs.users.get(resolver, "")
        good = Scenario.RESOLUTION_POOR not in ticket.scenarios
        data["close_code"] = "Solution provided" if good else "Workaround provided"
        data["close_notes"] = resolution.text if resolution else ""
    if ticket.closed_at is not None:
        data["closed_at"] = stamp(ticket.closed_at)
        data["closed_by"] = data.get("resolved_by", data["opened_by"])
        version += 1
    if ticket.status in (Status.CLOSED, Status.CANCELLED):
        data["active"] = "false"
    return data, version


_CI_CLASS = {
    "laptop": "cmdb_ci_computer",
    "desktop": "cmdb_ci_computer",
    "server": "cmdb_ci_win_server",
    "printer": "cmdb_ci_printer",
    "firewall": "cmdb_ci_ip_firewall",
    "switch": "cmdb_ci_ip_switch",
    "access_point": "cmdb_ci_wap_network",
    "vpn_gateway": "cmdb_ci_ip_router",
    "cloud_service": "cmdb_ci_service",
}


def _served(queue: Queue, tenants: Sequence[str], handoff: str | None) -> bool:
    """Whether the client's instance has this assignment group: the MSP's tier queues and its hand-off queue."""
    if queue.role == "tiered":
        return True
    return queue.role == "client_handoff" and (queue.name == handoff or queue.tenant in tenants)
