"""Template context shared by both sites: which portal this is and the left rail's counts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest

# The rail shows "999+" beyond this: counting stops there, so a count costs the same at 2,000 rows
# as at 2 million (a full count reads every row of the scope).
RAIL_COUNT_LIMIT = 999


@dataclass(frozen=True)
class BoundedCount:
    value: int
    more: bool

    def __str__(self) -> str:
        return f"{self.value}+" if self.more else str(self.value)


def bounded_count(queryset: QuerySet[Any], limit: int | None = None) -> BoundedCount:
    """Count at most `limit` + 1 rows (`SELECT count(*) FROM (... LIMIT n)`)."""
    limit = RAIL_COUNT_LIMIT if limit is None else limit
    n = queryset.order_by()[: limit + 1].count()
    return BoundedCount(min(n, limit), n > limit)


class RailCounts:
    """Counts beside the left rail's services, computed only if a template reads them (one bounded
    query each; list pages don't count, so each count runs once per page)."""

    def __init__(self, user: Any) -> None:
        self.user = user

    @cached_property
    def vms(self) -> BoundedCount:
        from fabric.models import VirtualMachine

        return bounded_count(VirtualMachine.objects.visible_to(self.user))

    @cached_property
    def subscriptions(self) -> BoundedCount:
        from tenants.models import Subscription

        return bounded_count(Subscription.objects.visible_to(self.user))

    @cached_property
    def plans(self) -> BoundedCount:
        from tenants.models import Plan

        return bounded_count(Plan.objects.visible_to(self.user))

    @cached_property
    def endpoints(self) -> BoundedCount:
        from fabric.models import FabricEndpoint

        return bounded_count(FabricEndpoint.objects.all() if self.user.is_staff else FabricEndpoint.objects.none())

    @cached_property
    def accounts(self) -> BoundedCount:
        from tenants.models import User

        return bounded_count(User.objects.filter(is_staff=False) if self.user.is_staff else User.objects.none())

    @cached_property
    def active_jobs(self) -> BoundedCount:
        from portal.selectors import job_list

        return bounded_count(job_list(user=self.user).filter(state__in=["queued", "running"]))


def site(request: HttpRequest) -> dict:
    """Which portal renders the page (templates share components, not navigation), and rail counts."""
    user = getattr(request, "user", None)
    counts = RailCounts(user) if user is not None and user.is_authenticated else None
    return {"canopy_site": settings.CANOPY_SITE, "rail_counts": counts}
