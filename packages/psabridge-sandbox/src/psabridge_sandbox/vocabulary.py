"""The sandbox's own words for a seed ticket's story (status, priority, kind ...), before a vendor renders it.

The seed generator (tickets.py) is shared by every simulator, so it cannot speak one vendor's values. It tells each
ticket in these neutral words, and each simulator's records module maps them to its vendor's wire values: ConnectWise
status and priority names (connectwise_records.py), Autotask picklist integers (autotask_data.py), ServiceNow choice
values (servicenow_seed.py), Freshservice codes (freshservice_records.py).

These enums belong to the sandbox and follow nothing outside it. The words are the help-desk checklist's (P1 to P4,
"on hold", "resolution note"), which are also the words psabridge's canonical model uses, so a test can compare what
psabridge read from a vendor with the story the vendor was seeded with; if psabridge's model ever changes a word, such
a test fails instead of the vendors' answers silently changing.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Kind", "Level", "NoteKind", "Priority", "Source", "Status"]


class Status(StrEnum):
    """Where a ticket stands in its life."""

    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"  # waiting for the customer or a third party
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Priority(StrEnum):
    """The checklist's priority levels."""

    P1 = "P1"  # system down / multi-user
    P2 = "P2"  # single user blocked
    P3 = "P3"  # degraded
    P4 = "P4"  # request


class Level(StrEnum):
    """Impact and urgency."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Kind(StrEnum):
    """What sort of work a ticket is."""

    INCIDENT = "incident"
    SERVICE_REQUEST = "service_request"
    PROBLEM = "problem"
    CHANGE = "change"
    ALERT = "alert"


class Source(StrEnum):
    """How a ticket came in."""

    PHONE = "phone"
    EMAIL = "email"
    PORTAL = "portal"
    CHAT = "chat"
    WALK_IN = "walk_in"
    MONITORING = "monitoring"
    OTHER = "other"


class NoteKind(StrEnum):
    """Who may read a note, and whether it is the resolution."""

    INTERNAL = "internal"
    PUBLIC = "public"
    RESOLUTION = "resolution"
