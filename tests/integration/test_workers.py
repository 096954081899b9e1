"""Jobs run by real Celery workers: crashes, killed pool children, frozen workers, lost messages,
exhausted retries, and the sweeper in beat with no worker alive.

What a provider would notice if the job framework were wrong: a VM stuck in Creating forever, a VM
built twice on the fabric (billed twice, capacity taken twice), a VM shown Running that isn't, or a
worker that looks alive but never runs anything again.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from fabric.models import VirtualMachine, VMState
from portal import jobs
from portal.celery import app as celery_app
from portal.models import Job, JobState
from tests import factories
from tests.integration.processes import Process, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CREATE_LATENCY = {"create_vm": 4}


def finished(job: Job, timeout: float = 40) -> Job:
    return wait_for(
        lambda: (j := Job.objects.get(pk=job.pk)).is_finished and j, timeout=timeout, what=f"job {job.pk} to end"
    )


def provisioning(world, vm, job) -> None:
    """Wait until a worker runs the job and the fabric holds the VM half-built."""
    wait_for(
        lambda: Job.objects.get(pk=job.pk).state == JobState.RUNNING and world.fabric_vm_states(vm) == ["provisioning"],
        what="the VM to be provisioning on the fabric",
    )


def sweep_until(field: str, timeout: float = 20) -> jobs.SweepResult:
    """Run the sweeper (what beat does every 15 s) until it acts on a stale or lost job."""
    return wait_for(
        lambda: (r := jobs.job_sweep()) and getattr(r, field) and r, timeout=timeout, what=f"the sweeper to {field}"
    )


def test_quick_create_is_built_by_a_real_worker(make_world, start_worker):
    world = make_world()
    start_worker()
    vm, job = world.quick_create()

    job = finished(job)
    vm.refresh_from_db()
    assert (job.state, job.percent, job.attempts, job.error) == (JobState.SUCCEEDED, 100, 1, "")
    assert vm.state == VMState.RUNNING and vm.fabric_id.startswith("sim-vm-")
    assert [s["state"] for s in job.steps] == ["done", "done"]
    assert job.steps[0]["name"] == "Create the virtual machine on the fabric"
    assert job.secret == ""  # the admin password is gone once the job ends
    assert world.fabric_vm_states(vm) == ["running"]


def test_a_worker_killed_mid_job_is_recovered_without_a_second_vm(make_world, start_worker):
    world = make_world(latency=CREATE_LATENCY)
    first = start_worker("first")
    vm, job = world.quick_create()
    provisioning(world, vm, job)

    first.kill()  # SIGKILL: no cleanup, the message stays unacknowledged, the heartbeat stops
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    start_worker("second")
    assert sweep_until("requeued").requeued == 1

    job = finished(job)
    vm.refresh_from_db()
    assert (job.state, job.attempts, vm.state) == (JobState.SUCCEEDED, 2, VMState.RUNNING)
    assert world.fabric_vm_states(vm) == ["running"]
    assert len(world.driver.list_vms()) == 1
    assert world.driver.operation_count("vm_created") == 1


def test_a_zombie_attempt_cannot_write_after_it_was_replaced(make_world, celery_queue):
    world = make_world()
    _, job = world.quick_create()
    first = jobs.job_claim(str(job.pk))
    assert first is not None and first.attempts == 1
    zombie = jobs.JobContext(job=first, attempt=first.attempts)
    Job.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(minutes=5))
    second = jobs.job_claim(str(job.pk))
    assert second is not None and second.attempts == 2
    jobs.JobContext(job=second, attempt=2).progress(40, "attempt two")

    with pytest.raises(jobs.JobLost):
        zombie.progress(90, "zombie")
    with pytest.raises(jobs.JobLost), zombie.guarded():
        VirtualMachine.objects.filter(pk=job.target_id).update(state=VMState.FAILED)

    job.refresh_from_db()
    assert (job.attempts, job.percent, job.step, job.state) == (2, 40, "attempt two", JobState.RUNNING)
    assert VirtualMachine.objects.get(pk=job.target_id).state == VMState.CREATING


def test_a_frozen_worker_that_wakes_up_is_fenced_off(make_world, start_worker):
    world = make_world(latency=CREATE_LATENCY)
    frozen = start_worker("frozen")
    vm, job = world.quick_create()
    provisioning(world, vm, job)

    frozen.signal(signal.SIGSTOP)  # a stalled machine: alive, holding the message, silent
    start_worker("healthy")
    sweep_until("requeued")
    job = finished(job)
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 2)

    frozen.signal(signal.SIGCONT)
    frozen.wait_for_log("lost its claim", timeout=20)
    job.refresh_from_db()
    vm.refresh_from_db()
    assert (job.state, job.attempts, job.percent, vm.state) == (JobState.SUCCEEDED, 2, 100, VMState.RUNNING)
    assert world.fabric_vm_states(vm) == ["running"]
    assert world.driver.operation_count("vm_created") == 1


def test_a_lost_message_is_sent_again_by_the_sweeper(make_world, start_worker, monkeypatch):
    world = make_world()
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "job_dispatch", lambda job_id: None)  # the broker never got it
        vm, job = world.quick_create()
    start_worker()
    time.sleep(1)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED  # recorded as sent with its insert, but no worker got it

    assert sweep_until("resent").resent == 1
    job = finished(job)
    vm.refresh_from_db()
    assert (job.state, job.attempts, vm.state) == (JobState.SUCCEEDED, 1, VMState.RUNNING)


def test_a_job_out_of_attempts_is_failed_by_the_sweeper(make_world, start_worker):
    world = make_world(latency=CREATE_LATENCY)
    worker = start_worker()
    vm, job = world.quick_create()
    provisioning(world, vm, job)
    Job.objects.filter(pk=job.pk).update(max_attempts=1)

    worker.kill()
    assert sweep_until("failed").failed == 1

    job.refresh_from_db()
    vm.refresh_from_db()
    assert job.state == JobState.FAILED and job.finished_at is not None
    assert "stopped responding" in job.error and "giving up" in job.error
    assert vm.state == VMState.FAILED
    assert job.secret != factories.VM_PASSWORD  # kept encrypted for a retry, until the retention ends
    assert jobs.job_claim(str(job.pk)) is None  # a late redelivery can't resurrect it


# --- pool children killed (kill -9, as the OOM killer does) ---------------------------------------


def busy_child(worker: Process) -> int:
    """The pool child running a job: the one with a second thread, the process's job heartbeat
    (started by its first job; here no other child has run one)."""
    busy = wait_for(
        lambda: [pid for pid in worker.children() if len(list(Path(f"/proc/{pid}/task").iterdir())) > 1],
        what="a pool child running the job",
    )
    assert len(busy) == 1
    return busy[0]


def test_new_jobs_run_after_the_idle_pool_children_are_killed(make_world, start_worker, broker):
    """Once wedged the filesystem broker's worker: the prefork pool in Celery's synchronous loop
    shares one queue lock among its children, and a child killed while waiting took it along."""
    world = make_world()
    worker = start_worker("idle", broker=broker, concurrency=2)
    children = worker.children()
    for pid in children:
        os.kill(pid, signal.SIGKILL)

    # More jobs than the worker prefetches (one per pool slot): each must run, not just be taken.
    built = [world.quick_create(f"web0{i}") for i in range(3)]
    for vm, job in built:
        assert finished(job, timeout=20).state == JobState.SUCCEEDED
        vm.refresh_from_db()
        assert vm.state == VMState.RUNNING
    # Redis: two prefork children, killed and replaced. The filesystem broker's worker uses the
    # threads pool: it has no child process to kill, only its main process (a test below kills it).
    assert len(children) == {"redis": 2, "filesystem": 0}[broker]


def test_a_pool_child_killed_mid_job_is_recovered_and_new_jobs_still_run(make_world, start_worker):
    world = make_world(latency=CREATE_LATENCY)
    worker = start_worker("busy", concurrency=2)  # Redis, prefork: the production setting
    vm, job = world.quick_create("web01")
    provisioning(world, vm, job)

    os.kill(busy_child(worker), signal.SIGKILL)
    other_vm, other_job = world.quick_create("web02")
    # The killed child's message comes back at once (reject_on_worker_lost) and is dropped while
    # the job's heartbeat is fresh; once it is stale the sweeper sends the job again.
    assert sweep_until("requeued").requeued == 1

    job, other_job = finished(job), finished(other_job)
    assert (job.state, job.attempts, other_job.state) == (JobState.SUCCEEDED, 2, JobState.SUCCEEDED)
    vm.refresh_from_db()
    other_vm.refresh_from_db()
    assert (vm.state, other_vm.state) == (VMState.RUNNING, VMState.RUNNING)
    assert world.fabric_vm_states(vm) == ["running"]
    assert world.driver.operation_count("vm_created") == 2  # one each: the killed run built nothing twice


@pytest.mark.parametrize("broker", ["filesystem"], indirect=True)
def test_on_the_filesystem_broker_a_worker_killed_mid_job_is_recovered(make_world, start_worker, broker):
    """The threads pool has no child to kill: the worker itself is what an OOM kill takes. Its
    message was consumed when the worker fetched it (the filesystem broker has no redelivery)."""
    world = make_world(latency=CREATE_LATENCY)
    first = start_worker("first", broker=broker, concurrency=2)
    assert first.children() == []
    vm, job = world.quick_create("web01")
    provisioning(world, vm, job)

    first.kill()
    start_worker("second", broker=broker, concurrency=2)
    _, other_job = world.quick_create("web02")
    assert sweep_until("requeued").requeued == 1

    job, other_job = finished(job), finished(other_job)
    assert (job.state, job.attempts, other_job.state) == (JobState.SUCCEEDED, 2, JobState.SUCCEEDED)
    vm.refresh_from_db()
    assert vm.state == VMState.RUNNING
    assert world.fabric_vm_states(vm) == ["running"]
    assert world.driver.operation_count("vm_created") == 2


# --- the sweeper runs in beat, apart from the workers ------------------------------------------------


def test_beat_sweeps_with_no_worker_alive(make_world, start_beat, start_worker, celery_queue):
    world = make_world()
    (vm, lost), (spent_vm, spent) = world.quick_create("web01"), world.quick_create("web02")
    # Both were running on a worker that died (none is left): one has an attempt left, one none.
    long_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=lost.pk).update(state=JobState.RUNNING, attempts=1, heartbeat=long_ago)
    Job.objects.filter(pk=spent.pk).update(state=JobState.RUNNING, attempts=3, max_attempts=3, heartbeat=long_ago)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(celery_queue)  # their first messages went with the worker

    start_beat(sweep_seconds=0.5)
    spent = finished(spent, timeout=10)
    spent_vm.refresh_from_db()
    assert (spent.state, spent_vm.state) == (JobState.FAILED, VMState.FAILED)
    assert "stopped responding" in spent.error

    # Only beat can have sent the lost job again: a worker that starts now finds it and runs it.
    start_worker()
    lost = finished(lost)
    vm.refresh_from_db()
    assert (lost.state, lost.attempts, vm.state) == (JobState.SUCCEEDED, 2, VMState.RUNNING)


def test_a_job_longer_than_the_stale_time_keeps_its_claim(make_world, start_worker):
    world = make_world(latency={"create_vm": 4.5})  # the tests' stale time is 3 s
    start_worker()
    vm, job = world.quick_create()
    provisioning(world, vm, job)

    while not Job.objects.get(pk=job.pk).is_finished:
        assert jobs.job_sweep().requeued == 0, "the sweeper took a live job for a dead one"
        time.sleep(0.3)
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 1)
