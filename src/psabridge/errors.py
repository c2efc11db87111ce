"""One exception tree for psabridge, ordered by what the caller must do next.

::

    PsaBridgeError
    ├── RetryLaterError              transient: back off and try again (timeouts, 5xx, vendor busy)
    │   ├── RateLimitedError         the vendor said how long to wait: honour ``retry_after`` seconds
    │   ├── BackingOffError          an attempt failed; the work is scheduled again in ``retry_after`` seconds
    │   └── NotDueError              not a failure: the work is scheduled for later; wait ``retry_after`` seconds
    ├── ConfigError                  a human must fix the configuration; retrying cannot help
    │   ├── AuthError                credentials refused (HTTP 401) or missing
    │   └── MappingError             a mapping file is invalid or cannot express a value
    ├── PermanentError               the vendor refused this request for good; do not retry it
    │   ├── NotFoundError            the record does not exist (or is hidden from us)
    │   ├── ConflictError            the record changed underneath us, or already exists
    │   ├── WebhookVerificationError a webhook delivery failed verification (bad or missing signature)
    │   └── TenancyError             refused: the write would carry one tenant's ticket into another's system
    └── BugError                     psabridge itself is wrong: a developer must look

Every error carries the vendor's own message where there is one (``vendor_message``), the HTTP status and the
connection name, so an operator sees what the vendor said and where.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BackingOffError",
    "BugError",
    "ConfigError",
    "ConflictError",
    "MappingError",
    "NotDueError",
    "NotFoundError",
    "PermanentError",
    "PsaBridgeError",
    "RateLimitedError",
    "RetryLaterError",
    "TenancyError",
    "WebhookVerificationError",
]


class PsaBridgeError(Exception):
    """Root of every error psabridge raises on purpose.

    Args:
        message: what went wrong, in words an operator understands.
        connection: the configured connection the error belongs to, if any.
        status: the HTTP status the vendor answered with, if any.
        vendor_message: the vendor's own error text, kept verbatim.
        details: anything else worth keeping (vendor error code, field names).
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        connection: str | None = None,
        status: int | None = None,
        vendor_message: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.connection = connection
        self.status = status
        self.vendor_message = vendor_message
        self.details = dict(details or {})

    def __str__(self) -> str:
        parts = []
        if self.connection:
            parts.append(f"[{self.connection}]")
        parts.append(self.message)
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.vendor_message and self.vendor_message not in self.message:
            parts.append(f"- vendor said: {self.vendor_message}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description for dead letters, audit rows and reports."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "connection": self.connection,
            "status": self.status,
            "vendor_message": self.vendor_message,
            "details": self.details,
            "retryable": self.retryable,
        }


class RetryLaterError(PsaBridgeError):
    """A transient failure: the same request may succeed later (timeout, connection reset, 5xx, vendor busy)."""

    retryable = True


class _Delayed(RetryLaterError):
    """A retry with a known delay, ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(0.0, float(retry_after))

    def to_dict(self) -> dict[str, Any]:
        """Add the delay."""
        return {**super().to_dict(), "retry_after": self.retry_after}


class RateLimitedError(_Delayed):
    """The vendor refused because of a rate limit and said how long to wait.

    Args:
        retry_after: seconds to wait before the next attempt, as the vendor asked (0 when it did not say).
    """


class BackingOffError(_Delayed):
    """An attempt failed (its cause says why); the work is scheduled again in ``retry_after`` seconds.

    An outbox action keeps its back-off in the store, so it survives a restart.
    """


class NotDueError(_Delayed):
    """Not a failure: the work may not run before its scheduled time, ``retry_after`` seconds from now.

    An outbox action backs off after a failed attempt; a message for it that arrives early waits for its time.
    """


class ConfigError(PsaBridgeError):
    """The configuration is wrong or incomplete; a human must change it before this can work."""


class AuthError(ConfigError):
    """The vendor refused our credentials (HTTP 401), or a credential is missing."""


class MappingError(ConfigError):
    """A mapping file is invalid, or a value cannot be mapped in the direction asked."""


class PermanentError(PsaBridgeError):
    """The vendor rejected this request for good (validation, business rule, permission); retrying cannot help."""


class NotFoundError(PermanentError):
    """The record does not exist in the vendor system, or our user cannot see it."""


class ConflictError(PermanentError):
    """The record changed underneath us, or the thing we tried to create already exists."""


class WebhookVerificationError(PermanentError):
    """A webhook delivery failed verification: missing, wrong or stale signature or secret."""


class TenancyError(PermanentError):
    """Refused before sending: the write would carry one tenant's ticket into another tenant's system or company."""


class BugError(PsaBridgeError):
    """psabridge reached a state it should never reach: a developer must look at it."""
