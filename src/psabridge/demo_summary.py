"""The demo's summary: what the store and the simulators hold at the end, counted, and printed as tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from psabridge.rules.checklist import CHECKLIST
from psabridge.store import findings, links, outbox, tickets
from psabridge.sync.context import SyncContext

__all__ = ["Summary", "count_store", "render_table"]

_STEPS = {rule.id: rule.step for rule in CHECKLIST}
_NOTES, _FIELDS, _TIME = ("add_note",), ("set_fields", "route_to_queue"), ("add_time_entry",)


@dataclass
class Summary:
    """The totals a person reads at the end of the demo."""

    tickets: dict[str, int] = field(default_factory=dict)  # per connection
    mirrors: dict[str, int] = field(default_factory=dict)  # per link
    written: dict[str, int] = field(default_factory=dict)  # done write-backs per action type
    unfinished: int = 0  # write-backs not done (pending, failed, dead)
    steps: list[tuple[str, str, int, int, int]] = field(default_factory=list)  # rule, step, findings, open, noted
    sla: dict[str, tuple[int, int]] = field(default_factory=dict)  # warnings, breaches: (found, noted)
    routed: int = 0  # tickets moved to another queue by the routing rule (written)
    pages: int = 0
    pages_resolved: int = 0
    posts: int = 0
    webhooks: int = 0
    dead_letters: int = 0


def count_store(ctx: SyncContext, summary: Summary) -> None:
    """Fill the store's part of ``summary``."""
    from psabridge.store import deadletters

    with ctx.db.session() as session:
        summary.tickets = dict(sorted(tickets.count_by_connection(session).items()))
        summary.mirrors = dict(sorted(links.count_created_by_name(session).items()))
        by_type = outbox.count_by_type(session)
        summary.written = {kind: n for (kind, status), n in sorted(by_type.items()) if status == "done"}
        summary.unfinished = sum(n for (_, status), n in by_type.items() if status != "done")
        rows = findings.counts_by_rule_code(session)
        summary.dead_letters = deadletters.count_dead_letters(session)
    summary.routed = summary.written.get("route_to_queue", 0)
    per_rule: dict[str, list[int]] = {}
    for rule, code, total, unresolved, noted in rows:
        counts = per_rule.setdefault(rule, [0, 0, 0])
        for i, n in enumerate((total, unresolved, noted)):
            counts[i] += n
        kind = "warnings" if code.endswith("_warning") else "breaches" if code.endswith("_breached") else ""
        if rule == "sla" and kind:
            found, announced = summary.sla.get(kind, (0, 0))
            summary.sla[kind] = (found + total, announced + noted)
    order = [rule.id for rule in CHECKLIST]
    summary.steps = [
        (rule, _STEPS.get(rule, rule), *per_rule[rule])  # type: ignore[misc]
        for rule in sorted(per_rule, key=lambda r: order.index(r) if r in order else len(order))
    ]


def notes_written(summary: Summary) -> int:
    """Internal notes written back (checklist notes and mirrored notes)."""
    return sum(n for kind, n in summary.written.items() if kind in _NOTES)


def fields_written(summary: Summary) -> int:
    """Field changes written back (mirrored fields, the checklist's corrections and routes)."""
    return sum(n for kind, n in summary.written.items() if kind in _FIELDS)


def time_written(summary: Summary) -> int:
    """Time entries written back (mirrored)."""
    return sum(n for kind, n in summary.written.items() if kind in _TIME)


def render_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A plain-text table: a title, a header, a rule and the rows; numbers right-aligned."""
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        parts = [cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(row, widths, numeric, strict=True)]
        return "  " + "  ".join(parts).rstrip()

    return [title, line(cells[0]), "  " + "  ".join("-" * w for w in widths), *(line(row) for row in cells[1:])]


def _number(text: str) -> bool:
    return text.replace(",", "").replace(" / ", "").isdigit() or text == "-"
