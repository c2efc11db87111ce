"""The one combined internal note of an evaluation, worded for a technician: per checklist step, what and what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psabridge.model import Ticket
from psabridge.rules.base import Finding
from psabridge.rules.config import NoteSettings
from psabridge.rules.text import OWN_NOTE_PREFIX

__all__ = ["NoteLine", "ResolvedLine", "compose_note"]


@dataclass(frozen=True, slots=True)
class NoteLine:
    """A finding the note announces, with what psabridge did about it."""

    finding: Finding
    done: str = ""  # e.g. "psabridge set priority to P1."
    held: bool = False  # it holds automated progress (the identity hold)


@dataclass(frozen=True, slots=True)
class ResolvedLine:
    """A finding announced earlier that no longer holds."""

    step: str
    message: str


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


def compose_note(
    ticket: Ticket,
    lines: Sequence[NoteLine],
    resolved: Sequence[ResolvedLine],
    still_open: int,
    settings: NoteSettings,
) -> str:
    """The note's text; ``lines`` in checklist order, ``still_open`` counts findings noted earlier and still open."""
    name = ticket.number or ticket.external_id
    count = len(lines)
    out = [f"{OWN_NOTE_PREFIX}: {count} item{'s' if count != 1 else ''} to look at on {name} (internal note)"]
    step = None
    for line in lines:
        finding = line.finding
        if finding.step != step:
            step = finding.step
            out.extend(("", step))
        out.append(f"- [{finding.severity}] {_indent(finding.message)}")
        if line.done:
            out.append(f"  {line.done}")
        if line.held:
            out.append("  psabridge holds automated status changes on this ticket until this is resolved.")
        if settings.advice and finding.advice:
            out.append(f"  What to do: {_indent(finding.advice)}")
    if resolved:
        out.extend(("", "Resolved since the last note:"))
        out.extend(f"- {r.step}: {r.message}" for r in resolved)
    if still_open:
        out.extend(("", f"Still open from earlier notes: {still_open}."))
    if settings.explain_hint:
        out.extend(("", f"Why: psabridge rules explain --ticket {name}"))
    return "\n".join(out)
