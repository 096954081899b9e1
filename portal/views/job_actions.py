"""Retry and cancel of jobs from the pages: retry on both sites (a tenant's own jobs), cancel for staff.

Both go through portal.jobs (the same services the API calls); refusals become page messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.access import Capability, capability_required
from portal.exceptions import ServiceError
from portal.jobs import job_cancel, job_retry
from portal.models import Job
from portal.selectors import job_get
from portal.views import safe_next


def _act(request: HttpRequest, pk: Any, act: Callable[..., Job], done: str) -> HttpResponse:
    try:
        job = job_get(user=request.user, pk=pk)
    except (Job.DoesNotExist, ValueError) as exc:
        raise Http404("No such job.") from exc
    try:
        act(job=job, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{done} '{job.label}'.")
    namespace = request.resolver_match.namespace if request.resolver_match else ""
    return redirect(safe_next(request, default=reverse(f"{namespace}:job" if namespace else "job", args=[job.pk])))


@capability_required(Capability.OPERATE, tenants=True)
@require_POST
def job_retry_view(request: HttpRequest, pk: Any) -> HttpResponse:
    """Run a failed job again from its failed step."""
    return _act(request, pk, job_retry, "Retrying")


@capability_required(Capability.OPERATE)
@require_POST
def job_cancel_view(request: HttpRequest, pk: Any) -> HttpResponse:
    """Staff: cancel a queued or running job (the admin portal's URLconf alone routes here)."""
    return _act(request, pk, job_cancel, "Cancelled")
