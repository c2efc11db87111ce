"""ServiceNow records for the simulator: the instance's tables, field access, rendering, and writes as ServiceNow does.

Rendering: a reference is ``{"link": "<instance>/api/now/table/<table>/<sys_id>", "value": "<sys_id>"}`` (the bare
sys_id with ``sysparm_exclude_reference_link=true``, ``""`` when empty). With ``sysparm_display_value=true`` choice
fields show their labels and references their display values; ``all`` gives ``{"display_value", "value"}`` (plus
``link`` for references) for every field (VENDOR-APIS 3.4).

Journal fields (``work_notes``, ``comments``) are write-only: a write becomes a ``sys_journal_field`` row and the field
reads back ``""`` (VENDOR-APIS 3.4-3.5); with display values on, it shows the journal history, newest first, as lists
and forms do (a ``<time> - <user> (Work notes)`` line, then the text) [UNCONFIRMED exact layout].

Rows keep only the values that differ from the table's defaults; ``sys_id`` is the row id, and ``sys_created_on``,
``sys_updated_on`` and ``sys_mod_count`` are kept in step with the row's bookkeeping by ``Instance.sync``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from psabridge_sandbox.clock import Clock
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.servicenow_schema import INCIDENT, SCHEMAS, Schema, derive_priority, stamp, sys_ids
from psabridge_sandbox.table import Row, RowId, Table

__all__ = ["DisplayMode", "Instance", "References"]

DisplayMode = Literal["false", "true", "all"]

_JOURNAL_LABEL = {"work_notes": "Work notes", "comments": "Additional comments"}
_READ_ONLY = frozenset(
    {"sys_id", "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by", "sys_mod_count"}
    | {"sys_class_name", "sys_domain_path", "priority", "incident_state", "active"}
)
_SAME_AS_CREATED = {"sys_updated_on": "sys_created_on", "sys_updated_by": "sys_created_by"}
_CLOSE_INFO = (("close_code", "Resolution code"), ("close_notes", "Resolution notes"))


def _as_text(value: Any) -> str:
    """A JSON value as ServiceNow stores it: strings as sent, true/false, numbers, a reference's ``value``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return _as_text(value.get("value", ""))
    return str(value)


def _journal_writes(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The journal entries a write adds: non-empty work_notes and comments."""
    return [(name, _as_text(body[name])) for name in ("work_notes", "comments") if _as_text(body.get(name)).strip()]


@dataclass
class References:
    """sys_ids of the reference records, by seed-world key."""

    company: str = ""
    users: dict[str, str] = field(default_factory=dict)  # user_name -> sys_id
    user_of_contact: dict[int, str] = field(default_factory=dict)  # contact id -> user_name
    user_of_tech: dict[int, str] = field(default_factory=dict)  # technician id -> user_name
    user_of_ref: dict[str, str] = field(default_factory=dict)  # SeedNote.author_ref -> user_name
    groups: dict[str, str] = field(default_factory=dict)  # queue name -> sys_id
    cis: dict[int, str] = field(default_factory=dict)  # asset id -> sys_id


class Instance:
    """The simulated instance's tables, with field access (dot-walking included), labels and rendering."""

    def __init__(self, clock: Clock, seed: int, integration_user: str, *, close_info_mandatory: bool = False) -> None:
        self.seed = seed
        self.integration_user = integration_user
        self.close_info_mandatory = close_info_mandatory
        self.tables: dict[str, Table] = {
            name: Table(name, clock=clock, id_factory=sys_ids(name, seed)) for name in SCHEMAS
        }
        self.labels: dict[tuple[str, str], str] = {}  # (incident field, value) -> label
        self.journal_of: dict[RowId, list[RowId]] = {}  # incident sys_id -> journal row ids, oldest first
        self.time_of: dict[RowId, list[RowId]] = {}  # task sys_id -> task_time_worked row ids
        self.refs = References()
        self.seed_versions: dict[RowId, int] = {}  # incident sys_id -> sys_mod_count when seeded
        self.seed_counts: dict[str, int] = {}  # table -> rows when seeded (journal and time rows are never changed)
        self._next_number = 10_001

    # --- field access ------------------------------------------------------------------------------------------------

    def get(self, table: str, row: Row, name: str) -> str | None:
        """A field's stored value (dot-walking references: ``assignment_group.name``); None if there is no field."""
        if name == "sys_id":
            return str(row.id)
        data = row.data
        value = data.get(name)
        if value is not None:
            return str(value)
        if name in _SAME_AS_CREATED:  # a row never changed keeps only its creation stamps (less memory per row)
            return str(data.get(_SAME_AS_CREATED[name], ""))
        schema = SCHEMAS[table]
        default = schema.fields.get(name)
        if default is not None:
            return default
        head, dot, rest = name.partition(".")
        target = schema.refs.get(head) if dot else None
        if target is None or target not in SCHEMAS:
            return None
        ref = self.get(table, row, head)
        found = self.tables[target].get(ref) if ref else None
        if found is None:
            return "" if self.knows(target, rest) else None
        return self.get(target, found, rest)

    def knows(self, table: str, name: str) -> bool:
        """Whether the table has the field (dot-walked through references too)."""
        schema = SCHEMAS.get(table)
        if schema is None:
            return False
        if schema.knows(name):
            return True
        head, dot, rest = name.partition(".")
        target = schema.refs.get(head)
        return bool(dot) and target is not None and self.knows(target, rest)

    def display_of(self, table: str, sys_id: str) -> str:
        """The display value of a record (a user's name, a group's name, an incident's number)."""
        schema = SCHEMAS.get(table)
        row = self.tables[table].get(sys_id) if schema else None
        if schema is None or row is None:
            return ""
        return self.get(table, row, schema.display) or ""

    def journal_text(self, sys_id: RowId, element: str) -> str:
        """A journal field's display value: its entries, newest first."""
        journal = self.tables["sys_journal_field"]
        parts = []
        for row_id in reversed(self.journal_of.get(sys_id, ())):
            row = journal[row_id]
            if row.data["element"] == element:
                author = row.data.get("sys_created_by", "")
                user = self.tables["sys_user"].get(self.refs.users.get(author, ""))
                who = user.data.get("name", author) if user else author
                label = _JOURNAL_LABEL.get(element, element)
                parts.append(f"{row.data['sys_created_on']} - {who} ({label})\n{row.data['value']}\n\n")
        return "".join(parts)

    # --- rendering ---------------------------------------------------------------------------------------------------

    def render(
        self,
        table: str,
        row: Row,
        *,
        base_url: str,
        fields: Sequence[str] | None = None,
        mode: DisplayMode = "false",
        links: bool = True,
    ) -> dict[str, Any]:
        """A record as the Table API returns it (see the module docstring)."""
        schema = SCHEMAS[table]
        if mode == "false" and not fields:
            return self._render_values(schema, row, base_url, links)
        names: Iterable[str] = fields if fields else schema.fields
        out: dict[str, Any] = {}
        for name in names:
            value = self.get(table, row, name)
            if value is None:
                continue  # unknown fields named in sysparm_fields are left out
            target = schema.refs.get(name)
            if mode == "false":
                if target is not None and value:
                    out[name] = (
                        {"link": f"{base_url}/api/now/table/{target}/{value}", "value": value} if links else value
                    )
                else:
                    out[name] = value
                continue
            display = self._display(table, row, schema, name, value, target)
            if mode == "true":
                if target is not None and value and links:
                    out[name] = {"display_value": display, "link": f"{base_url}/api/now/table/{target}/{value}"}
                else:
                    out[name] = display
            else:
                both: dict[str, str] = {"display_value": display, "value": value}
                if target is not None and value and links:
                    both["link"] = f"{base_url}/api/now/table/{target}/{value}"
                out[name] = both
        return out

    @staticmethod
    def _render_values(schema: Schema, row: Row, base_url: str, links: bool) -> dict[str, Any]:
        """The common case, every field with display values off, built with dict operations (a page holds 10,000)."""
        data = row.data
        out: dict[str, Any] = dict(schema.fields)
        out.update(data)  # rows hold only their table's fields
        out["sys_id"] = str(row.id)
        for name, created in _SAME_AS_CREATED.items():
            if name not in data:
                out[name] = data.get(created, "")
        if links:
            for name, target in schema.refs.items():
                value = out[name]
                if value:
                    out[name] = {"link": f"{base_url}/api/now/table/{target}/{value}", "value": value}
        return out

    def _display(self, table: str, row: Row, schema: Schema, name: str, value: str, target: str | None) -> str:
        if name in schema.journals:
            return self.journal_text(row.id, name)
        if not value:
            return ""
        if target is not None:
            return self.display_of(target, value) if target in SCHEMAS else value
        if table == "incident" and name in schema.choices:
            return self.labels.get((name, value), value)
        return value

    # --- writing -----------------------------------------------------------------------------------------------------

    def next_number(self) -> str:
        """The next incident number (INC + 7 digits, as instances number them)."""
        number = self._next_number
        self._next_number += 1
        return f"INC{number:07d}"

    def sync(self, table: str, row: Row) -> None:
        """Keep the sys_* strings in step with the row's bookkeeping (Table bumps times and versions)."""
        data = row.data
        data["sys_updated_on"] = stamp(row.updated)
        if "sys_created_on" not in data:
            data["sys_created_on"] = stamp(row.created)
        if "sys_mod_count" in SCHEMAS[table].fields:
            data["sys_mod_count"] = str(row.version)

    def add_journal(self, incident: RowId, element: str, value: str, user: str, when: datetime | None = None) -> Row:
        """Append a journal entry (a work note or comment) to an incident."""
        journal = self.tables["sys_journal_field"]
        when = when or journal.stamp()
        data = {"element": element, "element_id": incident, "value": value, "sys_created_by": user}
        data["sys_created_on"] = stamp(when)
        row = journal.insert(data, created=when)
        self.journal_of.setdefault(incident, []).append(row.id)
        return row

    def new_incident_data(self, body: Mapping[str, Any], user: str) -> dict[str, str]:
        """The fields of an incident created by ``user`` from a POST body (defaults, derived fields; no journal)."""
        now = stamp(self.tables["incident"].stamp())
        data: dict[str, str] = {
            "number": self.next_number(),
            "opened_at": now,
            "opened_by": self.refs.users.get(user, ""),
            "sys_created_by": user,
            "sys_updated_by": user,
        }
        if self.refs.company:
            data["company"] = self.refs.company
        data.update(self._accepted(INCIDENT, body, creating=True))
        self._derive(data, data, user)
        return data

    def create_incident(self, body: Mapping[str, Any], user: str) -> Row:
        """POST: insert an incident; work_notes/comments in the body become its first journal entries."""
        incidents = self.tables["incident"]
        sys_id = incidents.next_id()
        data = self.new_incident_data(body, user)
        self._check_policies(data)
        for element, text in _journal_writes(body):
            self.add_journal(sys_id, element, text, user)
        return incidents.insert(data, id=sys_id)

    def update_incident(self, sys_id: RowId, body: Mapping[str, Any], user: str) -> Row:
        """PATCH/PUT: apply the changed fields; no change and no journal entry means no update at all."""
        incidents = self.tables["incident"]
        row = incidents[sys_id]
        current = {name: self.get("incident", row, name) or "" for name in INCIDENT.fields}
        changes = {k: v for k, v in self._accepted(INCIDENT, body, creating=False).items() if current.get(k) != v}
        merged = {**current, **changes}
        self._derive(merged, changes, user, before=current)
        changes = {k: v for k, v in changes.items() if current.get(k) != v}
        notes = _journal_writes(body)
        if not changes and not notes:
            return row
        self._check_policies(merged)
        for element, text in notes:
            self.add_journal(sys_id, element, text, user)
        changes["sys_updated_by"] = user
        return incidents.update(sys_id, changes)

    def create_row(self, table: str, body: Mapping[str, Any], user: str) -> Row:
        """POST to another writable table (task_time_worked)."""
        schema = SCHEMAS[table]
        data = {"sys_created_by": user, "sys_updated_by": user, **self._accepted(schema, body, creating=True)}
        if table == "task_time_worked" and not data.get("user"):
            data["user"] = self.refs.users.get(user, "")
        row = self.tables[table].insert(data)
        if table == "task_time_worked" and data.get("task"):
            self.time_of.setdefault(data["task"], []).append(row.id)
        return row

    def update_row(self, table: str, sys_id: RowId, body: Mapping[str, Any], user: str) -> Row:
        """PATCH/PUT on another writable table."""
        row = self.tables[table][sys_id]
        changes = {
            k: v for k, v in self._accepted(SCHEMAS[table], body, creating=False).items() if row.data.get(k) != v
        }
        if not changes:
            return row
        return self.tables[table].update(sys_id, {**changes, "sys_updated_by": user})

    def _accepted(self, schema: Schema, body: Mapping[str, Any], *, creating: bool) -> dict[str, str]:
        """The body's writable fields as stored strings; unknown and read-only fields are dropped silently."""
        read_only = _READ_ONLY if creating else _READ_ONLY | {"number"}
        out: dict[str, str] = {}
        for name, raw in body.items():
            if name in schema.fields and name not in read_only and name not in schema.journals:
                out[name] = _as_text(raw)
        return out

    def _derive(
        self, merged: dict[str, str], changes: dict[str, str], user: str, before: Mapping[str, str] | None = None
    ) -> None:
        """What the out-of-the-box business rules compute on an incident write (into ``changes``)."""
        changes["priority"] = derive_priority(merged.get("impact", "3"), merged.get("urgency", "3"))
        state = merged.get("state", "1")
        changes["incident_state"] = state
        changes["active"] = "false" if state in ("7", "8") else "true"
        previous = (before or {}).get("state", "")
        now = stamp(self.tables["incident"].stamp())
        user_id = self.refs.users.get(user, "")
        if state in ("6", "7") and previous not in ("6", "7"):
            changes["resolved_at"] = merged.get("resolved_at") or now
            changes["resolved_by"] = merged.get("resolved_by") or user_id
        if state == "7" and previous != "7":
            changes["closed_at"] = now
            changes["closed_by"] = user_id
        if previous in ("6", "7") and state not in ("6", "7", "8"):
            changes.update(resolved_at="", resolved_by="", closed_at="", closed_by="")
            changes["reopen_count"] = str(int(merged.get("reopen_count") or "0") + 1)
        if state != "3" and merged.get("hold_reason"):
            changes["hold_reason"] = ""
        merged.update(changes)

    def _check_policies(self, merged: Mapping[str, str]) -> None:
        """The optional data policy: close code and notes are mandatory on Resolved and Closed."""
        if not self.close_info_mandatory or merged.get("state") not in ("6", "7"):
            return
        missing = [label for name, label in _CLOSE_INFO if not merged.get(name)]
        if missing:
            detail = "Data Policy Exception: \n\tThe following fields are mandatory: " + ", ".join(missing) + "\n"
            raise VendorError(403, "Operation Failed", detail=detail)

    def changed_since_seed(self, table: str) -> list[Row]:
        """Rows created or changed after seeding (what the bridge, or someone, did)."""
        rows = self.tables[table].rows()
        if table == "incident":
            return [r for r in rows if r.version != self.seed_versions.get(r.id, -1)]
        return rows[self.seed_counts.get(table, 0) :]

    # --- seeding -----------------------------------------------------------------------------------------------------
