"""The invariants the chaos run checks, one function each, over vendor truth (the simulators' APIs) and the store.

Each check takes the ``World`` (what the vendors hold, what the store holds, what the people did) and returns a
``Check``: its counts and its violations. ``CHECKS`` lists them in the order they are reported; a new invariant (for
example "no checklist note or page duplicated", once the evaluate actor writes them) is one more function there.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from tests.sync.bridge import Vendors

from chaos.driver import Expected, TrackedLink, patiently
from psabridge.markers import MARKER_PATTERN
from psabridge.store import Database
from psabridge.store.models import DeadLetter, InboxDelivery, Link, OutboxAction, TicketRow

__all__ = ["CHECKS", "Check", "World", "read_world"]

SOURCES = ("acme-snow", "globex-fs")  # sources of the run's links
TARGETS = {"msp-cw": "externalXRef", "partner-at": "externalID"}  # where each target keeps a mirror's marker
FS_EVERYTHING = "2000-01-01T00:00:00Z"  # Freshservice lists only the last 30 days without updated_since


@dataclass
class Check:
    """One invariant's outcome."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


@dataclass
class World:
    """Everything the checks compare, read once after the bridge has settled (faults off)."""

    vendor_tickets: dict[str, dict[str, dict[str, Any]]]  # connection -> id -> list record
    stored: dict[str, dict[str, TicketRow]]  # connection -> external id -> row
    links: list[Link]
    link_tenants: dict[str, str | None]  # link name -> configured target tenant
    connection_tenants: dict[str, str | None]  # connection -> its single tenant, if it has one
    notes: dict[tuple[str, str], str]  # (connection, id) -> the vendor's notes, as one JSON text
    times: dict[tuple[str, str], str]  # (connection, id) -> the vendor's time entries, as one JSON text
    status_of: dict[tuple[str, str], str]  # (connection, id) -> the vendor's status as the people set it
    expected: Expected
    dead_letters: list[DeadLetter]
    outbox: list[OutboxAction]
    inbox: list[InboxDelivery]


# --- reading vendor truth and the store -------------------------------------------------------------------------------


def _servicenow(v: Vendors) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        params = {"sysparm_fields": "sys_id,number,short_description", "sysparm_limit": "1000",
                  "sysparm_offset": str(offset), "sysparm_query": "ORDERBYsys_created_on"}  # fmt: skip
        rows = patiently(lambda p=params: v.sn.get("/api/now/table/incident", params=p).raise_for_status(), "list")
        page = rows.json()["result"]
        found.update({str(r["sys_id"]): r for r in page})
        if len(page) < 1000:
            return found
        offset += len(page)


def _connectwise(v: Vendors) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    page_no = 1
    while True:
        params = {"pageSize": "1000", "page": str(page_no), "orderBy": "id asc",
                  "fields": "id,summary,externalXRef,status/name"}  # fmt: skip
        page = patiently(lambda p=params: v.cw.get("/service/tickets", params=p).raise_for_status(), "list").json()
        found.update({str(r["id"]): r for r in page})
        if len(page) < 1000:
            return found
        page_no += 1


def _autotask(v: Vendors) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    last = 0
    while True:
        query = {"filter": [{"op": "gt", "field": "id", "value": last}], "MaxRecords": 500,
                 "IncludeFields": ["id", "title", "externalID", "status", "companyID"]}  # fmt: skip
        page = patiently(lambda q=query: v.at.http.post("Tickets/query", json=q).raise_for_status(), "list").json()
        items = sorted(page["items"], key=lambda r: int(r["id"]))
        found.update({str(r["id"]): r for r in items})
        if len(items) < 500:
            return found
        last = int(items[-1]["id"])


def _freshservice(v: Vendors) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    page_no = 1
    while True:
        params = {"per_page": "100", "page": str(page_no), "updated_since": FS_EVERYTHING}
        page = patiently(lambda p=params: v.fs.http.get("tickets", params=p).raise_for_status(), "list").json()
        found.update({str(r["id"]): r for r in page["tickets"]})
        if len(page["tickets"]) < 100:
            return found
        page_no += 1


LISTERS: dict[str, Callable[[Vendors], dict[str, dict[str, Any]]]] = {
    "acme-snow": _servicenow, "msp-cw": _connectwise, "partner-at": _autotask, "globex-fs": _freshservice,
}  # fmt: skip


def _notes(v: Vendors, connection: str, ticket: str) -> str:
    read: dict[str, Callable[[], Any]] = {
        "acme-snow": lambda: v.sn_notes(ticket),
        "msp-cw": lambda: v.cw_notes(ticket),
        "partner-at": lambda: v.at.notes(int(ticket)),
        "globex-fs": lambda: v.fs.notes(int(ticket)),
    }
    return json.dumps(patiently(read[connection], "notes"))


def _times(v: Vendors, connection: str, ticket: str) -> str:
    if connection == "acme-snow":
        params = {"sysparm_query": f"task={ticket}", "sysparm_limit": "1000"}
        call = lambda: v.sn.get("/api/now/table/task_time_worked", params=params).raise_for_status()  # noqa: E731
        return json.dumps(patiently(call, "time").json()["result"])
    if connection == "msp-cw":
        params = {"conditions": f"chargeToId = {ticket}", "pageSize": "1000"}
        call = lambda: v.cw.get("/time/entries", params=params).raise_for_status()  # noqa: E731
        return json.dumps(patiently(call, "time").json())
    return "[]"


def read_world(
    vendors: Vendors, db: Database, expected: Expected, *, link_tenants: dict[str, str | None],
    connection_tenants: dict[str, str | None],
) -> World:  # fmt: skip
    """Read every vendor's tickets, the notes and time entries of the tickets the people touched, and the store."""
    tickets = {name: lister(vendors) for name, lister in LISTERS.items()}
    notes: dict[tuple[str, str], str] = {}
    times: dict[tuple[str, str], str] = {}
    status_of: dict[tuple[str, str], str] = {}
    for t in expected.linked:
        sides = [(t.source, t.source_id)] + ([(t.target, t.target_id)] if t.target_id else [])
        for connection, ticket in sides:
            notes[(connection, ticket)] = _notes(vendors, connection, ticket)
            times[(connection, ticket)] = _times(vendors, connection, ticket)
        if t.target_id and t.target_id in tickets[t.target]:
            record = tickets[t.target][t.target_id]
            status = record.get("status")
            status_of[(t.target, t.target_id)] = str(status.get("name") if isinstance(status, dict) else status)
    with db.session() as s:
        rows = list(s.scalars(sa.select(TicketRow).where(TicketRow.deleted_at.is_(None))))
        stored: dict[str, dict[str, TicketRow]] = {}
        for row in rows:
            stored.setdefault(row.connection, {})[row.external_id] = row
        return World(
            vendor_tickets=tickets,
            stored=stored,
            links=list(s.scalars(sa.select(Link))),
            link_tenants=link_tenants,
            connection_tenants=connection_tenants,
            notes=notes,
            times=times,
            status_of=status_of,
            expected=expected,
            dead_letters=list(s.scalars(sa.select(DeadLetter))),
            outbox=list(s.scalars(sa.select(OutboxAction))),
            inbox=list(s.scalars(sa.select(InboxDelivery))),
        )


# --- the invariants ---------------------------------------------------------------------------------------------------


def every_ticket_stored_once(w: World) -> Check:
    """Every ticket each vendor holds is in the store, once (its key is unique), and the store holds no other."""
    check = Check("every source ticket present once")
    for connection, records in w.vendor_tickets.items():
        stored = w.stored.get(connection, {})
        missing = sorted(set(records) - set(stored))
        extra = sorted(set(stored) - set(records))
        check.counts[f"{connection} tickets"] = len(records)
        check.violations += [f"{connection} ticket {i} is not in the store" for i in missing[:20]]
        check.violations += [f"{connection} ticket {i} is stored but the vendor has no such ticket" for i in extra[:20]]
    return check


def every_mirror_once(w: World) -> Check:
    """Every link has exactly one mirror at its target (found by the marker in it), and no mirror lacks a link."""
    check = Check("every mirror once")
    markers: Counter[str] = Counter()
    where: dict[str, str] = {}
    for connection, field_name in TARGETS.items():
        for ticket_id, record in w.vendor_tickets[connection].items():
            value = str(record.get(field_name) or "")
            if "psabridge:" in value:
                markers[value] += 1
                where[value] = f"{connection}:{ticket_id}"
    created = [lk for lk in w.links if lk.state == "created"]
    check.counts["links created"] = len(created)
    check.counts["links pending"] = len(w.links) - len(created)
    check.counts["mirrors at the vendors"] = sum(markers.values())
    matched: set[str] = set()
    for lk in created:
        hits = [m for m in markers if lk.marker in m]
        matched.update(hits)
        count = sum(markers[m] for m in hits)
        if count != 1:
            check.violations.append(f"link {lk.name} of {lk.source_key}: {count} mirrors at {lk.target_connection}")
        elif where[hits[0]] != lk.target_key:
            check.violations.append(f"link {lk.name} of {lk.source_key} names {lk.target_key}, its mirror is "
                                    f"{where[hits[0]]}")  # fmt: skip
    for marker in sorted(set(markers) - matched):
        check.violations.append(f"mirror {where[marker]} ({marker}) belongs to no created link")
    for lk in w.links:
        if lk.state != "created":
            check.violations.append(f"link {lk.name} of {lk.source_key} is still {lk.state}")
    sources: Counter[str] = Counter(lk.source_key for lk in w.links)
    check.violations += [f"{key} has {n} link rows" for key, n in sources.items() if n > 1]
    for t in w.expected.linked:
        if sources[f"{t.source}:{t.source_id}"] != 1:
            check.violations.append(f"{t.source} ticket {t.source_id} ({t.title!r}) has no link to {t.target}")
    return check


def _count(text: str, token: str) -> int:
    return text.count(token)


def _stored_text(w: World, connection: str, ticket: str | None, part: str) -> str:
    row = w.stored.get(connection, {}).get(ticket or "")
    return json.dumps(row.data.get(part, [])) if row is not None else "[]"


def no_note_or_time_entry_lost_or_doubled(w: World) -> Check:
    """Each note the people wrote on a linked ticket is there once and once on its peer, vendor and store alike.

    Each time entry on a ConnectWise mirror is once there and once on its ServiceNow source.
    """
    check = Check("no note or time entry duplicated or lost")
    notes = times = lagging = 0
    for t in w.expected.linked:
        peer_sides = ((t.notes_source, (t.source, t.source_id), (t.target, t.target_id)),
                      (t.notes_target, (t.target, t.target_id), (t.source, t.source_id)))  # fmt: skip
        for tokens, own, peer in peer_sides:
            for token in tokens:
                notes += 1
                for connection, ticket in (own, peer):
                    at_vendor = _count(w.notes.get((connection, ticket or ""), ""), token)
                    in_store = _count(_stored_text(w, connection, ticket, "notes"), token)
                    if (at_vendor, in_store) != (1, 1):
                        check.violations.append(f"note {token}: {at_vendor}x on {connection} {ticket}, "
                                                f"{in_store}x in its stored copy")  # fmt: skip
        for token in t.time_target:
            times += 1
            mirror_vendor = _count(w.times.get((t.target, t.target_id or ""), ""), token)
            mirror_store = _count(_stored_text(w, t.target, t.target_id, "time_entries"), token)
            source_vendor = _count(w.times.get((t.source, t.source_id), ""), token)
            source_store = _count(_stored_text(w, t.source, t.source_id, "time_entries"), token)
            # The source's stored copy may not have seen our own write yet: adding time does not move the
            # incident's update time, so neither a poll nor the full reconcile re-reads it (a duplicate still counts).
            lagging += source_store == 0
            if (mirror_vendor, mirror_store, source_vendor) != (1, 1, 1) or source_store > 1:
                check.violations.append(
                    f"time entry {token}: {mirror_vendor}x on {t.target} {t.target_id} ({mirror_store}x stored), "
                    f"{source_vendor}x on {t.source} {t.source_id} ({source_store}x stored)"
                )
    check.counts["notes written by people"] = notes
    check.counts["time entries written by people"] = times
    check.counts["carried time entries not yet in the source's stored copy"] = lagging
    return check


def _order(text: str, tokens: list[str]) -> list[str]:
    return sorted((t for t in tokens if t in text), key=text.index)


def per_ticket_order_kept(w: World) -> Check:
    """Notes arrive on the peer in the order they were written; both sides end with the status set last."""
    check = Check("per-ticket order kept")
    statuses = 0
    for t in w.expected.linked:
        for tokens, peer in ((t.notes_source, (t.target, t.target_id)), (t.notes_target, (t.source, t.source_id))):
            text = w.notes.get((peer[0], peer[1] or ""), "")
            seen = _order(text, tokens)
            if seen != [x for x in tokens if x in seen]:
                check.violations.append(f"notes on {peer[0]} {peer[1]} in the order {seen}, written as {tokens}")
        if not t.statuses or t.target_id is None:
            continue
        statuses += len(t.statuses)
        at_vendor = w.status_of.get((t.target, t.target_id))
        if at_vendor != t.statuses[-1]:
            check.violations.append(f"{t.target} {t.target_id} has status {at_vendor}, last set {t.statuses[-1]}")
        # The source learns the mirror's status from the bridge's write-backs: the last one must carry the mirror's
        # final status. (Its own stored status may read back otherwise where its vendor cannot hold the value:
        # Freshservice's Open without an agent reads as "new" whatever was written.)
        mirror = w.stored.get(t.target, {}).get(t.target_id)
        writes = [o for o in w.outbox if o.ticket_key == f"{t.source}:{t.source_id}" and o.status == "done"
                  and o.action_type == "set_fields" and "status" in o.action.get("fields", {})]  # fmt: skip
        last = max(writes, key=lambda o: o.id).action["fields"]["status"] if writes else None
        source = w.stored.get(t.source, {}).get(t.source_id)
        if mirror is None or (last != mirror.status and (source is None or source.status != mirror.status)):
            check.violations.append(f"{t.source} {t.source_id}: last status written {last}, its mirror "
                                    f"{t.target} {t.target_id} ends {mirror.status if mirror else None}")  # fmt: skip
    check.counts["status changes by people"] = statuses
    return check


def nothing_across_tenants(w: World) -> Check:
    """A single-tenant connection stores only its tenant; a link joins two tickets of its tenant."""
    check = Check("nothing written across tenants")
    for connection, tenant in w.connection_tenants.items():
        if tenant is None:
            continue
        wrong = [r.external_id for r in w.stored.get(connection, {}).values() if r.tenant != tenant]
        check.violations += [f"{connection} ticket {i} is stored for another tenant than {tenant}" for i in wrong[:20]]
    for lk in w.links:
        want = w.link_tenants.get(lk.name)
        source = w.stored.get(lk.source_connection, {}).get(lk.source_key.split(":", 1)[1])
        target = w.stored.get(lk.target_connection, {}).get(lk.target_external_id or "")
        got = (source.tenant if source else None, target.tenant if target else None)
        if got != (want, want):
            check.violations.append(f"link {lk.name} {lk.source_key} -> {lk.target_key}: tenants {got}, want {want}")
    check.counts["links checked"] = len(w.links)
    return check


def every_dead_letter_explained(w: World) -> Check:
    """Every dead letter and failed write-back has a reason; no delivery or write-back is left unfinished."""
    check = Check("every dead letter explained, nothing left unfinished")
    check.counts["dead letters"] = len(w.dead_letters)
    for dl in w.dead_letters:
        if not str(dl.error.get("message") or dl.error.get("error") or "").strip():
            check.violations.append(f"dead letter {dl.id} ({dl.actor} on {dl.queue}) has no reason: {dl.error}")
    failed = [o for o in w.outbox if o.status in ("failed", "dead")]
    check.counts["write-backs"] = len(w.outbox)
    check.counts["write-backs failed"] = len(failed)
    check.violations += [f"write-back {o.id} {o.status} without a reason" for o in failed if not o.last_error]
    open_rows = [o for o in w.outbox if o.status in ("pending", "sending")]
    check.violations += [f"write-back {o.id} ({o.action_type} to {o.target}) still {o.status}" for o in open_rows]
    check.counts["webhook deliveries"] = len(w.inbox)
    unfinished = [d for d in w.inbox if d.status in ("received", "queued")]
    check.violations += [f"delivery {d.id} on {d.connection} still {d.status}" for d in unfinished[:20]]
    check.violations += [f"delivery {d.id} failed without a reason" for d in w.inbox if d.status == "failed"
                         and not d.error]  # fmt: skip
    return check


def no_write_of_ours_doubled(w: World) -> Check:
    """Every note psabridge wrote (a carried note, the checklist's combined note) is at the vendor once per ticket.

    Each of our writes ends with its action's marker; on the tickets the people touched, no marker may appear twice.
    """
    check = Check("no note of ours (carried or checklist) duplicated")
    ours = checklist = 0
    for (connection, ticket), text in w.notes.items():
        keys = Counter(MARKER_PATTERN.findall(text))
        ours += len(keys)
        check.violations += [f"{connection} {ticket}: our note {key} is there {n} times" for key, n in keys.items()
                             if n > 1]  # fmt: skip
    for o in w.outbox:
        checklist += o.action_type == "add_note" and o.origin.startswith("rules.") and o.status == "done"
    check.counts["our notes on the people's tickets"] = ours
    check.counts["checklist notes written"] = checklist
    return check


CHECKS: tuple[Callable[[World], Check], ...] = (
    every_ticket_stored_once,
    every_mirror_once,
    no_note_or_time_entry_lost_or_doubled,
    no_write_of_ours_doubled,
    per_ticket_order_kept,
    nothing_across_tenants,
    every_dead_letter_explained,
)
"""The invariants, in report order (a page invariant is one more function here once the run configures a pager)."""


def tracked(t: TrackedLink) -> str:
    """A tracked link, for messages."""
    return f"{t.source}:{t.source_id} -> {t.target}:{t.target_id}"
