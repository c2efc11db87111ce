"""psabridge: keeps help-desk tickets in step between ConnectWise, Autotask, ServiceNow and Freshservice."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
