"""Reads of jobs and state histories, scoped like everything else: staff see all, tenants what
belongs to their subscriptions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Now

from portal.models import Job, JobState, StateTransition
from tenants.models import Subscription

M = TypeVar("M", Job, StateTransition)


def _by_subscription(queryset: QuerySet[M], user: Any) -> QuerySet[M]:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if user.is_staff:
        return queryset
    # The ids are read first: `subscription_id IN (<constants>)` lets PostgreSQL walk the
    # (subscription, newest first) index for a page; with `IN (subquery)` it read and sorted every row.
    return queryset.filter(subscription_id__in=Subscription.objects.visible_ids(user))


def job_list(*, user: Any) -> QuerySet[Job]:
    """Newest first; staff see all, a tenant the jobs of its subscriptions."""
    return _by_subscription(Job.objects.all(), user)


def jobs_waiting_for_worker(*, user: Any) -> QuerySet[Job]:
    """Queued jobs due for longer than CANOPY_JOB_WAITING_SECONDS (database time): no worker is taking
    jobs, or the broker is down. The staff overview warns about them."""
    waited = Now() - timedelta(seconds=settings.CANOPY_JOB_WAITING_SECONDS)
    due_long_ago = Q(retry_at__isnull=True, created_at__lt=waited) | Q(retry_at__lt=waited)
    return job_list(user=user).filter(due_long_ago, state=JobState.QUEUED)


def job_get(*, user: Any, pk: Any) -> Job:
    """The job, or Job.DoesNotExist (answer 404) when the user may not see it."""
    return job_list(user=user).get(pk=pk)


def state_history(*, user: Any, resource_type: str, resource_id: Any) -> QuerySet[StateTransition]:
    """A resource's recorded state changes (oldest first) with their job and actor."""
    rows = StateTransition.objects.filter(resource_type=resource_type, resource_id=str(resource_id))
    return _by_subscription(rows, user).select_related("job", "actor")
