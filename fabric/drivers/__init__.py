"""Driver loading: by dotted path ("pkg.module.Class") or by entry point name ("simulator").

Core code never imports a concrete driver; it asks for the one an endpoint names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal.backends import BackendLoader

from .base import (
    Capacity,
    CapacityExceeded,
    CloudInfo,
    DriverError,
    EndpointInfo,
    FabricDriver,
    HardwareProfileInfo,
    InvalidRequest,
    NotFound,
    PowerState,
    StampInfo,
    TemplateInfo,
    Unavailable,
    VMInfo,
    VMSpec,
)

ENTRY_POINT_GROUP = "canopy.fabric_drivers"

__all__ = [
    "ENTRY_POINT_GROUP",
    "Capacity",
    "CapacityExceeded",
    "CloudInfo",
    "DriverError",
    "EndpointInfo",
    "FabricDriver",
    "HardwareProfileInfo",
    "InvalidRequest",
    "NotFound",
    "PowerState",
    "StampInfo",
    "TemplateInfo",
    "Unavailable",
    "VMInfo",
    "VMSpec",
    "available_drivers",
    "driver_class",
    "driver_loader",
    "load_driver",
]

# Built in, so the embedded default works even when the package isn't installed with its entry points.
_BUILTIN = {"simulator": "fabric.drivers.simulator.SimulatorDriver"}


driver_loader: BackendLoader[FabricDriver] = BackendLoader(
    group=ENTRY_POINT_GROUP, base=FabricDriver, builtins=_BUILTIN, kind="fabric driver"
)


def available_drivers() -> dict[str, str]:
    """Driver names that can be chosen when registering an endpoint -> dotted path."""
    return driver_loader.available()


def driver_class(name: str) -> type[FabricDriver]:
    """Resolve a driver name (entry point) or dotted path to its class. Raises ImportError."""
    return driver_loader.resolve(name)


def load_driver(name: str, settings: Mapping[str, Any]) -> FabricDriver:
    return driver_loader.load(name, settings)
