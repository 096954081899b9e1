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
from typing import Any


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


class FabricDriver(ABC):
    """Base class of fabric drivers. Subclasses are found by dotted path or entry point
    (group `canopy.fabric_drivers`), see fabric.drivers.load_driver.

    Canopy builds one instance per endpoint per process and calls it from several threads, so a
    driver may keep connections or sessions between calls, per thread or guarded by a lock.
    """

    #: Short human name shown when registering an endpoint.
    display_name: str = ""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)

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
