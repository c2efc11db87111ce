"""The credentials every sandbox simulator accepts: the same values as config/sandbox-secrets/ in the repository.

They open nothing but the simulators on 127.0.0.1. Vendor simulators import them from here; `sandbox serve
--config-out` writes them as secret files beside the generated configuration. A test checks that this module and
config/sandbox-secrets/ agree.
"""

from __future__ import annotations

# ruff: noqa: S105 - these are the sandbox's published test credentials, not secrets

__all__ = [
    "AT_INTEGRATION_CODE",
    "AT_SECRET",
    "AT_USERNAME",
    "AT_WEBHOOK_SECRET",
    "CW_CLIENT_ID",
    "CW_COMPANY",
    "CW_PRIVATE_KEY",
    "CW_PUBLIC_KEY",
    "FS_API_KEY",
    "FS_WEBHOOK_SECRET",
    "OG_API_KEY",
    "PD_ROUTING_KEY",
    "SECRET_FILES",
    "SN_PASSWORD",
    "SN_USERNAME",
    "SN_WEBHOOK_SECRET",
]

# ConnectWise PSA: Basic base64("company+publicKey:privateKey") plus the clientId header.
CW_COMPANY = "psabridge"
CW_PUBLIC_KEY = "sandbox-public"
CW_PRIVATE_KEY = "sandbox-private"
CW_CLIENT_ID = "5f2f8f0e-6a4b-4d2e-9d1c-2b7f0c3e4a51"

# Autotask: ApiIntegrationCode, UserName and Secret headers; webhooks signed with the webhook secret key.
AT_USERNAME = "api@psabridge.sandbox"
AT_SECRET = "sandbox-at-secret"
AT_INTEGRATION_CODE = "PSABRIDGESANDBOX"
AT_WEBHOOK_SECRET = "sandbox-at-webhook-key"

# ServiceNow: Basic auth with an integration user; business-rule notifications carry a shared-secret header.
SN_USERNAME = "psabridge.integration"
SN_PASSWORD = "sandbox-sn-password"
SN_WEBHOOK_SECRET = "sandbox-sn-webhook"

# Freshservice: Basic base64("apikey:X"); workflow-automator webhooks carry a shared-secret header.
FS_API_KEY = "sandbox-fs-api-key"
FS_WEBHOOK_SECRET = "sandbox-fs-webhook"

# Paging. PagerDuty integration (routing) keys are 32 characters, and so is this one (see pagerduty.py).
PD_ROUTING_KEY = "sandbox-pd-routing-key-012345678"
OG_API_KEY = "sandbox-og-api-key"

SECRET_FILES: dict[str, str] = {
    "at_integration_code": AT_INTEGRATION_CODE,
    "at_secret": AT_SECRET,
    "at_webhook_secret": AT_WEBHOOK_SECRET,
    "cw_client_id": CW_CLIENT_ID,
    "cw_private_key": CW_PRIVATE_KEY,
    "cw_public_key": CW_PUBLIC_KEY,
    "fs_api_key": FS_API_KEY,
    "fs_webhook_secret": FS_WEBHOOK_SECRET,
    "og_api_key": OG_API_KEY,
    "pd_routing_key": PD_ROUTING_KEY,
    "sn_password": SN_PASSWORD,
    "sn_webhook_secret": SN_WEBHOOK_SECRET,
}
"""Secret file name (as under config/sandbox-secrets/) -> value."""
