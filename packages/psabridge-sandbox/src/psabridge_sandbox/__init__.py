"""The vendor sandbox: simulators of the PSA/ITSM and paging APIs, on a shared seed world and a shared core.

A vendor simulator is one module, ``psabridge_sandbox/<service>.py``: routes, the vendor's record shapes and its
quirks. Everything else comes from here::

    from psabridge_sandbox import SandboxContext, Simulator, VendorError, register

    @register("freshservice")
    def build(ctx: SandboxContext) -> Simulator:
        sim = Simulator(ctx.service.name, auth=check_basic_auth, errors=freshservice_error, faults=ctx.faults,
                        seed=ctx.seed, clock=ctx.clock, signer=shared_secret_header, state=lambda: {...})
        tickets = sim.table("tickets")                       # ids, modification times, stable order
        for seed in ctx.seed_tickets():                      # vendor-neutral SeedTickets -> native records
            tickets.insert(to_native(seed), created=seed.created_at, updated=seed.updated_at, notify=False)
        tickets.on_change(lambda change, row: sim.webhooks.emit(change, payload_for(row)))
        sim.rate_limit(200, 60, key=by_principal, headers=rate_headers)  # answered in the vendor's error shape
        sim.add_route("/api/v2/tickets", list_tickets, methods=["GET"])  # a list handler calls
        return sim                                                     # sim.between_pages(tickets) per page

Raise ``VendorError(status, message, code=..., field=..., detail=...)`` anywhere; the ``errors`` renderer gives
it the vendor's shape. Every simulator also answers ``/_sandbox/requests``, ``/_sandbox/state``,
``/_sandbox/faults`` and ``/_sandbox/webhooks`` (see core.py). ``psabridge sandbox serve`` runs every registered
simulator (runner.py); ``build_simulator(name)`` builds one for in-process tests with ``httpx.ASGITransport``.
"""

from __future__ import annotations

from psabridge_sandbox.clock import Clock, FakeClock, SystemClock
from psabridge_sandbox.core import Simulator, principal_of, set_principal
from psabridge_sandbox.dispatcher import Subscription, WebhookDispatcher
from psabridge_sandbox.errors import VendorError
from psabridge_sandbox.faults import PROFILES, FaultProfile
from psabridge_sandbox.ratelimit import Verdict, by_header, by_principal
from psabridge_sandbox.registry import SERVICES, SandboxContext, build_simulator, register
from psabridge_sandbox.scenarios import Scenario
from psabridge_sandbox.table import Row, Table
from psabridge_sandbox.tickets import SeedNote, SeedTicket, SeedTimeEntry
from psabridge_sandbox.world import World, build_world

__all__ = [
    "PROFILES",
    "SERVICES",
    "Clock",
    "FakeClock",
    "FaultProfile",
    "Row",
    "SandboxContext",
    "Scenario",
    "SeedNote",
    "SeedTicket",
    "SeedTimeEntry",
    "Simulator",
    "Subscription",
    "SystemClock",
    "Table",
    "VendorError",
    "Verdict",
    "WebhookDispatcher",
    "World",
    "build_simulator",
    "build_world",
    "by_header",
    "by_principal",
    "principal_of",
    "register",
    "set_principal",
]
