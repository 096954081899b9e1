"""The fabric driver interface: what Canopy asks of a virtualization fabric.

A driver is constructed from one registered endpoint's settings (a plain dict) and speaks only the
dataclasses below; it knows nothing of Django or Canopy's models. Every VM operation is keyed by
the portal's VM id (a UUID string), which makes it idempotent: creating a VM that already exists
returns it, deleting one that is gone succeeds. That is what lets a job run again after a worker
died without creating a second VM.

Drivers raise only the exceptions defined here; their messages are shown to users, so they say
what happened in words a tenant can act on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar


class DriverError(Exception):
    """Base of all driver errors; the message is meant for the user."""


class NotFound(DriverError):
    """The fabric has no such object."""


class CapacityExceeded(DriverError):
    """The cloud has not enough free capacity for the request."""


class Unavailable(DriverError):
    """The fabric can't be reached or refused to work now; trying later may succeed."""


class InvalidRequest(DriverError):
    """The request names something the fabric doesn't have or can't do."""


@dataclass(frozen=True)
class Capacity:
    """Amounts of a cloud's resources. None means unlimited (the fabric sets no maximum)."""

    vcpu: int | None = None
    memory_mb: int | None = None
    storage_gb: int | None = None
    vms: int | None = None


@dataclass(frozen=True)
class StampInfo:
    id: str
    name: str
    version: str = ""


@dataclass(frozen=True)
class CloudInfo:
    id: str
    stamp_id: str
    name: str
    total: Capacity
    used: Capacity


@dataclass(frozen=True)
class HardwareProfileInfo:
    id: str
    name: str
    cpu: int
    memory_mb: int


@dataclass(frozen=True)
class TemplateInfo:
    id: str
    name: str
    os_type: str  # "linux" | "windows"
    disk_gb: int


@dataclass(frozen=True)
class EndpointInfo:
    """Everything an endpoint offers; the portal mirrors it into its catalog."""

    stamps: list[StampInfo]
    clouds: list[CloudInfo]
    hardware_profiles: list[HardwareProfileInfo]
    templates: list[TemplateInfo]


class PowerState(StrEnum):
    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class VMSpec:
    """What to create. `vm_id` is the portal's id and the idempotency key of every operation."""

    vm_id: str
    name: str
    cloud_id: str
    template_id: str
    cpu: int
    memory_mb: int
    disk_gb: int
    admin_username: str
    admin_password: str = field(repr=False)
    start: bool = True


@dataclass(frozen=True)
class VMInfo:
    vm_id: str
    fabric_id: str
    name: str
    cloud_id: str
    power_state: PowerState
    cpu: int
    memory_mb: int
    disk_gb: int


@dataclass(frozen=True)
class SettingField:
    """One setting a driver accepts when an endpoint is registered.

    `types` are the JSON types allowed; a `secret` (a password, a token) is stored encrypted by the
    portal, never shown back, and reaches the driver in clear only when it is built.
    """

    name: str
    types: tuple[type, ...]
    required: bool = False
    secret: bool = False
    help: str = ""


NUMBER: tuple[type, ...] = (int, float)
_TYPE_WORDS = {
    str: "text",
    int: "a number",
    float: "a number",
    dict: "an object",
    list: "a list",
    bool: "true or false",
}

#: Seconds a fabric call may take when the endpoint doesn't say (setting `timeout`).
DEFAULT_TIMEOUT = 60.0


def type_error(value: Any, types: tuple[type, ...]) -> str | None:
    """Why `value` is none of `types` (JSON types; a boolean is not a number), or None."""
    if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
        return None
    words = list(dict.fromkeys(_TYPE_WORDS.get(t, t.__name__) for t in types))
    return f"Must be {' or '.join(words)}."


class FabricDriver(ABC):
    """Base class of fabric drivers. Subclasses are found by dotted path or entry point
    (group `canopy.fabric_drivers`), see fabric.drivers.load_driver.

    Canopy builds one instance per endpoint per process and calls it from several threads, so a
    driver may keep connections or sessions between calls, per thread or guarded by a lock.
    """

    #: Short human name shown when registering an endpoint.
    display_name: str = ""

    #: The settings this driver accepts (besides `timeout`, which every driver has).
    settings_schema: ClassVar[tuple[SettingField, ...]] = ()

    _COMMON_SETTINGS: ClassVar[tuple[SettingField, ...]] = (
        SettingField("timeout", NUMBER, help=f"Seconds a fabric call may take (default {DEFAULT_TIMEOUT:g})."),
    )

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        #: Seconds a call to the fabric may take before it fails as Unavailable.
        self.timeout = float(self.settings.get("timeout") or DEFAULT_TIMEOUT)

    @classmethod
    def settings_fields(cls) -> dict[str, SettingField]:
        return {f.name: f for f in (*cls._COMMON_SETTINGS, *cls.settings_schema)}

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any], *, data_dir: Path) -> dict[str, str]:
        """Field errors by setting name; empty when the settings are good. `data_dir` is the one
        folder where a driver may keep files. Subclasses add their rules to this one's answer."""
        fields = cls.settings_fields()
        errors: dict[str, str] = {}
        for name in settings:
            if name not in fields:
                errors[name] = f"Unknown setting; this driver accepts: {', '.join(sorted(fields))}."
        for f in fields.values():
            value = settings.get(f.name)
            if value is None:
                if f.required:
                    errors[f.name] = "This setting is required."
            elif (problem := type_error(value, f.types)) is not None:
                errors[f.name] = problem
        timeout = settings.get("timeout")
        if "timeout" not in errors and timeout is not None and timeout <= 0:
            errors["timeout"] = "Must be more than 0 seconds."
        return errors

    @abstractmethod
    def describe(self) -> EndpointInfo:
        """Stamps, clouds with capacity and usage, hardware profiles and templates. Raises Unavailable."""

    @abstractmethod
    def get_cloud(self, cloud_id: str) -> CloudInfo:
        """One cloud with its current capacity and usage. Raises NotFound."""

    @abstractmethod
    def create_vm(self, spec: VMSpec) -> VMInfo:
        """Create (and, if spec.start, start) a VM; returns the existing one if spec.vm_id exists.

        Raises CapacityExceeded when the cloud is full, InvalidRequest for an unknown cloud or template.
        """

    @abstractmethod
    def get_vm(self, vm_id: str) -> VMInfo:
        """Raises NotFound."""

    @abstractmethod
    def list_vms(self, cloud_id: str | None = None) -> list[VMInfo]:
        """All VMs the fabric has (in one cloud, if given), including ones Canopy didn't create."""

    @abstractmethod
    def start_vm(self, vm_id: str) -> VMInfo:
        """Power on; a running VM stays running."""

    @abstractmethod
    def stop_vm(self, vm_id: str) -> VMInfo:
        """Power off at once (like pulling the plug); a stopped VM stays stopped."""

    @abstractmethod
    def shutdown_vm(self, vm_id: str) -> VMInfo:
        """Ask the guest OS to shut down, and wait for it."""

    @abstractmethod
    def restart_vm(self, vm_id: str) -> VMInfo:
        """Restart the guest."""

    @abstractmethod
    def delete_vm(self, vm_id: str) -> None:
        """Turn off and remove the VM and its disks. Deleting a VM that doesn't exist succeeds."""
