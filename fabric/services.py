"""Writes for the fabric: endpoints, plan offers of VM clouds, and tenant VMs.

Every long action creates a job in the same transaction as the state change it starts; the
fabric itself is only ever called from job handlers (fabric.jobs), never from a web request.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.text import slugify

from portal import audit, crypto
from portal.access import is_staff
from portal.audit import audited
from portal.exceptions import Conflict, NotAllowed, ServiceError
from portal.jobs import job_create
from portal.models import Job
from tenants.models import Plan, Subscription, User
from tenants.plan_services import ServiceNotOffered, quota_check
from tenants.services import plan_quotas_set, subscription_lock, subscription_require_active

from .drivers import CloudInfo, EndpointInfo, FabricDriver, driver_class, load_driver
from .lifecycle import VM_ACTIONS, VM_STATES, vm_action_of_job
from .models import (
    Cloud,
    EndpointState,
    FabricEndpoint,
    HardwareProfile,
    Stamp,
    VirtualMachine,
    VMCloudPlanService,
    VMState,
    VMTemplate,
)
from .validators import validate_admin_password, validate_admin_username, validate_vm_name

# --- endpoints --------------------------------------------------------------------------------------


# endpoint id -> ((driver name, settings as JSON), driver): one driver per endpoint per process.
_drivers: dict[Any, tuple[tuple[str, str], FabricDriver]] = {}
_drivers_lock = threading.Lock()


def endpoint_driver(endpoint: FabricEndpoint) -> FabricDriver:
    """The endpoint's driver, built once per process and shared by its threads (drivers keep
    connections and caches between calls); built anew when the endpoint's driver or settings change.
    """
    # The secrets' tokens, not their values, are in the fingerprint: nothing clear is kept here.
    fingerprint = (endpoint.driver, json.dumps([endpoint.settings, endpoint.secret_settings], sort_keys=True))
    with _drivers_lock:
        cached = _drivers.get(endpoint.pk) if endpoint.pk is not None else None
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        # Built from the JSON, a deep copy: later changes to endpoint.settings can't reach the driver.
        options = json.loads(json.dumps(endpoint.settings))
        options.update({k: json.loads(crypto.decrypt(token)) for k, token in endpoint.secret_settings.items()})
        driver = load_driver(endpoint.driver, options)
        if endpoint.pk is None:
            return driver
        _drivers[endpoint.pk] = (fingerprint, driver)
        return driver


@audited("endpoint.register")
def endpoint_register(
    *, name: str, driver: str, settings_: dict[str, Any] | None = None, created_by: User | None = None
) -> tuple[FabricEndpoint, Job]:
    """Register a fabric endpoint and start a job that reads its stamps, clouds and catalog.

    The simulator gets a state file under CANOPY_SIMULATOR_DIR unless its settings name one.
    """
    name = name.strip()
    if not name:
        raise ValidationError({"name": "An endpoint needs a name."})
    if FabricEndpoint.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"An endpoint named '{name}' already exists."})
    try:
        cls = driver_class(driver)
    except ImportError as exc:  # its message names the drivers available
        raise ValidationError({"driver": str(exc)}) from exc
    options = dict(settings_ or {})
    if driver == "simulator" and not options.get("path"):
        folder = settings.CANOPY_SIMULATOR_DIR
        options["path"] = str(folder / f"{slugify(name) or 'endpoint'}-{uuid.uuid4().hex[:8]}.sqlite3")
    errors = cls.check_settings(options, data_dir=Path(settings.CANOPY_SIMULATOR_DIR))
    if errors:
        raise ValidationError({f"settings.{key}": message for key, message in errors.items()})
    secret_names = {f.name for f in cls.settings_fields().values() if f.secret}
    secrets = {k: crypto.encrypt(json.dumps(v)) for k, v in options.items() if k in secret_names}
    public = {k: v for k, v in options.items() if k not in secret_names}
    with transaction.atomic():
        endpoint = FabricEndpoint.objects.create(name=name, driver=driver, settings=public, secret_settings=secrets)
        job = job_create(kind="endpoint.sync", target=endpoint, created_by=created_by)
    return endpoint, job


@audited("endpoint.sync", target="endpoint")
def endpoint_sync(*, endpoint: FabricEndpoint, created_by: User | None = None) -> Job:
    """Start a job that re-reads the endpoint's stamps, clouds, capacity and catalog."""
    with transaction.atomic():
        endpoint = FabricEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if Job.objects.filter(
            target_type="fabric.fabricendpoint", target_id=str(endpoint.pk), state__in=["queued", "running"]
        ).exists():
            raise Conflict(f"Endpoint '{endpoint}' is already being synchronized.")
        endpoint.state = EndpointState.SYNCING
        endpoint.save(update_fields=["state"])
        return job_create(kind="endpoint.sync", target=endpoint, created_by=created_by)


def endpoint_apply(
    *, endpoint: FabricEndpoint, info: EndpointInfo, seen_versions: dict[int, int] | None = None
) -> None:
    """Mirror what the driver reported into stamps, clouds and catalog (upsert by external id);
    clouds, sizes and templates it no longer reports are retired, and un-retired if they come back.

    `seen_versions` are the clouds' usage versions read before the driver was asked (see
    cloud_apply_usage); a cloud whose usage was written since keeps that newer snapshot.
    """
    seen_versions = seen_versions or {}
    now = timezone.now()
    with transaction.atomic():
        stamps = {}
        for s in info.stamps:
            stamps[s.id], _ = Stamp.objects.update_or_create(
                endpoint=endpoint, external_id=s.id, defaults={"name": s.name, "version": s.version}
            )
        clouds = []
        for c in info.clouds:
            cloud, _ = Cloud.objects.update_or_create(
                stamp=stamps[c.stamp_id], external_id=c.id, defaults={"name": c.name, "retired_at": None}
            )
            clouds.append(cloud.pk)
            cloud_apply_usage(cloud=cloud, info=c, seen_version=seen_versions.get(cloud.pk, cloud.usage_version))
        for p in info.hardware_profiles:
            HardwareProfile.objects.update_or_create(
                endpoint=endpoint,
                external_id=p.id,
                defaults={"name": p.name, "cpu": p.cpu, "memory_mb": p.memory_mb, "retired_at": None},
            )
        for t in info.templates:
            VMTemplate.objects.update_or_create(
                endpoint=endpoint,
                external_id=t.id,
                defaults={"name": t.name, "os_type": t.os_type, "disk_gb": t.disk_gb, "retired_at": None},
            )
        # What the fabric no longer reports is retired, not deleted: VMs built from it keep pointing at it.
        live = {"retired_at__isnull": True}
        Cloud.objects.filter(stamp__endpoint=endpoint, **live).exclude(pk__in=clouds).update(retired_at=now)
        HardwareProfile.objects.filter(endpoint=endpoint, **live).exclude(
            external_id__in=[p.id for p in info.hardware_profiles]
        ).update(retired_at=now)
        VMTemplate.objects.filter(endpoint=endpoint, **live).exclude(
            external_id__in=[t.id for t in info.templates]
        ).update(retired_at=now)
        endpoint.state = EndpointState.READY
        endpoint.last_error = ""
        endpoint.last_synced_at = now
        endpoint.save(update_fields=["state", "last_error", "last_synced_at"])


def cloud_usage_versions(*, cloud: Cloud | None = None, endpoint: FabricEndpoint | None = None) -> dict[int, int]:
    """The usage version of a cloud (or of an endpoint's clouds), by pk: read it *before* asking the
    fabric for usage, and hand it to cloud_apply_usage."""
    qs = Cloud.objects.filter(pk=cloud.pk) if cloud is not None else Cloud.objects.filter(stamp__endpoint=endpoint)
    return dict(qs.values_list("pk", "usage_version"))


def cloud_apply_usage(*, cloud: Cloud, info: CloudInfo, seen_version: int | None) -> bool:
    """Store a cloud's capacity and usage as the fabric reported them, unless a snapshot was stored
    since `seen_version` was read: that one was read from the fabric later, so it is newer.

    A compare-and-swap on a version counter rather than on timestamps, so clocks don't matter.
    Returns False when the snapshot was dropped as older.
    """
    fields = {
        "vcpu_total": info.total.vcpu,
        "memory_mb_total": info.total.memory_mb,
        "storage_gb_total": info.total.storage_gb,
        "vms_total": info.total.vms,
        "vcpu_used": info.used.vcpu or 0,
        "memory_mb_used": info.used.memory_mb or 0,
        "storage_gb_used": info.used.storage_gb or 0,
        "vms_used": info.used.vms or 0,
    }
    rows = Cloud.objects.filter(pk=cloud.pk)
    if seen_version is not None:
        rows = rows.filter(usage_version=seen_version)
    return bool(rows.update(**fields, usage_updated_at=Now(), usage_version=F("usage_version") + 1))


def endpoint_prepare_retry(*, job: Job) -> None:
    """A failed sync may run again (job_retry has checked that no other one is under way)."""
    FabricEndpoint.objects.filter(pk=job.target_id).update(state=EndpointState.SYNCING)


# --- plans ------------------------------------------------------------------------------------------


@audited("plan.vm_cloud.set")
def plan_vm_cloud_offer_set(
    *,
    plan: Plan,
    cloud: Cloud,
    hardware_profiles: list[HardwareProfile] | None = None,
    templates: list[VMTemplate] | None = None,
) -> VMCloudPlanService:
    """Offer a VM cloud in a plan, allowing these sizes and templates of its endpoint (empty: all);
    replaces an earlier offer. Quotas are set apart (tenants.services.plan_service_set)."""
    if cloud.retired_at is not None:
        raise ValidationError({"cloud": f"Cloud '{cloud}' is retired: the fabric no longer reports it."})
    endpoint_id = Stamp.objects.filter(pk=cloud.stamp_id).values_list("endpoint_id", flat=True).first()
    for field, items in (("hardware_profiles", hardware_profiles or []), ("templates", templates or [])):
        if any(item.endpoint_id != endpoint_id for item in items):
            raise ValidationError({field: "Pick only items of the cloud's endpoint."})
    audit.track(VMCloudPlanService.objects.filter(plan=plan).first())  # the offer this replaces, if any
    service, _ = VMCloudPlanService.objects.update_or_create(plan=plan, defaults={"cloud": cloud})
    service.hardware_profiles.set(hardware_profiles or [])
    service.templates.set(templates or [])
    return service


def plan_vm_cloud_set(
    *,
    plan: Plan,
    cloud: Cloud,
    max_vms: int | None,
    max_cores: int | None,
    max_memory_mb: int | None,
    hardware_profiles: list[HardwareProfile] | None = None,
    templates: list[VMTemplate] | None = None,
) -> VMCloudPlanService:
    """Offer a VM cloud in a plan with these number quotas (None = unlimited): the offer and its
    quota rows in one transaction (seed data, tests, scripts)."""
    with transaction.atomic():
        plan_quotas_set(
            plan=plan, service="vm_cloud", quotas={"vms": max_vms, "cores": max_cores, "memory_mb": max_memory_mb}
        )
        return plan_vm_cloud_offer_set(plan=plan, cloud=cloud, hardware_profiles=hardware_profiles, templates=templates)


# --- virtual machines ------------------------------------------------------------------------------


@audited("vm.create")
def vm_create(
    *,
    subscription: Subscription,
    name: str,
    template: VMTemplate,
    hardware_profile: HardwareProfile,
    admin_password: str,
    admin_username: str = "canopy",
    start: bool = True,
    created_by: User | None = None,
) -> tuple[VirtualMachine, Job]:
    """Quick-create a VM in the subscription's VM cloud and start the job that builds it.

    Validates input (ValidationError with field errors), then, under the subscription's row lock,
    checks the quotas (QuotaExceeded) counting VMs in flight, inserts the VM (state Creating) and
    its job. The admin password travels encrypted on the job row only.
    """
    errors: dict[str, list[str]] = {}
    for field, validator, value in (
        ("name", validate_vm_name, name),
        ("admin_password", validate_admin_password, admin_password),
        ("admin_username", validate_admin_username, admin_username),
    ):
        try:
            validator(value)
        except ValidationError as exc:
            errors[field] = exc.messages
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        # The offer (cloud and quotas) comes with the lock; quota_check reuses it.
        sub = subscription_lock(subscription.pk, "plan__vm_cloud_service__cloud__stamp")
        subscription_require_active(sub)
        offer = getattr(sub.plan, "vm_cloud_service", None)
        if offer is None:
            raise ServiceNotOffered(f"The plan of subscription '{sub}' does not offer virtual machines.")
        cloud = offer.cloud
        if cloud.retired_at is not None:
            raise ServiceNotOffered(f"The cloud of subscription '{sub}' is not available for new virtual machines.")
        endpoint_id = cloud.stamp.endpoint_id
        if template.endpoint_id != endpoint_id or template.retired_at is not None:
            raise ValidationError({"template": "This template is not available in your plan's cloud."})
        if hardware_profile.endpoint_id != endpoint_id or hardware_profile.retired_at is not None:
            raise ValidationError({"hardware_profile": "This size is not available in your plan's cloud."})
        # The plan's allow-lists (empty: everything of the cloud's endpoint), by the catalog's one rule.
        if not VMTemplate.objects.offered_by([sub.plan_id]).filter(pk=template.pk).exists():
            raise ValidationError({"template": "Your plan does not allow this template."})
        if not HardwareProfile.objects.offered_by([sub.plan_id]).filter(pk=hardware_profile.pk).exists():
            raise ValidationError({"hardware_profile": "Your plan does not allow this size."})
        if VirtualMachine.objects.filter(subscription=sub, name__iexact=name).exclude(state=VMState.DELETED).exists():
            raise ValidationError({"name": f"A virtual machine named '{name}' already exists in this subscription."})
        quota_check(
            subscription=sub,
            service="vm_cloud",
            request={"vms": 1, "cores": hardware_profile.cpu, "memory_mb": hardware_profile.memory_mb},
        )
        try:  # no savepoint needed: a refusal rolls the whole transaction back
            vm = VirtualMachine.objects.create(
                subscription=sub,
                cloud=cloud,
                name=name,
                template=template,
                hardware_profile=hardware_profile,
                cpu=hardware_profile.cpu,
                memory_mb=hardware_profile.memory_mb,
                disk_gb=template.disk_gb,
                admin_username=admin_username,
                state=VMState.CREATING,
            )
        except IntegrityError as exc:
            raise ValidationError({"name": f"A virtual machine named '{name}' already exists."}) from exc
        job = job_create(
            kind="vm.create",
            target=vm,
            subscription=sub,
            created_by=created_by,
            params={"start": start},
            secret=admin_password,
        )
        VM_STATES.record_created(vm, job=job, actor=created_by)
    return vm, job


def vm_allowed_actions(vm: VirtualMachine) -> list[str]:
    """Actions the VM's state allows now (what the pages enable and the API accepts)."""
    return [name for name, action in VM_ACTIONS.items() if action.allows(vm.state)]


@audited("vm.{action}", target="vm")
def vm_action(*, vm: VirtualMachine, action: str, created_by: User | None = None) -> Job:
    """Start a declared action (fabric.lifecycle) as a job. Raises NotAllowed if the VM's state or
    its subscription's forbids it.

    The VM row is locked so two clicks can't start two jobs; its state becomes the action's
    transitional one (Starting, Stopping, Deleting...) until the job ends.
    """
    declared = VM_ACTIONS.get(action)
    if declared is None:
        raise ValidationError({"action": f"Unknown action '{action}'."})
    with transaction.atomic():
        locked = VirtualMachine.objects.select_for_update().select_related("subscription").get(pk=vm.pk)
        if declared.needs_active_subscription:
            subscription_require_active(locked.subscription)
        if not declared.allows(locked.state):
            raise NotAllowed(f"Can't {action} '{locked.name}' while it is {locked.get_state_display().lower()}.")
        job = _vm_action_job(locked, declared, created_by=created_by)
    vm.state, vm.updated_at = locked.state, locked.updated_at
    return job


def _vm_action_job(vm: VirtualMachine, declared: Any, *, created_by: Any, parent: Job | None = None) -> Job:
    """The action's job and the VM's move to its busy state; the caller holds the VM's row lock."""
    job = job_create(
        kind=declared.job_kind,
        target=vm,
        subscription=vm.subscription,
        created_by=created_by,
        params={"previous_state": vm.state},
        parent=parent,
    )
    VM_STATES.transition(vm, target=declared.busy_state, job=job, actor=created_by)
    return job


BULK_MAX = 100  # two list pages' worth: more than that is a mistake, not a selection


@dataclasses.dataclass
class BulkResult:
    """What a bulk action did: the VMs whose job started, and each refusal with its message."""

    started: list[VirtualMachine] = dataclasses.field(default_factory=list)
    refused: list[tuple[VirtualMachine, str]] = dataclasses.field(default_factory=list)


def vm_bulk_action(*, vms: list[VirtualMachine], action: str, created_by: User | None = None) -> BulkResult:
    """Apply one declared action to each VM through vm_action, on its own: a refusal (its state, its
    subscription) is recorded with the VM and the others go ahead. The caller resolves the VMs
    through `visible_to`. Raises ValidationError for more than BULK_MAX VMs or an unknown action."""
    if action not in VM_ACTIONS:
        raise ValidationError({"action": f"Unknown action '{action}'."})
    if len(vms) > BULK_MAX:
        raise ValidationError({"vm": f"Select at most {BULK_MAX} virtual machines at a time."})
    result = BulkResult()
    for vm in vms:
        try:
            vm_action(vm=vm, action=action, created_by=created_by)
        except (ServiceError, ValidationError) as exc:
            message = exc.message if isinstance(exc, ServiceError) else " ".join(exc.messages)
            result.refused.append((vm, message))
        else:
            result.started.append(vm)
    return result


def vm_prepare_retry(*, job: Job, by: User | None) -> None:
    """Let a failed VM job run again (called by portal.jobs.job_retry, inside its transaction).

    A failed create resumes only while the VM is Failed; it takes quota again (a failed VM that
    nothing was built for stops counting), so that is checked under the subscription's lock.
    Other actions are checked by the same declared rule as when they were first asked for.
    """
    vm = VirtualMachine.objects.select_for_update().select_related("subscription").get(pk=job.target_id)
    if vm.state == VMState.DELETED:
        raise NotAllowed(f"'{vm.name}' has been deleted.")
    if job.kind == "vm.create":
        if vm.state != VMState.FAILED:
            state = vm.get_state_display().lower()
            raise NotAllowed(f"Only a failed virtual machine can be created again; '{vm.name}' is {state}.")
        sub = subscription_lock(vm.subscription_id)
        subscription_require_active(sub)
        if not vm.fabric_id:
            quota_check(
                subscription=sub, service="vm_cloud", request={"vms": 1, "cores": vm.cpu, "memory_mb": vm.memory_mb}
            )
        VM_STATES.transition(vm, target=VMState.CREATING, job=job, actor=by, reason="retry")
        return
    declared = vm_action_of_job(job.kind)
    # A subscription lifecycle's own job (a child of its group) runs again for staff whatever the
    # subscription's state; for its tenant, the same rule as any action applies.
    if declared.needs_active_subscription and not (job.parent_id is not None and is_staff(by)):
        subscription_require_active(vm.subscription)
    if not declared.allows(vm.state):
        raise NotAllowed(f"Can't {declared.name} '{vm.name}' while it is {vm.get_state_display().lower()}.")
    job.params = {**job.params, "previous_state": vm.state}
    Job.objects.filter(pk=job.pk).update(params=job.params)
    VM_STATES.transition(vm, target=declared.busy_state, job=job, actor=by, reason="retry")


# --- the subscription lifecycle (tenants.lifecycle, through fabric.plan_service.VMCloudService) -------------


def _lifecycle_vms(subscription: Subscription, **filters: Any) -> list[VirtualMachine]:
    """The subscription's VMs matching `filters`, locked (as vm_action locks one), by name."""
    return list(
        VirtualMachine.objects.select_for_update().filter(subscription_id=subscription.pk, **filters).order_by("name")
    )


def vm_lifecycle_stop_all(*, subscription: Subscription, parent: Job, by: Any) -> list[Job]:
    """Stop (turn off) every running VM under `parent`, marking it to be started on activation."""
    vms = _lifecycle_vms(subscription, state=VMState.RUNNING)
    VirtualMachine.objects.filter(pk__in=[vm.pk for vm in vms]).update(running_before_suspension=True)
    for vm in vms:
        vm.subscription = subscription
    return [_vm_action_job(vm, VM_ACTIONS["stop"], created_by=by, parent=parent) for vm in vms]


def vm_lifecycle_start_suspended(*, subscription: Subscription, parent: Job, by: Any) -> list[Job]:
    """Start the VMs the suspension stopped (those stopped before it stay stopped)."""
    vms = _lifecycle_vms(subscription, state=VMState.STOPPED, running_before_suspension=True)
    for vm in vms:
        vm.subscription = subscription
    return [_vm_action_job(vm, VM_ACTIONS["start"], created_by=by, parent=parent) for vm in vms]


def vm_lifecycle_deprovision_all(*, subscription: Subscription, parent: Job, by: Any) -> list[Job]:
    """Delete every VM from the fabric under `parent`; the rows stay, Deleted (usage, audit)."""
    delete = VM_ACTIONS["delete"]
    vms = _lifecycle_vms(subscription, state__in=delete.allowed_in)
    for vm in vms:
        vm.subscription = subscription
    return [_vm_action_job(vm, delete, created_by=by, parent=parent) for vm in vms]


def vm_lifecycle_forget_suspension(*, subscription: Subscription) -> None:
    VirtualMachine.objects.filter(subscription_id=subscription.pk, running_before_suspension=True).update(
        running_before_suspension=False
    )
