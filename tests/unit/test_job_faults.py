"""The job framework when things go wrong: races on the claim, skewed clocks, hung drivers,
cancellation, transient failures, bookkeeping failures and retries of failed jobs.

Each test describes what a user would see if the framework got it wrong: two runs of one job
writing over each other, a VM busy forever, a built VM shown Failed, a quota held by nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fabric.drivers import Unavailable
from fabric.drivers.simulator import SimulatorDriver
from fabric.models import Cloud, VirtualMachine, VMState
from fabric.services import cloud_apply_usage, cloud_usage_versions, endpoint_driver, vm_action
from portal import jobs
from portal.exceptions import Conflict, NotAllowed, QuotaExceeded
from portal.models import Job, JobState
from tenants.models import Plan
from tenants.plan_services import quota_list
from tests import factories

# --- a two-step job kind of the tests' own, to watch which steps run on each attempt ------------

RAN: list[str] = []


@jobs.register
class TwoSteps(jobs.JobHandler):
    kind = "test.two_steps"
    label = "Two steps"
    steps = (jobs.Step("First", "first", 50), jobs.Step("Second", "second", 100))

    def first(self, ctx: jobs.JobContext, target: object) -> None:
        RAN.append("first")

    def second(self, ctx: jobs.JobContext, target: object) -> None:
        RAN.append("second")
        if ctx.params.get("fail_second") and ctx.job.retries == 0:
            raise jobs.JobFailure("The second step broke.")

    def prepare_retry(self, job: Job, *, by: object) -> None:
        """Always allowed (the target has no state of its own)."""


@pytest.fixture
def two_steps(db):
    RAN.clear()
    plan = Plan.objects.create(name="Target")
    return jobs.job_create(kind="test.two_steps", target=plan, params={"fail_second": True})


def _stale(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(minutes=5))


# --- fencing ------------------------------------------------------------------------------------


def test_a_claimer_that_stalls_after_reading_loses_to_the_one_that_claimed_meanwhile(vm_job, monkeypatch):
    """The token comes from the compare-and-swap: a stalled claimer can't end up with the other's.
    (The portable claim, which reads then swaps; on PostgreSQL the claim is one statement, raced in
    tests/concurrency/test_job_claim.py.)"""
    monkeypatch.setattr(jobs, "_hand_written_sql", lambda: False)
    _, job = vm_job
    read = jobs._load_for_claim
    other: list[Job | None] = []

    def stall_then_read(job_id):
        seen = read(job_id)
        if not other:  # while the first claimer stalls here, a second one claims the job
            other.append(None)
            other[0] = jobs.job_claim(job_id)
        return seen

    monkeypatch.setattr(jobs, "_load_for_claim", stall_then_read)
    first = jobs.job_claim(str(job.pk))
    assert first is None
    assert other[0] is not None and other[0].attempts == 1
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_two_runs_never_hold_the_same_token(vm_job):
    _, job = vm_job
    first = jobs.job_claim(str(job.pk))
    _stale(job)  # the first worker froze; the sweeper's message reaches a second one
    second = jobs.job_claim(str(job.pk))
    assert (first.attempts, second.attempts) == (1, 2)
    with pytest.raises(jobs.JobLost):
        jobs.JobContext(job=first, attempt=first.attempts).progress(10, "zombie")
    jobs.JobContext(job=second, attempt=second.attempts).progress(40, "attempt two")
    assert Job.objects.get(pk=job.pk).step == "attempt two"


def test_staleness_is_judged_on_the_database_clock_not_the_workers(vm_job, monkeypatch):
    """A worker (or beat) whose clock runs an hour ahead doesn't see fresh heartbeats as stale."""
    _, job = vm_job
    assert jobs.job_claim(str(job.pk)) is not None
    skewed = timezone.now() + timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: skewed)
    assert jobs.job_claim(str(job.pk)) is None
    sent: list[str] = []
    assert jobs.job_sweep(send=sent.append).requeued == 0 and sent == []


# --- deadlines and cancel -------------------------------------------------------------------------


def test_a_run_past_its_deadline_fails_as_timed_out_at_the_next_step(vm_job, settings, monkeypatch):
    settings.CANOPY_JOB_DEADLINES = {"vm.create": 60}
    vm, job = vm_job

    def hangs(self, spec):
        # The driver call "hangs" past the deadline: move the deadline into the past meanwhile.
        Job.objects.filter(pk=job.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
        return original(self, spec)

    original = SimulatorDriver.create_vm
    monkeypatch.setattr(SimulatorDriver, "create_vm", hangs)
    assert jobs.job_execute(str(job.pk)) == JobState.FAILED
    job.refresh_from_db()
    assert job.error.startswith("Timed out: the job did not finish within 60 s")
    vm.refresh_from_db()
    # Left where the tenant can act (retry or delete); the fabric id it got is kept, so it still counts.
    assert vm.state == VMState.FAILED and vm.fabric_id
    assert vm_action(vm=vm, action="delete") is not None


def test_the_sweeper_fails_a_hung_job_past_its_deadline(subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint)
    job = vm_action(vm=vm, action="stop")
    assert jobs.job_claim(str(job.pk)) is not None  # its worker then hangs in the driver call
    Job.objects.filter(pk=job.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    assert jobs.job_sweep(send=lambda _: None).timed_out == 1
    job.refresh_from_db()
    vm.refresh_from_db()
    assert job.state == JobState.FAILED and "Timed out" in job.error
    assert vm.state == VMState.RUNNING  # the stop didn't happen: the tenant can act on it again


def test_staff_cancel_a_queued_create_and_the_vm_stops_holding_quota(vm_job, subscription, staff_user):
    vm, job = vm_job
    jobs.job_cancel(job=job, by=staff_user)
    job.refresh_from_db()
    vm.refresh_from_db()
    assert job.state == JobState.CANCELLED and job.error == "Cancelled by staff@example.test."
    assert vm.state == VMState.FAILED
    used = {q.key: q.used for q in quota_list(subscription)}
    assert used["vms"] == 0 and used["cores"] == 0
    assert jobs.job_execute(str(job.pk)) is None  # a late message can't run it
    with pytest.raises(NotAllowed):
        jobs.job_cancel(job=job, by=staff_user)


def test_a_cancelled_running_job_stops_at_its_next_step(subscription, endpoint, staff_user):
    vm = factories.make_vm(subscription, endpoint)
    job = vm_action(vm=vm, action="restart")
    running = jobs.job_claim(str(job.pk))
    jobs.job_cancel(job=job, by=staff_user)
    ctx = jobs.JobContext(job=running, attempt=running.attempts)
    with pytest.raises(jobs.JobLost), ctx.step("Restart on the fabric", done_percent=100):
        pytest.fail("the step body must not run after the cancel")
    vm.refresh_from_db()
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED and vm.state == VMState.RUNNING


# --- transient failures ------------------------------------------------------------------------------


def test_a_transient_failure_is_retried_with_backoff_and_says_so(vm_job, endpoint):
    vm, job = vm_job
    endpoint_driver(endpoint).inject_failure("create_vm", "The fabric is busy.")
    assert jobs.job_execute(str(job.pk)) == JobState.QUEUED
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.retry_at is not None
    assert job.steps[-1]["state"] == "retrying"
    assert job.steps[-1]["message"] == "The fabric is busy. — retrying in 2 s (attempt 2 of 3)"
    assert job.step == "The fabric is busy. — Retrying in 2 s (attempt 2 of 3)"
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.CREATING
    assert jobs.job_execute(str(job.pk)) is None  # not before its backoff ends

    Job.objects.filter(pk=job.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    job.refresh_from_db()
    assert job.attempts == 2 and VirtualMachine.objects.get(pk=vm.pk).state == VMState.RUNNING


def test_a_refusal_of_the_fabric_fails_at_once(vm_job, monkeypatch):
    _, job = vm_job
    factories.fabric_refuses(monkeypatch, "create_vm")
    assert jobs.job_execute(str(job.pk)) == JobState.FAILED
    job.refresh_from_db()
    assert (job.attempts, job.error) == (1, "Cloud 'Gold' is out of capacity.")


# --- bookkeeping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lost", ["claim", "end"])
def test_a_run_whose_writes_the_database_lost_is_recovered_without_a_second_vm(vm_job, endpoint, lost):
    """A run's writes to its job row are committed asynchronously: a PostgreSQL crash may forget the
    last of them while the fabric kept what the run did. Here the database comes back as it was
    before the claim (queued, sent long ago), or before the end (running, heartbeat stale); the
    sweeper recovers either and the re-run finds the fabric's VM instead of building a second."""
    vm, job = vm_job
    secret = job.secret  # wiped by the end of the job, so the lost end takes the wipe with it
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    built = VirtualMachine.objects.get(pk=vm.pk).fabric_id
    long_ago = timezone.now() - timedelta(minutes=10)
    rewind = {"secret": secret, "finished_at": None, "error": ""}
    if lost == "claim":
        rewind.update(state=JobState.QUEUED, attempts=0, steps=[], step="", percent=0, started_at=None)
        rewind.update(deadline_at=None, heartbeat=None, created_at=long_ago, dispatched_at=long_ago)
        VirtualMachine.objects.filter(pk=vm.pk).update(state=VMState.CREATING, fabric_id="")
    else:
        done = [{**Job.objects.get(pk=job.pk).steps[0]}]
        rewind.update(state=JobState.RUNNING, steps=done, percent=85, heartbeat=long_ago)
        VirtualMachine.objects.filter(pk=vm.pk).update(state=VMState.CREATING)
    Job.objects.filter(pk=job.pk).update(**rewind)
    sent: list[str] = []
    result = jobs.job_sweep(send=sent.append)
    assert (result.resent, result.requeued) == ((1, 0) if lost == "claim" else (0, 1)) and sent == [str(job.pk)]
    assert jobs.job_execute(sent[0]) == JobState.SUCCEEDED, Job.objects.get(pk=job.pk).error
    vm.refresh_from_db()
    assert vm.state == VMState.RUNNING and vm.fabric_id == built
    assert [v.vm_id for v in endpoint_driver(endpoint).list_vms()] == [str(vm.pk)]


def test_a_burst_reads_a_clouds_usage_back_once_a_second_and_counts_every_vm(
    subscription, endpoint, settings, monkeypatch
):
    settings.CANOPY_JOB_COALESCE_SECONDS = 60  # the whole test runs within one interval
    reads: list[str] = []
    read = SimulatorDriver.get_cloud

    def counted(self, cloud_id):
        reads.append(cloud_id)
        return read(self, cloud_id)

    monkeypatch.setattr(SimulatorDriver, "get_cloud", counted)
    vms = [factories.make_vm(subscription, endpoint, f"burst{i}") for i in range(4)]
    # The first job read the usage at once; the three after it within the interval left it pending.
    assert len(reads) == 1 and Cloud.objects.get(pk=vms[0].cloud_id).vms_used == 1
    states = [Job.objects.filter(target_id=str(vm.pk)).get().steps[-1]["state"] for vm in vms]
    assert states == ["done", "deferred", "deferred", "deferred"]
    assert all(vm.state == VMState.RUNNING for vm in vms)
    assert jobs.job_flush_coalesced() == 1  # one read for the three (a worker's thread does it on time)
    assert len(reads) == 2 and Cloud.objects.get(pk=vms[0].cloud_id).vms_used == 4


@pytest.mark.parametrize("action", ["create", "delete"])
def test_a_failed_usage_refresh_never_fails_work_the_fabric_did(subscription, endpoint, monkeypatch, action):
    def unreachable(self, cloud_id):
        raise Unavailable("The fabric's statistics service is down.")

    monkeypatch.setattr(SimulatorDriver, "get_cloud", unreachable)
    vm = factories.make_vm(subscription, endpoint, run=False)
    if action == "delete":
        factories.run_queued_jobs()
        vm_action(vm=vm, action="delete")
    job = Job.objects.filter(target_id=str(vm.pk)).order_by("-created_at").first()
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    job.refresh_from_db()
    vm.refresh_from_db()
    assert vm.state == (VMState.RUNNING if action == "create" else VMState.DELETED)
    assert job.steps[-1]["state"] == "skipped" and "next synchronization" in job.steps[-1]["message"]


def test_an_older_usage_snapshot_never_overwrites_a_newer_one(endpoint):
    cloud = Cloud.objects.get(stamp__endpoint=endpoint, name="Gold")
    driver = endpoint_driver(endpoint)
    slow_seen = cloud_usage_versions(cloud=cloud)  # a slow job reads the version, then the fabric...
    old = driver.get_cloud(cloud.external_id)
    fast_seen = cloud_usage_versions(cloud=cloud)  # ...a faster one reads later and stores first
    newer = driver.get_cloud(cloud.external_id)
    newer = type(newer)(**{**newer.__dict__, "used": type(newer.used)(vcpu=7, memory_mb=1, storage_gb=1, vms=1)})
    assert cloud_apply_usage(cloud=cloud, info=newer, seen_version=fast_seen[cloud.pk])
    assert not cloud_apply_usage(cloud=cloud, info=old, seen_version=slow_seen[cloud.pk])
    assert Cloud.objects.get(pk=cloud.pk).vcpu_used == 7


# --- retrying failed jobs -------------------------------------------------------------------------


def test_a_retried_job_resumes_at_the_step_that_failed(two_steps, staff_user):
    assert jobs.job_execute(str(two_steps.pk)) == JobState.FAILED
    assert RAN == ["first", "second"]
    job = jobs.job_retry(job=two_steps, by=staff_user)
    assert job.state == JobState.QUEUED and job.retries == 1 and job.max_attempts == 1 + 3
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    assert RAN == ["first", "second", "second"]
    job.refresh_from_db()
    assert [s["name"] for s in job.steps] == ["First", "Second", "Retry requested by staff@example.test", "Second"]
    with pytest.raises(NotAllowed):
        jobs.job_retry(job=job, by=staff_user)  # it succeeded


def test_a_failed_create_holds_no_quota_and_is_retried_within_quota(vm_job, subscription, tenant_user, monkeypatch):
    vm, job = vm_job
    works_again = factories.fabric_refuses(monkeypatch, "create_vm")
    assert jobs.job_execute(str(job.pk)) == JobState.FAILED
    assert {q.key: q.used for q in quota_list(subscription)}["vms"] == 0
    assert Job.objects.get(pk=job.pk).secret != ""  # kept (encrypted) so the retry can create it

    works_again()
    jobs.job_retry(job=job, by=tenant_user)
    vm.refresh_from_db()
    assert vm.state == VMState.CREATING
    assert {q.key: q.used for q in quota_list(subscription)}["vms"] == 1
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    vm.refresh_from_db()
    job.refresh_from_db()
    assert vm.state == VMState.RUNNING and job.secret == ""


def test_a_retry_is_refused_when_the_quota_was_taken_meanwhile(endpoint, tenant_user, monkeypatch):
    subscription = factories.make_subscription(tenant_user, factories.make_plan(endpoint, max_vms=1))
    factories.fabric_refuses(monkeypatch, "create_vm")
    _, job = factories.make_vm_job(subscription, endpoint, "a")
    jobs.job_execute(str(job.pk))
    factories.make_vm_job(subscription, endpoint, "b")
    with pytest.raises(QuotaExceeded):
        jobs.job_retry(job=job, by=tenant_user)
    assert Job.objects.get(pk=job.pk).state == JobState.FAILED


def test_a_retry_is_refused_while_another_job_works_on_the_resource(subscription, endpoint, tenant_user, monkeypatch):
    vm = factories.make_vm(subscription, endpoint)
    stop = vm_action(vm=vm, action="stop")
    factories.fabric_refuses(monkeypatch, "stop_vm")
    jobs.job_execute(str(stop.pk))
    vm.refresh_from_db()
    assert vm.state == VMState.RUNNING
    vm_action(vm=vm, action="restart")
    with pytest.raises(Conflict):
        jobs.job_retry(job=stop, by=tenant_user)


# --- a broker or workers that stay away ------------------------------------------------------------


def test_a_job_nobody_takes_shows_waiting_for_a_worker_and_is_resent_less_and_less(vm_job, settings):
    settings.CANOPY_JOB_REQUEUE_SECONDS = 60
    _, job = vm_job
    assert not Job.objects.get(pk=job.pk).is_waiting_for_worker
    long_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(created_at=long_ago, dispatched_at=long_ago, dispatch_count=1)
    assert Job.objects.get(pk=job.pk).is_waiting_for_worker
    sent: list[str] = []
    jobs.job_sweep(send=sent.append)
    assert sent == [str(job.pk)]
    # The fourth message went 5 minutes ago: the next waits 8 minutes (60 s doubled three times).
    Job.objects.filter(pk=job.pk).update(dispatch_count=4)
    jobs.job_sweep(send=sent.append)
    assert sent == [str(job.pk)]


def test_the_secret_of_a_failed_job_is_wiped_after_the_retention(vm_job, settings, monkeypatch):
    _, job = vm_job
    factories.fabric_refuses(monkeypatch, "create_vm")
    jobs.job_execute(str(job.pk))
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=2))
    assert jobs.job_sweep(send=lambda _: None).secrets_wiped == 1
    assert Job.objects.get(pk=job.pk).secret == ""


def test_a_fenced_update_writes_nothing_for_a_run_that_lost_its_claim(vm_job):
    vm, job = vm_job
    first = jobs.job_claim(str(job.pk))
    _stale(job)
    jobs.job_claim(str(job.pk))
    zombie = jobs.JobContext(job=first, attempt=first.attempts)
    with pytest.raises(jobs.JobLost):
        zombie.fenced_update(VirtualMachine.objects.filter(pk=vm.pk), fabric_id="zombie-id")
    assert VirtualMachine.objects.get(pk=vm.pk).fabric_id == ""
