"""Declarative vendor <-> canonical mapping from YAML files (defaults/ per vendor); pure: no network, database, clock.

The sync engine uses it like this::

    registry = MappingRegistry(settings.connections)          # re-reads changed files, keeps the last good mapping
    mapper = registry.mapper("msp-cw")
    context = registry.context("msp-cw")
    result = mapper.inbound(raw, context, metadata)           # -> InboundResult(ticket, findings, trace)
    store(result.ticket); upsert_findings(..., "mapping", [f.as_row() for f in result.findings])
    out = mapper.outbound({"status": "closed"}, context, metadata, current=raw)   # -> OutboundResult(patch, problems)
    connector.update_ticket(external_id, out.patch)
"""

from __future__ import annotations

from psabridge.mapping.engine import Mapper
from psabridge.mapping.live import LiveReport, check_live
from psabridge.mapping.loader import MappingFileError, check_mapping, load_mapping
from psabridge.mapping.registry import MappingRegistry
from psabridge.mapping.results import FieldTrace, InboundResult, MappingContext, MappingProblem, OutboundResult
from psabridge.mapping.transforms import TRANSFORMS, TransformFailure, register_transform

__all__ = [
    "TRANSFORMS",
    "FieldTrace",
    "InboundResult",
    "LiveReport",
    "Mapper",
    "MappingContext",
    "MappingFileError",
    "MappingProblem",
    "MappingRegistry",
    "OutboundResult",
    "TransformFailure",
    "check_live",
    "check_mapping",
    "load_mapping",
    "register_transform",
]
