"""The rules seam: ``evaluate(ticket, now, config) -> list[Action]``, pure, called once per real ticket change.

The sync engine calls ``evaluate`` inside the transaction that stores a real change (never for an unchanged copy or
for the echo of psabridge's own write) and writes the actions it returns into the outbox in that same transaction;
the write-back dispatcher carries them out. A rule is any callable with the ``Rule`` signature: no I/O, no session,
no clock of its own (``now`` is passed in), so the same ticket and ``now`` always give the same actions.

The checklist, SLA and escalation rules come in a later issue; until then the default rule set is empty::

    config = RulesConfig(rules=(my_rule,))
    actions = evaluate(ticket, now, config)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from psabridge.model import Action, Ticket

__all__ = ["DEFAULT_RULES", "Rule", "RulesConfig", "evaluate"]


class Rule(Protocol):
    """One rule: looks at a ticket at ``now`` and returns the actions it wants (empty when it has nothing to say)."""

    def __call__(self, ticket: Ticket, now: datetime, config: RulesConfig, /) -> Sequence[Action]:
        """Evaluate the rule (pure)."""
        ...


@dataclass(frozen=True)
class RulesConfig:
    """The rule set in force and the settings rules read.

    Attributes:
        rules: the rules, run in order.
        options: rule settings by name (SLA targets, calendars, escalation matrix: filled by the rules issue).
    """

    rules: tuple[Rule, ...] = ()
    options: dict[str, object] = field(default_factory=dict)


DEFAULT_RULES = RulesConfig()
"""The rule set psabridge runs by default: empty until the checklist rules land."""


def evaluate(ticket: Ticket, now: datetime, config: RulesConfig = DEFAULT_RULES) -> list[Action]:
    """Every action the rule set emits for ``ticket`` at ``now``, in rule order; pure.

    Args:
        ticket: the canonical ticket as just stored.
        now: the time to judge SLAs and deadlines against (injected, so results are deterministic).
        config: the rule set and its settings.
    """
    actions: list[Action] = []
    for rule in config.rules:
        actions.extend(rule(ticket, now, config))
    return actions
