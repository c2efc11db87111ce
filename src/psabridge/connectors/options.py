"""Typed connector options: the model every vendor's ``connections[].options`` extend, and the lookup by system.

Each connector class names its model as ``options_model`` (a ``ConnectorOptions`` subclass in its own module, with
``extra="forbid"`` and a description per field). ``load_settings`` validates a connection's ``options`` against it
(so a typo is reported with file, line and field like any other setting), ``psabridge config schema`` documents it,
and the connector reads ``self.options`` instead of an untyped dict. The vendor modules are imported on first use
(``options_model``), so importing the settings never imports a connector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from psabridge.errors import ConfigError
from psabridge.model import System

__all__ = ["ConnectorOptions", "option_models", "options_model", "read_options"]


class ConnectorOptions(BaseModel):
    """Options every connector understands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    integration_user: str | None = Field(
        default=None,
        description="the vendor identity psabridge writes as (member, resource, user or agent id): notes it "
        "authored are echoes even when the vendor stripped our marker",
    )


def options_model(system: str) -> type[ConnectorOptions]:
    """The options model of a vendor system (imports ``psabridge.connectors.<system>``).

    Raises:
        ConfigError: no connector exists for the system.
    """
    from psabridge.connectors import connector_class  # the vendor modules import this package, not the reverse

    return connector_class(system).options_model


def option_models() -> dict[str, type[ConnectorOptions]]:
    """System name -> options model, for every system psabridge connects to."""
    return {system.value: options_model(system.value) for system in System}


def read_options(model: type[ConnectorOptions], values: Mapping[str, Any], *, connection: str) -> ConnectorOptions:
    """``values`` validated as ``model``.

    Raises:
        ConfigError: a value is unknown or of the wrong type (the message names each field).
    """
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(
            f"options.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"invalid connector options: {problems}", connection=connection) from exc
