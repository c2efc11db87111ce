"""The sandbox's services and the registry where simulator modules register their factories.

``SERVICES`` describes every service the sandbox knows (name, default port, what it seeds, the credentials it
accepts, and its entry in a generated psabridge configuration), whether or not its simulator exists yet.
A simulator module registers a factory for its service with ``@register("<name>")``; ``load_simulators()``
imports every module that exists, so ``sandbox serve``, ``--config-out`` and tests pick up simulators as they
are added.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import psabridge_sandbox.credentials as cred
from psabridge_sandbox.clock import Clock, SystemClock
from psabridge_sandbox.tickets import SeedTicket, generate_tickets
from psabridge_sandbox.world import World, build_world

if TYPE_CHECKING:
    from psabridge_sandbox.core import Simulator

__all__ = [
    "SERVICES",
    "SIMULATORS",
    "UNLIMITED",
    "SandboxContext",
    "ServiceSpec",
    "SimulatorFactory",
    "build_simulator",
    "load_simulators",
    "register",
    "service",
]

DEFAULT_PORT_BASE = 8701
SECRETS_DIR = "sandbox-secrets"


@dataclass(frozen=True)
class ServiceSpec:
    """One sandbox service.

    Args:
        name: service name, also the key of --urls-file and the registry.
        offset: port = port base + offset (8701 + offset by default, as config/psabridge.yaml expects).
        module: the simulator module that registers the factory.
        role: ``connection`` (a vendor PSA/ITSM) or ``notifier`` (paging, chat).
        base_path: appended to the service root for the configured ``base_url``.
        accepts: the credentials the simulator accepts, shown to operators.
        entry: builds the service's entry in a psabridge configuration from its base URL and host.
        tenants: the tenants whose tickets the service holds (empty: none).
        handoff_queue: the client queue tickets are handed to the MSP in (see tickets.generate_tickets).
    """

    name: str
    offset: int
    module: str
    role: Literal["connection", "notifier"]
    base_path: str
    accepts: Mapping[str, str]
    entry: Callable[[str, str], dict[str, Any]]
    tenants: tuple[str, ...] = ()
    handoff_queue: str | None = None


def _secret(name: str) -> str:
    return f"{SECRETS_DIR}/{name}"


# The entries mirror config/psabridge.yaml (names, tenant maps, credential names), so the demo's links hold.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="connectwise",
        offset=0,
        module="psabridge_sandbox.connectwise",
        role="connection",
        base_path="",  # the site root: clients discover the codebase (GET /login/companyinfo/{company})
        accepts={
            "company": cred.CW_COMPANY,
            "public_key": cred.CW_PUBLIC_KEY,
            "private_key": cred.CW_PRIVATE_KEY,
            "client_id": cred.CW_CLIENT_ID,
        },
        entry=lambda base_url, host: {
            "name": "msp-cw",
            "system": "connectwise",
            "base_url": base_url,
            "credentials": {
                "company": cred.CW_COMPANY,
                "public_key_file": _secret("cw_public_key"),
                "private_key_file": _secret("cw_private_key"),
                "client_id_file": _secret("cw_client_id"),
                "webhook_host": host,
            },
            "tenants": {
                "AcmeDental": "acme",
                "GlobexLogistics": "globex",
                "Initech": "initech",
                "UmbrellaHealth": "umbrella",
            },
        },
        tenants=("acme", "globex", "initech", "umbrella"),
    ),
    ServiceSpec(
        name="autotask",
        offset=1,
        module="psabridge_sandbox.autotask",
        role="connection",
        base_path="/atservicesrest",
        accepts={
            "username": cred.AT_USERNAME,
            "secret": cred.AT_SECRET,
            "integration_code": cred.AT_INTEGRATION_CODE,
            "webhook_secret": cred.AT_WEBHOOK_SECRET,
        },
        entry=lambda base_url, host: {
            "name": "partner-at",
            "system": "autotask",
            "base_url": base_url,
            "credentials": {
                "username": cred.AT_USERNAME,
                "secret_file": _secret("at_secret"),
                "integration_code_file": _secret("at_integration_code"),
                "webhook_secret_file": _secret("at_webhook_secret"),
            },
            # Autotask company ids: 0 is the owner company; the simulator must create Initech as 1001,
            # Umbrella Health as 1002 (config/psabridge.yaml) and Globex, mirrored in from its Freshservice, as 1003.
            "tenants": {"0": "initech", "1001": "initech", "1002": "umbrella", "1003": "globex"},
        },
        tenants=("initech", "umbrella"),
    ),
    ServiceSpec(
        name="servicenow",
        offset=2,
        module="psabridge_sandbox.servicenow",
        role="connection",
        base_path="",
        accepts={
            "username": cred.SN_USERNAME,
            "password": cred.SN_PASSWORD,
            "webhook_secret": cred.SN_WEBHOOK_SECRET,
        },
        entry=lambda base_url, host: {
            "name": "acme-snow",
            "system": "servicenow",
            "tenant": "acme",
            "base_url": base_url,
            "credentials": {
                "username": cred.SN_USERNAME,
                "password_file": _secret("sn_password"),
                "webhook_secret_file": _secret("sn_webhook_secret"),
            },
        },
        tenants=("acme",),
        handoff_queue="MSP Support",
    ),
    ServiceSpec(
        name="freshservice",
        offset=3,
        module="psabridge_sandbox.freshservice",
        role="connection",
        base_path="",
        accepts={"api_key": cred.FS_API_KEY, "password": "X", "webhook_secret": cred.FS_WEBHOOK_SECRET},
        entry=lambda base_url, host: {
            "name": "globex-fs",
            "system": "freshservice",
            "tenant": "globex",
            "base_url": base_url,
            "credentials": {
                "api_key_file": _secret("fs_api_key"),
                "webhook_secret_file": _secret("fs_webhook_secret"),
            },
        },
        tenants=("globex",),
        handoff_queue="MSP Escalations",
    ),
    ServiceSpec(
        name="pagerduty",
        offset=4,
        module="psabridge_sandbox.pagerduty",
        role="notifier",
        base_path="",
        accepts={"routing_key": cred.PD_ROUTING_KEY},
        entry=lambda base_url, host: {
            "name": "pagerduty",
            "kind": "pagerduty",
            "base_url": base_url,
            "credentials": {"routing_key_file": _secret("pd_routing_key")},
        },
    ),
    ServiceSpec(
        name="opsgenie",
        offset=5,
        module="psabridge_sandbox.opsgenie",
        role="notifier",
        base_path="",
        accepts={"api_key": cred.OG_API_KEY, "authorization": f"GenieKey {cred.OG_API_KEY}"},
        entry=lambda base_url, host: {
            "name": "opsgenie",
            "kind": "opsgenie",
            "base_url": base_url,
            "credentials": {"api_key_file": _secret("og_api_key")},
        },
    ),
    ServiceSpec(
        name="chat",
        offset=6,
        module="psabridge_sandbox.chat",
        role="notifier",
        base_path="/hooks/incident",
        accepts={"slack": "POST /hooks/<channel>", "teams": "POST /webhookb2/<channel>"},
        entry=lambda base_url, host: {"name": "incident-channel", "kind": "slack", "base_url": base_url},
    ),
)


def service(name: str) -> ServiceSpec:
    """The service called ``name`` (KeyError lists the names)."""
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"no sandbox service {name!r}; known: {', '.join(s.name for s in SERVICES)}")


UNLIMITED = 1_000_000_000
"""The limit of a rate rule lifted with ``limits=False``: one no client reaches, so the vendor's headers still come."""


@dataclass(frozen=True)
class SandboxContext:
    """What a simulator factory gets: its service, the seed world, how many tickets, faults, the clock, and limits.

    ``limits`` False lifts the vendor's rate limits (and Freshservice's plan) so a benchmark measures the client's
    own cost: rules stay in place (and their headers with them) with ``UNLIMITED`` as their limit, and in-flight caps
    go.
    """

    service: ServiceSpec
    world: World
    anchor: datetime
    seed: int = 0
    tickets: int = 200
    faults: str = "none"
    clock: Clock = field(default_factory=SystemClock)
    limits: bool = True

    def limit(self, vendor: int) -> int:
        """A rate rule's limit: the vendor's, or ``UNLIMITED`` when limits are lifted."""
        return vendor if self.limits else UNLIMITED

    def seed_tickets(self) -> list[SeedTicket]:
        """Seed tickets for this service: its tenants, its hand-off queue, salted with its name."""
        return generate_tickets(
            self.world,
            self.tickets,
            anchor=self.anchor,
            tenants=self.service.tenants or None,
            handoff_queue=self.service.handoff_queue,
            salt=self.service.name,
        )


SimulatorFactory = Callable[[SandboxContext], "Simulator"]
SIMULATORS: dict[str, SimulatorFactory] = {}
"""Service name -> factory, filled by simulator modules with ``@register``."""

F = TypeVar("F", bound=SimulatorFactory)


def register(name: str) -> Callable[[F], F]:
    """Register a simulator factory for the service ``name``: ``@register("connectwise") def build(ctx): ...``."""
    service(name)  # fail early on a typo

    def decorate(factory: F) -> F:
        SIMULATORS[name] = factory
        return factory

    return decorate


def load_simulators() -> dict[str, SimulatorFactory]:
    """Import every simulator module that exists and return the registered factories, in service order."""
    for spec in SERVICES:
        if spec.name not in SIMULATORS and importlib.util.find_spec(spec.module) is not None:
            importlib.import_module(spec.module)
    return {spec.name: SIMULATORS[spec.name] for spec in SERVICES if spec.name in SIMULATORS}


def default_anchor(clock: Clock) -> datetime:
    """The seed data's "now": the clock's current hour, so a restart within the hour gives identical data."""
    return clock.now().replace(minute=0, second=0, microsecond=0)


def build_simulator(
    name: str,
    *,
    seed: int = 0,
    tickets: int = 50,
    faults: str = "none",
    clock: Clock | None = None,
    anchor: datetime | None = None,
    world: World | None = None,
    limits: bool = True,
) -> Simulator:
    """Build one registered simulator (for tests and tools): ``build_simulator("pagerduty")``.

    ``limits=False`` lifts the vendor's rate limits (see ``SandboxContext``).
    """
    factories = load_simulators()
    if name not in factories:
        raise KeyError(f"no simulator registered for {name!r}; registered: {', '.join(factories) or 'none'}")
    clock = clock or SystemClock()
    context = SandboxContext(
        service=service(name),
        world=world or build_world(seed),
        anchor=anchor or default_anchor(clock),
        seed=seed,
        tickets=tickets,
        faults=faults,
        clock=clock,
        limits=limits,
    )
    return factories[name](context)
