"""Reading a webhook request within bounds: headers as untrusted bytes, the content type, the body chunk by chunk.

Nothing here knows a vendor. Every refusal is a ``Refused`` with a 4xx status and a short JSON answer that names
what is wrong with the request, never anything about the connection it was sent to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

__all__ = [
    "MAX_BODY",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "Refused",
    "check_content_type",
    "read_body",
    "request_headers",
]

MAX_BODY = 1_000_000
"""Bytes of a body: vendors send small JSON notifications (a ConnectWise callback with its Entity is a few KB)."""
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32_768
"""Bytes of all header names and values together (uvicorn's own h11 limit on a request head is 16 KB)."""


class Refused(Exception):
    """A request the receiver answers with a 4xx before any connection is looked at.

    Args:
        status: the HTTP status.
        answer: the JSON answer.
    """

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("error"))
        self.status = status
        self.answer = answer


def request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers by lower-case name, as text that stands for the exact bytes sent.

    Bytes are read as Latin-1 (each byte one character, so nothing fails to decode and a non-ASCII signature simply
    matches nothing); a repeated header's values are joined with ", " (RFC 9110 5.3).

    Raises:
        Refused: 431, more than ``MAX_HEADERS`` headers or ``MAX_HEADER_BYTES`` bytes of them.
    """
    headers: dict[str, str] = {}
    size = 0
    for count, (name, value) in enumerate(raw, start=1):
        size += len(name) + len(value)
        if count > MAX_HEADERS or size > MAX_HEADER_BYTES:
            raise Refused(431, {"error": "request headers too large", "limit_bytes": MAX_HEADER_BYTES})
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def check_content_type(headers: dict[str, str]) -> None:
    """A JSON body, not encoded: ``application/json`` (any parameters) or ``application/<x>+json``, or none given.

    Every vendor sends ``application/json``: ConnectWise callbacks and Autotask callouts as they come, ServiceNow
    from the business rule's ``setRequestHeader`` and Freshservice from the workflow's JSON content (README, set-up
    step 5). A body without a type is read as JSON too; form, XML and text bodies are not.

    Raises:
        Refused: 415, another media type or a Content-Encoding (psabridge does not decompress).
    """
    given = headers.get("content-type")
    if given is not None:
        media = given.split(";", 1)[0].strip().lower()
        top, _, sub = media.partition("/")
        if top != "application" or not (sub == "json" or sub.endswith("+json")):
            raise Refused(415, {"error": "unsupported content type", "expected": "application/json"})
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise Refused(415, {"error": "unsupported content encoding", "expected": "identity"})


async def read_body(chunks: AsyncIterator[bytes], declared: str | None, limit: int = MAX_BODY) -> bytes:
    """The body, read chunk by chunk and never more than ``limit`` bytes plus the chunk that passed it.

    A Content-Length above the limit is refused before anything is read; a body longer than the limit is refused as
    soon as it passes it, whether or not it was announced, and a body whose length differs from its Content-Length is
    refused as malformed.

    Raises:
        Refused: 413 (too large) or 400 (a Content-Length that is not a number, or not the body's length).
    """
    length: int | None = None
    if declared is not None:
        text = declared.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise Refused(400, {"error": "Content-Length is not a number of bytes"})
        length = int(text)
        if length > limit:
            raise Refused(413, {"error": "body too large", "limit_bytes": limit})
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise Refused(413, {"error": "body too large", "limit_bytes": limit})
        if length is not None and len(body) > length:
            raise Refused(400, {"error": "body longer than its Content-Length"})
    if length is not None and len(body) != length:
        raise Refused(400, {"error": "body shorter than its Content-Length"})
    return bytes(body)
