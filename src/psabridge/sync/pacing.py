"""Pacing: a run that meets a spent vendor budget waits for room and goes on, instead of failing tickets.

A connector raises ``RateLimitedError`` (with ``retry_after``) when its budget, or the vendor, will not allow a request
soon enough. Poll and reconcile hand that error to their ``Pacer``, which either waits inline and lets the run go on
(a reconcile on the command line, a poll called directly), saying so in the log and through ``on_wait`` (the
progress line), or hands it back (``inline=False``: a poll job, whose worker thread must not sleep; the job re-queues
itself for when the budget has room). Waiting is bounded by the run's time limit: a wait that would end after it
raises ``RunTimeLimitError`` with a message that says so.

``paced_pages`` reads a connection's list pages through a pacer: a rate limit in the middle of the pages (the
generator of ``iter_changes`` ends with the error) resumes after the wait from the last page's watermark, which is
safe because pages come oldest first and a record re-read in the overlap is recognised as unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from psabridge.connectors.base import Connector, Page
from psabridge.errors import RateLimitedError, RetryLaterError
from psabridge.log import get_logger

__all__ = ["MIN_WAIT", "Pacer", "RunTimeLimitError", "SliceEndedError", "paced_pages"]

_log = get_logger("psabridge.sync")

MIN_WAIT = 0.5
"""Seconds a paced run waits at least (a vendor that says "retry after 0" is asked again a moment later)."""


class RunTimeLimitError(RetryLaterError):
    """A run stopped because the budget it waits for frees up only after the run's time limit."""


class SliceEndedError(RateLimitedError):
    """A job's time slice ended part-way through a page: what was completed is stored; the next job goes on at once.

    A RateLimitedError with no wait, so every caller that hands a wait back hands this back the same way.
    """


Waiting = Callable[[str, float], None]
"""Told (connection, seconds) before a paced wait: the progress line."""


@dataclass
class Pacer:
    """How one run waits for a vendor budget.

    Attributes:
        inline: wait here and go on; otherwise raise the RateLimitedError for the caller to reschedule.
        deadline: the run's time limit (``time.monotonic()`` seconds), None for none.
        on_wait: told before each wait.
        sleep: how to wait (tests pass a fake).
        clock: monotonic seconds (tests pass a fake).
        waited: seconds waited so far.
    """

    inline: bool = True
    deadline: float | None = None
    on_wait: Waiting | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    waited: float = field(default=0.0)

    @classmethod
    def within(cls, seconds: float | None, *, on_wait: Waiting | None = None) -> Pacer:
        """An inline pacer whose run may last ``seconds`` from now (None: no limit)."""
        return cls(deadline=None if seconds is None else time.monotonic() + seconds, on_wait=on_wait)

    def remaining(self) -> float | None:
        """Seconds left before the time limit (None: no limit)."""
        return None if self.deadline is None else self.deadline - self.clock()

    def out_of_time(self) -> bool:
        """The time limit has passed."""
        left = self.remaining()
        return left is not None and left <= 0

    def check_slice(self, connection: str) -> None:
        """Between two pieces of work: a pacer that hands waits back ends its job once its time limit passed.

        Raises:
            SliceEndedError: it does not wait inline and its time limit passed.
        """
        if not self.inline and self.out_of_time():
            raise SliceEndedError("the job's time slice ended; the next job goes on", retry_after=0.0,
                                  connection=connection)  # fmt: skip

    def wait(self, connection: str, exc: RateLimitedError) -> None:
        """Wait out a rate limit, or hand it back.

        Raises:
            RateLimitedError: the pacer does not wait inline (the same error).
            RunTimeLimitError: the wait would end after the run's time limit.
        """
        if not self.inline:
            raise exc
        delay = max(MIN_WAIT, exc.retry_after)
        left = self.remaining()
        if left is not None and delay > left:
            raise RunTimeLimitError(
                f"stopped: the vendor's budget has room again in {delay:.0f}s, after this run's time limit "
                f"({max(0.0, left):.0f}s left); what was stored so far stays, run it again later",
                connection=connection,
            ) from exc
        _log.info("waiting for the vendor's budget", connection=connection, seconds=round(delay, 1), reason=str(exc))
        if self.on_wait is not None:
            self.on_wait(connection, delay)
        self.sleep(delay)
        self.waited += delay


def paced_pages(connector: Connector, since: datetime | None, pacer: Pacer) -> Iterator[Page]:
    """``connector.iter_changes(since)``, resumed after a paced wait from the newest watermark read so far."""
    start = since
    while True:
        try:
            for page in connector.iter_changes(start):
                yield page
                if page.watermark is not None and (start is None or page.watermark > start):
                    start = page.watermark
            return
        except RateLimitedError as exc:
            pacer.wait(connector.name, exc)
