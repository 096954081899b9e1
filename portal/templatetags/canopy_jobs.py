"""Template filters about jobs, so templates ask the job framework instead of repeating its rules."""

from django import template

from portal.jobs import job_can_retry
from portal.models import Job

register = template.Library()


@register.filter
def can_retry(job: Job) -> bool:
    """Whether to offer Retry for this job (the service checks again when it is clicked)."""
    return job_can_retry(job)
