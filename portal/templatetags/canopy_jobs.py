"""Template tags about jobs, so templates ask the job framework instead of repeating its rules, and
`{% job_poller jobs %}`, the one poller of a page's running jobs (see portal.views.jobs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.urls import reverse

from portal.jobs import job_can_retry
from portal.models import Job
from portal.views.jobs import poller_context

register = template.Library()


@register.filter
def can_retry(job: Job) -> bool:
    """Whether to offer Retry for this job (the service checks again when it is clicked)."""
    return job_can_retry(job)


@register.inclusion_tag("components/job_poller.html")
def job_poller(
    jobs: Job | Iterable[Job] | None, url_name: str = "job-statuses", poller_id: str = "job-poller"
) -> dict[str, Any]:
    """Polls `jobs` (one job, a list, or None) while any runs; renders nothing when none does."""
    if jobs is None or isinstance(jobs, Job):
        jobs = [jobs] if jobs is not None else []
    return poller_context(jobs, reverse(url_name), poller_id=poller_id)
