"""Job pages and the live progress of jobs, shared by both sites.

A page that shows running jobs polls once a second with one request for all of them (`job_poller`
in templates, `GET jobs/status/?ids=<id>.<version>,...`), instead of one request per job. The answer
holds htmx out-of-band swaps of the job elements that changed since the version the page has, and
a new poller listing what still runs; when nothing runs it answers 286, which stops the polling. A
job that ended sends `canopy:job-finished` (HX-Trigger) so the parts of the page that depend on it
(a VM's summary, an endpoint's fabric) re-fetch themselves; a list passes `finished_rows` to swap
the rows of finished jobs in the same answer (see fabric.views.tenant.vm_statuses).
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from portal.access import Capability, capability_required
from portal.models import Job
from portal.pagination import CursorPagination
from portal.selectors import NOTIFICATIONS_SHOWN, job_get, job_list, notification_jobs

# As many as a page shows at most; a longer list is cut, not an error.
MAX_POLLED_JOBS = CursorPagination.max_page_size
HTTP_STOP_POLLING = 286  # htmx: stop the `every` trigger of the element that asked

# Renders the rows a page shows for finished jobs (htmx out-of-band swaps), and returns with them
# the jobs those rows show running now, which the poller then follows too.
FinishedRows = Callable[[HttpRequest, list[Job]], tuple[str, list[Job]]]


def job_version(job: Job) -> str:
    """Changes whenever what a job element shows changes (state, percent, step)."""
    return f"{zlib.crc32(f'{job.state}|{job.percent}|{job.step}'.encode()):08x}"


# The pollers a page may hold: its own, and the notifications drawer's. Each answer replaces only
# the poller that asked, so the drawer never takes over (or stops) the page's poll.
POLLER_IDS = ("job-poller", "drawer-poller")


def poller_context(
    jobs: Iterable[Job | None], url: str, *, oob: bool = False, poller_id: str = "job-poller"
) -> dict[str, Any]:
    """Context of components/job_poller.html: the running jobs among `jobs`, each with its version."""
    running = [job for job in jobs if job is not None and not job.is_finished]
    ids = ",".join(f"{job.pk}.{job_version(job)}" for job in running)
    return {"ids": ids, "url": url, "oob": oob, "poller_id": poller_id}


def _polled(raw: str) -> dict[str, str]:
    """`<uuid>.<version>,...` as {uuid: version}; malformed entries are ignored."""
    polled: dict[str, str] = {}
    for item in raw.split(",")[:MAX_POLLED_JOBS]:
        pk, _, version = item.strip().partition(".")
        try:
            polled[str(uuid.UUID(pk))] = version
        except ValueError:
            continue
    return polled


def job_poll_response(request: HttpRequest, *, finished_rows: FinishedRows | None = None) -> HttpResponse:
    """The batched poll's answer (see the module docstring). Jobs the user may not see are simply
    absent, as if they didn't exist."""
    polled = _polled(request.GET.get("ids", ""))
    jobs = list(job_list(user=request.user).filter(pk__in=list(polled))) if polled else []
    changed = [job for job in jobs if job_version(job) != polled[str(job.pk)]]
    finished = [job for job in changed if job.is_finished]
    following = [job for job in jobs if not job.is_finished]
    parts = []
    rows, shown = finished_rows(request, finished) if finished and finished_rows else ("", [])
    # A finished job's element lives in its row, which `rows` replaces; without rows, it is updated.
    for job in changed if not rows else [job for job in changed if not job.is_finished]:
        parts.append(render_to_string("components/job_status.html", {"job": job, "oob": True}, request))
    parts.append(rows)
    following += [job for job in shown if str(job.pk) not in polled]
    if following and {str(job.pk): job_version(job) for job in following} != polled:
        poller_id = request.GET.get("poller", "")
        context = poller_context(
            following, request.path, oob=True, poller_id=poller_id if poller_id in POLLER_IDS else POLLER_IDS[0]
        )
        parts.append(render_to_string("components/job_poller.html", context, request))
    response = HttpResponse("".join(parts), status=200 if following else HTTP_STOP_POLLING)
    if finished:
        response["HX-Trigger"] = "canopy:job-finished"
    return response


@capability_required(Capability.VIEW, tenants=True)
def job_statuses(request: HttpRequest) -> HttpResponse:
    """The batched poll of the pages whose job elements stand alone (detail pages, dashboards)."""
    return job_poll_response(request)


@capability_required(Capability.VIEW, tenants=True)
def job_detail(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        job = job_get(user=request.user, pk=pk)
    except (Job.DoesNotExist, ValueError) as exc:
        raise Http404 from exc
    # A job group's parent lists its children (those the user may see), polled with it.
    children = (
        list(job_list(user=request.user).filter(parent=job).order_by("target_name")) if job.params.get("group") else []
    )
    context = {"job": job, "children": children, "polled": [job, *children]}
    return render(request, "components/job_detail_page.html", context)


@capability_required(Capability.VIEW, tenants=True)
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    """The notifications drawer: the user's newest jobs with their progress, result and Retry. The top
    bar loads it with htmx (`?part=count` is its running count, `?part=close` empties it); without
    JavaScript its button is a link to it as a page. One query whatever the history's length."""
    part = request.GET.get("part", "")
    if part == "close":
        return HttpResponse("")
    jobs = list(notification_jobs(user=request.user)[:NOTIFICATIONS_SHOWN])
    context = {"jobs": jobs, "running": sum(1 for job in jobs if not job.is_finished)}
    if part == "count":
        return render(request, "components/notifications_count.html", context)
    if request.htmx and request.htmx.current_url_abs_path:
        # Retry in the drawer goes back to the page the drawer was opened on (checked by safe_next).
        context["back_url"] = request.htmx.current_url_abs_path
    page = "components/notifications_drawer.html" if request.htmx else "components/notifications_page.html"
    return render(request, page, context)
