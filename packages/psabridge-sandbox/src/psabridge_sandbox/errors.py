"""Vendor-shaped errors: a simulator raises VendorError anywhere and its renderer answers in the vendor's own shape."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from starlette.responses import JSONResponse, Response

__all__ = ["ErrorRenderer", "VendorError", "plain_json_error"]


@dataclasses.dataclass(eq=False)
class VendorError(Exception):
    """An error answer. The simulator's :data:`ErrorRenderer` turns it into the vendor's body.

    Args:
        status: the HTTP status.
        message: the human message (ConnectWise ``message``, ServiceNow ``error.message`` ...).
        code: a vendor error code, when the vendor has one (ConnectWise ``InvalidObject``, Freshservice
            ``invalid_value``).
        detail: a longer explanation (ServiceNow ``error.detail``).
        field: the field at fault (Freshservice ``errors[].field``).
        headers: extra response headers (``Retry-After`` ...); added after rendering.
    """

    status: int
    message: str
    code: str = ""
    detail: str = ""
    field: str = ""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.message}")


ErrorRenderer = Callable[[VendorError], Response]
"""Renders a :class:`VendorError` as the vendor would answer (body shape and content type)."""


def plain_json_error(error: VendorError) -> Response:
    """A neutral renderer for services without a documented error shape: ``{"error": message}``."""
    return JSONResponse({"error": error.message}, status_code=error.status)
