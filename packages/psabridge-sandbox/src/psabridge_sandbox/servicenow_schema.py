"""ServiceNow table schemas for the simulator: fields and defaults, references, choices, and value formats.

Shapes follow docs/VENDOR-APIS.md 3.3-3.5 (from a real PDI dump, GitHub syndicalt/sn-scripts ``apis/DummyRecords.js``,
and demisto/content ServiceNowv2 test data): every value is a string (``"3"``, ``"true"``, ``""``); datetimes are
``YYYY-MM-DD HH:MM:SS`` in UTC; durations are date-times after the epoch. Time is logged as ``task_time_worked`` rows
(``task``, ``user``, ``time_worked`` as ``1970-01-01 HH:MM:SS``, ``comments``), as integrations POST them (GitHub
repositories calling ``POST /api/now/table/task_time_worked`` with those fields).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["INCIDENT", "SCHEMAS", "Schema", "derive_priority", "duration", "stamp", "sys_id_for", "sys_ids"]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MASK48 = (1 << 48) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # odd, so multiplying by it permutes the 48-bit numbers: distinct in, distinct out


def sys_ids(kind: str, seed: int) -> Callable[[int], str]:
    """Deterministic 32-hex sys_ids for one table (ServiceNow's are GUIDs without dashes).

    A per-table prefix and a scrambled counter: cheap enough for 100,000s of seeded rows.
    """
    prefix = hashlib.md5(f"{kind}:{seed}".encode(), usedforsecurity=False).hexdigest()[:20]
    return lambda number: f"{prefix}{number * _GOLDEN & _MASK48:012x}"


def sys_id_for(kind: str, seed: int, number: int) -> str:
    """One deterministic sys_id (see sys_ids)."""
    return sys_ids(kind, seed)(number)


def stamp(when: datetime) -> str:
    """A GlideDateTime as the Table API shows it with display values off: ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    # %-formatting the fields is about three times faster than isoformat() on an aware datetime; seeding makes 100,000s
    return "%04d-%02d-%02d %02d:%02d:%02d" % (when.year, when.month, when.day, when.hour, when.minute, when.second)  # noqa: UP031


def duration(minutes: int) -> str:
    """A GlideDuration as the Table API shows it: a date-time after the epoch, ``1970-01-01 01:30:00`` for 90 min."""
    return stamp(_EPOCH + timedelta(minutes=minutes))


def derive_priority(impact: str, urgency: str) -> str:
    """Priority from impact x urgency, as the out-of-the-box Priority Lookup Rules derive it (VENDOR-APIS 3.4).

    (1,1)=1, (1,2)/(2,1)=2, (1,3)/(2,2)/(3,1)=3, (2,3)/(3,2)=4, (3,3)=5.
    """
    try:
        total = int(impact) + int(urgency)
    except ValueError:
        return "5"
    return str(min(5, max(1, total - 1)))


@dataclass(frozen=True)
class Schema:
    """One table: its fields with their defaults (every value a string), references, choices and display field."""

    name: str
    fields: Mapping[str, str]
    refs: Mapping[str, str] = field(default_factory=dict)
    choices: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    journals: frozenset[str] = frozenset()
    display: str = "name"
    writable: bool = False

    def knows(self, name: str) -> bool:
        """Whether the table has the (not dot-walked) field."""
        return name in self.fields


_SYS = {"sys_id": "", "sys_created_on": "", "sys_created_by": "", "sys_updated_on": "", "sys_updated_by": ""}
_SYS_MOD = {**_SYS, "sys_mod_count": "0"}

INCIDENT = Schema(
    name="incident",
    fields={
        "number": "",
        "short_description": "",
        "description": "",
        "state": "1",
        "incident_state": "1",
        "impact": "3",
        "urgency": "3",
        "priority": "5",
        "severity": "3",
        "caller_id": "",
        "opened_by": "",
        "opened_at": "",
        "assigned_to": "",
        "assignment_group": "",
        "company": "",
        "location": "",
        "cmdb_ci": "",
        "business_service": "",
        "service_offering": "",
        "category": "inquiry",
        "subcategory": "",
        "contact_type": "",
        "hold_reason": "",
        "close_code": "",
        "close_notes": "",
        "resolved_by": "",
        "resolved_at": "",
        "closed_by": "",
        "closed_at": "",
        "active": "true",
        "reassignment_count": "0",
        "reopen_count": "0",
        "parent_incident": "",
        "problem_id": "",
        "correlation_id": "",
        "correlation_display": "",
        "watch_list": "",
        "work_notes": "",
        "comments": "",
        "sla_due": "",
        "made_sla": "true",
        "due_date": "",
        "approval": "not requested",
        "escalation": "0",
        "knowledge": "false",
        "sys_domain": "global",
        "sys_domain_path": "/",
        "sys_class_name": "incident",
        "sys_tags": "",
        **_SYS_MOD,
    },
    refs={
        "caller_id": "sys_user",
        "opened_by": "sys_user",
        "assigned_to": "sys_user",
        "resolved_by": "sys_user",
        "closed_by": "sys_user",
        "assignment_group": "sys_user_group",
        "company": "core_company",
        "cmdb_ci": "cmdb_ci",
        "parent_incident": "incident",
        "problem_id": "problem",
        "location": "cmn_location",
        "business_service": "cmdb_ci_service",
        "service_offering": "service_offering",
        "sys_domain": "sys_user_group",
    },
    choices=frozenset(
        {"state", "incident_state", "impact", "urgency", "priority", "severity", "category", "subcategory"}
        | {"contact_type", "hold_reason", "close_code", "approval", "escalation"}
    ),
    numbers=frozenset(
        {"state", "incident_state", "impact", "urgency", "priority", "severity", "hold_reason", "escalation"}
        | {"reassignment_count", "reopen_count", "sys_mod_count"}
    ),
    journals=frozenset({"work_notes", "comments"}),
    display="number",
    writable=True,
)

SCHEMAS: dict[str, Schema] = {
    s.name: s
    for s in (
        INCIDENT,
        Schema(
            "sys_journal_field",
            {"element": "", "element_id": "", "name": "incident", "value": "", "sys_tags": "", **_SYS},
            display="value",
        ),
        Schema(
            "task_time_worked",
            {"task": "", "user": "", "time_worked": "", "time_in": "", "comments": "", "rate_type": "", **_SYS_MOD},
            refs={"task": "task", "user": "sys_user"},
            numbers=frozenset({"sys_mod_count"}),
            display="task",
            writable=True,
        ),
        Schema(
            "sys_user",
            {
                "user_name": "",
                "name": "",
                "first_name": "",
                "last_name": "",
                "email": "",
                "phone": "",
                "title": "",
                "company": "",
                "location": "",
                "vip": "false",
                "active": "true",
                "time_zone": "",
                **_SYS_MOD,
            },
            refs={"company": "core_company"},
        ),
        Schema(
            "sys_user_group",
            {"name": "", "description": "", "email": "", "manager": "", "type": "", "active": "true", **_SYS_MOD},
            refs={"manager": "sys_user"},
        ),
        Schema(
            "core_company",
            {"name": "", "phone": "", "website": "", "customer": "false", "vendor": "false", **_SYS_MOD},
        ),
        Schema(
            "cmdb_ci",
            {
                "name": "",
                "sys_class_name": "cmdb_ci",
                "serial_number": "",
                "short_description": "",
                "company": "",
                "assigned_to": "",
                "operational_status": "1",
                "install_status": "1",
                **_SYS_MOD,
            },
            refs={"company": "core_company", "assigned_to": "sys_user"},
        ),
        Schema(
            "sys_choice",
            {
                "name": "",
                "element": "",
                "value": "",
                "label": "",
                "sequence": "0",
                "inactive": "false",
                "language": "en",
                "dependent_value": "",
                **_SYS,
            },
            numbers=frozenset({"sequence"}),
            display="label",
        ),
    )
}
"""The tables the simulator serves (others answer 400 "Invalid table")."""

# Out-of-the-box incident choices (VENDOR-APIS 3.4; labels as an instance shows them, SNANS incident.py for values).
