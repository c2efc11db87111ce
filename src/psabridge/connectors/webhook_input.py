"""Reading untrusted webhook input: headers compared as bytes in constant time, JSON and vendor ids of bounded size.

Everything a webhook delivery carries is the caller's until its signature or secret checks out, and a verified body
may still hold values of any JSON type. These helpers never raise anything but what they document: a non-ASCII or
huge header, a deeply nested body, an id that is a list or has a thousand digits all come back as "not usable".
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_HEADER_VALUE",
    "MAX_ID_DIGITS",
    "delivery_token",
    "header_value",
    "integer_id",
    "json_body",
    "same_secret",
]

MAX_HEADER_VALUE = 4096
"""Characters of a header value worth comparing; a longer one is not a secret or signature anyone configured."""
MAX_ID_DIGITS = 19
"""Digits of a vendor's integer id: the vendors' ids are 64-bit (VENDOR-APIS.md section 0)."""
MAX_DELIVERY_TOKEN = 100
"""Characters of a vendor's own delivery id kept as it is; anything else is replaced by a hash of the body."""


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in any letter case, or None when absent.

    The receiver joins a repeated header's values with ", " (RFC 9110 5.3), so a signature sent twice is one value
    that matches nothing.
    """
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def same_secret(given: str | None, secret: str) -> bool:
    """Whether a shared-secret header holds the configured secret: constant time over bytes, outer blanks ignored.

    Any text compares (``hmac.compare_digest`` refuses non-ASCII ``str``, which once answered a request with 500);
    a missing, empty or oversized value is simply not the secret.
    """
    if given is None or not secret or len(given) > MAX_HEADER_VALUE:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass"))


def json_body(body: bytes) -> Any:
    """The body parsed as JSON.

    Raises:
        ValueError: it is not JSON (bad syntax or encoding, an integer of more than 4,300 digits, or nesting too deep
            for the parser, which Python reports as RecursionError).
    """
    try:
        return json.loads(body)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def integer_id(value: Any) -> str | None:
    """A vendor's integer id (a JSON number, or a string of ASCII digits) as text; None for anything else.

    Booleans, negative numbers, floats, ``"٣"`` (a digit, but not ASCII) and more than 19 digits are not ids.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value) if value >= 0 else ""
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        text = value
    else:
        return None
    return text if 0 < len(text) <= MAX_ID_DIGITS else None


def delivery_token(value: Any) -> str | None:
    """A vendor's own delivery id when it is a short printable ASCII string or an integer id; else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return integer_id(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_DELIVERY_TOKEN and value.isascii() and value.isprintable():
        return value
    return None
