"""The parent jobs of subscription lifecycle actions (portal.job_groups): no worker runs them;
their hooks set the subscription's sync state when the last resource's job ends."""

from __future__ import annotations

from typing import Any

from portal.jobs import JobContext, JobFailure, JobHandler, register
from portal.models import Job

from .lifecycle import LifecycleAction


class _SubscriptionLifecycleJob(JobHandler):
    def run(self, ctx: JobContext) -> None:
        raise JobFailure("A subscription action runs as its resources' jobs, not on its own.")

    def on_succeeded(self, job: Job) -> None:
        from .services import subscription_lifecycle_ended

        subscription_lifecycle_ended(job)

    def on_failed(self, job: Job) -> None:
        from .services import subscription_lifecycle_ended

        subscription_lifecycle_ended(job)

    def prepare_retry(self, job: Job, *, by: Any) -> None:
        from .services import subscription_lifecycle_prepare_retry

        subscription_lifecycle_prepare_retry(job, by=by)


@register
class SubscriptionSuspend(_SubscriptionLifecycleJob):
    kind = LifecycleAction.job_kind(LifecycleAction.SUSPEND)
    label = LifecycleAction.LABELS[LifecycleAction.SUSPEND]


@register
class SubscriptionActivate(_SubscriptionLifecycleJob):
    kind = LifecycleAction.job_kind(LifecycleAction.ACTIVATE)
    label = LifecycleAction.LABELS[LifecycleAction.ACTIVATE]


@register
class SubscriptionDelete(_SubscriptionLifecycleJob):
    kind = LifecycleAction.job_kind(LifecycleAction.DELETE)
    label = LifecycleAction.LABELS[LifecycleAction.DELETE]
