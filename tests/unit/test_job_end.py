"""A run's end on PostgreSQL: one statement, sent with the run's deferred fabric-id write.

Outside a test's transaction (as in a worker), the end of a VM job is one round trip: the job row's
fenced UPDATE and the VM's state transition (handed over by the hook, gated on that UPDATE) in one
statement, behind the fabric id the create step recorded. These tests check what a user would see
if that went wrong: a cancelled job's VM shown running, a VM moved meanwhile overwritten, a hook's
own write lost, or a VM built twice when the fabric id was lost with the worker.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fabric.drivers.simulator import SimulatorDriver
from fabric.lifecycle import VM_STATES
from fabric.models import VirtualMachine, VMState
from fabric.services import endpoint_driver, vm_action
from portal import jobs
from portal.models import Job, JobState
from tenants.models import Plan
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
logger = logging.getLogger(__name__)


@jobs.register
class SwallowingHook(jobs.JobHandler):
    """A hook that runs a statement of its own and catches whatever it raises."""

    kind = "test.swallowing_hook"
    steps = (jobs.Step("Only", "only", 100),)

    def only(self, ctx: jobs.JobContext, target: object) -> None:
        pass

    def on_succeeded(self, job: Job) -> None:
        try:
            Plan.objects.filter(pk=job.target_id).update(name="Ended by its job")
        except Exception:
            logger.exception("swallowed")


@jobs.register
class RenamesTwice(jobs.JobHandler):
    """Hands on two resource writes of the same shape: sent together with the job's end."""

    kind = "test.renames_twice"
    steps = (jobs.Step("Rename", "rename", 100),)

    def rename(self, ctx: jobs.JobContext, target: object) -> None:
        for name in ("First name", "Second name"):
            ctx.fenced_update_later(Plan.objects.filter(pk=ctx.job.target_id), name=name)


@pytest.fixture
def world(tmp_path, monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement end is PostgreSQL's")
    monkeypatch.setattr(jobs, "job_dispatch", lambda job_id, **kw: None)  # no worker here
    settings.CANOPY_JOB_COALESCE_SECONDS = 60
    endpoint = factories.make_endpoint(tmp_path)
    subscription = factories.make_subscription(factories.UserFactory(), factories.make_plan(endpoint))
    return subscription, endpoint


def _in_a_burst(vm: VirtualMachine) -> None:
    """As for a job of a burst: its cloud's usage was read back a moment ago, so the job leaves
    that to the coalesced read and its next write after the create step is its end."""
    jobs._coalescer.run_now(("refresh_usage", vm.cloud_id), lambda: None)


def _history(vm: VirtualMachine) -> list[tuple[str, str]]:
    return [(t.from_state, t.to_state) for t in VM_STATES.history(vm.pk)]


def test_a_create_in_a_burst_is_two_round_trips_and_leaves_its_vm_running(world):
    vm, job = factories.make_vm_job(*world)
    _in_a_burst(vm)
    with CaptureQueriesContext(connection) as queries:
        assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    assert len(queries) == 2  # the claim (with the VM), and the end (with the fabric id)
    job.refresh_from_db()
    vm.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.percent == 100 and job.secret == ""
    assert [s["state"] for s in job.steps] == ["done", "deferred"]
    assert vm.state == VMState.RUNNING and vm.fabric_id.startswith("sim-vm-")
    (moved,) = VM_STATES.history(vm.pk).filter(from_state=VMState.CREATING)
    assert (moved.to_state, moved.job_id, moved.actor_id) == (VMState.RUNNING, job.pk, job.created_by_id)


def test_a_job_cancelled_while_it_ran_writes_neither_its_end_nor_its_vm(world, monkeypatch, staff_user):
    vm, job = factories.make_vm_job(*world)
    _in_a_burst(vm)
    create = SimulatorDriver.create_vm

    def cancelled_meanwhile(self, spec):
        jobs.job_cancel(job=Job.objects.get(pk=job.pk), by=staff_user)
        return create(self, spec)

    monkeypatch.setattr(SimulatorDriver, "create_vm", cancelled_meanwhile)
    jobs.job_execute(str(job.pk))
    job.refresh_from_db()
    vm.refresh_from_db()
    assert job.state == JobState.CANCELLED and job.error == "Cancelled by staff@example.test."
    # The cancel's hook left the VM failed; the late run changed nothing, not even the fabric id.
    assert vm.state == VMState.FAILED and vm.fabric_id == ""
    assert _history(vm) == [("", VMState.CREATING), (VMState.CREATING, VMState.FAILED)]


def test_a_run_superseded_while_it_ran_leaves_the_vm_to_the_run_that_holds_the_job(world, monkeypatch):
    """Its VM is still creating, as its end expects: only the gate on the job's end keeps the late
    run from moving it."""
    vm, job = factories.make_vm_job(*world)
    _in_a_burst(vm)
    create = SimulatorDriver.create_vm
    newer: list[Job | None] = []

    def superseded_meanwhile(self, spec):
        Job.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(minutes=5))
        newer.append(jobs.job_claim(str(job.pk)))
        return create(self, spec)

    monkeypatch.setattr(SimulatorDriver, "create_vm", superseded_meanwhile)
    jobs.job_execute(str(job.pk))
    assert newer[0] is not None and newer[0].attempts == 2
    job.refresh_from_db()
    vm.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.RUNNING, 2)
    assert vm.state == VMState.CREATING and vm.fabric_id == ""
    assert _history(vm) == [("", VMState.CREATING)]


def test_a_vm_moved_while_its_job_ran_keeps_its_newer_state(world, monkeypatch):
    vm, job = factories.make_vm_job(*world)
    _in_a_burst(vm)
    create = SimulatorDriver.create_vm

    def moved_meanwhile(self, spec):
        VM_STATES.transition(VirtualMachine.objects.get(pk=vm.pk), target=VMState.FAILED, reason="elsewhere")
        return create(self, spec)

    monkeypatch.setattr(SimulatorDriver, "create_vm", moved_meanwhile)
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    vm.refresh_from_db()
    assert vm.state == VMState.FAILED
    assert _history(vm) == [("", VMState.CREATING), (VMState.CREATING, VMState.FAILED)]


def test_a_fabric_id_lost_with_its_worker_is_found_again_by_the_next_run(world):
    """The fabric id rides on the run's next write: a worker that dies before it leaves no fabric
    id and no step done, and the re-run's create finds the VM the fabric built (no second VM)."""
    _, endpoint = world
    vm, job = factories.make_vm_job(*world)
    _in_a_burst(vm)

    class WorkerDied(BaseException):
        pass

    def dies(*args, **kwargs):
        raise WorkerDied

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobs, "_end_in_one_statement", dies)
        with pytest.raises(WorkerDied):
            jobs.job_execute(str(job.pk))
    built = endpoint_driver(endpoint).list_vms()
    assert [v.vm_id for v in built] == [str(vm.pk)]
    assert VirtualMachine.objects.get(pk=vm.pk).fabric_id == ""
    assert [s["state"] for s in Job.objects.get(pk=job.pk).steps] == ["running"]

    Job.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(minutes=5))
    sent: list[str] = []
    assert jobs.job_sweep(send=sent.append).requeued == 1
    assert jobs.job_execute(sent[0]) == JobState.SUCCEEDED
    vm.refresh_from_db()
    assert vm.state == VMState.RUNNING and vm.fabric_id == built[0].fabric_id
    assert [v.vm_id for v in endpoint_driver(endpoint).list_vms()] == [str(vm.pk)]


def test_a_hook_that_writes_on_its_own_ends_the_job_in_a_transaction(world):
    """VMDelete's hook also wipes the VM's jobs' secrets: the end takes the transaction instead."""
    subscription, endpoint = world
    vm = factories.make_vm(subscription, endpoint)
    create = Job.objects.get(kind="vm.create", target_id=str(vm.pk))
    Job.objects.filter(pk=create.pk).update(secret="kept-for-a-retry")
    delete = vm_action(vm=vm, action="delete")
    assert jobs.job_execute(str(delete.pk)) == JobState.SUCCEEDED
    vm.refresh_from_db()
    assert vm.state == VMState.DELETED
    assert Job.objects.get(pk=create.pk).secret == ""
    assert _history(vm)[-2:] == [(VMState.RUNNING, VMState.DELETING), (VMState.DELETING, VMState.DELETED)]


def test_a_hook_that_swallows_the_refusal_of_its_statement_still_writes(world):
    plan = Plan.objects.create(name="Target")
    job = jobs.job_create(kind="test.swallowing_hook", target=plan)
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    assert Plan.objects.get(pk=plan.pk).name == "Ended by its job"
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED


def _prepared() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'canopy%%'")
        return int(cursor.fetchone()[0])


def test_a_runs_statements_are_prepared_once_per_session_not_per_job(world):
    """Their texts don't change with the job: PostgreSQL plans each once per worker session."""
    made = [factories.make_vm_job(*world, f"web{i:02d}") for i in range(4)]
    for vm, job in made[:2]:
        _in_a_burst(vm)
        assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    prepared = _prepared()
    assert prepared >= 3  # the claim, its VM read, the end
    for vm, job in made[2:]:
        _in_a_burst(vm)
        assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    assert _prepared() == prepared


def test_jobs_still_run_when_the_session_lost_its_prepared_statements(world):
    (vm1, first), (vm2, second) = (factories.make_vm_job(*world, name) for name in ("web01", "web02"))
    _in_a_burst(vm1)
    assert jobs.job_execute(str(first.pk)) == JobState.SUCCEEDED
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # e.g. an administrator's DISCARD ALL
    assert jobs.job_execute(str(second.pk)) == JobState.SUCCEEDED
    assert VirtualMachine.objects.get(pk=vm2.pk).state == VMState.RUNNING
    assert _prepared() >= 3


def test_deferred_writes_of_the_same_shape_are_all_sent_in_order(world):
    plan = Plan.objects.create(name="Target")
    job = jobs.job_create(kind="test.renames_twice", target=plan)
    assert jobs.job_execute(str(job.pk)) == JobState.SUCCEEDED
    assert Plan.objects.get(pk=plan.pk).name == "Second name"
