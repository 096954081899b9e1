"""Driver loading: by dotted path ("pkg.module.Class") or by entry point name ("simulator").

Core code never imports a concrete driver; it asks for the one an endpoint names.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from django.utils.module_loading import import_string

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
    "load_driver",
]

# Built in, so the embedded default works even when the package isn't installed with its entry points.
_BUILTIN = {"simulator": "fabric.drivers.simulator.SimulatorDriver"}


def available_drivers() -> dict[str, str]:
    """Driver names that can be chosen when registering an endpoint -> dotted path."""
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value.replace(":", ".")
    return found


@cache
def driver_class(name: str) -> type[FabricDriver]:
    """Resolve a driver name (entry point) or dotted path to its class. Raises ImportError."""
    path = available_drivers().get(name, name)
    if "." not in path:
        raise ImportError(f"No fabric driver named '{name}'.")
    cls = import_string(path)
    if not (isinstance(cls, type) and issubclass(cls, FabricDriver)):
        raise ImportError(f"'{path}' is not a FabricDriver.")
    return cls


def load_driver(name: str, settings: Mapping[str, Any]) -> FabricDriver:
    return driver_class(name)(settings)
