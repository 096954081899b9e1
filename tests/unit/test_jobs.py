"""The job framework in-process: claiming, failures, secrets, dispatch and the sweeper."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fabric.models import VirtualMachine, VMState
from fabric.services import endpoint_driver
from portal import jobs
from portal.models import Job, JobState
from tests import factories


def test_a_job_is_claimed_once(vm_job):
    _, job = vm_job
    first = jobs.job_claim(str(job.pk))
    assert first is not None and first.attempts == 1 and first.state == JobState.RUNNING
    assert jobs.job_claim(str(job.pk)) is None  # running with a fresh heartbeat: not claimable


def test_a_stale_job_is_reclaimed_and_the_old_run_is_fenced(vm_job):
    _, job = vm_job
    old = jobs.job_claim(str(job.pk))
    Job.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(minutes=5))
    new = jobs.job_claim(str(job.pk))
    assert new is not None and new.attempts == 2
    with pytest.raises(jobs.JobLost):
        jobs.JobContext(job=old, attempt=1).progress(50, "zombie")
    assert Job.objects.get(pk=job.pk).step != "zombie"


def test_a_driver_failure_that_outlasts_the_attempts_fails_the_job_and_the_vm(vm_job, endpoint, settings):
    settings.CANOPY_JOB_RETRY_BACKOFF_SECONDS = 0
    vm, job = vm_job
    endpoint_driver(endpoint).inject_failure("create_vm", "Host hv-03 is in maintenance.", times=3)
    assert [jobs.job_execute(str(job.pk)) for _ in range(3)] == [JobState.QUEUED, JobState.QUEUED, JobState.FAILED]
    job.refresh_from_db()
    assert job.error == "Host hv-03 is in maintenance." and job.attempts == 3
    assert [s["state"] for s in job.steps] == ["retrying", "retrying", "failed"]
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.FAILED


def test_an_unexpected_error_is_not_shown_raw(vm_job, monkeypatch):
    _, job = vm_job
    handler = jobs.get_handler("vm.create")

    def boom(ctx):
        raise KeyError("internal detail /etc/secret")

    monkeypatch.setattr(handler, "run", boom)
    jobs.job_execute(str(job.pk))
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "secret" not in job.error and "Internal error" in job.error


def test_only_the_job_id_goes_to_the_broker(subscription, endpoint, monkeypatch, django_capture_on_commit_callbacks):
    from portal import tasks

    sent = []
    monkeypatch.setattr(tasks.run_job, "delay", lambda *args, **kw: sent.append((args, kw)))
    with django_capture_on_commit_callbacks(execute=True):
        _, job = factories.make_vm_job(subscription, endpoint, "web02")
    assert sent == [((str(job.pk),), {})]
    assert Job.objects.get(pk=job.pk).dispatched_at is not None


def test_sweeper_resends_lost_messages_and_gives_up_after_max_attempts(vm_job, subscription, endpoint):
    vm, job = vm_job
    long_ago = timezone.now() - timedelta(minutes=10)
    Job.objects.filter(pk=job.pk).update(created_at=long_ago, dispatched_at=long_ago)
    sent: list[str] = []
    assert jobs.job_sweep(send=sent.append).resent == 1 and sent == [str(job.pk)]

    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, attempts=3, heartbeat=long_ago)
    result = jobs.job_sweep(send=sent.append)
    job.refresh_from_db()
    assert result.failed == 1 and job.state == JobState.FAILED and "giving up" in job.error
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.FAILED


def test_sweeper_requeues_a_running_job_whose_worker_died(vm_job):
    _, job = vm_job
    Job.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING, attempts=1, heartbeat=timezone.now() - timedelta(minutes=5)
    )
    sent: list[str] = []
    assert jobs.job_sweep(send=sent.append).requeued == 1
    assert jobs.job_execute(sent[0]) == JobState.SUCCEEDED
    job.refresh_from_db()
    assert job.attempts == 2 and job.state == JobState.SUCCEEDED


def test_a_send_the_broker_refuses_leaves_the_job_for_the_sweeper(
    subscription, endpoint, monkeypatch, django_capture_on_commit_callbacks
):
    from portal import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.run_job, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        _, job = factories.make_vm_job(subscription, endpoint)
    job.refresh_from_db()
    assert (job.dispatched_at, job.dispatch_count) == (None, 0)  # not sent: the sweeper sends it
    sent: list[str] = []
    jobs.job_sweep(send=sent.append)
    assert sent == []  # not before CANOPY_JOB_REQUEUE_SECONDS
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    jobs.job_sweep(send=sent.append)
    assert sent == [str(job.pk)] and Job.objects.get(pk=job.pk).dispatch_count == 1
