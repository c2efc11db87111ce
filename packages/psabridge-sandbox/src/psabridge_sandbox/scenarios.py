"""The help-desk checklist scenarios and the ticket templates that exercise them, written in the users' words.

Each template is one kind of problem an MSP service desk sees (an M365 outage, a printer that will not map after
Patch Tuesday, a phishing click ...). The generator in tickets.py picks templates, people, devices and times, and
decides escalation, resolution and time logging; the scenario tags a ticket carries are then derived from what
was actually generated, so a tag never claims more than the ticket shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from psabridge_sandbox.vocabulary import Kind, Priority, Source

__all__ = ["EVENT_ID", "HEX_CODE", "TEMPLATES", "Scenario", "Template"]

EVENT_ID = re.compile(r"\bEvent ID \d{1,5}\b")
HEX_CODE = re.compile(r"\b0x[0-9A-Fa-f]{8}\b")


class Scenario(StrEnum):
    """What a seed ticket exercises on the help-desk ticket handling checklist."""

    P1_OUTAGE = "p1_multi_user_outage"
    P2_USER_BLOCKED = "p2_single_user_blocked"
    P3_DEGRADED = "p3_degraded"
    P4_REQUEST = "p4_request"
    PASSWORD_RESET_VERIFIED = "password_reset_identity_verified"  # noqa: S105 - a scenario name
    PASSWORD_RESET_UNVERIFIED = "password_reset_without_verification"  # noqa: S105 - a scenario name
    PRINTER_MAPPING = "printer_mapping"
    OUTLOOK_PROFILE = "outlook_profile"
    VPN = "vpn"
    NETWORK = "network"
    M365 = "m365"
    SECURITY_INCIDENT = "security_incident"
    EVENT_ID_ERROR = "windows_event_id"
    HEX_ERROR = "hex_error_code"
    PATCH_TUESDAY = "day_after_patch_tuesday"
    ESCALATION_COMPLETE = "escalation_complete_handoff"
    ESCALATION_BARE = "escalation_please_assist"
    RESOLUTION_GOOD = "resolution_documented"
    RESOLUTION_POOR = "resolution_rebooted_and_it_worked"
    CLOSED_WITH_TIME = "closed_with_time_entries"
    CLOSED_WITHOUT_TIME = "closed_without_time_entries"
    VIP_REQUESTER = "vip_requester"
    MONITORING_ALERT = "monitoring_alert"


@dataclass(frozen=True)
class Template:
    """One kind of ticket.

    Text fields are format strings over: ``first`` (requester's first name), ``phone``, ``title``, ``site``,
    ``domain``, ``asset``, ``app``, ``app_exe``, ``n`` (users affected), ``error_line`` (the error text as the user
    quotes it, or nothing) and ``kb`` (a knowledge-base article number).
    ``errors`` holds alternative sets of verbatim error texts; ``fixes`` are documented resolutions naming the
    system, the setting, the command and the KB article.
    """

    key: str
    kind: Kind
    priority: Priority
    topic: str  # general, network, messaging, security, infrastructure: where an escalation goes
    tier1: bool  # within Tier 1 scope per the checklist (password reset, MFA, printer mapping, Outlook profile)
    category: str
    subcategory: str
    tags: frozenset[Scenario]
    summaries: tuple[str, ...]
    descriptions: tuple[str, ...]
    errors: tuple[tuple[str, ...], ...]
    asset: str  # which device to link: personal, printer, server, firewall, vpn_gateway, access_point, cloud, none
    repro: str
    tried: str
    impact: str
    fixes: tuple[str, ...]
    sources: tuple[Source, ...]
    weight: float
    patch_sensitive: bool = False
    users: tuple[int, int] = (1, 1)  # how many users are affected


S = Scenario
_PHONE_FIRST = (Source.PHONE, Source.PHONE, Source.EMAIL, Source.CHAT)
_ANY = (Source.EMAIL, Source.PORTAL, Source.PHONE, Source.CHAT, Source.WALK_IN)
_REQUEST = (Source.PORTAL, Source.PORTAL, Source.EMAIL, Source.CHAT)

TEMPLATES: tuple[Template, ...] = (
    Template(
        key="m365_outage",
        kind=Kind.INCIDENT,
        priority=Priority.P1,
        topic="messaging",
        tier1=False,
        category="Email",
        subcategory="Exchange Online",
        tags=frozenset({S.M365}),
        summaries=("Nobody at {site} can send or receive email", "Outlook disconnected for the whole office"),
        descriptions=(
            "None of us at {site} can send or receive email since about 8:15. Outlook just says 'Disconnected' and "
            "Teams chat won't load either. At least {n} people affected, patients are calling and we can't confirm "
            "appointments.{error_line}",
            "Email is down for everyone here. I restarted my computer twice, so did {n} others.{error_line} Please "
            "call me at {phone}, this is urgent.",
        ),
        errors=(
            ("Sending and receiving reported error (0x800CCC0E): Outlook cannot connect to the server.",),
            ("We couldn't sign you in. Error code: 0xCAA70004",),
        ),
        asset="cloud",
        repro="Open Outlook on any workstation at the site: status bar shows Disconnected; OWA works from mobile data",
        tried="Restarted Outlook on three PCs, checked service health (no advisory yet), flushed DNS on {asset}",
        impact="{n} users at {site} cannot send or receive email",
        fixes=(
            "Root cause: the MX and autodiscover CNAME for the tenant domain were changed at the registrar during a "
            "website move. Restored autodiscover CNAME -> autodiscover.outlook.com and MX per M365 admin center "
            "(Settings > Domains); verified with `Resolve-DnsName autodiscover.{domain}`; KB {kb}.",
            "Conditional Access policy 'Block legacy auth - pilot' was applied to All users by mistake. Scoped it "
            "back to the pilot group in Entra ID > Protection > Conditional Access; users re-signed in; KB {kb}.",
        ),
        sources=_PHONE_FIRST,
        weight=2,
        users=(6, 40),
    ),
    Template(
        key="network_outage",
        kind=Kind.INCIDENT,
        priority=Priority.P1,
        topic="network",
        tier1=False,
        category="Network",
        subcategory="Internet",
        tags=frozenset({S.NETWORK}),
        summaries=("Internet down for the whole office at {site}", "No network at {site} - nobody can work"),
        descriptions=(
            "Nobody at {site} can get on the internet or the shared drive. The phones are out too. It started "
            "around 7:40. About {n} people here.{error_line}",
            "Whole office is offline! Chrome says no internet on every PC.{error_line}",
        ),
        errors=(
            ("DNS_PROBE_FINISHED_NO_INTERNET",),
            ("Event ID 4202: The system detected that network adapter Intel(R) Ethernet was disconnected",),
        ),
        asset="firewall",
        repro="Ping 8.8.8.8 from any desk at the site fails; {asset} shows wan1 down in the RMM",
        tried="Power-cycled the ISP modem with the office manager, checked {asset} in RMM (wan1 link down)",
        impact="{n} users at {site} have no internet, VoIP or file shares",
        fixes=(
            "ISP circuit down (ticket 4471-22 with the carrier). Failed {asset} over to the LTE backup via "
            "`config system link-monitor` / SD-WAN rule 3; primary restored by ISP at 11:05; KB {kb}.",
            "Core switch SW-CORE rebooted after a power blip and came back with the default VLAN. Restored running "
            "config from the nightly backup (`copy tftp running-config`), saved with `write memory`; KB {kb}.",
        ),
        sources=_PHONE_FIRST,
        weight=2,
        users=(8, 60),
    ),
    Template(
        key="file_server_down",
        kind=Kind.INCIDENT,
        priority=Priority.P1,
        topic="infrastructure",
        tier1=False,
        category="Server",
        subcategory="File share",
        tags=frozenset(),
        summaries=("S: drive not working for anyone", "Shared drive unavailable - {site}"),
        descriptions=(
            "The S: drive has a red X for everybody in the office and {app} won't open because it needs it. "
            "{n} of us can't work.{error_line}",
        ),
        errors=(
            (
                "Error 0x80070035: The network path was not found.",
                "Event ID 7031: The Server service terminated unexpectedly.",
            ),
        ),
        asset="server",
        repro="Map \\\\{asset}\\Shared from any PC: 0x80070035; {asset} answers ping but not SMB",
        tried="Checked {asset} in RMM: LanmanServer stopped; one restart attempt failed again after 2 minutes",
        impact="{n} users cannot open {app} or the shared drive",
        fixes=(
            "LanmanServer crashed because the D: volume was full (shadow copies). Extended D: by 200 GB in "
            "vCenter, `vssadmin resize shadowstorage /for=D: /on=D: /maxsize=10%`, restarted LanmanServer; KB {kb}.",
        ),
        sources=_PHONE_FIRST,
        weight=1,
        users=(5, 30),
    ),
    Template(
        key="ransomware",
        kind=Kind.INCIDENT,
        priority=Priority.P1,
        topic="security",
        tier1=False,
        category="Security",
        subcategory="Malware",
        tags=frozenset({S.SECURITY_INCIDENT}),
        summaries=("Files on the shared drive renamed, strange readme files", "Possible ransomware at {site}"),
        descriptions=(
            "All the files in the Billing folder have a weird .lockbit ending and there's a README-RESTORE.txt in "
            "every folder. Nobody can open anything. What do we do??{error_line}",
        ),
        errors=(("Event ID 4663: An attempt was made to access an object (mass rename by {asset}\\scanner)",),),
        asset="server",
        repro="Not reproduced on purpose; observed encrypted files under \\\\{asset}\\Billing",
        tried="Told the user to unplug their PC; disabled the scanner service account in AD; isolated {asset} in EDR",
        impact="{n} users; billing data encrypted; possible data breach",
        fixes=(
            "Contained: EDR isolation of two endpoints, scanner account disabled, share restored from the 02:00 "
            "immutable Veeam restore point. Incident report filed with the client's insurer; KB {kb} (IR runbook).",
        ),
        sources=(Source.PHONE,),
        weight=0.4,
        users=(10, 50),
    ),
    Template(
        key="phishing",
        kind=Kind.INCIDENT,
        priority=Priority.P2,
        topic="security",
        tier1=False,
        category="Security",
        subcategory="Phishing",
        tags=frozenset({S.SECURITY_INCIDENT}),
        summaries=("I clicked a link in a DocuSign email", "Suspicious sign-in alert on my account"),
        descriptions=(
            "I got a DocuSign email about an invoice and I clicked it and typed my password before I realised it "
            "looked wrong. Now I get Authenticator prompts I didn't ask for.{error_line}",
            "Microsoft sent me an email about an unusual sign-in. I was at home all evening.{error_line}",
        ),
        errors=(
            ("Event ID 4625: An account failed to log on. Logon Type 3, Source Network Address: 185.220.101.47",),
            ("Unfamiliar sign-in properties: Moscow, RU. Result: Success (MFA satisfied by claim in token)",),
        ),
        asset="personal",
        repro="Sign-in log in Entra ID shows foreign IP sign-ins for the user",
        tried="Revoked sessions (`Revoke-MgUserSignInSession`), reset password with identity check, kept mailbox",
        impact="1 user; risk of mailbox compromise and invoice fraud",
        fixes=(
            "Reset password, revoked refresh tokens, removed inbox rule 'RSS' forwarding to an external address, "
            "re-registered MFA; searched tenant for the same sender with `Get-MessageTrace`; KB {kb}.",
        ),
        sources=(Source.PHONE, Source.EMAIL, Source.CHAT),
        weight=1.5,
    ),
    Template(
        key="account_lockout",
        kind=Kind.INCIDENT,
        priority=Priority.P2,
        topic="general",
        tier1=True,
        category="Account",
        subcategory="Lockout",
        tags=frozenset(),
        summaries=("Locked out of my computer", "Account keeps locking"),
        descriptions=(
            "My account keeps getting locked every few minutes since this morning, I can't log in to "
            "anything.{error_line}",
        ),
        errors=(
            (
                "Event ID 4740: A user account was locked out.",
                "Event ID 4625: An account failed to log on. Failure Reason: Unknown user name or bad password.",
            ),
        ),
        asset="personal",
        repro="Lockout source per 4740 on DC01 is the user's phone (ActiveSync)",
        tried="Unlocked the account twice; it relocks within minutes",
        impact="1 user cannot log in",
        fixes=(
            "Lockout source (Event ID 4740 caller computer) was an old iPhone with the previous password in Mail. "
            "Removed the account on the phone, unlocked in ADUC, `Get-ADUser -Properties LockedOut` clean; KB {kb}.",
        ),
        sources=_PHONE_FIRST,
        weight=2,
    ),
    Template(
        key="password_reset",
        kind=Kind.SERVICE_REQUEST,
        priority=Priority.P2,
        topic="general",
        tier1=True,
        category="Account",
        subcategory="Password reset",
        tags=frozenset(),
        summaries=("Password reset", "Forgot my password", "Password expired, can't log in"),
        descriptions=(
            "Hi, I forgot my password after the long weekend and can't log in. Can you reset it please?{error_line}",
            "My password expired and it won't let me change it from home.{error_line} I'm at {phone}.",
        ),
        errors=(("Your password has expired and must be changed.",), ()),
        asset="personal",
        repro="n/a",
        tried="n/a",
        impact="1 user cannot log in",
        fixes=(
            "Reset password in ADUC with 'User must change password at next logon', synced with "
            "`Start-ADSyncSyncCycle -PolicyType Delta`, user signed in while on the phone; KB {kb}.",
        ),
        sources=(Source.PHONE, Source.PHONE, Source.CHAT, Source.EMAIL),
        weight=4,
    ),
    Template(
        key="mfa_reenroll",
        kind=Kind.SERVICE_REQUEST,
        priority=Priority.P2,
        topic="messaging",
        tier1=True,
        category="Account",
        subcategory="MFA",
        tags=frozenset({S.M365}),
        summaries=("New phone - Authenticator not working", "Can't approve sign-in on new phone"),
        descriptions=(
            "I got a new phone and now I can't get into Outlook or Teams because the Authenticator codes are on "
            "the old one.{error_line}",
        ),
        errors=(("AADSTS50076: you must use multi-factor authentication to access this resource.",),),
        asset="personal",
        repro="Sign-in prompts for MFA on the old device",
        tried="Verified identity; checked registered methods in Entra ID",
        impact="1 user locked out of M365",
        fixes=(
            "Verified identity by callback, required re-registration of MFA (Entra ID > Users > Authentication "
            "methods > Require re-register MFA), user enrolled the new phone at aka.ms/mysecurityinfo; KB {kb}.",
        ),
        sources=_PHONE_FIRST,
        weight=2,
    ),
    Template(
        key="outlook_profile",
        kind=Kind.INCIDENT,
        priority=Priority.P3,
        topic="messaging",
        tier1=True,
        category="Email",
        subcategory="Outlook",
        tags=frozenset({S.OUTLOOK_PROFILE, S.M365}),
        summaries=("Outlook stuck on 'Loading profile'", "Outlook keeps asking for my password"),
        descriptions=(
            "Outlook has been stuck on Loading Profile all morning. Webmail works fine.{error_line}",
            "Outlook keeps popping up asking for my password over and over, I type it and it comes back.{error_line}",
        ),
        errors=(
            ("Cannot open your default e-mail folders. 0x8004010F: The Outlook data file cannot be accessed.",),
            ("Sending and receiving reported error (0x800CCC0E): Outlook cannot connect to your outgoing server.",),
        ),
        asset="personal",
        repro="Open Outlook in the user's session on {asset}; works in a new local profile",
        tried="Ran Outlook in safe mode (/safe), repaired Office from Apps & features",
        impact="1 user without Outlook (webmail works)",
        fixes=(
            "Cleared Outlook autodiscover cache via Ctrl+right-click -> Test E-mail AutoConfiguration, then rebuilt "
            "the profile (Control Panel > Mail > Show Profiles) and removed stale credentials from Credential "
            "Manager; KB {kb}.",
            "Corrupt OST: renamed %LOCALAPPDATA%\\Microsoft\\Outlook\\*.ost, created a new profile with "
            "`outlook.exe /profiles`, cache re-synced in 20 minutes; KB {kb}.",
        ),
        sources=_ANY,
        weight=3,
    ),
    Template(
        key="printer_mapping",
        kind=Kind.INCIDENT,
        priority=Priority.P3,
        topic="general",
        tier1=True,
        category="Hardware",
        subcategory="Printer",
        tags=frozenset({S.PRINTER_MAPPING}),
        summaries=("Can't print to the front desk printer", "Printer disappeared from my computer"),
        descriptions=(
            "Since this morning I can't print to {asset}, it just says the printer can't be connected. Everyone "
            "else can print.{error_line}",
            "My printer is gone from the list after the computer restarted overnight.{error_line}",
        ),
        errors=(
            ("Windows cannot connect to the printer. Operation failed with error 0x0000011b.",),
            ("Operation could not be completed (error 0x00000709). Double check the printer name.",),
        ),
        asset="printer",
        repro="Add \\\\{asset} from Settings > Printers on the user's PC fails with the same error",
        tried="Restarted the print spooler, removed and re-added the printer",
        impact="1 user cannot print",
        fixes=(
            "0x0000011b after the monthly update: installed the v4 driver from the print server and re-added the "
            "queue with `Add-Printer -ConnectionName \\\\{asset}`, GPO 'Printers - Front desk' now deploys it; "
            "KB {kb}.",
        ),
        sources=_ANY,
        weight=3,
        patch_sensitive=True,
    ),
    Template(
        key="printer_request",
        kind=Kind.SERVICE_REQUEST,
        priority=Priority.P4,
        topic="general",
        tier1=True,
        category="Hardware",
        subcategory="Printer",
        tags=frozenset({S.PRINTER_MAPPING}),
        summaries=("Please add the billing printer for me", "Map printer for new desk"),
        descriptions=("I moved desks to {site}, can you add the billing printer {asset} to my computer please?",),
        errors=((),),
        asset="printer",
        repro="n/a",
        tried="n/a",
        impact="request",
        fixes=("Mapped {asset} via GPO item-level targeting (OU {site}); `gpupdate /force`; KB {kb}.",),
        sources=_REQUEST,
        weight=1.5,
    ),
    Template(
        key="vpn",
        kind=Kind.INCIDENT,
        priority=Priority.P2,
        topic="network",
        tier1=False,
        category="Network",
        subcategory="VPN",
        tags=frozenset({S.VPN, S.NETWORK}),
        summaries=("VPN won't connect from home", "Can't connect to VPN since yesterday"),
        descriptions=(
            "I'm working from home and the VPN just spins and then fails. I can't get to {app} at all.{error_line}",
            "VPN stopped working after my laptop updated last night.{error_line}",
        ),
        errors=(
            (
                "Error 809: The network connection between your computer and the VPN server could not be established.",
                "Event ID 20227: RasClient - the connection failed. The error code returned on failure is 809.",
            ),
            ("Credential or SSLVPN configuration is wrong (-7200)",),
        ),
        asset="vpn_gateway",
        repro="Connect FortiClient from the user's laptop on home Wi-Fi; works on a phone hotspot",
        tried="Reinstalled FortiClient 7.2, verified the account is in the VPN-Users group",
        impact="1 remote user cannot reach {app}",
        fixes=(
            "Home router blocks UDP 4500 (IPsec NAT-T). Switched the user's FortiClient profile to SSL-VPN on "
            "TCP 443 and pushed it via EMS; tested from the user's session; KB {kb}.",
        ),
        sources=_ANY,
        weight=2.5,
        patch_sensitive=True,
    ),
    Template(
        key="wifi_degraded",
        kind=Kind.INCIDENT,
        priority=Priority.P3,
        topic="network",
        tier1=False,
        category="Network",
        subcategory="Wi-Fi",
        tags=frozenset({S.NETWORK}),
        summaries=("Wi-Fi really slow in the conference room", "Wireless keeps dropping at {site}"),
        descriptions=(
            "The Wi-Fi in the back rooms at {site} keeps dropping and video calls freeze. It has been like this "
            "for a few days for {n} of us.{error_line}",
        ),
        errors=(("Event ID 8002: WLAN AutoConfig service failed to connect to a wireless network.",), ()),
        asset="access_point",
        repro="Walk test: RSSI below -75 dBm near the back rooms; {asset} channel utilisation 80%",
        tried="Rebooted {asset}, moved clients to 5 GHz",
        impact="{n} users with slow, dropping Wi-Fi",
        fixes=(
            "Neighbouring network on channel 36 at full width; pinned {asset} to channel 149 / 40 MHz in Aruba "
            "Central and enabled band steering; KB {kb}.",
        ),
        sources=_ANY,
        weight=2,
        users=(2, 12),
    ),
    Template(
        key="teams_degraded",
        kind=Kind.INCIDENT,
        priority=Priority.P3,
        topic="messaging",
        tier1=False,
        category="Collaboration",
        subcategory="Teams",
        tags=frozenset({S.M365}),
        summaries=("Teams calls choppy", "Teams very slow to load chats"),
        descriptions=(
            "Teams calls have been choppy all week and people say my voice cuts out. Everything else is "
            "fine.{error_line}",
        ),
        errors=((), ("Teams: 'Your network quality may affect call quality'",)),
        asset="personal",
        repro="Test call from the user's laptop shows 8% packet loss on Wi-Fi, 0% wired",
        tried="Cleared the Teams cache (%appdata%\\Microsoft\\Teams), updated Teams",
        impact="1 user with poor call quality",
        fixes=(
            "QoS: added DSCP 46 policy for Teams media ports 50000-50019 via GPO and matching rule on the "
            "firewall; call analytics clean afterwards; KB {kb}.",
        ),
        sources=_ANY,
        weight=1.5,
    ),
    Template(
        key="slow_after_update",
        kind=Kind.INCIDENT,
        priority=Priority.P3,
        topic="general",
        tier1=True,
        category="Software",
        subcategory="Windows Update",
        tags=frozenset(),
        summaries=("Laptop super slow since the update", "PC restarted by itself and is slow now"),
        descriptions=(
            "My laptop installed updates last night and now everything takes forever, {app} takes 5 minutes to "
            "open.{error_line}",
            "Computer rebooted on its own during the night and since then it's really slow.{error_line}",
        ),
        errors=(
            ("Windows Update failed: 0x800f0922",),
            ("Event ID 41: Kernel-Power - The system has rebooted without cleanly shutting down first.",),
        ),
        asset="personal",
        repro="Task Manager in the user's session: disk 100% (TiWorker.exe); update history shows a failed CU",
        tried="Let the update finish overnight",
        impact="1 user working slowly",
        fixes=(
            "Cumulative update stuck retrying (0x800f0922: System Reserved partition full). Ran "
            "`DISM /Online /Cleanup-Image /RestoreHealth`, extended the recovery partition per KB {kb}, "
            "installed the CU; disk idle afterwards.",
        ),
        sources=_ANY,
        weight=2,
        patch_sensitive=True,
    ),
    Template(
        key="app_crash",
        kind=Kind.INCIDENT,
        priority=Priority.P3,
        topic="infrastructure",
        tier1=False,
        category="Software",
        subcategory="Line of business",
        tags=frozenset(),
        summaries=("{app} crashes when opening a record", "{app} closes by itself"),
        descriptions=("{app} closes by itself every time I open a record. It started this week.{error_line}",),
        errors=(
            ("Event ID 1000: Faulting application name: {app_exe}, Exception code: 0xc0000005",),
            ("Event ID 1026: .NET Runtime - Application: {app_exe}, Exception Info: System.IO.FileLoadException",),
        ),
        asset="personal",
        repro="Open any record in {app} on {asset}: crash after ~3 seconds; fine on the terminal server",
        tried="Repaired {app} install, cleared the local cache folder",
        impact="1 user cannot use {app}",
        fixes=(
            "Vendor known issue with the new graphics driver; rolled back Intel Graphics driver via Device "
            "Manager, set Windows Update to exclude drivers (GPO 'Do not include drivers'); KB {kb}.",
        ),
        sources=_ANY,
        weight=2,
        patch_sensitive=True,
    ),
    Template(
        key="access_denied",
        kind=Kind.INCIDENT,
        priority=Priority.P2,
        topic="infrastructure",
        tier1=False,
        category="Server",
        subcategory="Permissions",
        tags=frozenset(),
        summaries=("Access denied on the shared folder", "Can't save files to the Billing share"),
        descriptions=(
            "I can open files in the Billing folder but when I try to save I get access denied. I need this for "
            "month end today.{error_line}",
        ),
        errors=(("Error 0x80070005: Access is denied.",),),
        asset="server",
        repro="Save any file to \\\\{asset}\\Billing as the user: 0x80070005",
        tried="Checked the user's group membership (Billing-RW present); logoff/logon",
        impact="1 user blocked for month-end billing",
        fixes=(
            "Inheritance was broken on \\\\{asset}\\Billing\\2026 after a folder move. Re-enabled inheritance with "
            "`icacls D:\\Shares\\Billing\\2026 /inheritance:e /T`; KB {kb}.",
        ),
        sources=_ANY,
        weight=1.5,
    ),
    Template(
        key="bluescreen",
        kind=Kind.INCIDENT,
        priority=Priority.P2,
        topic="general",
        tier1=True,
        category="Hardware",
        subcategory="Laptop",
        tags=frozenset(),
        summaries=("Blue screen when I undock", "Laptop keeps crashing"),
        descriptions=("My laptop shows a blue screen every time I take it off the dock.{error_line}",),
        errors=(
            (
                "Stop code: DRIVER_POWER_STATE_FAILURE (0x0000009F)",
                "Event ID 41: Kernel-Power - The system has rebooted without cleanly shutting down first.",
            ),
        ),
        asset="personal",
        repro="Undock {asset}: bugcheck 0x0000009F within seconds",
        tried="Updated BIOS and dock firmware via the RMM",
        impact="1 user's laptop unusable away from the desk",
        fixes=(
            "Dock firmware 01.00.20 + Realtek USB NIC driver mismatch; installed Dell Command Update driver pack "
            "A12 and disabled 'Allow the computer to turn off this device' on the NIC; KB {kb}.",
        ),
        sources=_ANY,
        weight=1,
    ),
    Template(
        key="onedrive_sync",
        kind=Kind.INCIDENT,
        priority=Priority.P3,
        topic="messaging",
        tier1=True,
        category="Collaboration",
        subcategory="OneDrive",
        tags=frozenset({S.M365}),
        summaries=("OneDrive not syncing", "Red X on my OneDrive files"),
        descriptions=("OneDrive has a red X and my files from yesterday are not on my other computer.{error_line}",),
        errors=(("There was a problem connecting to OneDrive. Error code: 0x8004de40",),),
        asset="personal",
        repro="OneDrive client on {asset} shows 0x8004de40; web access fine",
        tried="Signed out and back in to OneDrive",
        impact="1 user's files not syncing",
        fixes=(
            "TLS 1.2 disabled by an old hardening GPO; enabled via HKLM\\SOFTWARE\\Microsoft\\.NETFramework"
            "\\v4.0.30319 SchUseStrongCrypto=1 and removed the GPO from the OU; OneDrive reset with "
            "`onedrive.exe /reset`; KB {kb}.",
        ),
        sources=_ANY,
        weight=1.5,
    ),
    Template(
        key="new_user",
        kind=Kind.SERVICE_REQUEST,
        priority=Priority.P4,
        topic="general",
        tier1=True,
        category="Account",
        subcategory="New user",
        tags=frozenset(),
        summaries=("New starter on Monday", "Please set up account for new hire"),
        descriptions=(
            "We have a new {title} starting Monday at {site}. Please set up email, {app} access and a laptop. Thanks!",
        ),
        errors=((),),
        asset="none",
        repro="n/a",
        tried="n/a",
        impact="request",
        fixes=(
            "Created the account from the 'New starter - {site}' template (New-ADUser script in IT Glue), assigned "
            "M365 Business Premium, {app} role added, laptop imaged with Autopilot profile; KB {kb}.",
        ),
        sources=_REQUEST,
        weight=2,
    ),
    Template(
        key="software_install",
        kind=Kind.SERVICE_REQUEST,
        priority=Priority.P4,
        topic="general",
        tier1=True,
        category="Software",
        subcategory="Install",
        tags=frozenset(),
        summaries=("Please install Adobe Acrobat Pro", "Need Visio installed"),
        descriptions=("Could you install Adobe Acrobat Pro on my computer? My manager approved it. Thanks!",),
        errors=((),),
        asset="personal",
        repro="n/a",
        tried="n/a",
        impact="request",
        fixes=(
            "Assigned the Acrobat Pro license and deployed via Intune app assignment 'Acrobat Pro - x64'; KB {kb}.",
        ),
        sources=_REQUEST,
        weight=2,
    ),
    Template(
        key="shared_mailbox",
        kind=Kind.SERVICE_REQUEST,
        priority=Priority.P4,
        topic="messaging",
        tier1=True,
        category="Email",
        subcategory="Shared mailbox",
        tags=frozenset({S.M365}),
        summaries=("Access to the billing@ shared mailbox", "Add me to the scheduling mailbox"),
        descriptions=("Can I get access to the billing@ mailbox? I'm covering for a colleague on leave.",),
        errors=((),),
        asset="cloud",
        repro="n/a",
        tried="n/a",
        impact="request",
        fixes=(
            "Granted FullAccess and SendAs with `Add-MailboxPermission billing -User <upn> -AccessRights "
            "FullAccess -AutoMapping $true`; approval from the practice manager attached; KB {kb}.",
        ),
        sources=_REQUEST,
        weight=1.5,
    ),
    Template(
        key="disk_alert",
        kind=Kind.ALERT,
        priority=Priority.P3,
        topic="infrastructure",
        tier1=False,
        category="Server",
        subcategory="Capacity",
        tags=frozenset({S.MONITORING_ALERT}),
        summaries=("RMM alert: C: below 10% free on {asset}", "Disk space warning on {asset}"),
        descriptions=("Automated alert from RMM: volume C: on {asset} has 7.8 GB free (6%).{error_line}",),
        errors=(("Event ID 2013: The C: disk is at or near capacity. You may need to delete some files.",),),
        asset="server",
        repro="n/a (monitoring)",
        tried="Ran the RMM disk-cleanup script (freed 1.1 GB)",
        impact="no users yet; server at risk of stopping services",
        fixes=(
            "WinSxS and IIS logs: `Dism /Online /Cleanup-Image /StartComponentCleanup` and IIS log retention set "
            "to 30 days via scheduled task; 41 GB free; KB {kb}.",
        ),
        sources=(Source.MONITORING,),
        weight=2,
    ),
    Template(
        key="backup_failed",
        kind=Kind.ALERT,
        priority=Priority.P2,
        topic="infrastructure",
        tier1=False,
        category="Server",
        subcategory="Backup",
        tags=frozenset({S.MONITORING_ALERT}),
        summaries=("Backup job failed on {asset}", "Veeam: Nightly job failed"),
        descriptions=("Automated alert: Veeam job 'Nightly {asset}' failed.{error_line}",),
        errors=(("Error: 0x80070070 There is not enough space on the disk.",),),
        asset="server",
        repro="n/a (monitoring)",
        tried="Retried the job: failed again at 62%",
        impact="no current user impact; no restore point for 1 day",
        fixes=(
            "Repository volume full: moved old GFS points to the capacity tier (`Start-VBRCapacityTierSync`), "
            "retention reduced from 30 to 21 restore points per the contract; job rerun OK; KB {kb}.",
        ),
        sources=(Source.MONITORING,),
        weight=1,
    ),
)
