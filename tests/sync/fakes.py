"""A fake vendor and its Connector for pipeline tests: flat records in memory, every write counted, faults on demand."""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from psabridge.connectors.base import Connector, NewTimeEntry, Page, WebhookEvent
from psabridge.errors import NotFoundError, PermanentError, WebhookVerificationError
from psabridge.model import NoteKind, System
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import RawRecord, VendorMetadata

SECRET = "fake-webhook-secret"
INTEGRATION_USER = "psabridge-bot"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # inside the default reconcile window


class FakeVendor:
    """One vendor's tickets. People change them with the helpers; the connector's writes are counted in ``writes``."""

    def __init__(self, name: str, system: System) -> None:
        self.name = name
        self.system = system
        self.tickets: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []  # (verb, ticket id)
        self.reads = 0
        self.faults: dict[str, list[Callable[[], None]]] = {}
        self.broken: dict[str, Exception] = {}  # ticket id -> what reading it raises
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self._lock = threading.RLock()

    def _now(self) -> str:
        return (T0 + timedelta(seconds=next(self._clock))).isoformat()

    def _bump(self, ticket: dict[str, Any]) -> None:
        ticket["updated"] = self._now()
        ticket["version"] = int(ticket["version"]) + 1

    # --- people ---------------------------------------------------------------------------------------------------

    def create(self, **fields: Any) -> str:
        """A person opens a ticket; returns its id."""
        with self._lock:
            ticket_id = str(next(self._ids))
            now = self._now()
            self.tickets[ticket_id] = {
                "id": ticket_id,
                "number": f"{self.name.upper()}-{ticket_id}",
                "title": "Printer offline",
                "body": "The 2nd floor printer shows offline.",
                "state": "new",
                "prio": "P3",
                "queue": "Service Desk",
                "created": now,
                "updated": now,
                "version": 1,
                "notes": [],
                "time": [],
                **fields,
            }
            return ticket_id

    def change(self, ticket_id: str, **fields: Any) -> None:
        """A person changes fields."""
        with self._lock:
            ticket = self.tickets[ticket_id]
            ticket.update(fields)
            self._bump(ticket)

    def note(self, ticket_id: str, text: str, *, by: str = "alice", kind: str = "internal") -> str:
        """A person adds a note; returns its id."""
        with self._lock:
            ticket = self.tickets[ticket_id]
            note_id = f"n{next(self._ids)}"
            ticket["notes"].append({"id": note_id, "kind": kind, "by": by, "text": text, "at": self._now()})
            self._bump(ticket)
            return note_id

    def log_time(self, ticket_id: str, minutes: int, *, by: str = "bob", note: str = "") -> None:
        """A person logs time."""
        with self._lock:
            ticket = self.tickets[ticket_id]
            ticket["time"].append({"id": f"t{next(self._ids)}", "minutes": minutes, "by": by, "note": note})
            self._bump(ticket)

    def fail(self, verb: str, *errors: Callable[[], None]) -> None:
        """The next calls of ``verb`` run these (each raises, or does something and raises)."""
        self.faults.setdefault(verb, []).extend(errors)

    def _fault(self, verb: str) -> None:
        queued = self.faults.get(verb)
        if queued:
            queued.pop(0)()

    def notes_with(self, ticket_id: str, text: str) -> int:
        """How many notes of a ticket contain ``text``."""
        return sum(text in n["text"] for n in self.tickets[ticket_id]["notes"])

    def raw(self, ticket_id: str) -> dict[str, Any]:
        """The record as get_ticket returns it."""
        ticket = copy.deepcopy(self.tickets[ticket_id])
        ticket["_psa_notes"] = ticket.pop("notes")
        ticket["_psa_time_entries"] = ticket.pop("time")
        return ticket


class FakeConnector(Connector):
    """A Connector over a FakeVendor (pages of ``page_size`` oldest first, a watermark per page)."""

    system: ClassVar[System] = System.SERVICENOW

    def __init__(self, settings: ConnectionSettings, vendor: FakeVendor, *, page_size: int = 3) -> None:
        super().__init__(settings)
        self.vendor = vendor
        self.page_size = page_size

    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        self.vendor._fault("iter_changes")
        with self.vendor._lock:
            rows = sorted(self.vendor.tickets.values(), key=lambda t: (t["updated"], t["id"]))
            start = since.isoformat() if since else ""
            rows = [copy.deepcopy(r) for r in rows if r["updated"] >= start]
        for index in range(0, len(rows), self.page_size):
            page = rows[index : index + self.page_size]
            for record in page:
                record.pop("notes")
                record.pop("time")
            newest = datetime.fromisoformat(page[-1]["updated"])
            yield Page(records=page, watermark=newest)
            self.vendor._fault("between_pages")

    def get_ticket(self, external_id: str) -> RawRecord:
        self.vendor._fault("get_ticket")
        with self.vendor._lock:
            self.vendor.reads += 1
            if external_id in self.vendor.broken:
                raise self.vendor.broken[external_id]
            if external_id not in self.vendor.tickets:
                raise NotFoundError(f"no ticket {external_id}", connection=self.name, status=404)
            return self.vendor.raw(external_id)

    def list_notes(self, external_id: str) -> list[RawRecord]:
        return self.get_ticket(external_id)["_psa_notes"]  # type: ignore[no-any-return]

    def metadata(self, *, refresh: bool = False) -> VendorMetadata:
        return VendorMetadata(system=self.vendor.system)

    def external_id_of(self, record: RawRecord) -> str:
        return str(record["id"])

    def updated_at_of(self, record: RawRecord) -> datetime | None:
        return datetime.fromisoformat(record["updated"])

    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        self.vendor._fault("refuse_create")  # refused before anything is written
        with self.vendor._lock:
            body = f"{fields.get('body', '')}\n\n{marker}"
            ticket_id = self.vendor.create(**{**json.loads(json.dumps(fields)), "body": body})
            self.vendor.writes.append(("create", ticket_id))
        self.vendor._fault("create_ticket")  # the answer is lost after the write
        return self.vendor.raw(ticket_id)

    def find_by_marker(self, marker: str) -> str | None:
        with self.vendor._lock:
            for ticket_id, ticket in self.vendor.tickets.items():
                if marker in ticket["body"]:
                    return ticket_id
        return None

    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        self.vendor._fault("update_ticket")
        with self.vendor._lock:
            self.vendor.change(external_id, **json.loads(json.dumps(patch)))
            self.vendor.writes.append(("update", external_id))
            return self.vendor.raw(external_id)

    def add_note(self, external_id: str, text: str, *, kind: NoteKind, marker: str) -> RawRecord:
        with self.vendor._lock:
            note_id = self.vendor.note(external_id, f"{text}\n\n{marker}", by=INTEGRATION_USER, kind=kind.value)
            self.vendor.writes.append(("note", external_id))
        self.vendor._fault("add_note")
        return {"id": note_id}

    def add_time_entry(self, external_id: str, entry: NewTimeEntry, *, marker: str) -> RawRecord:
        with self.vendor._lock:
            self.vendor.log_time(external_id, entry.minutes, by=INTEGRATION_USER, note=f"{entry.note} {marker}")
            self.vendor.writes.append(("time", external_id))
        self.vendor._fault("add_time_entry")
        return {"minutes": entry.minutes}

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        if headers.get("x-fake-secret") != SECRET:
            raise WebhookVerificationError("missing or wrong x-fake-secret header", connection=self.name)
        try:
            data = json.loads(body)
            return WebhookEvent(external_id=str(data["id"]), event=data["event"], delivery_id=str(data["delivery"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"not a fake delivery: {exc}", connection=self.name) from exc

    def integration_user(self) -> str | None:
        return INTEGRATION_USER
