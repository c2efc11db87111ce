"""Freshservice (API v2) simulator: tickets, conversations, time entries and lookups of one client's account.

What it reproduces, with sources (VENDOR-APIS.md section 4 and the files named there; FSSPEC is Freshworks' own
vendor-specs/freshservice/freshservice-v2.0.1.swagger.yml):

- ``GET /api/v2/tickets``: ``updated_since``, ``page``, ``per_page`` (default 30, at most 100: more is a 400),
  ``order_type`` (asc/desc, default desc), ``include`` (stats, requester, requested_for; +2 credits each),
  ``filter``, ``email``, ``requester_id``, ``type``, ``workspace_id``; an unknown parameter is a 400 invalid_field
  (``order_by`` too: Freshdesk has it, Freshservice does not; askasoft/pango comments it out for Freshservice).
  Tickets are always sorted by ``created_at`` (then id), ascending or descending, never by ``updated_at``; without
  ``updated_since`` only tickets created in the last 30 days are listed; deleted and spam tickets only under their
  filter. ``Link: <...page=N+1>; rel="next"`` while more follow, absent on the last page. Records changed between
  pages move nothing (the sort key never changes), but a ticket created meanwhile shifts a descending list (a
  record repeats on the next page) and a deleted one shifts every list (a record is skipped).
- ``GET/PUT/DELETE /api/v2/tickets/{id}`` (``{"ticket": {...}}``, PUT partial, DELETE moves to trash),
  ``include`` stats, requester, requested_for, conversations (the first ten), assets, tags ... (+1 credit each);
  ``POST /api/v2/tickets`` (201 and Location); ``POST /tickets/{id}/notes`` (``private`` defaults to true; answered
  ``{"conversation": {...}}`` as in FSSPEC); ``GET /tickets/{id}/conversations``; ``GET/POST
  /tickets/{id}/time_entries`` (``time_spent`` "hh:mm", ``executed_at`` not in the future; ``{"time_entry": ...}``).
- Lookups: ``/api/v2/agents``, ``/api/v2/groups`` (FSSPEC names it ``agent_groups`` and answers its list under
  ``departments``, a copy-paste slip; both paths answer ``{"groups": [...]}`` as live clients read it),
  ``/api/v2/requesters``, ``/api/v2/departments``, ``/api/v2/ticket_form_fields`` (status, priority, source ...
  choices as ``[{"id", "value"}]``, FSSPEC ``field``).
- Auth, error bodies, plan rate limits and webhooks: see freshservice_http.py. The plan is Growth unless
  ``PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN`` names another (starter, growth, pro, enterprise, unlimited).

Webhooks go to receivers registered through ``/_sandbox/webhooks`` (standing in for the admin's Workflow Automator
rule), as ``{"ticket_id": <id>, "event": "ticket_created" | "ticket_updated" | "note_added", "updated_at": ...}``.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx

from psabridge_sandbox.core import Simulator
from psabridge_sandbox.freshservice_api import FreshserviceApi
from psabridge_sandbox.freshservice_http import (
    PLANS,
    Plan,
    authenticate,
    install_rate_limits,
    render_error,
    sign_webhook,
)
from psabridge_sandbox.freshservice_records import (
    CONVERSATION_BASE,
    CONVERSATIONS_PER_SEED,
    SLA_HOURS,
    TIME_ENTRIES_PER_SEED,
    TIME_ENTRY_BASE,
    WORKSPACE_ID,
    Directory,
    fs_time,
    seed_conversations,
    seed_ticket_data,
    seed_time_entries,
    text_to_html,
)
from psabridge_sandbox.registry import SandboxContext, register
from psabridge_sandbox.table import Change, Row
from psabridge_sandbox.tickets import SeedTicket

__all__ = ["PLAN_ENV", "FreshserviceSimulator", "build"]

PLAN_ENV = "PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN"
STATS_FIELDS = (
    "agent_responded_at",
    "requester_responded_at",
    "first_responded_at",
    "status_updated_at",
    "reopened_at",
    "resolved_at",
    "closed_at",
    "pending_since",
)
_PAGES_KEPT = 1000


class FreshserviceSimulator:
    """One Freshservice account: its records, how they render, and how they change.

    Args:
        context: the sandbox context (world, seed tickets, faults, clock).
        plan: the plan (name or Plan); default Growth, or the one ``PSABRIDGE_SANDBOX_FRESHSERVICE_PLAN`` names, or
            ``unlimited`` when the context lifts limits.
        webhook_transport: where webhooks go (tests); default the network.
    """

    def __init__(
        self,
        context: SandboxContext,
        *,
        plan: Plan | str | None = None,
        webhook_transport: httpx.BaseTransport | None = None,
    ) -> None:
        chosen = plan if plan is not None else os.environ.get(PLAN_ENV, "growth") if context.limits else "unlimited"
        if isinstance(chosen, str):
            if chosen not in PLANS:
                raise ValueError(f"unknown Freshservice plan {chosen!r}; known: {', '.join(PLANS)}")
            chosen = PLANS[chosen]
        self.plan = chosen
        self.clock = context.clock
        self.directory = Directory.build(context.world, context.service.tenants, context.anchor)
        self.simulator = Simulator(
            context.service.name,
            auth=authenticate,
            errors=render_error,
            faults=context.faults,
            seed=context.seed,
            clock=context.clock,
            state=self.state,
            signer=sign_webhook,
            webhook_transport=webhook_transport,
        )
        self.tickets = self.simulator.table("tickets")
        self._lock = threading.RLock()
        self._seeds: dict[int, SeedTicket] = {}
        self._conversations: dict[int, list[dict[str, Any]]] = {}
        self._time_entries: dict[int, list[dict[str, Any]]] = {}
        self._written: set[int] = set()
        self._notes_added: list[dict[str, Any]] = []
        self._time_added: list[dict[str, Any]] = []
        self._pages: deque[dict[str, Any]] = deque(maxlen=_PAGES_KEPT)
        self._matches: tuple[tuple[Any, ...], list[int]] | None = None
        self.generation = 0
        seeds = context.seed_tickets()
        # A few container objects per ticket and no cycles: the cyclic collector would walk the growing heap again
        # and again (four fifths of the load time for 100,000 tickets), so it rests while we load (as tickets.py).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for seed in seeds:
                data = seed_ticket_data(seed, self.directory)
                self.tickets.insert(
                    data, id=seed.number, created=seed.created_at, updated=seed.updated_at, notify=False
                )
                self._seeds[seed.number] = seed
        finally:
            if collecting:
                gc.enable()
        self._next_conversation = CONVERSATION_BASE + (len(seeds) + 1) * CONVERSATIONS_PER_SEED
        self._next_time_entry = TIME_ENTRY_BASE + (len(seeds) + 1) * TIME_ENTRIES_PER_SEED
        self.tickets.on_change(self._changed)
        install_rate_limits(self.simulator, self.plan)
        FreshserviceApi(self).mount(self.simulator)

    # --- reading -----------------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The account's clock."""
        return self.clock.now()

    def matching(self, key: tuple[Any, ...], keep: Callable[[Row], bool]) -> list[int]:
        """Ids of the tickets ``keep`` accepts, in created order; cached per list query until a ticket changes."""
        with self._lock:
            generation = self.generation
            if self._matches is not None and self._matches[0] == (generation, *key):
                return self._matches[1]
        ids = [int(row.id) for row in self.tickets.rows() if keep(row)]
        with self._lock:
            self._matches = ((generation, *key), ids)
        return ids

    def render_ticket(self, row: Row, includes: Iterable[str] = ()) -> dict[str, Any]:
        """A ticket as the API answers it, with the ``include`` extras asked for."""
        data = row.data
        now = self.now()
        status = data["status"]
        stats: dict[str, datetime] = data["stats"]
        open_ = status in (2, 3)
        responded = stats.get("first_responded_at")
        ticket: dict[str, Any] = {
            "subject": data["subject"],
            "group_id": data["group_id"],
            "department_id": data["department_id"],
            "category": data["category"],
            "sub_category": data["sub_category"],
            "item_category": data["item_category"],
            "requester_id": data["requester_id"],
            "requested_for_id": data["requested_for_id"],
            "responder_id": data["responder_id"],
            "due_by": fs_time(data["due_by"]),
            "fr_escalated": responded > data["fr_due_by"] if responded else open_ and now > data["fr_due_by"],
            "deleted": data["deleted"],
            "spam": data["spam"],
            "email_config_id": None,
            "fwd_emails": [],
            "reply_cc_emails": [],
            "cc_emails": [],
            "is_escalated": open_ and data["due_by"] < now,
            "fr_due_by": fs_time(data["fr_due_by"]),
            "id": row.id,
            "priority": data["priority"],
            "status": status,
            "source": data["source"],
            "created_at": fs_time(row.created),
            "updated_at": fs_time(row.updated),
            "to_emails": None,
            "type": data["type"],
            "description": data["description"] or text_to_html(data["description_text"]),
            "description_text": data["description_text"],
            "custom_fields": dict(data["custom_fields"]),
            "tags": list(data["tags"]),
            "attachments": [],
            "urgency": data["urgency"],
            "impact": data["impact"],
            "workspace_id": WORKSPACE_ID,
        }
        for name in includes:
            if name == "stats":
                ticket["stats"] = {
                    "ticket_id": row.id,
                    "opened_at": None,
                    "group_escalated": False,
                    "inbound_count": 1,
                    "created_at": fs_time(row.created),
                    "updated_at": fs_time(row.updated),
                    **{key: fs_time(stats[key]) if key in stats else None for key in STATS_FIELDS},
                }
            elif name in ("requester", "requested_for"):
                ticket[name] = self.directory.embedded_requester(data[f"{name}_id"])
            elif name == "conversations":
                ticket["conversations"] = [dict(c) for c in self.conversations_of(int(row.id))[:10]]
            elif name == "assets":
                ticket["assets"] = [dict(self.directory.assets[a]) for a in data["asset_ids"]]
            elif name == "department":
                dept = self.directory.departments.get(data["department_id"])
                ticket["department"] = dict(dept) if dept else None
        return ticket

    def conversations_of(self, ticket_id: int) -> list[dict[str, Any]]:
        """A ticket's conversations, oldest first (seed conversations are built on first use)."""
        with self._lock:
            found = self._conversations.get(ticket_id)
            if found is None:
                seed = self._seeds.get(ticket_id)
                found = seed_conversations(seed, ticket_id, self.directory) if seed else []
                self._conversations[ticket_id] = found
            return found

    def time_entries_of(self, ticket_id: int) -> list[dict[str, Any]]:
        """A ticket's time entries, oldest first."""
        with self._lock:
            found = self._time_entries.get(ticket_id)
            if found is None:
                seed = self._seeds.get(ticket_id)
                found = seed_time_entries(seed, ticket_id) if seed else []
                self._time_entries[ticket_id] = found
            return found

    def record_page(self, path: str, query: str, ids: list[int]) -> None:
        """Remember a list page served, for /_sandbox/state."""
        with self._lock:
            self._pages.append({"path": path, "query": query, "count": len(ids), "ids": ids})

    def state(self) -> dict[str, Any]:
        """What /_sandbox/state shows: counts, tickets written by clients (or churn), notes, time, pages served."""
        with self._lock:
            written = sorted(self._written)
            notes = list(self._notes_added)
            time_entries = list(self._time_added)
            pages = list(self._pages)
        tickets = [self.render_ticket(row) for row in (self.tickets.get(i) for i in written) if row is not None]
        return {
            "plan": self.plan.name,
            "ticket_count": len(self.tickets),
            "tickets": tickets,
            "notes": notes,
            "time_entries": time_entries,
            "pages": pages,
        }

    # --- writing -----------------------------------------------------------------------------------------------------

    def add_conversation(self, ticket_id: int, make: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """Add a note built by ``make(id)``; the ticket's ``updated_at`` moves and a ``note_added`` webhook goes out."""
        with self._lock:
            conversation_id = self._next_conversation
            self._next_conversation += 1
            record = make(conversation_id)
            self.conversations_of(ticket_id).append(record)
            self._notes_added.append(record)
        stats: dict[str, datetime] = dict(self.tickets[ticket_id].data["stats"])
        if not record["private"] and not record["incoming"]:  # an agent's public answer is a response
            stats.setdefault("first_responded_at", self.now())
            stats["agent_responded_at"] = self.now()
        row = self.tickets.update(ticket_id, {"stats": stats}, notify=False)
        self._changed("updated", row, event="note_added")
        return record

    def add_time_entry(self, ticket_id: int, make: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """Add a time entry built by ``make(id)`` (the ticket itself does not change)."""
        with self._lock:
            entry_id = self._next_time_entry
            self._next_time_entry += 1
            record = make(entry_id)
            self.time_entries_of(ticket_id).append(record)
            self._time_added.append(record)
        return record

    def churn_ticket(self) -> dict[str, Any]:
        """A ticket raised by someone else while a client pages (the ``churn`` fault)."""
        requester = next(iter(self.directory.requesters.values()))
        now = self.now()
        return {
            "subject": "Outlook keeps asking for my password",
            "description": None,
            "description_text": "Outlook keeps asking for my password since this morning.",
            "status": 2,
            "priority": 2,
            "urgency": 2,
            "impact": 2,
            "source": 2,
            "type": "Incident",
            "requester_id": requester["id"],
            "requested_for_id": requester["id"],
            "responder_id": None,
            "group_id": self.directory.group_of_queue["Service Desk"],
            "department_id": next(iter(requester["department_ids"]), None),
            "category": "Email",
            "sub_category": "Outlook",
            "item_category": None,
            "tags": [],
            "custom_fields": {"affected_site": None, "msp_reference": None},
            "fr_due_by": now + timedelta(hours=SLA_HOURS[2][0]),
            "due_by": now + timedelta(hours=SLA_HOURS[2][1]),
            "spam": False,
            "deleted": False,
            "asset_ids": [],
            "stats": {},
        }

    def _changed(self, change: Change, row: Row, *, event: str | None = None) -> None:
        with self._lock:
            self.generation += 1
            self._written.add(int(row.id))
        webhooks = self.simulator.webhooks
        if change == "deleted" or not webhooks.subscriptions():
            return
        name = event or ("ticket_created" if change == "created" else "ticket_updated")
        webhooks.emit(name, {"ticket_id": row.id, "event": name, "updated_at": fs_time(row.updated)})


@register("freshservice")
def build(context: SandboxContext) -> Simulator:
    """The Freshservice simulator."""
    return FreshserviceSimulator(context).simulator
