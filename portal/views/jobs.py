"""Job progress, shared by both sites: a partial that htmx polls until the job ends."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from portal.models import Job
from portal.selectors import job_get


@login_required
def job_status(request: HttpRequest, pk: str) -> HttpResponse:
    """The job's progress partial. While the job runs, the partial polls itself (every 1 s); once it
    ends it is rendered without the trigger, and a `canopy:job-finished` event lets the page refresh
    the rows that depend on it."""
    try:
        job = job_get(user=request.user, pk=pk)
    except (Job.DoesNotExist, ValueError) as exc:
        raise Http404 from exc
    response = render(request, "components/job_status.html", {"job": job})
    if job.is_finished:
        response["HX-Trigger"] = "canopy:job-finished"
    return response


@login_required
def job_detail(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        job = job_get(user=request.user, pk=pk)
    except (Job.DoesNotExist, ValueError) as exc:
        raise Http404 from exc
    return render(request, "components/job_detail_page.html", {"job": job})
