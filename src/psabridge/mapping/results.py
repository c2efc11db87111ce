"""What a mapping call takes and gives back: the context, findings, per-field traces, inbound and outbound results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from psabridge.model import System, Ticket
from psabridge.settings import ConnectionSettings

__all__ = ["FieldTrace", "InboundResult", "MappingContext", "MappingProblem", "OutboundResult"]

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class MappingContext:
    """Where a record comes from or goes to: the connection, its vendor and how companies map to tenants.

    Attributes:
        connection: the connection name from config.
        system: the vendor.
        tenant: the tenant the whole connection belongs to (``connections[].tenant``), if any.
        tenants: vendor company identifier -> tenant key (``connections[].tenants``).
    """

    connection: str
    system: System
    tenant: str | None = None
    tenants: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_connection(cls, settings: ConnectionSettings) -> MappingContext:
        """The context of a configured connection."""
        return cls(settings.name, settings.system, settings.tenant, dict(settings.tenants))


@dataclass(frozen=True, slots=True)
class MappingProblem:
    """Something mapping could not do faithfully, for the findings table and for admins.

    Attributes:
        field: the canonical field concerned (``status``, ``requester.email``, ``notes[12345].kind``).
        raw: the vendor value as text (kept in ``Ticket.unmapped`` for inbound), or the canonical value (outbound).
        code: ``unmapped``, ``unknown_value``, ``lookup_failed``, ``lookup_unavailable``, ``invalid``,
            ``unknown_tenant``, ``not_writable``, ``no_vendor_value``, ``conflict``.
        message: one line naming the value and where it was, e.g. "status 'Waiting on Vendor' on board 'Acme
            Service' has no mapping".
        severity: ``warning`` for values kept raw; ``error`` for outbound changes that cannot be written.
    """

    field: str
    raw: str | None
    code: str
    message: str
    severity: Severity = "warning"

    @property
    def key(self) -> str:
        """A stable code for the findings table (unique per ticket): ``mapping.<code>.<field>``."""
        return f"mapping.{self.code}.{self.field}"

    def as_row(self) -> tuple[str, str, str, dict[str, Any]]:
        """``(code, severity, message, data)`` as ``store.findings.upsert_findings`` takes it (rule ``mapping``)."""
        return self.key, self.severity, self.message, {"field": self.field, "raw": self.raw, "code": self.code}

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class FieldTrace:
    """How one field was produced: by which rule (file:line), from which vendor path and value, and how.

    ``via`` is e.g. ``map``, ``map (board 'Acme Service')``, ``case 1``, ``default``, ``const``, ``value``,
    ``metadata``, ``codes``, ``set``, ``unmapped``.
    """

    field: str
    rule: str
    source: str | None
    raw: Any
    value: Any
    via: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form for previews."""
        return {
            "field": self.field,
            "rule": self.rule,
            "source": self.source,
            "raw": _jsonable(self.raw),
            "value": _jsonable(self.value),
            "via": self.via,
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, slots=True)
class InboundResult:
    """A raw vendor record as a canonical ticket.

    Attributes:
        ticket: the canonical ticket (values no mapping covers are None, kept raw in ``ticket.unmapped``).
        findings: one per value that could not be mapped faithfully.
        trace: per-field explanation (only when asked for with ``explain=True``).
    """

    ticket: Ticket
    findings: tuple[MappingProblem, ...] = ()
    trace: tuple[FieldTrace, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboundResult:
    """Canonical changes as a vendor patch.

    Attributes:
        patch: vendor fields in the vendor's native shapes, ready for ``Connector.update_ticket``/``create_ticket``.
        problems: changes that could not be expressed (not written: the patch leaves them out).
        trace: per-field explanation (only when asked for with ``explain=True``).
    """

    patch: dict[str, Any]
    problems: tuple[MappingProblem, ...] = ()
    trace: tuple[FieldTrace, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every change could be expressed."""
        return not self.problems
