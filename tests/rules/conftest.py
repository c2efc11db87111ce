"""Calendar tests run with the process in a server time zone that no calendar here uses, to prove it is never read."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

SERVER_ZONE = "Asia/Kathmandu"  # UTC+05:45, no DST: a wrong use of local time shows up as odd quarter hours


@pytest.fixture(autouse=True)
def foreign_server_zone() -> Iterator[str]:
    """Set TZ (and time.tzset) to a zone unlike every calendar's for the test, then restore it."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = SERVER_ZONE
    time.tzset()
    try:
        yield SERVER_ZONE
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()
