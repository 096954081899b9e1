"""What a tenant may see of plans and subscriptions: the tenant half of the access rule
(portal.access.ScopedQuerySet.visible_to, where anonymous and staff are decided once).

Views and viewsets start from these querysets; an object outside them answers 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q

from portal.access import ScopedQuerySet, SubscriptionScopedQuerySet

if TYPE_CHECKING:
    from .models import AddOn, Plan, Subscription, SubscriptionAddOn  # noqa: F401  (named as strings)


class PlanQuerySet(ScopedQuerySet["Plan"]):
    def tenant_scope(self, user: Any) -> PlanQuerySet:
        """Tenants see public plans; a private plan only through its invitation code
        (tenants.services.plan_find_by_invitation), never in a list."""
        return self.filter(state="public")


class AddOnQuerySet(ScopedQuerySet["AddOn"]):
    def tenant_scope(self, user: Any) -> AddOnQuerySet:
        """Tenants see the active add-ons offered with the plans of their subscriptions."""
        from .models import Subscription

        plans = Subscription.objects.visible_to(user).values("plan_id")
        return self.filter(state="active", plans__in=plans).distinct()


class SubscriptionAddOnQuerySet(SubscriptionScopedQuerySet["SubscriptionAddOn"]):
    """The add-ons a subscription holds, seen with the subscription."""


class SubscriptionQuerySet(ScopedQuerySet["Subscription"]):
    def tenant_scope(self, user: Any) -> SubscriptionQuerySet:
        """A tenant sees the subscriptions it owns or co-administers that aren't deleted.

        Co-administration is a subquery, not a join: a join would repeat an owned subscription once
        per co-administrator. Nothing of it is cached, so a removed co-administrator loses the
        subscription (and everything scoped by it) on the next request.
        """
        from .models import SubscriptionCoAdmin

        coadministered = SubscriptionCoAdmin.objects.filter(user=user).values("subscription_id")
        return self.filter(Q(owner=user) | Q(pk__in=coadministered)).exclude(state="deleted")

    def owned_by(self, user: Any) -> SubscriptionQuerySet:
        """Of the visible subscriptions, those `user` owns (what it holds against a plan's limit)."""
        return self.visible_to(user).filter(owner=user)

    def visible_ids(self, user: Any) -> list[Any]:
        """Ids of the subscriptions `user` may see, read now. Lists scoped by subscription filter on
        these constants (`subscription_id IN (...)`), which PostgreSQL matches to the (subscription,
        newest first) indexes; with `IN (subquery)` it read and sorted every row instead."""
        return list(self.visible_to(user).values_list("pk", flat=True))

    def usable_by(self, user: Any) -> SubscriptionQuerySet:
        """Subscriptions in which `user` may create resources now."""
        return self.visible_to(user).filter(state="active")
