"""Tenant scoping for fabric objects, built on Subscription.objects.visible_to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

if TYPE_CHECKING:
    from .models import Cloud, VirtualMachine  # noqa: F401  (named in the generic bases as strings)


class CloudQuerySet(models.QuerySet["Cloud"]):
    def visible_to(self, user: Any) -> CloudQuerySet:
        """Staff see all clouds; tenants see nothing of the fabric itself."""
        if getattr(user, "is_authenticated", False) and user.is_staff:
            return self.all()
        return self.none()


class VirtualMachineQuerySet(models.QuerySet["VirtualMachine"]):
    def visible_to(self, user: Any) -> VirtualMachineQuerySet:
        """VMs in subscriptions the user may see (staff: all); deleted VMs are gone for everyone."""
        from tenants.models import Subscription

        if not getattr(user, "is_authenticated", False):
            return self.none()
        live = self.exclude(state="deleted")
        if user.is_staff:
            return live
        return live.filter(subscription_id__in=Subscription.objects.visible_ids(user))
