"""What users may see of the fabric: staff everything, tenants their VMs and the catalog their
plans offer. Anonymous and staff are decided once, in portal.access.ScopedQuerySet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        VM cloud, unless the fabric retired the item or that cloud. The one rule of the catalog."""
        offered = self.filter(
            endpoint__stamps__clouds__plan_services__plan__in=plans,
            endpoint__stamps__clouds__retired_at__isnull=True,
            retired_at__isnull=True,
        )
        return self.filter(pk__in=offered.values("pk"))


class VirtualMachineQuerySet(SubscriptionScopedQuerySet["VirtualMachine"]):
    """VMs in subscriptions the user may see (staff: all); deleted VMs are gone for everyone."""

    def staff_scope(self) -> VirtualMachineQuerySet:
        return self.exclude(state="deleted")

    def tenant_scope(self, user: Any) -> VirtualMachineQuerySet:
        return super().tenant_scope(user).exclude(state="deleted")
