"""Reads for the fabric and VMs. Tenant reads go through `visible_to`; none of these call a driver."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from portal.models import Job, JobState, StateTransition
from portal.selectors import job_list, state_history
from tenants.models import Subscription

from .models import (
    Cloud,
    FabricEndpoint,
    HardwareProfile,
    Stamp,
    VirtualMachine,
    VMState,
    VMTemplate,
)


def endpoint_list() -> QuerySet[FabricEndpoint]:
    """Endpoints with stamps and clouds prefetched (staff pages)."""
    return FabricEndpoint.objects.prefetch_related(
        Prefetch("stamps", queryset=Stamp.objects.prefetch_related("clouds"))
    )


def cloud_list(*, user: Any) -> QuerySet[Cloud]:
    return (
        Cloud.objects.visible_to(user)
        .select_related("stamp__endpoint")
        .annotate(portal_vm_count=Count("virtual_machines", filter=~Q(virtual_machines__state="deleted")))
    )


def vm_list(*, user: Any, subscription: Subscription | None = None) -> QuerySet[VirtualMachine]:
    """VMs the user may see, newest first, with what a list row shows loaded in one query."""
    qs = VirtualMachine.objects.visible_to(user).select_related("subscription", "template", "hardware_profile")
    if subscription is not None:
        qs = qs.filter(subscription=subscription)
    return qs


def vm_get(*, user: Any, pk: Any) -> VirtualMachine:
    """The VM (with its cloud, which its page shows), or VirtualMachine.DoesNotExist (answer 404) when
    the user may not see it."""
    return vm_list(user=user).select_related("cloud").get(pk=pk)


def vm_active_jobs(vms: list[VirtualMachine]) -> dict[str, Job]:
    """The running or queued job of each VM that has one, in one query (for list rows)."""
    ids = [str(vm.pk) for vm in vms]
    jobs = Job.objects.filter(
        target_type="fabric.virtualmachine", target_id__in=ids, state__in=[JobState.QUEUED, JobState.RUNNING]
    ).order_by("created_at")
    return {job.target_id: job for job in jobs}


def vm_catalog(*, subscription: Subscription) -> tuple[QuerySet[VMTemplate], QuerySet[HardwareProfile]]:
    """Templates and sizes a subscription can choose from: those of its plan's cloud's endpoint that
    the fabric still reports (none if the cloud itself is retired)."""
    plans = [subscription.plan_id]
    return VMTemplate.objects.offered_by(plans), HardwareProfile.objects.offered_by(plans)


def endpoint_get(*, pk: Any) -> FabricEndpoint:
    """One endpoint with its stamps, clouds and catalog prefetched (staff detail page).

    Raises FabricEndpoint.DoesNotExist (answer 404)."""
    return endpoint_list().prefetch_related("hardware_profiles", "templates").get(pk=pk)


def endpoint_last_job(endpoint: FabricEndpoint) -> Job | None:
    """The endpoint's most recent job (its sync), so its page can show the progress."""
    return (
        Job.objects.filter(target_type="fabric.fabricendpoint", target_id=str(endpoint.pk))
        .order_by("-created_at")
        .first()
    )


def subscription_vm_counts(subscriptions: list[Subscription]) -> dict[Any, int]:
    """Live (not deleted) VM count of each subscription, in one query (for list rows)."""
    rows = (
        VirtualMachine.objects.filter(subscription__in=[s.pk for s in subscriptions])
        .exclude(state="deleted")
        .values("subscription_id")
        .annotate(n=Count("pk"))
    )
    return {row["subscription_id"]: row["n"] for row in rows}


def vm_job_list(*, user: Any, vm: VirtualMachine) -> QuerySet[Job]:
    """The VM's jobs, newest first, scoped like every job read (the VM's detail page)."""
    return job_list(user=user).filter(target_type="fabric.virtualmachine", target_id=str(vm.pk))


def vm_state_history(*, user: Any, vm: VirtualMachine) -> QuerySet[StateTransition]:
    """The VM's state changes, newest first, scoped like its jobs (the VM's detail page)."""
    history = state_history(user=user, resource_type=VirtualMachine._meta.label_lower, resource_id=vm.pk)
    return history.order_by("-at", "-id")


def vm_lifecycle_leftovers(*, subscription: Subscription) -> list[tuple[VirtualMachine, str]]:
    """The subscription's VMs its last lifecycle action (`sync_action`) didn't bring where it should
    have, each with why: the error of its job in that action, else the state that kept it out (it
    was busy, e.g. being created, when the action ran). Two queries."""
    vms = VirtualMachine.objects.filter(subscription_id=subscription.pk).order_by("name")
    action = subscription.sync_action
    if action == "suspend":
        vms = vms.exclude(state__in=(VMState.STOPPED, VMState.FAILED, VMState.DELETED))
    elif action == "activate":
        vms = vms.filter(running_before_suspension=True).exclude(state__in=(VMState.RUNNING, VMState.DELETED))
    elif action == "delete":
        vms = vms.exclude(state=VMState.DELETED)
    else:
        return []
    rows = list(vms)
    errors: dict[str, str] = {}
    if rows and subscription.lifecycle_job_id:
        failed = Job.objects.filter(
            parent_id=subscription.lifecycle_job_id, state__in=(JobState.FAILED, JobState.CANCELLED)
        ).order_by("created_at")
        errors = {job.target_id: job.error for job in failed.only("target_id", "error")}
    return [
        (vm, errors.get(str(vm.pk)) or f"It is {vm.get_state_display().lower()}; re-sync to finish.") for vm in rows
    ]


def vm_lifecycle_resources(*, subscription: Subscription) -> list[VirtualMachine]:
    """The subscription's VMs that aren't deleted, by name (its staff page lists them)."""
    return list(
        VirtualMachine.objects.filter(subscription_id=subscription.pk).exclude(state=VMState.DELETED).order_by("name")
    )
