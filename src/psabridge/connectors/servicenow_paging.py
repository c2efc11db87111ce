"""ServiceNow paging for psabridge: seek (keyset) paging on (sys_updated_on, sys_id), and the Table API's value formats.

Why not offsets: the Table API pages with ``sysparm_offset``, but a record updated while a client pages moves to the
end of an ``ORDERBYsys_updated_on`` listing, so every later page shifts by one: the record behind it is skipped and
the moved one comes twice (FIELD-LESSONS: rbw/pysnow#104, 19,160 of 22,159 rows). Instead each page asks for the
records *after the last one seen*, in the same total order::

    sys_updated_on>=<t>^sys_updated_on><t>^ORsys_id><id>^ORDERBYsys_updated_on^ORDERBYsys_id

that is ``updated >= t AND (updated > t OR sys_id > id)`` (``^OR`` binds tighter than ``^``: docs "Encoded query
strings"). A record that changes moves to a key after ours and is read later; nothing before our key can be unread,
because updates only ever stamp the present. The first page starts at ``sys_updated_on>=<watermark - overlap>``.
``sys_id`` is the documented unique key, a 32-character lower-case hex GUID, so string order is total; comparing
GUID fields with ``>`` is plain SQL string comparison [UNCONFIRMED in the docs; it works as any string field].

The stop rule: ``X-Total-Count`` is the count of the page's query, i.e. of this page and everything after it, so
more pages follow exactly when it exceeds the records received (no empty last page when the count fills whole
pages). A short page alone does not prove the end: ServiceNow applies ACLs after the limit. Without the header, a
full page means another one may follow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from psabridge.connectors.pagination import BasePaginator, PageRequest
from psabridge.errors import BugError

__all__ = ["SYS_ID", "SeekPaginator", "format_datetime", "format_duration", "parse_datetime"]

SYS_ID = re.compile(r"^[0-9a-f]{32}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_datetime(when: datetime) -> str:
    """A datetime as the Table API takes it with display values off: ``YYYY-MM-DD HH:MM:SS`` in UTC.

    Literal datetimes in sysparm_query are read in UTC for a user whose timezone is GMT; the integration user must be
    set to GMT (VENDOR-APIS 3.3 [UNCONFIRMED for other timezones]), as for every other value we read and write.
    """
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_datetime(value: Any) -> datetime | None:
    """A Table API datetime (``YYYY-MM-DD HH:MM:SS``, UTC) as an aware datetime; None when empty or not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def format_duration(minutes: int) -> str:
    """A GlideDuration value: a date-time after the epoch, ``1970-01-01 01:30:00`` for 90 minutes."""
    return format_datetime(_EPOCH + timedelta(minutes=minutes))


class SeekPaginator(BasePaginator):
    """Pages of a table in (sys_updated_on, sys_id) order, each asking for the records after the last one seen.

    Args:
        limit: records per page (sysparm_limit).
        since: only records updated at or after this time (None: all).
        extra: further encoded-query terms ANDed to every page (e.g. ``assignment_group=<sys_id>``).
    """

    def __init__(self, *, limit: int, since: datetime | None = None, extra: str = "") -> None:
        super().__init__()
        if limit <= 0:
            raise ValueError("the page size must be positive")
        self.limit = limit
        self.since = since
        self.extra = extra
        self.after: tuple[str, str] | None = None

    def init_request(self, request: PageRequest) -> None:
        """The first page: everything from ``since``."""
        self.after = None
        request.params["sysparm_query"] = self.query()
        request.params["sysparm_limit"] = self.limit

    def update_state(self, response: httpx.Response, records: Sequence[Any], body: Any = None) -> None:
        """Remember the last key; decide whether another page may hold records."""
        if not records:
            self._has_next = False
            return
        last = records[-1]
        updated, sys_id = last.get("sys_updated_on"), last.get("sys_id")
        if not isinstance(updated, str) or not isinstance(sys_id, str) or not SYS_ID.match(sys_id):
            raise BugError(f"a record without sys_updated_on/sys_id cannot be paged past: {sys_id!r}")
        if self.after is not None and (updated, sys_id) <= self.after:
            raise BugError(f"the listing went backwards at {sys_id} ({updated} after {self.after[0]})")
        self.after = (updated, sys_id)
        total = _count(response)
        self._has_next = total > len(records) if total is not None else len(records) >= self.limit

    def update_request(self, request: PageRequest) -> None:
        """The next page: the records after the last key."""
        request.params["sysparm_query"] = self.query()

    def query(self) -> str:
        """The encoded query of the next page."""
        terms: list[str] = []
        if self.after is not None:
            updated, sys_id = self.after
            terms += [f"sys_updated_on>={updated}", f"sys_updated_on>{updated}^ORsys_id>{sys_id}"]
        elif self.since is not None:
            terms.append(f"sys_updated_on>={format_datetime(self.since)}")
        if self.extra:
            terms.append(self.extra)
        terms += ["ORDERBYsys_updated_on", "ORDERBYsys_id"]
        return "^".join(terms)


def _count(response: httpx.Response) -> int | None:
    value = response.headers.get("X-Total-Count")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
