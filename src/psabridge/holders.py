"""Who holds a lock, lease or rate-budget slot (host, process, a random part), and whether that holder has died."""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["abandoned", "holder_id"]


def holder_id() -> str:
    """Who holds a lock: host, process and a random part (unique per call)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def abandoned(holder: str) -> bool:
    """Whether a holder is a process on this host that no longer runs (it crashed holding the lock)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False
