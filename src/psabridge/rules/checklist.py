"""The checklist's rules in checklist order, and the settings model with one field per rule (``rules:`` in rules.yaml).

Adding a rule is two lines here: its instance in ``CHECKLIST`` and its settings field in ``ChecklistSettings``
(named by the rule's id; a test checks the two agree).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from psabridge.rules.base import Rule
from psabridge.rules.closure import ClosureRule, ClosureSettings
from psabridge.rules.documented_fix import DocumentedFixRule, DocumentedFixSettings
from psabridge.rules.error_codes import ErrorCodesRule, ErrorCodesSettings
from psabridge.rules.fix_tested import FixTestedRule, FixTestedSettings
from psabridge.rules.handoff import HandoffRule, HandoffSettings
from psabridge.rules.identity import IdentityRule, IdentitySettings
from psabridge.rules.issue_capture import IssueCaptureRule, IssueCaptureSettings
from psabridge.rules.knowledge import KnowledgeRule, KnowledgeSettings
from psabridge.rules.paging import PagingRule, PagingSettings
from psabridge.rules.priority import PriorityRule, PrioritySettings
from psabridge.rules.recent_changes import RecentChangesRule, RecentChangesSettings
from psabridge.rules.resolution_note import ResolutionNoteRule, ResolutionNoteSettings
from psabridge.rules.routing import RoutingRule, RoutingSettings
from psabridge.rules.satisfaction import SatisfactionRule, SatisfactionSettings
from psabridge.rules.sla import SlaRule, SlaSettings
from psabridge.rules.tagging import TaggingRule, TaggingSettings
from psabridge.rules.tier_scope import TierScopeRule, TierScopeSettings

__all__ = ["CHECKLIST", "ChecklistSettings"]

CHECKLIST: tuple[Rule[Any], ...] = (
    IdentityRule(),
    IssueCaptureRule(),
    PriorityRule(),
    SlaRule(),
    TaggingRule(),
    ErrorCodesRule(),
    RecentChangesRule(),
    KnowledgeRule(),
    TierScopeRule(),
    DocumentedFixRule(),
    HandoffRule(),
    RoutingRule(),
    PagingRule(),
    FixTestedRule(),
    ResolutionNoteRule(),
    ClosureRule(),
    SatisfactionRule(),
)
"""Every checklist rule, in the order of the checklist's steps (the combined note follows it)."""


class ChecklistSettings(BaseModel):
    """The settings of every checklist rule, by rule id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    issue_capture: IssueCaptureSettings = Field(default_factory=IssueCaptureSettings)
    priority: PrioritySettings = Field(default_factory=PrioritySettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    tagging: TaggingSettings = Field(default_factory=TaggingSettings)
    error_codes: ErrorCodesSettings = Field(default_factory=ErrorCodesSettings)
    recent_changes: RecentChangesSettings = Field(default_factory=RecentChangesSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    tier_scope: TierScopeSettings = Field(default_factory=TierScopeSettings)
    documented_fix: DocumentedFixSettings = Field(default_factory=DocumentedFixSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    paging: PagingSettings = Field(default_factory=PagingSettings)
    fix_tested: FixTestedSettings = Field(default_factory=FixTestedSettings)
    resolution_note: ResolutionNoteSettings = Field(default_factory=ResolutionNoteSettings)
    closure: ClosureSettings = Field(default_factory=ClosureSettings)
    satisfaction: SatisfactionSettings = Field(default_factory=SatisfactionSettings)
