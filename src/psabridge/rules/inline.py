"""The inline seam ingest calls today: ``evaluate(ticket, now, config) -> list[Action]`` inside the storing transaction.

The checklist runs through ``rules.engine.evaluate_ticket`` instead; this seam stays until the evaluate actor
(sync/evaluate.py) replaces the inline call, so ingest keeps working meanwhile. Its default rule set is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from psabridge.model import Action, Ticket

__all__ = ["DEFAULT_RULES", "InlineRule", "RulesConfig", "evaluate"]


class InlineRule(Protocol):
    """A rule of the inline seam: looks at a ticket at ``now`` and returns the actions it wants."""

    def __call__(self, ticket: Ticket, now: datetime, config: RulesConfig, /) -> Sequence[Action]:
        """Evaluate the rule (pure)."""
        ...


@dataclass(frozen=True)
class RulesConfig:
    """The inline rules in force and the options they read.

    Attributes:
        rules: the rules, run in order.
        options: rule settings by name.
    """

    rules: tuple[InlineRule, ...] = ()
    options: dict[str, object] = field(default_factory=dict)


DEFAULT_RULES = RulesConfig()
"""The inline rule set ingest runs by default: empty (the checklist runs through the engine)."""


def evaluate(ticket: Ticket, now: datetime, config: RulesConfig = DEFAULT_RULES) -> list[Action]:
    """Every action the inline rules emit for ``ticket`` at ``now``, in rule order; pure."""
    actions: list[Action] = []
    for rule in config.rules:
        actions.extend(rule(ticket, now, config))
    return actions
