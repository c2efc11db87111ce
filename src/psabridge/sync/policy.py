"""Error tree -> worker policy: what is retried, how long to wait, and what lands in the dead-letter table.

======================  ===================================================================
error                   policy
======================  ===================================================================
ConfigError (AuthError, not retried (``throws``): a human must fix the configuration
MappingError)
PermanentError          not retried: the vendor refused this for good
BugError                not retried: a developer must look
RateLimitedError        retried after the delay the vendor asked for (``dramatiq.Retry``)
BackingOffError         retried when the back-off the outbox stored ends (``dramatiq.Retry``), up to
                        ``max_retries``
NotDueError             sent again when due (``dramatiq.Retry``): not a failure, more attempts like rate limits
RetryLaterError, other  retried with exponential backoff, up to ``max_retries``
======================  ===================================================================

A message that is not retried or has used up its retries is recorded in the ``dead_letters`` table (by the
``DeadLetters`` middleware), from where ``psabridge dlq replay`` sends it again.
"""

from __future__ import annotations

import math
import random
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from psabridge.errors import (
    BackingOffError,
    BugError,
    ConfigError,
    NotDueError,
    PermanentError,
    PsaBridgeError,
    RateLimitedError,
)
from psabridge.log import get_logger

__all__ = ["NOT_RETRIED", "DeadJob", "DeadLetters", "backoff_seconds", "delays_as_retry", "error_record", "retry_when"]

_log = get_logger("psabridge.sync")

NOT_RETRIED: tuple[type[BaseException], ...] = (ConfigError, PermanentError, BugError)
"""Errors an actor ``throws``: retrying cannot help, so the message fails at once (and is dead-lettered)."""

#: A rate limit may be hit many times in a row (an hourly budget), and a message for an outbox action that is not due
#: yet waits for its time: both get more attempts than other errors.
RATE_LIMIT_RETRIES = 50

_WAITS = (RateLimitedError, NotDueError)
"""Errors that say how long to wait though the job itself did not fail: they get ``RATE_LIMIT_RETRIES``."""


@contextmanager
def delays_as_retry() -> Iterator[None]:
    """Turn errors that say how long to wait into ``dramatiq.Retry`` with that delay.

    RateLimitedError waits at least a second; BackingOffError and NotDueError exactly their ``retry_after``.
    """
    try:
        yield
    except RateLimitedError as exc:
        delay_ms = max(1000, math.ceil(exc.retry_after * 1000))
        raise dramatiq.Retry(str(exc), delay=delay_ms) from exc
    except (BackingOffError, NotDueError) as exc:
        raise dramatiq.Retry(str(exc), delay=max(1, math.ceil(exc.retry_after * 1000))) from exc


def backoff_seconds(
    attempts: int,
    *,
    min_backoff_ms: int,
    max_backoff_ms: int,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after ``attempts`` failed attempts: the vendor's ``retry_after`` when it gave one, else back-off.

    The back-off is exponential (``min_backoff_ms`` doubled per attempt, at most ``max_backoff_ms``) with equal
    jitter (a random point in its upper half), so retries of many actions failing together do not arrive together.
    """
    if retry_after is not None and retry_after > 0:
        return float(retry_after)
    ceiling = float(min(max_backoff_ms, min_backoff_ms * 2 ** min(max(attempts, 0), 32)))
    return (ceiling / 2 + rand() * ceiling / 2) / 1000


def retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    """The Retries middleware's predicate: whether a message that failed ``retries`` times so far is tried again.

    It takes precedence over an actor's own ``max_retries`` option (Dramatiq's rule), so the limit is set here.
    """

    def decide(retries: int, exc: BaseException) -> bool:
        if isinstance(exc, NOT_RETRIED):
            return False
        if isinstance(exc, dramatiq.Retry) and isinstance(exc.__cause__, _WAITS):
            return retries < RATE_LIMIT_RETRIES
        return retries < max_retries

    return decide


def error_record(exc: BaseException | None, trace: str | None = None) -> dict[str, Any]:
    """A JSON-safe description of why a job failed, for the dead-letter table."""
    if exc is None:
        record: dict[str, Any] = {"type": "Skipped", "message": "the message was skipped (too old)"}
    else:
        cause = exc.__cause__ if isinstance(exc, dramatiq.Retry) and exc.__cause__ is not None else exc
        if isinstance(cause, BackingOffError) and cause.__cause__ is not None:
            cause = cause.__cause__  # the failure behind the back-off
        if isinstance(cause, PsaBridgeError):
            record = cause.to_dict()
        else:
            record = {"type": type(cause).__name__, "message": str(cause) or repr(cause)}
    if trace:
        record["traceback"] = trace[-4000:]
    return record


@dataclass(frozen=True)
class DeadJob:
    """A message that will not be tried again."""

    message_id: str
    queue: str
    actor: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    error: dict[str, Any]
    attempts: int


class DeadLetters(Middleware):
    """Hands every failed message (not retried, retries used up, or too old) to ``record``.

    Its after-hooks must run after those of ``Retries`` (which decides whether a message failed for good); Dramatiq
    runs after-hooks in reverse order, so it is listed before Retries. ``record`` writes the dead-letter table;
    when it cannot (the database is down), the job is logged with everything needed to replay it by hand. With the
    embedded broker the in-memory copy Dramatiq keeps of failed messages is dropped unless ``keep_in_memory`` (tests
    use it with ``join(fail_fast=True)``).
    """

    def __init__(self, record: Callable[[DeadJob], None], *, keep_in_memory: bool = False) -> None:
        self.record = record
        self.keep_in_memory = keep_in_memory

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Record the message if it failed for good."""
        if exception is not None and message.failed:
            self._dead(message, exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Record a message the age limit skipped."""
        if message.failed:
            self._dead(message, None)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        """Drop the embedded broker's in-memory copy (the table has it)."""
        letters = getattr(broker, "dead_letters_by_queue", None)
        if letters is None or self.keep_in_memory:
            return
        queue = letters.get(message.queue_name)
        if queue and message in queue:
            queue.remove(message)

    def _dead(self, message: Any, exception: BaseException | None) -> None:
        job = DeadJob(
            message_id=message.message_id,
            queue=message.queue_name,
            actor=message.actor_name,
            args=tuple(message.args),
            kwargs=dict(message.kwargs),
            error=error_record(exception, message.options.get("traceback")),
            attempts=_attempts(message, exception),
        )
        try:
            self.record(job)
        except Exception:  # noqa: BLE001 - a dead letter must never be lost silently, even when the store is down
            _log.error("could not record dead letter", job=job.__dict__, error=traceback.format_exc(limit=5))


def _attempts(message: Any, exception: BaseException | None) -> int:
    """How many times the message ran: Retries counts failures it retried, but not one it refused to retry."""
    retries = int(message.options.get("retries", 0))
    if exception is None:
        return retries
    return retries + 1 if isinstance(exception, NOT_RETRIED) else max(retries, 1)
