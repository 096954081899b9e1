"""Reads of jobs, scoped like everything else: staff see all, tenants their subscriptions' jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Now

from portal.models import Job, JobState
from tenants.models import Subscription


def job_list(*, user: Any) -> QuerySet[Job]:
    if not getattr(user, "is_authenticated", False):
        return Job.objects.none()
    if user.is_staff:
        return Job.objects.all()
    return Job.objects.filter(subscription__in=Subscription.objects.visible_to(user))


def jobs_waiting_for_worker(*, user: Any) -> QuerySet[Job]:
    """Queued jobs due for longer than CANOPY_JOB_WAITING_SECONDS (database time): no worker is taking
    jobs, or the broker is down. The staff overview warns about them."""
    waited = Now() - timedelta(seconds=settings.CANOPY_JOB_WAITING_SECONDS)
    due_long_ago = Q(retry_at__isnull=True, created_at__lt=waited) | Q(retry_at__lt=waited)
    return job_list(user=user).filter(due_long_ago, state=JobState.QUEUED)


def job_get(*, user: Any, pk: Any) -> Job:
    """The job, or Job.DoesNotExist (answer 404) when the user may not see it."""
    return job_list(user=user).get(pk=pk)
