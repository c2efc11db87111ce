"""Checklist step "Check recent changes against the CMDB": a new issue right after a change names the change.

A ticket opened 1 to ``patch_tuesday.days_after`` days after Patch Tuesday (Microsoft's monthly updates on the second
Tuesday of the month, counted in the tenant's timezone; updates install overnight, so the day itself is not
counted) gets ``after_patch_tuesday``. One opened during a configured change window (a GPO push, an Intune policy,
firmware: ``change_windows``, optionally per tenant) or up to its ``days_after`` days after it ended gets
``after_change``, naming the change. Both are hints for the diagnosis (info), for incidents, problems and alerts.

What it cannot see: the change calendar and RMM patch history themselves (which machines took which patch, and
changes nobody entered in rules.yaml), so it cannot tell whether the affected machine was actually patched.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from psabridge.model import Kind
from psabridge.rules.base import NO_OUTCOME, Code, Finding, Rule, RuleInput, RuleOutcome, RuleSettings

__all__ = ["ChangeWindow", "PatchTuesdaySettings", "RecentChangesRule", "RecentChangesSettings", "patch_tuesday"]

STEP = "Check recent changes against the CMDB"


class PatchTuesdaySettings(BaseModel):
    """The monthly Microsoft update day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    days_after: int = Field(default=3, ge=1, le=14, description="tickets opened this many days after are flagged")


class ChangeWindow(BaseModel):
    """A planned change (patch ring, GPO push, Intune or Conditional Access change, firmware)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="what changed, as the note names it")
    start: AwareDatetime
    end: AwareDatetime
    tenants: list[str] = Field(default_factory=list, description="clients it touched (empty: every client)")
    days_after: int = Field(default=2, ge=0, le=30, description="tickets opened this many days after end are flagged")
    reference: str | None = Field(default=None, description="the change record's id, e.g. CHG0030001")

    @model_validator(mode="after")
    def _ordered(self) -> ChangeWindow:
        if self.end < self.start:
            raise ValueError(f"change window {self.name!r} ends before it starts")
        return self


class RecentChangesSettings(RuleSettings):
    """Settings of the recent-changes step."""

    patch_tuesday: PatchTuesdaySettings = Field(default_factory=PatchTuesdaySettings)
    change_windows: list[ChangeWindow] = Field(default_factory=list)
    kinds: list[Kind] = Field(
        default_factory=lambda: [Kind.INCIDENT, Kind.PROBLEM, Kind.ALERT],
        description="kinds checked (a ticket with no kind is checked too)",
    )


@lru_cache(maxsize=512)
def patch_tuesday(year: int, month: int) -> date:
    """The second Tuesday of the month."""
    first = date(year, month, 1)
    return first + timedelta(days=(1 - first.weekday()) % 7 + 7)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class RecentChangesRule(Rule[RecentChangesSettings]):
    """A new issue right after Patch Tuesday or a change window is flagged, naming the change."""

    id: ClassVar[str] = "recent_changes"
    step: ClassVar[str] = STEP
    settings_model = RecentChangesSettings
    codes: ClassVar[dict[str, Code]] = {
        "after_patch_tuesday": Code("info", "opened within days after Patch Tuesday: check the patch history first"),
        "after_change": Code("info", "opened during or just after a configured change window, which it names"),
    }

    def evaluate(self, data: RuleInput[RecentChangesSettings]) -> RuleOutcome:
        """Compare the ticket's creation time with Patch Tuesday and the change windows."""
        settings, ticket = data.settings, data.ticket
        created = ticket.created_at
        if created is None:
            return RuleOutcome(trace=("no creation time",)) if data.explain else NO_OUTCOME
        if ticket.kind is not None and ticket.kind not in settings.kinds:
            return RuleOutcome(trace=(f"not checked: kind {ticket.kind.value}",)) if data.explain else NO_OUTCOME
        findings: list[Finding] = []
        trace: list[str] = []
        asset = ticket.asset.name if ticket.asset and ticket.asset.name else "the affected machine"
        if settings.patch_tuesday.enabled:
            zone = _zone(data.tenant.timezone)
            if zone is None and data.explain:
                trace.append(f"unknown timezone {data.tenant.timezone!r}: Patch Tuesday counted in UTC")
            local = created.astimezone(zone).date() if zone is not None else created.date()
            tuesday = patch_tuesday(local.year, local.month)
            if local < tuesday:
                previous = local.replace(day=1) - timedelta(days=1)
                tuesday = patch_tuesday(previous.year, previous.month)
            days = (local - tuesday).days
            if data.explain:
                trace.append(f"opened {local.isoformat()} ({data.tenant.timezone}), {days} day(s) after Patch Tuesday")
            if 1 <= days <= settings.patch_tuesday.days_after:
                findings.append(
                    self.finding(
                        "after_patch_tuesday",
                        f"Opened on {local.isoformat()}, {days} day{'s' if days > 1 else ''} after Patch Tuesday "
                        f"({tuesday.isoformat()}).",
                        advice=f"Check the patch ring and the RMM patch history of {asset} before deeper diagnosis: "
                        "a new issue right after Patch Tuesday is the most common false mystery in this queue.",
                        evidence={
                            "patch_tuesday": tuesday.isoformat(),
                            "opened_local": local.isoformat(),
                            "days_after": days,
                            "timezone": data.tenant.timezone,
                        },
                    )
                )
        windows = (
            [
                w
                for w in settings.change_windows
                if (not w.tenants or data.tenant.key in w.tenants)
                and w.start <= created <= w.end + timedelta(days=w.days_after)
            ]
            if settings.change_windows
            else None
        )
        if windows:
            findings.append(self._changes(windows, created, asset))
            if data.explain:
                trace.append("change window(s) apply: " + ", ".join(repr(w.name) for w in windows))
        return RuleOutcome(findings=tuple(findings), trace=tuple(trace))

    def _changes(self, windows: list[ChangeWindow], created: datetime, asset: str) -> Finding:
        parts = []
        for window in windows:
            when = "during" if created <= window.end else f"{_ago(created - window.end)} after"
            ref = f" ({window.reference})" if window.reference else ""
            parts.append(
                f"{when} the change {window.name!r}{ref} ({window.start.isoformat(timespec='minutes')} to "
                f"{window.end.isoformat(timespec='minutes')})"
            )
        return self.finding(
            "after_change",
            "Opened " + "; and ".join(parts) + ".",
            advice=f"Check whether the change touched {asset} before deeper diagnosis; if it did, link the ticket "
            "to the change record.",
            evidence={
                "changes": [
                    {"name": w.name, "reference": w.reference, "start": w.start.isoformat(), "end": w.end.isoformat()}
                    for w in windows
                ]
            },
            instance=" + ".join(sorted(w.name for w in windows)),
        )


def _ago(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours < 48:
        return f"{max(hours, 1)} hour{'s' if hours > 1 else ''}"
    return f"{hours // 24} days"
