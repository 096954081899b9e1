"""Reads of jobs, scoped like everything else: staff see all, tenants their subscriptions' jobs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from portal.models import Job
from tenants.models import Subscription


def job_list(*, user: Any) -> QuerySet[Job]:
    if not getattr(user, "is_authenticated", False):
        return Job.objects.none()
    if user.is_staff:
        return Job.objects.all()
    return Job.objects.filter(subscription__in=Subscription.objects.visible_to(user))


def job_get(*, user: Any, pk: Any) -> Job:
    """The job, or Job.DoesNotExist (answer 404) when the user may not see it."""
    return job_list(user=user).get(pk=pk)
