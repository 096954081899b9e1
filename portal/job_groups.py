"""Job groups: one action on many resources, as a parent job with one child job per resource.

A subscription's suspension stops each of its VMs with the VM's own stop job; the parent shows
the action as one thing: its progress is its children's ("3 of 5 done, 1 failed"), it ends when
the last child ends (succeeded if every child did; otherwise failed, naming each resource that
wasn't done and why), and cancelling or retrying it acts on its unfinished or failed children.

The parent is a Job row that no worker runs: it is created running with no message, heartbeat or
deadline, and no attempt to claim (max_attempts 0), so neither a worker nor the sweeper takes it.
Its handler (registered like any job kind) only has hooks, which run when the group ends.

A child's end is seen by `child_ended`, called by portal.jobs in the transaction that ends the
child; it locks the parent row first, so two children ending at once count each other.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import Count
from django.db.models.functions import Now

from portal.exceptions import Conflict, NotAllowed
from portal.jobs import get_handler, job_cancel, job_end, job_retry
from portal.models import ACTIVE_JOB_STATES, Job, JobState

# Failed children named in the parent's error, at most (the rest are counted).
MAX_NAMED_FAILURES = 20


@dataclass(frozen=True)
class GroupProgress:
    """How far a group's children are: what the parent's bar and line show."""

    total: int
    succeeded: int
    failed: int
    active: int

    @property
    def ended(self) -> int:
        return self.total - self.active

    @property
    def percent(self) -> int:
        return 100 if not self.total else round(100 * self.ended / self.total)

    def summary(self) -> str:
        text = f"{self.ended} of {self.total} done"
        return f"{text}, {self.failed} failed" if self.failed else text


def group_create(
    *,
    kind: str,
    target: models.Model,
    subscription: Any = None,
    created_by: Any = None,
    params: dict[str, Any] | None = None,
    target_name: str | None = None,
) -> Job:
    """Create a parent job inside the caller's transaction. Create its children with
    `job_create(parent=...)` in the same transaction, then call `group_seal`."""
    get_handler(kind)  # LookupError for an unregistered kind, as job_create
    return Job.objects.create(
        kind=kind,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_name=target_name if target_name is not None else str(target),
        subscription=subscription,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        params={**(params or {}), "group": True},
        state=JobState.RUNNING,
        max_attempts=0,
        started_at=Now(),
    )


def group_progress(parent: Job) -> GroupProgress:
    """Its children's counts by state (one query)."""
    counts = dict(parent.children.order_by().values_list("state").annotate(n=Count("id")))
    active = sum(counts.get(state, 0) for state in ACTIVE_JOB_STATES)
    failed = counts.get(JobState.FAILED, 0) + counts.get(JobState.CANCELLED, 0)
    return GroupProgress(
        total=sum(counts.values()), succeeded=counts.get(JobState.SUCCEEDED, 0), failed=failed, active=active
    )


def group_seal(parent: Job) -> Job:
    """Once the children are created: a group with no child is done at once; else its line says so."""
    return _settle(parent)


def child_ended(child: Job) -> None:
    """A child ended (portal.jobs calls this in the transaction that ends it): move the parent."""
    if child.parent_id is None:
        return
    parent = Job.objects.select_for_update().filter(pk=child.parent_id).first()
    if parent is not None:
        _settle(parent)


def _settle(parent: Job) -> Job:
    """Write the parent's progress from its children, and end it when none is left running."""
    if parent.is_finished:
        return parent
    progress = group_progress(parent)
    Job.objects.filter(pk=parent.pk).update(percent=progress.percent, step=progress.summary())
    parent.percent, parent.step = progress.percent, progress.summary()
    if progress.active:
        return parent
    if not progress.failed:
        job_end(parent, JobState.SUCCEEDED)
        return parent
    not_done = list(
        parent.children.filter(state__in=(JobState.FAILED, JobState.CANCELLED))
        .order_by("target_name")
        .values_list("target_name", "error", "state")
    )
    named = "; ".join(
        f"{name}: {(error or 'not done').rstrip('.')}" for name, error, _ in not_done[:MAX_NAMED_FAILURES]
    )
    more = len(not_done) - MAX_NAMED_FAILURES
    message = f"Not done on {len(not_done)} of {progress.total}: {named}" + (f"; and {more} more." if more > 0 else ".")
    # Cancelled (staff stopped it) only if nothing failed of its own accord.
    cancelled = all(state == JobState.CANCELLED for _, _, state in not_done)
    job_end(parent, JobState.CANCELLED if cancelled else JobState.FAILED, message)
    return parent


def group_children(parent: Job) -> models.QuerySet[Job]:
    """The parent's children, by resource name."""
    return parent.children.order_by("target_name", "created_at")


def group_cancel(*, job: Job, by: Any) -> Job:
    """Cancel every unfinished child (each one ends through portal.jobs as if cancelled on its
    own); the parent ends with the last of them. Raises NotAllowed if the parent has ended."""
    job = Job.objects.get(pk=job.pk)
    if job.is_finished:
        raise NotAllowed(f"The job '{job.label}' has already ended ({job.get_state_display().lower()}).")
    for child in job.children.filter(state__in=ACTIVE_JOB_STATES):
        with contextlib.suppress(NotAllowed):  # it ended meanwhile, on its own
            job_cancel(job=child, by=by)
    with transaction.atomic():
        parent = Job.objects.select_for_update().get(pk=job.pk)
        _settle(parent)
    job.refresh_from_db()
    return job


def group_retry(*, job: Job, by: Any) -> Job:
    """Run the failed (or cancelled) children again and re-open the parent, in one transaction.

    The parent's handler checks the target still allows it (`prepare_retry`). A child its own
    handler refuses stays failed and is named again when the group ends; if no child may run
    again, nothing changes and NotAllowed says why.
    """
    with transaction.atomic():
        parent = Job.objects.select_for_update().get(pk=job.pk)
        if parent.state not in (JobState.FAILED, JobState.CANCELLED):
            raise NotAllowed(
                f"Only a failed or cancelled job can be retried; this one is {parent.get_state_display().lower()}."
            )
        get_handler(parent.kind).prepare_retry(parent, by=by)
        Job.objects.filter(pk=parent.pk).update(
            state=JobState.RUNNING, error="", finished_at=None, retries=models.F("retries") + 1
        )
        refusals: list[str] = []
        retried = 0
        for child in parent.children.filter(state__in=(JobState.FAILED, JobState.CANCELLED)).order_by("target_name"):
            try:
                job_retry(job=child, by=by)
            except (NotAllowed, Conflict) as exc:
                refusals.append(f"{child.target_name}: {exc.message}")
            else:
                retried += 1
        if not retried:
            raise NotAllowed("Nothing could be retried. " + "; ".join(refusals))
        parent.refresh_from_db()
        _settle(parent)
    job.refresh_from_db()
    return job
