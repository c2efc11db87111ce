"""Mirroring (eBonding) decisions: which tickets get a mirror, and which changes flow across a link. Pure functions.

A link row keeps, per side, the last value seen of every mirrored field and the notes and time entries already
carried across (``links.sync``)::

    {"from": {"status": "new", ...}, "to": {...},
     "notes": {"from": [ids carried], "to": [...]}, "time_entries": {"from": [...], "to": [...]}}

A side's field changed when its value differs from that side's last seen value. It flows to the other side only when
the link's ``own`` gives the field to that side (``from``, ``to``) or to ``both``; the other side's last seen value is
set to what we write, so the echo of our write is no change. Notes and time entries flow when owned the same way,
once each (by vendor id), never ours (they carry our marker), and each write has its own idempotency key.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import JsonValue

from psabridge.model import Action, AddNote, AddTimeEntry, CreateMirror, Note, SetFields, Ticket, TimeEntry
from psabridge.settings import LINKABLE_FIELDS, LinkSettings

__all__ = [
    "MIRROR_FIELDS",
    "Side",
    "create_fields",
    "link_marker",
    "matches",
    "mirror_origin",
    "new_mirror",
    "plan_side",
]

Side = Literal["from", "to"]
MIRROR_FIELDS: tuple[str, ...] = tuple(sorted(LINKABLE_FIELDS - {"notes", "time_entries"}))
"""Fields a link can keep in step, besides notes and time entries."""
_NOT_COPIED = frozenset({"assignee"})  # people ids differ between systems: never copied into a new mirror


def link_marker(source_key: str, target_connection: str) -> str:
    """The marker key written into a mirror, so a create whose answer was lost is found again."""
    digest = hashlib.sha256(f"{source_key}->{target_connection}".encode()).hexdigest()
    return f"m{digest[:31]}"


def mirror_origin(link: LinkSettings) -> str:
    """The ``origin`` of actions a link emits."""
    return f"mirror:{link.name}"


def _values(ticket: Ticket) -> dict[str, Any]:
    data = ticket.model_dump(mode="json")
    return {name: data.get(name) for name in MIRROR_FIELDS}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return bool(a == b)


def matches(link: LinkSettings, ticket: Ticket) -> bool:
    """Whether a ticket of the link's ``from`` connection is one the link mirrors.

    Its ``from.tenant``, if set, and every ``where`` field must match.
    """
    if ticket.connection != link.from_.connection:
        return False
    if link.from_.tenant is not None and ticket.tenant != link.from_.tenant:
        return False  # from.tenant selects one client's tickets of a connection that holds several
    data = ticket.model_dump(mode="json")
    for name, wanted in link.from_.where.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same(data.get(name), option) for option in options):
            return False
    return True


def new_mirror(link: LinkSettings, ticket: Ticket) -> CreateMirror | None:
    """The CreateMirror action for an open ticket the link mirrors; None for other tickets."""
    if not link.enabled or not matches(link, ticket):
        return None
    if ticket.status is not None and not ticket.status.is_open:
        return None  # closed history is not mirrored: only work still to do
    return CreateMirror(
        ticket_key=ticket.key,
        target=link.to.connection,
        origin=mirror_origin(link),
        link=link.name,
        reason=f"{ticket.number or ticket.external_id} matches link {link.name}",
    )


def create_fields(link: LinkSettings, source: Ticket) -> dict[str, JsonValue]:
    """Canonical fields of a new mirror: title, body, every mirrored field as the source has it, ``to`` settings.

    Both sides start in step, whichever side owns a field from then on.
    """
    values = _values(source)
    fields: dict[str, JsonValue] = {"summary": values["summary"], "description": values["description"]}
    for name in link.own:
        if name in MIRROR_FIELDS and name not in _NOT_COPIED and values.get(name) is not None:
            fields[name] = values[name]
    if link.to.queue is not None:
        fields["queue"] = link.to.queue
    if link.to.tenant is not None:
        fields["tenant"] = link.to.tenant
    fields.update(link.to.fields)
    return {k: v for k, v in fields.items() if v is not None}


def _item_id(item: Note | TimeEntry) -> str:
    if item.external_id:
        return item.external_id
    blob = item.model_dump_json(exclude={"origin"})
    return "h" + hashlib.sha256(blob.encode()).hexdigest()[:20]


def _owned_by(link: LinkSettings, name: str, side: Side) -> bool:
    owner = link.own.get(name)
    return owner == side or owner == "both"


def _attribution(ticket: Ticket, author: str | None) -> str:
    where = f"{ticket.connection} {ticket.number or ticket.external_id}"
    return f"[{author} in {where}]" if author else f"[{where}]"


def plan_side(
    link: LinkSettings,
    sync: dict[str, Any],
    side: Side,
    ticket: Ticket,
    *,
    other_key: str,
    integration_user: str | None = None,
    emit: bool = True,
) -> tuple[list[Action], dict[str, Any]]:
    """What one side's current state asks of the other side; returns the actions and the link's new sync state.

    With ``emit`` False (the echo of our own write) only the last seen values are updated: nothing flows back.

    Args:
        link: the link's settings.
        sync: the link row's ``sync`` state (not modified).
        side: which side ``ticket`` is on.
        ticket: the side's ticket as just stored.
        other_key: the other side's ticket key.
        integration_user: our vendor identity on this side (its notes are ours, never carried across).
        emit: whether changes flow (False for an echo: the state is brought up to date, nothing is written).
    """
    other: Side = "to" if side == "from" else "from"
    other_connection = link.to.connection if side == "from" else link.from_.connection
    state: dict[str, Any] = {
        "from": dict(sync.get("from", {})),
        "to": dict(sync.get("to", {})),
        "notes": {k: list(v) for k, v in dict(sync.get("notes", {})).items()},
        "time_entries": {k: list(v) for k, v in dict(sync.get("time_entries", {})).items()},
    }
    seen: dict[str, Any] = state[side]
    expected: dict[str, Any] = state[other]
    version = ticket.version or (ticket.updated_at.isoformat() if ticket.updated_at else ticket.content_hash()[:16])
    origin = f"{mirror_origin(link)}:{side}@{version}"
    actions: list[Action] = []

    changes: dict[str, JsonValue] = {}
    for name, value in _values(ticket).items():
        if name in seen and seen[name] == value:
            continue
        first = name not in seen
        seen[name] = value
        if not emit or first or not _owned_by(link, name, side) or value is None:
            continue
        if name in expected and expected[name] == value:
            continue  # the other side already holds it
        changes[name] = value
        expected[name] = value
    if changes:
        actions.append(
            SetFields(
                ticket_key=other_key,
                target=other_connection,
                origin=origin,
                fields=changes,
                reason=f"{', '.join(sorted(changes))} changed in {ticket.connection} ({link.name})",
            )
        )

    if not emit:
        return [], state  # an echo: last seen values brought up to date, nothing flows back

    if _owned_by(link, "notes", side):
        carried = state["notes"].setdefault(side, [])
        for note in ticket.notes:
            note_id = _item_id(note)
            if note.origin or (integration_user and note.author == integration_user) or note_id in carried:
                continue
            carried.append(note_id)
            text = f"{_attribution(ticket, note.author)}\n{note.text}".strip()
            actions.append(
                AddNote(
                    ticket_key=other_key,
                    target=other_connection,
                    origin=f"{mirror_origin(link)}:{side}:note:{note_id}",
                    text=text,
                    kind=note.kind,
                    reason=f"note from {ticket.connection} ({link.name})",
                )
            )

    if _owned_by(link, "time_entries", side):
        carried = state["time_entries"].setdefault(side, [])
        for entry in ticket.time_entries:
            entry_id = _item_id(entry)
            if entry.origin or (integration_user and entry.who == integration_user) or entry_id in carried:
                continue
            carried.append(entry_id)
            if entry.minutes <= 0:
                continue
            actions.append(
                AddTimeEntry(
                    ticket_key=other_key,
                    target=other_connection,
                    origin=f"{mirror_origin(link)}:{side}:time:{entry_id}",
                    minutes=entry.minutes,
                    note=f"{_attribution(ticket, entry.who)} {entry.note or ''}".strip(),
                    started_at=entry.started_at,
                    reason=f"time entry from {ticket.connection} ({link.name})",
                )
            )
    return actions, state
