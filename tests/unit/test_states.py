"""The state machine seam (portal.states) and the VM lifecycle declared on it (fabric.lifecycle)."""

import logging

import pytest

from fabric.lifecycle import VM_ACTIONS, VM_STATES
from fabric.models import VirtualMachine, VMState
from fabric.services import vm_action
from portal.jobs import job_create
from portal.models import Job, JobState, StateTransition
from portal.states import IllegalTransition, StaleTransition, StateMachine
from tests import factories

S = VMState


def history(vm):
    return list(VM_STATES.history(vm.pk).values_list("from_state", "to_state"))


def db_row(vm):
    return VirtualMachine.objects.values_list("state", "updated_at").get(pk=vm.pk)


def test_an_illegal_transition_raises_and_changes_nothing(subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint)  # running
    before, rows = db_row(vm), StateTransition.objects.count()
    with pytest.raises(IllegalTransition, match="can't go from running to starting"):
        VM_STATES.transition(vm, target=S.STARTING)
    assert db_row(vm) == before and StateTransition.objects.count() == rows
    assert vm.state == S.RUNNING


def test_a_transition_writes_state_updated_at_and_one_history_row(subscription, endpoint, tenant_user):
    vm = factories.make_vm(subscription, endpoint)
    _, updated_before = db_row(vm)
    rows = StateTransition.objects.count()
    job = job_create(kind="vm.stop", target=vm, subscription=subscription, created_by=tenant_user)

    entry = VM_STATES.transition(vm, target=S.STOPPING, job=job, reason="asked to")

    state, updated_after = db_row(vm)
    assert state == S.STOPPING and updated_after > updated_before
    assert StateTransition.objects.count() == rows + 1
    entry.refresh_from_db()
    assert (entry.resource_type, entry.resource_id, entry.from_state, entry.to_state) == (
        "fabric.virtualmachine",
        str(vm.pk),
        S.RUNNING,
        S.STOPPING,
    )
    # the actor defaults to whoever started the job; the subscription is copied for metering
    assert (entry.job_id, entry.actor_id, entry.subscription_id, entry.reason) == (
        job.pk,
        tenant_user.pk,
        subscription.pk,
        "asked to",
    )
    assert entry.at is not None and entry.at >= updated_before
    assert (vm.state, vm.updated_at) == (S.STOPPING, entry.at)  # the object in memory follows


def test_a_stale_transition_is_refused_and_the_newer_state_stands(subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint)
    stale = VirtualMachine.objects.get(pk=vm.pk)  # read while running
    VM_STATES.transition(vm, target=S.STOPPING)  # someone else moves it meanwhile
    rows = StateTransition.objects.count()

    with pytest.raises(StaleTransition, match="no longer running"):
        VM_STATES.transition(stale, target=S.RESTARTING)  # allowed from running, but it isn't any more

    assert db_row(vm)[0] == S.STOPPING and StateTransition.objects.count() == rows


def test_creation_is_the_first_history_row_with_its_job_and_actor(subscription, endpoint, tenant_user):
    vm = factories.make_vm(subscription, endpoint, run=False, created_by=tenant_user)
    (entry,) = VM_STATES.history(vm.pk)
    job = Job.objects.get(kind="vm.create", target_id=str(vm.pk))
    assert (entry.from_state, entry.to_state, entry.job_id, entry.actor_id) == ("", S.CREATING, job.pk, tenant_user.pk)


def test_a_vms_life_is_recorded_one_row_per_change_each_with_its_job(subscription, endpoint, tenant_user):
    vm = factories.make_vm(subscription, endpoint, created_by=tenant_user)
    for action in ("stop", "start", "restart", "delete"):
        vm_action(vm=vm, action=action, created_by=tenant_user)
        factories.run_queued_jobs()
    assert history(vm) == [
        ("", S.CREATING),
        (S.CREATING, S.RUNNING),
        (S.RUNNING, S.STOPPING),
        (S.STOPPING, S.STOPPED),
        (S.STOPPED, S.STARTING),
        (S.STARTING, S.RUNNING),
        (S.RUNNING, S.RESTARTING),
        (S.RESTARTING, S.RUNNING),
        (S.RUNNING, S.DELETING),
        (S.DELETING, S.DELETED),
    ]
    rows = list(VM_STATES.history(vm.pk).select_related("job"))
    assert [row.job.kind for row in rows] == ["vm.create"] * 2 + [
        kind for kind in ("vm.stop", "vm.start", "vm.restart", "vm.delete") for _ in (1, 2)
    ]
    assert {row.actor_id for row in rows} == {tenant_user.pk}
    assert [row.at for row in rows] == sorted(row.at for row in rows)


@pytest.mark.parametrize("action", ["stop", "delete"])
def test_a_failed_action_puts_the_vm_back_and_records_why(subscription, endpoint, action, monkeypatch):
    vm = factories.make_vm(subscription, endpoint)
    factories.fabric_refuses(monkeypatch, f"{action}_vm", "Host hv-03 is in maintenance.")
    job = vm_action(vm=vm, action=action)
    factories.run_queued_jobs()
    assert Job.objects.get(pk=job.pk).state == JobState.FAILED
    assert db_row(vm)[0] == S.RUNNING
    last = VM_STATES.history(vm.pk).last()
    assert (last.from_state, last.to_state, last.job_id) == (VM_ACTIONS[action].busy_state, S.RUNNING, job.pk)
    assert last.reason == "Host hv-03 is in maintenance."


def test_a_job_ending_after_its_vm_moved_on_leaves_the_newer_state(subscription, endpoint, caplog):
    vm = factories.make_vm(subscription, endpoint)
    job = vm_action(vm=vm, action="stop")
    VM_STATES.transition(vm, target=S.RUNNING, reason="reconciled")  # e.g. a reconciler found it running
    rows = StateTransition.objects.count()
    with caplog.at_level(logging.WARNING, logger="fabric.jobs"):
        factories.run_queued_jobs()
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED  # the job still ends
    assert db_row(vm)[0] == S.RUNNING and StateTransition.objects.count() == rows
    assert "no longer stopping" in caplog.text


@pytest.mark.parametrize("name", list(VM_ACTIONS))
def test_each_declared_action_moves_along_the_table(name):
    """An action's start, success and failure (back to where it was) are transitions the table has."""
    action = VM_ACTIONS[name]
    for state in action.allowed_in:
        assert VM_STATES.allows(state, action.busy_state), (state, action.busy_state)
        assert VM_STATES.allows(action.busy_state, state), (action.busy_state, state)
    assert VM_STATES.allows(action.busy_state, action.success_state)


@pytest.mark.parametrize(
    ("source", "targets"),
    [
        (S.CREATING, {S.RUNNING, S.STOPPED, S.FAILED}),
        (S.STOPPED, {S.STARTING, S.DELETING}),
        (S.RUNNING, {S.STOPPING, S.RESTARTING, S.DELETING}),
        (S.STARTING, {S.RUNNING, S.STOPPED, S.FAILED}),
        (S.STOPPING, {S.STOPPED, S.RUNNING, S.FAILED}),
        (S.RESTARTING, {S.RUNNING, S.FAILED}),
        (S.DELETING, {S.DELETED, S.FAILED, S.RUNNING, S.STOPPED}),
        (S.FAILED, {S.CREATING, S.DELETING, S.RUNNING, S.STOPPED}),
        (S.DELETED, set()),
    ],
)
def test_the_vm_table_is_exactly_the_agreed_one(source, targets):
    """Job retry, cancel and reconciliation are built on these moves; a change here is deliberate."""
    assert {target for target in S if VM_STATES.allows(source, target)} == targets


def test_a_table_naming_an_unknown_state_is_refused_at_declaration():
    with pytest.raises(ValueError, match="unknown states"):
        StateMachine(model=VirtualMachine, initial=S.CREATING, transitions={S.RUNNING: {"paused"}})
