r"""Checklist step "Document root cause and resolution": the resolution note is written for the next technician.

A resolved or closed ticket needs a resolution note (``missing`` otherwise). The latest one is scored KCS-style on
four parts: the issue's cause (``cause_words``); the environment, i.e. the system it names (``system_words``, the
asset's name, a \\server path); the resolution, i.e. the setting or command (``action_words``, a command-line
tool in ``command_words``, a `command` in backticks, a PowerShell Verb-Noun, a registry path, a menu path such as
"Settings > Domains", a switch such as /force); and the reference, i.e. the KB id ("KB 4567"). A note missing one
of ``required`` (system, action and KB by default) gets ``incomplete`` with its score and exactly what is missing;
a short "Rebooted and it worked" style note (``trivial_words``, at most ``trivial_max_chars`` long) gets
``trivial`` with guidance instead.

What it cannot see: whether the note is true, whether the KB id exists, or whether the cause named is the root
cause rather than a symptom.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from psabridge.model import Status
from psabridge.rules.base import NO_OUTCOME, Code, Rule, RuleInput, RuleOutcome, RuleSettings
from psabridge.rules.text import Tokens, Words, flatten

__all__ = ["ResolutionNoteRule", "ResolutionNoteSettings"]

STEP = "Document root cause and resolution"

Part = Literal["cause", "system", "action", "kb"]
PARTS: tuple[Part, ...] = ("cause", "system", "action", "kb")
REQUIRED: tuple[Part, ...] = ("system", "action", "kb")
LABELS = {
    "cause": "the cause (what was wrong and why)",
    "system": "the system it happened in (application, service, device)",
    "action": "the setting changed or the command run",
    "kb": "the KB article id",
}
EXAMPLE = (
    '"Cleared Outlook autodiscover cache via Ctrl+right-click -> Test E-mail AutoConfiguration; KB 4567" is a '
    'resolution; "Rebooted and it worked" is not.'
)

_BACKTICKS = re.compile(r"`[^`\n]{2,}`")
_POWERSHELL = re.compile(
    r"\b(?:Get|Set|New|Remove|Add|Start|Stop|Restart|Enable|Disable|Revoke|Resolve|Test|Invoke|Install|Update|Clear|"
    r"Reset|Import|Export|Grant|Move|Rename|Repair|Unlock)-[A-Z][A-Za-z]+"
)
_REGISTRY = re.compile(r"\bHK(?:LM|CU|EY_[A-Z_]+)\\")
_MENU = re.compile(r"\w\s*(?:>|->|→)\s*\w")
_SWITCH = re.compile(r"(?<![\w/])/(?:force|reset|safe|profiles|online|scannow|release|renew|flushdns)\b", re.IGNORECASE)
_UNC = re.compile(r"\\\\[A-Za-z0-9._-]+")


class ResolutionNoteSettings(RuleSettings):
    """Settings of the resolution-note step."""

    required: list[Part] = Field(default_factory=lambda: list(REQUIRED), description="parts the note must have")
    cause_words: Words = Field(
        default=Words(
            [
                "root cause",
                "cause",
                "caused by",
                "because",
                "due to",
                "after the",
                "known issue",
                "corrupt*",
                "full",
                "expired",
                "stuck",
                "broken",
                "mismatch",
                "blocked",
                "blocks",
                "misconfigur*",
                "stale",
                "wrong",
                "by mistake",
                "was disabled",
                "was changed",
                "crashed",
                "down",
            ]
        ),
        description="words that name the cause",
    )
    system_words: Words = Field(
        default=Words(
            [
                "outlook",
                "exchange",
                "exchange online",
                "m365",
                "microsoft 365",
                "office 365",
                "entra id",
                "azure ad",
                "active directory",
                "aduc",
                "ad",
                "gpo",
                "group policy",
                "intune",
                "autopilot",
                "windows",
                "windows update",
                "onedrive",
                "sharepoint",
                "teams",
                "vpn",
                "forticlient",
                "fortigate",
                "firewall",
                "switch",
                "access point",
                "wi-fi",
                "printer",
                "print server",
                "spooler",
                "veeam",
                "server",
                "dns",
                "dhcp",
                "mx",
                "autodiscover",
                "conditional access",
                "mfa",
                "edr",
                "rmm",
                "vcenter",
                "hyper-v",
                "sql",
                "driver",
                "bios",
                "firmware",
                "registry",
                "dock",
                "laptop",
                "isp",
                "router",
            ]
        ),
        description="systems a resolution can name (the ticket's asset name counts too)",
    )
    action_words: Words = Field(
        default=Words(
            [
                "enabled",
                "disabled",
                "configured",
                "set to",
                "changed",
                "removed",
                "added",
                "installed",
                "uninstalled",
                "updated",
                "rolled back",
                "restored",
                "re-enabled",
                "extended",
                "granted",
                "assigned",
                "mapped",
                "rebuilt",
                "cleared",
                "deployed",
                "renamed",
                "scoped",
                "pinned",
                "failed over",
                "replaced",
                "reset password",
                "re-registered",
                "resized",
            ]
        ),
        description="words of a setting changed (besides commands, registry and menu paths)",
    )
    command_words: Words = Field(
        default=Words(
            [
                "gpupdate",
                "ipconfig",
                "dism",
                "sfc",
                "chkdsk",
                "icacls",
                "vssadmin",
                "netsh",
                "robocopy",
                "regedit",
                "reg add",
                "reg delete",
                "sc config",
                "net use",
                "net user",
                "nslookup",
                "dcdiag",
                "repadmin",
                "usoclient",
                "msiexec",
                "winget",
                "bcdedit",
                "diskpart",
                "klist",
                "certutil",
                "outlook.exe",
                "onedrive.exe",
            ]
        ),
        description="command-line tools a resolution can name",
    )
    trivial_words: Words = Field(
        default=Words(
            [
                "rebooted",
                "reboot",
                "restarted",
                "restart",
                "fixed",
                "resolved",
                "done",
                "working now",
                "works now",
                "sorted",
                "no fault found",
                "closed",
                "ok now",
            ]
        ),
        description="words of a note that says only that it works now",
    )
    trivial_max_chars: int = Field(default=60, ge=10, description="a trivial note is at most this long")


class ResolutionNoteRule(Rule[ResolutionNoteSettings]):
    """The resolution note names the system, the setting or command, and the KB id."""

    id: ClassVar[str] = "resolution_note"
    step: ClassVar[str] = STEP
    settings_model = ResolutionNoteSettings
    codes: ClassVar[dict[str, Code]] = {
        "missing": Code("error", "resolved with no resolution note"),
        "trivial": Code("error", "a 'Rebooted and it worked' resolution: it documents nothing"),
        "incomplete": Code("warning", "the resolution note lacks the system, setting/command or KB id; scored"),
    }

    def evaluate(self, data: RuleInput[ResolutionNoteSettings]) -> RuleOutcome:
        """Score the latest resolution note."""
        settings, ticket, text = data.settings, data.ticket, data.text
        done = ticket.status is Status.RESOLVED or ticket.status is Status.CLOSED
        note = text.resolution
        if not note:
            if not done:
                return RuleOutcome(trace=("no resolution yet",)) if data.explain else NO_OUTCOME
            finding = self.finding(
                "missing",
                f"The ticket is {ticket.status.value if ticket.status else 'resolved'} with no resolution note.",
                advice="Write the resolution for the next technician, not the user: name the system, the setting, the "
                f"command and the KB id. {EXAMPLE}",
                evidence={"status": ticket.status.value if ticket.status else None},
            )
            return RuleOutcome(findings=(finding,), trace=("no resolution note",) if data.explain else ())
        has = self.score(data)
        score = sum(has.values())
        missing = [p for p in settings.required if not has[p]]
        trace = (
            (f"resolution scores {score}/4: " + ", ".join(f"{p} {'yes' if has[p] else 'no'}" for p in PARTS),)
            if data.explain
            else ()
        )
        evidence: dict[str, JsonValue] = {
            "score": score,
            "of": 4,
            "has": [p for p in PARTS if has[p]],
            "missing": [p for p in PARTS if not has[p]],
            "kb_ids": list(text.kb_ids),
            "note": note if len(note) <= 200 else note[:197] + "...",
        }
        if len(note) <= settings.trivial_max_chars and settings.trivial_words.search(text.resolution_words):
            finding = self.finding(
                "trivial",
                f"The resolution note {note!r} documents nothing a technician can reuse (score {score}/4).",
                advice=f"Say what was wrong, where, and what you changed: {EXAMPLE}",
                evidence=evidence,
            )
            return RuleOutcome(findings=(finding,), trace=trace)
        if not missing:
            return RuleOutcome(trace=trace)
        finding = self.finding(
            "incomplete",
            f"The resolution note scores {score}/4 (KCS: cause, system, setting or command, KB id); it does not name "
            + "; ".join(LABELS[p] for p in missing)
            + ".",
            advice=f"Complete it for the next technician. {EXAMPLE}",
            evidence=evidence,
        )
        return RuleOutcome(findings=(finding,), trace=trace)

    def score(self, data: RuleInput[ResolutionNoteSettings]) -> dict[Part, bool]:
        """Which of the four KCS parts the latest resolution note has."""
        settings, ticket, text = data.settings, data.ticket, data.text
        raw, words = text.resolution, text.resolution_words
        asset = flatten(ticket.asset.name) if ticket.asset and ticket.asset.name else None
        return {
            "cause": settings.cause_words.search(words) is not None,
            "system": settings.system_words.search(words) is not None
            or (asset is not None and asset in words.flat)
            or _UNC.search(raw) is not None,
            "action": _has_action(raw, words, settings),
            "kb": bool(text.kb_ids),
        }


def _has_action(raw: str, words: Tokens, settings: ResolutionNoteSettings) -> bool:
    """Whether the note names a setting or a command (the cheap word lists first, each pattern only if it can match)."""
    return (
        settings.action_words.search(words) is not None
        or settings.command_words.search(words) is not None
        or ("`" in raw and _BACKTICKS.search(raw) is not None)
        or ("-" in raw and _POWERSHELL.search(raw) is not None)
        or ("HK" in raw and _REGISTRY.search(raw) is not None)
        or ((">" in raw or "→" in raw) and _MENU.search(raw) is not None)
        or ("/" in raw and _SWITCH.search(raw) is not None)
    )
