"""The VM cloud service's quotas (virtual machines, vCPU cores and memory per subscription) and its
share of the subscription lifecycle (tenants.lifecycle): stop, start and delete the VMs as jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Sum

from tenants.lifecycle import Leftover, Resource
from tenants.quotas import QuotaService

if TYPE_CHECKING:
    from portal.models import Job
    from tenants.models import Subscription


class VMCloudQuota(QuotaService):
    name = "vm_cloud"
    label = "virtual machines"
    quotas = {
        "vms": ("Virtual machines", ""),
        "cores": ("vCPU cores", ""),
        "memory_mb": ("Memory", "MB"),
    }

    def limits(self, subscription: Subscription) -> Mapping[str, int | None] | None:
        from tenants.models import Plan, Subscription

        from .models import VMCloudPlanService

        service: VMCloudPlanService | None
        if Subscription.plan.is_cached(subscription) and Plan.vm_cloud_service.is_cached(subscription.plan):
            # Read with the subscription (e.g. vm_create's lock): no second query.
            service = getattr(subscription.plan, "vm_cloud_service", None)
        else:
            service = VMCloudPlanService.objects.filter(plan_id=subscription.plan_id).first()
        if service is None:
            return None
        return {"vms": service.max_vms, "cores": service.max_cores, "memory_mb": service.max_memory_mb}

    def usage(self, subscription: Subscription) -> Mapping[str, int]:
        """Every VM that isn't deleted counts, including ones being created or deleted, except a
        failed one that nothing was ever built for on the fabric (no fabric id): it holds nothing."""
        from .models import VirtualMachine, VMState

        if subscription.pk is None:
            return {"vms": 0, "cores": 0, "memory_mb": 0}
        totals = (
            VirtualMachine.objects.filter(subscription_id=subscription.pk)
            .exclude(state=VMState.DELETED)
            .exclude(state=VMState.FAILED, fabric_id="")
            .aggregate(vms=Count("id"), cores=Sum("cpu"), memory_mb=Sum("memory_mb"))
        )
        return {key: int(value or 0) for key, value in totals.items()}

    # --- the subscription lifecycle: each VM's own declared action (fabric.lifecycle), as a child job

    def stop_all(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        from .services import vm_lifecycle_stop_all

        vm_lifecycle_stop_all(subscription=subscription, parent=parent, by=by)

    def start_suspended(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        from .services import vm_lifecycle_start_suspended

        vm_lifecycle_start_suspended(subscription=subscription, parent=parent, by=by)

    def deprovision_all(self, subscription: Subscription, *, parent: Job, by: Any) -> None:
        from .services import vm_lifecycle_deprovision_all

        vm_lifecycle_deprovision_all(subscription=subscription, parent=parent, by=by)

    def forget_suspension(self, subscription: Subscription) -> None:
        from .services import vm_lifecycle_forget_suspension

        vm_lifecycle_forget_suspension(subscription=subscription)

    def leftovers(self, subscription: Subscription) -> list[Leftover]:
        from .selectors import vm_lifecycle_leftovers

        return [
            Leftover(resource=vm.name, kind="Virtual machine", error=error)
            for vm, error in vm_lifecycle_leftovers(subscription=subscription)
        ]

    def resources(self, subscription: Subscription) -> list[Resource]:
        from .selectors import vm_lifecycle_resources

        return [
            Resource(name=vm.name, kind="Virtual machine", state=vm.get_state_display(), busy=vm.is_busy)
            for vm in vm_lifecycle_resources(subscription=subscription)
        ]
