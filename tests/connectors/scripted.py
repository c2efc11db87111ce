"""A transport that plays a script in front of a real one: pass a request on, answer for the vendor, lose the answer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Step:
    """What happens to one request.

    Attributes:
        kind: ``pass`` (to the vendor), ``answer`` (``status`` without reaching the vendor), ``lost`` (the vendor gets
            it, the answer never arrives: a read timeout), ``refused`` (no connection: the vendor never sees it).
        status: the answer's status for ``answer``.
        body: the answer's body for ``answer``.
    """

    kind: str = "pass"
    status: int = 200
    body: bytes = b""


PASS = Step()
LOST = Step("lost")
REFUSED = Step("refused")


def answer(status: int, body: bytes = b"") -> Step:
    """The vendor answers ``status`` (the request never reaches the simulator)."""
    return Step("answer", status, body)


@dataclass
class ScriptedTransport(httpx.BaseTransport):
    """Plays ``script`` one step per request, then passes every later request on."""

    inner: httpx.BaseTransport
    script: list[Step] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def add(self, steps: Iterable[Step]) -> None:
        self.script.extend(steps)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        step = self.script.pop(0) if self.script else PASS
        self.seen.append(f"{step.kind} {request.method} {request.url.path}")
        if step.kind == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if step.kind == "answer":
            return httpx.Response(step.status, content=step.body, request=request)
        response = self.inner.handle_request(request)
        if step.kind == "lost":
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer never came", request=request)
        return response

    def close(self) -> None:
        self.inner.close()
