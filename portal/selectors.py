"""Reads of jobs and state histories, scoped like everything else: staff see all, tenants what
belongs to their subscriptions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Now

from portal.models import AuditEntry, Job, JobState, PortalSettings, StateTransition


def job_list(*, user: Any) -> QuerySet[Job]:
    """Newest first; staff see all, a tenant the jobs of its subscriptions."""
    return Job.objects.visible_to(user)


# The drawer lists this many of the user's newest jobs: a bounded list, the same cost at any history.
NOTIFICATIONS_SHOWN = 20


def notification_jobs(*, user: Any) -> QuerySet[Job]:
    """The actions the user started (newest first), within what the one access rule lets them see:
    the notifications drawer lists them. A group's children show on its parent's page, not here."""
    return job_list(user=user).filter(created_by=user, parent__isnull=True)


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
    rows = StateTransition.objects.visible_to(user).filter(resource_type=resource_type, resource_id=str(resource_id))
    return rows.select_related("job", "actor")


def portal_settings_get() -> PortalSettings:
    """The provider settings (sign-up policy, ...), read now: a change shows on the next request."""
    return PortalSettings.load()


def signup_policy() -> str:
    """open, invitation or closed (portal.models.SignupPolicy)."""
    return portal_settings_get().signup_policy


def signin_lockout_list() -> QuerySet[Any]:
    """Sign-in lockouts in force (django-axes): each account and address with at least
    AXES_FAILURE_LIMIT failures within AXES_COOLOFF_TIME, the most recent failure first. These are
    django-axes' own records, which the sign-in pages of both sites write."""
    from axes.models import AccessAttempt  # imported here: axes reads its settings at import

    since = Now() - settings.AXES_COOLOFF_TIME
    return AccessAttempt.objects.filter(
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT, attempt_time__gte=since
    ).order_by("-attempt_time", "-pk")


def audit_entry_list(*, user: Any) -> QuerySet[AuditEntry]:
    """Newest first; staff see every entry, a tenant its subscriptions' and its own (portal.models
    AuditEntryQuerySet). Filters: portal.filters.AuditEntryFilter."""
    return AuditEntry.objects.visible_to(user).select_related("subscription")


def audit_entry_get(*, user: Any, pk: Any) -> AuditEntry:
    """The entry, or AuditEntry.DoesNotExist (answer 404) when the user may not see it."""
    return audit_entry_list(user=user).get(pk=pk)
