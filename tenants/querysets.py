"""Tenant scoping: `visible_to(user)` is the one place that decides what an account may see.

Views and viewsets start from these querysets; an object outside them answers 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

if TYPE_CHECKING:
    from .models import Plan, Subscription  # noqa: F401  (named in the generic bases as strings)


class PlanQuerySet(models.QuerySet["Plan"]):
    def visible_to(self, user: Any) -> PlanQuerySet:
        """Staff see every plan; tenants see public plans (private plans by invitation: roadmap)."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(state="public")


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def visible_to(self, user: Any) -> SubscriptionQuerySet:
        """Staff see all subscriptions; a tenant sees the ones it owns that aren't deleted."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(owner=user).exclude(state="deleted")

    def visible_ids(self, user: Any) -> list[Any]:
        """Ids of the subscriptions `user` may see, read now. Lists scoped by subscription filter on
        these constants (`subscription_id IN (...)`), which PostgreSQL matches to the (subscription,
        newest first) indexes; with `IN (subquery)` it read and sorted every row instead."""
        return list(self.visible_to(user).values_list("pk", flat=True))

    def usable_by(self, user: Any) -> SubscriptionQuerySet:
        """Subscriptions in which `user` may create resources now."""
        return self.visible_to(user).filter(state="active")
