"""Fabric (stamps, clouds, catalog) mirrored from drivers, plan offers of VM clouds, and tenant VMs."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from portal.access import ScopedQuerySet

from .querysets import CatalogQuerySet, CloudQuerySet, VirtualMachineQuerySet


class EndpointState(models.TextChoices):
    SYNCING = "syncing", "Syncing"
    READY = "ready", "Ready"
    ERROR = "error", "Error"


class FabricEndpoint(models.Model):
    """A registered fabric (like an SPF endpoint): a driver and its settings. Its stamps, clouds
    and catalog are read from the driver by a sync job."""

    name = models.CharField(max_length=100, unique=True)
    driver = models.CharField(max_length=200, help_text="Driver entry point name or dotted path")
    settings = models.JSONField(default=dict, blank=True)
    # The settings the driver marks secret (credentials), by name: each a Fernet token (portal.crypto),
    # decrypted only to build the driver; pages and the API show only that they are set.
    secret_settings = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=EndpointState.choices, default=EndpointState.SYNCING)
    last_error = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def settings_shown(self) -> dict[str, object]:
        """The settings as pages and the API show them: secrets masked."""
        return {**self.settings, **dict.fromkeys(self.secret_settings, SECRET_MASK)}


#: What is shown instead of a secret setting's value.
SECRET_MASK = "•••••• (set)"  # noqa: S105 - a mask, not a password


class Stamp(models.Model):
    """A management stamp behind an endpoint (a VMM server behind SPF, a libvirt host...)."""

    endpoint = models.ForeignKey(FabricEndpoint, on_delete=models.CASCADE, related_name="stamps")
    external_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "external_id"], name="stamp_unique_external")]

    def __str__(self) -> str:
        return self.name


class Cloud(models.Model):
    """A VM cloud on a stamp, with capacity and the fabric's last reported usage (None = unlimited)."""

    stamp = models.ForeignKey(Stamp, on_delete=models.CASCADE, related_name="clouds")
    external_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    vcpu_total = models.PositiveIntegerField(null=True, blank=True)
    memory_mb_total = models.PositiveBigIntegerField(null=True, blank=True)
    storage_gb_total = models.PositiveBigIntegerField(null=True, blank=True)
    vms_total = models.PositiveIntegerField(null=True, blank=True)
    vcpu_used = models.PositiveIntegerField(default=0)
    memory_mb_used = models.PositiveBigIntegerField(default=0)
    storage_gb_used = models.PositiveBigIntegerField(default=0)
    vms_used = models.PositiveIntegerField(default=0)
    usage_updated_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every usage snapshot: a snapshot read before a newer one was stored is dropped.
    usage_version = models.PositiveBigIntegerField(default=0)
    # Set when a sync no longer finds it on the fabric: not offered for new VMs; existing VMs keep it.
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = CloudQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["stamp", "external_id"], name="cloud_unique_external")]

    def __str__(self) -> str:
        return self.name

    def capacity_rows(self) -> list[tuple[str, int, int | None, str]]:
        """(label, used, total, unit) for display."""
        return [
            ("vCPU", self.vcpu_used, self.vcpu_total, ""),
            ("Memory", self.memory_mb_used, self.memory_mb_total, "MB"),
            ("Storage", self.storage_gb_used, self.storage_gb_total, "GB"),
            ("VMs", self.vms_used, self.vms_total, ""),
        ]


class HardwareProfile(models.Model):
    """A VM size offered by an endpoint."""

    endpoint = models.ForeignKey(FabricEndpoint, on_delete=models.CASCADE, related_name="hardware_profiles")
    external_id = models.CharField(max_length=200)
    name = models.CharField(max_length=100)
    cpu = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    # Set when a sync no longer finds it on the fabric: not offered for new VMs; existing VMs keep it.
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = CatalogQuerySet.as_manager()
    # The allow-list of plan offers (VMCloudPlanService) this catalog kind is checked against.
    PLAN_ALLOW_LIST = "hardware_profiles"

    class Meta:
        ordering = ["cpu", "memory_mb"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "external_id"], name="hwprofile_unique_external")]

    def __str__(self) -> str:
        return f"{self.name} ({self.cpu} vCPU, {self.memory_mb / 1024:g} GB)"


class VMTemplate(models.Model):
    """An OS image a VM is created from."""

    endpoint = models.ForeignKey(FabricEndpoint, on_delete=models.CASCADE, related_name="templates")
    external_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    os_type = models.CharField(max_length=16)
    disk_gb = models.PositiveIntegerField()
    # Set when a sync no longer finds it on the fabric: not offered for new VMs; existing VMs keep it.
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = CatalogQuerySet.as_manager()
    # The allow-list of plan offers (VMCloudPlanService) this catalog kind is checked against.
    PLAN_ALLOW_LIST = "templates"

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "external_id"], name="template_unique_external")]

    def __str__(self) -> str:
        return self.name


class VMCloudPlanService(models.Model):
    """The VM cloud offer of a plan: which cloud its subscribers use and which sizes and templates
    they may pick (an empty allow-list: every one the cloud's endpoint offers). Its quotas are
    tenants.QuotaLimit rows (fabric.plan_service.VMCloudService declares them)."""

    plan = models.OneToOneField("tenants.Plan", on_delete=models.CASCADE, related_name="vm_cloud_service")
    cloud = models.ForeignKey(Cloud, on_delete=models.PROTECT, related_name="plan_services")
    hardware_profiles = models.ManyToManyField(HardwareProfile, blank=True, related_name="allowed_in_plans")
    templates = models.ManyToManyField(VMTemplate, blank=True, related_name="allowed_in_plans")

    def __str__(self) -> str:
        return f"{self.plan} → {self.cloud}"


class VMState(models.TextChoices):
    CREATING = "creating", "Creating"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    STARTING = "starting", "Starting"
    STOPPING = "stopping", "Stopping"
    RESTARTING = "restarting", "Restarting"
    DELETING = "deleting", "Deleting"
    FAILED = "failed", "Failed"
    DELETED = "deleted", "Deleted"


# States in which a job is acting on the VM: no other action may start.
BUSY_VM_STATES = (VMState.CREATING, VMState.STARTING, VMState.STOPPING, VMState.RESTARTING, VMState.DELETING)


class VirtualMachine(models.Model):
    """A tenant's VM. Its `state` follows the jobs acting on it; cpu/memory are copied from the
    hardware profile at creation so quotas count what was given even if the profile changes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey("tenants.Subscription", on_delete=models.PROTECT, related_name="virtual_machines")
    cloud = models.ForeignKey(Cloud, on_delete=models.PROTECT, related_name="virtual_machines")
    name = models.CharField(max_length=64)
    template = models.ForeignKey(VMTemplate, on_delete=models.PROTECT, related_name="+")
    hardware_profile = models.ForeignKey(HardwareProfile, on_delete=models.PROTECT, related_name="+")
    cpu = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    disk_gb = models.PositiveIntegerField()
    admin_username = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=VMState.choices, default=VMState.CREATING)
    fabric_id = models.CharField(max_length=200, blank=True)
    # Stopped by its subscription's suspension while running: started again when it is activated.
    running_before_suspension = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VirtualMachineQuerySet.as_manager()

    class Meta:
        # Newest first, ties broken by id: a total order, which keyset (cursor) pages need.
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "name"], condition=~Q(state="deleted"), name="vm_unique_live_name"
            )
        ]
        indexes = [
            models.Index(fields=["subscription", "state"]),
            # The lists' first page read straight off an index (no sort of the whole scope): a
            # tenant's (subscription_id IN ...) and staff's (everything); deleted VMs are never listed.
            models.Index(
                fields=["subscription", "-created_at", "-id"], condition=~Q(state="deleted"), name="vm_live_sub_newest"
            ),
            models.Index(fields=["-created_at", "-id"], condition=~Q(state="deleted"), name="vm_live_newest"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_busy(self) -> bool:
        return self.state in BUSY_VM_STATES
