"""What users may see of the fabric: staff everything, tenants their VMs and the catalog their
plans offer. Anonymous and staff are decided once, in portal.access.ScopedQuerySet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Exists, OuterRef, Q

from portal.access import ScopedQuerySet, SubscriptionScopedQuerySet, visible_subscription_ids

if TYPE_CHECKING:
    from .models import Cloud, HardwareProfile, VirtualMachine, VMTemplate  # noqa: F401  (named as strings)


class CloudQuerySet(ScopedQuerySet["Cloud"]):
    """Staff see all clouds; tenants see nothing of the fabric itself."""


class CatalogQuerySet(ScopedQuerySet[Any]):
    """Sizes and templates: a tenant sees those its subscriptions' plans offer (the endpoint of an
    offered cloud), unless retired."""

    def tenant_scope(self, user: Any) -> CatalogQuerySet:
        from tenants.models import Subscription

        plans = Subscription.objects.filter(pk__in=visible_subscription_ids(user)).values("plan_id")
        return self.offered_by(plans)

    def offered_by(self, plans: Any) -> CatalogQuerySet:
        """What plans (ids, or a queryset of them) offer: the items of the endpoint of each plan's
        VM cloud that the plan's allow-list admits (an empty list admits all), unless the fabric
        retired the item or that cloud. The one rule of the catalog (pages, API, vm_create)."""
        from .models import VMCloudPlanService

        allow_list = self.model.PLAN_ALLOW_LIST  # "hardware_profiles" or "templates"
        offers = VMCloudPlanService.objects.filter(
            Q(**{f"{allow_list}__isnull": True}) | Q(**{allow_list: OuterRef("pk")}),
            plan__in=plans,
            cloud__retired_at__isnull=True,
            cloud__stamp__endpoint_id=OuterRef("endpoint_id"),
        )
        return self.filter(Exists(offers), retired_at__isnull=True)


class VirtualMachineQuerySet(SubscriptionScopedQuerySet["VirtualMachine"]):
    """VMs in subscriptions the user may see (staff: all); deleted VMs are gone for everyone."""

    def staff_scope(self) -> VirtualMachineQuerySet:
        return self.exclude(state="deleted")

    def tenant_scope(self, user: Any) -> VirtualMachineQuerySet:
        return super().tenant_scope(user).exclude(state="deleted")
