"""Template context shared by both sites: which portal this is and the left rail's counts."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.http import HttpRequest


class RailCounts:
    """Counts beside the left rail's services, computed only if a template reads them (one query each)."""

    def __init__(self, user: Any) -> None:
        self.user = user

    @cached_property
    def vms(self) -> int:
        from fabric.models import VirtualMachine

        return VirtualMachine.objects.visible_to(self.user).count()

    @cached_property
    def subscriptions(self) -> int:
        from tenants.models import Subscription

        return Subscription.objects.visible_to(self.user).count()

    @cached_property
    def plans(self) -> int:
        from tenants.models import Plan

        return Plan.objects.visible_to(self.user).count()

    @cached_property
    def endpoints(self) -> int:
        from fabric.models import FabricEndpoint

        return FabricEndpoint.objects.count() if self.user.is_staff else 0

    @cached_property
    def accounts(self) -> int:
        from tenants.models import User

        return User.objects.filter(is_staff=False).count() if self.user.is_staff else 0

    @cached_property
    def active_jobs(self) -> int:
        from portal.selectors import job_list

        return job_list(user=self.user).filter(state__in=["queued", "running"]).count()


def site(request: HttpRequest) -> dict:
    """Which portal renders the page (templates share components, not navigation), and rail counts."""
    user = getattr(request, "user", None)
    counts = RailCounts(user) if user is not None and user.is_authenticated else None
    return {"canopy_site": settings.CANOPY_SITE, "rail_counts": counts}
