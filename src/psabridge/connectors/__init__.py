"""Connectors: the registry that builds a connection's connector, and the shared layer vendor modules stand on.

``get_connector(settings)`` imports ``psabridge.connectors.<system>`` on first use and builds the class the module
exports as ``CONNECTOR``: an ``HttpConnector`` gets ``CONNECTOR(settings, runtime=HttpRuntime(...))``, any other
Connector ``CONNECTOR(settings)``. Vendor modules build their HTTP client with ``build_http_client`` (usually
through ``rest.HttpConnector``), so every connector gets the same timeouts, retries, logging and rate budget.
"""

from __future__ import annotations

import importlib

import httpx

from psabridge.connectors.base import Connector
from psabridge.connectors.budget import DEFAULT_NAMESPACE
from psabridge.connectors.http import HttpRuntime, build_http_client
from psabridge.connectors.rest import HttpConnector
from psabridge.errors import BugError, ConfigError
from psabridge.settings import ConnectionSettings

__all__ = ["Connector", "HttpConnector", "HttpRuntime", "build_http_client", "connector_class", "get_connector"]


def connector_class(system: str) -> type[Connector]:
    """The connector class of a vendor system, from ``psabridge.connectors.<system>``'s ``CONNECTOR``.

    Raises:
        ConfigError: no connector module exists for the system.
        BugError: the module exists but does not export a Connector subclass as ``CONNECTOR``.
    """
    module_name = f"{__name__}.{system}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the vendor module exists but something it imports is missing: a broken install, not config
        raise ConfigError(
            f"no connector is available for system {system!r} (module {module_name} is not installed)"
        ) from exc
    cls = getattr(module, "CONNECTOR", None)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise BugError(f"{module_name} must export its Connector subclass as CONNECTOR, found {cls!r}")
    return cls


def get_connector(
    settings: ConnectionSettings,
    *,
    broker_url: str = "embedded",
    transport: httpx.BaseTransport | None = None,
    namespace: str = DEFAULT_NAMESPACE,
) -> Connector:
    """The connector of one configured connection.

    Args:
        settings: the connection.
        broker_url: the broker setting; with ``redis://...`` the rate budget is shared by every process through
            Redis, otherwise it is kept in this process.
        transport: an httpx transport to send through (tests); None for the network.
        namespace: prefix of the shared budget's keys (tests pass a unique one).

    Raises:
        ConfigError: no connector exists for the connection's system, or a credential or setting is missing.
    """
    cls = connector_class(settings.system.value)
    runtime = HttpRuntime(broker_url=broker_url, transport=transport, namespace=namespace)
    try:
        if issubclass(cls, HttpConnector):
            return cls(settings, runtime=runtime)
        return cls(settings)
    except ConfigError as exc:
        if exc.connection is None:
            exc.connection = settings.name
        raise
