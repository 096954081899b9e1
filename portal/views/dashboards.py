"""Overview pages and job lists of both sites."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.timesince import timesince

from portal.access import Capability, capability_required
from portal.models import JobState
from portal.navigation import overview_tiles
from portal.pagination import cursor_page
from portal.selectors import job_list, jobs_waiting_for_worker


def _duration(seconds: float) -> str:
    now = timezone.now()
    return timesince(now - timedelta(seconds=seconds), now)


@capability_required(Capability.VIEW)
def staff_dashboard(request: HttpRequest) -> HttpResponse:
    """The services' registered tiles, under a warning when no worker is taking jobs."""
    context = {
        "tiles": overview_tiles(request, "staff"),
        "waiting_jobs": jobs_waiting_for_worker(user=request.user).count(),
        "waiting_threshold": _duration(settings.CANOPY_JOB_WAITING_SECONDS),
    }
    return render(request, "staff/dashboard.html", context)


@login_required
def tenant_dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "tenant/dashboard.html", {"tiles": overview_tiles(request, "tenant")})


def recent_jobs_tile(request: HttpRequest) -> dict:
    return {"jobs": list(job_list(user=request.user)[:10])}


@capability_required(Capability.VIEW, tenants=True)
def jobs(request: HttpRequest) -> HttpResponse:
    """Newest first, one keyset page at a time: the same cost at 100 jobs as at 100,000; `?state=`
    narrows it to one state (the staff overview links to the queued ones)."""
    jobs = job_list(user=request.user)
    state = request.GET.get("state", "")
    if state in JobState.values:
        jobs = jobs.filter(state=state)
    else:
        state = ""
    page = cursor_page(request, jobs)
    context = {"page": page, "jobs": page.object_list, "state": state, "states": JobState.choices}
    return render(request, "components/job_list_page.html", context)
