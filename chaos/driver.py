"""The people: changes made through the vendors' own APIs while faults are on, and what each change must lead to.

Every write a person makes is remembered (``Expected``) so the invariants can say what the bridge owed. A person's
request that the fault injector answered 5xx, 429 or held until it timed out was never applied by the simulator
(faults are decided before the vendor's route runs), so repeating it is safe; malformed bodies are not among the
chaos run's faults for that reason.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from tests.sync.bridge import Bridge, Vendors

__all__ = ["Driver", "Expected", "TrackedLink"]

T = TypeVar("T")
CW_STATUSES = ("In Progress", "Waiting Customer")
AT_STATUSES = (8, 7)  # In Progress, Waiting Customer (psabridge_sandbox.autotask_data.STATUS)


def patiently(action: Callable[[], T], what: str, attempts: int = 12) -> T:
    """Run a person's request, again after a fault (5xx, 429 with its Retry-After, a timeout)."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            return action()
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            if (status != 429 and status < 500) or attempt == attempts - 1:
                raise
            wait = float(exc.response.headers.get("Retry-After") or delay) if status == 429 else delay
        except httpx.TransportError:
            if attempt == attempts - 1:
                raise
            wait = delay
        time.sleep(min(wait, 5.0))
        delay = min(delay * 2, 5.0)
    raise AssertionError(f"unreachable: {what}")


@dataclass
class TrackedLink:
    """A source ticket the driver opened for a link, its mirror once the bridge made it, and what was done to it."""

    link: str  # the link's name
    source: str  # connection
    source_id: str
    title: str
    target: str  # connection
    target_id: str | None = None
    notes_source: list[str] = field(default_factory=list)  # tokens written on the source, in order
    notes_target: list[str] = field(default_factory=list)  # tokens written on the mirror, in order
    time_target: list[str] = field(default_factory=list)  # time entry tokens written on the mirror
    statuses: list[str] = field(default_factory=list)  # statuses set on the mirror (the side that owns status)


@dataclass
class Expected:
    """What the people did."""

    linked: list[TrackedLink] = field(default_factory=list)
    unlinked: dict[str, list[str]] = field(default_factory=dict)  # connection -> ids opened there, no link
    actions: int = 0
    retried: int = 0


class Driver:
    """A help desk's people at work: new tickets, notes, time entries and status changes, at random, seeded."""

    def __init__(self, vendors: Vendors, bridge: Bridge, *, seed: int, run: str) -> None:
        self.vendors = vendors
        self.bridge = bridge
        self.rng = random.Random(f"chaos-driver:{seed}")
        self.run = run  # a tag in every title and token, so a rerun against the same sandbox tells them apart
        self.expected = Expected()
        self._n = 0

    def token(self, kind: str) -> str:
        """A tag no other contains (the ``~`` ends it: ``n12~`` is not found inside ``n120~``)."""
        self._n += 1
        return f"chaos-{self.run}-{kind}{self._n}~"

    def step(self) -> str:
        """One person's change, chosen at random among those possible now; its name."""
        links = self.expected.linked
        mirrored = [t for t in links if t.target_id is not None or self._mirror(t)]
        choices: list[tuple[str, Callable[[], None]]] = [
            ("open servicenow incident", self.open_incident),
            ("open freshservice ticket", self.open_freshservice),
            ("open autotask ticket", self.open_autotask),
        ]
        if links:
            t = self.rng.choice(links)
            choices += [("note on source", lambda: self.note_source(t))] * 3
        if mirrored:
            m = self.rng.choice(mirrored)
            choices += [("note on mirror", lambda: self.note_target(m))] * 3
            choices += [("status on mirror", lambda: self.status_target(m))] * 2
            if m.target == "msp-cw":
                choices += [("time entry on mirror", lambda: self.time_target(m))] * 2
        name, action = self.rng.choice(choices)
        action()
        self.expected.actions += 1
        return name

    def _mirror(self, t: TrackedLink) -> bool:
        for link in self.bridge.links():
            if link.source_key == f"{t.source}:{t.source_id}" and link.state == "created":
                t.target_id = str(link.target_external_id)
                return True
        return False

    # --- new tickets --------------------------------------------------------------------------------------------------

    def open_incident(self) -> None:
        title = f"{self.token('sn')} VPN drops every hour"
        sys_id = patiently(lambda: self.vendors.open_incident(title), "open an incident")
        self.expected.linked.append(TrackedLink("acme-snow-to-cw", "acme-snow", sys_id, title, "msp-cw"))

    def open_freshservice(self) -> None:
        title = f"{self.token('fs')} Shared drive read-only"
        fs_id = patiently(lambda: self.vendors.fs.open_ticket(title), "open a Freshservice ticket")
        self.expected.linked.append(TrackedLink("globex-fs-to-at", "globex-fs", str(fs_id), title, "partner-at"))

    def open_autotask(self) -> None:
        title = f"{self.token('at')} Switch fan noisy"
        at_id = patiently(lambda: self.vendors.at.open_ticket(title), "open an Autotask ticket")
        self.expected.unlinked.setdefault("partner-at", []).append(str(at_id))

    # --- changes on linked tickets ------------------------------------------------------------------------------------

    def note_source(self, t: TrackedLink) -> None:
        token = self.token("n")
        if t.source == "acme-snow":
            patiently(lambda: self.vendors.sn_update(t.source_id, work_notes=f"{token} user reports again"), "note")
        else:
            patiently(lambda: self.vendors.fs.note(int(t.source_id), f"{token} user reports again"), "note")
        t.notes_source.append(token)

    def note_target(self, t: TrackedLink) -> None:
        token = self.token("n")
        assert t.target_id is not None
        target_id = t.target_id
        if t.target == "msp-cw":
            patiently(lambda: self.vendors.cw_note(target_id, f"{token} technician checked"), "note")
        else:
            patiently(lambda: self.vendors.at.note(int(target_id), f"{token} technician checked"), "note")
        t.notes_target.append(token)

    def status_target(self, t: TrackedLink) -> None:
        assert t.target_id is not None
        target_id = t.target_id
        if t.target == "msp-cw":
            name = self.rng.choice(CW_STATUSES)
            patiently(lambda: self.vendors.cw_status(target_id, name), "status")
            t.statuses.append(name)
        else:
            code = self.rng.choice(AT_STATUSES)
            patiently(lambda: self.vendors.at.update(int(target_id), status=code), "status")
            t.statuses.append(str(code))

    def time_target(self, t: TrackedLink) -> None:
        """A technician logs 15 minutes on the ConnectWise mirror (time entries are the mirror's to own)."""
        token = self.token("t")
        assert t.target_id is not None
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        body: dict[str, Any] = {
            "chargeToId": int(t.target_id),
            "chargeToType": "ServiceTicket",
            "timeStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timeEnd": (start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "actualHours": 0.25,
            "notes": f"{token} remote session",
        }
        patiently(lambda: self.vendors.cw.post("/time/entries", json=body).raise_for_status(), "time entry")
        t.time_target.append(token)
