from __future__ import annotations

from psabridge.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    PermanentError,
    PsaBridgeError,
    RateLimitedError,
    RetryLaterError,
)


def test_tree_says_what_to_do() -> None:
    assert issubclass(RateLimitedError, RetryLaterError)
    assert issubclass(AuthError, ConfigError)
    assert issubclass(NotFoundError, PermanentError)
    assert RetryLaterError("x").retryable
    assert not PermanentError("x").retryable
    assert not AuthError("x").retryable


def test_rate_limited_keeps_the_delay_and_vendor_message() -> None:
    exc = RateLimitedError(
        "rate limited",
        retry_after=12.5,
        connection="globex-fs",
        status=429,
        vendor_message="You have exceeded the limit",
    )
    assert exc.retry_after == 12.5
    assert str(exc) == "[globex-fs] rate limited (HTTP 429) - vendor said: You have exceeded the limit"
    data = exc.to_dict()
    assert data["type"] == "RateLimitedError"
    assert data["retry_after"] == 12.5
    assert data["retryable"] is True


def test_negative_retry_after_becomes_zero() -> None:
    assert RateLimitedError("x", retry_after=-3).retry_after == 0.0


def test_every_error_is_a_psabridge_error() -> None:
    for cls in (RetryLaterError, ConfigError, PermanentError, AuthError):
        assert isinstance(cls("x"), PsaBridgeError)
