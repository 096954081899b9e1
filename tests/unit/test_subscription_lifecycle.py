"""The subscription lifecycle: suspend, activate, delete, change plan and re-sync, each fanned out
as a parent job with a child job per VM (portal.job_groups), run here by `run_queued_jobs`."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from fabric.drivers import CapacityExceeded
from fabric.drivers.simulator import SimulatorDriver
from fabric.models import VirtualMachine, VMState
from fabric.services import endpoint_driver, vm_action
from portal.exceptions import Conflict, Forbidden, NotAllowed
from portal.job_groups import group_progress
from portal.jobs import job_cancel, job_retry
from portal.models import Job, JobState
from tenants.lifecycle import SUBSCRIPTION_STATES, lifecycle_services
from tenants.models import SubscriptionState, SyncState
from tenants.services import (
    subscription_activate,
    subscription_cancel,
    subscription_change_plan,
    subscription_delete,
    subscription_resync,
    subscription_suspend,
)
from tests import factories
from tests.factories import run_queued_jobs


@pytest.fixture
def three_vms(subscription, endpoint):
    """web01 and web02 running, db01 stopped."""
    web01 = factories.make_vm(subscription, endpoint, "web01")
    web02 = factories.make_vm(subscription, endpoint, "web02")
    db01 = factories.make_vm(subscription, endpoint, "db01")
    vm_action(vm=db01, action="stop")
    run_queued_jobs()
    return web01, web02, db01


def states(*vms: VirtualMachine) -> list[str]:
    return [VirtualMachine.objects.get(pk=vm.pk).state for vm in vms]


def fabric_power(endpoint, vm: VirtualMachine) -> str:
    return endpoint_driver(endpoint).get_vm(str(vm.pk)).power_state


def refuse_for(monkeypatch, operation: str, vm: VirtualMachine, message: str) -> None:
    """The simulator refuses `operation` on this one VM only."""
    original = getattr(SimulatorDriver, operation)

    def maybe_refuse(self, vm_id, *args, **kwargs):
        if vm_id == str(vm.pk):
            raise CapacityExceeded(message)
        return original(self, vm_id, *args, **kwargs)

    monkeypatch.setattr(SimulatorDriver, operation, maybe_refuse)
    return lambda: monkeypatch.setattr(SimulatorDriver, operation, original)


def test_suspend_stops_running_vms_and_activate_restarts_only_those(subscription, three_vms, endpoint, staff_user):
    web01, web02, db01 = three_vms
    parent = subscription_suspend(subscription=subscription, reason="Invoice 42 unpaid", by=staff_user)
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.SUSPENDED
    assert subscription.sync_state == SyncState.SYNCING
    assert parent.kind == "subscription.suspend" and parent.state == JobState.RUNNING
    assert sorted(parent.children.values_list("target_name", flat=True)) == ["web01", "web02"]
    assert states(web01, web02) == [VMState.STOPPING, VMState.STOPPING]

    run_queued_jobs()
    parent.refresh_from_db()
    assert parent.state == JobState.SUCCEEDED and parent.percent == 100
    assert states(web01, web02, db01) == [VMState.STOPPED] * 3
    assert {fabric_power(endpoint, vm) for vm in three_vms} == {"stopped"}
    subscription.refresh_from_db()
    assert (subscription.sync_state, subscription.leftovers) == (SyncState.IN_SYNC, [])
    assert subscription.state_reason == "Invoice 42 unpaid"

    activation = subscription_activate(subscription=subscription, by=staff_user)
    assert sorted(activation.children.values_list("target_name", flat=True)) == ["web01", "web02"]
    run_queued_jobs()
    assert states(web01, web02, db01) == [VMState.RUNNING, VMState.RUNNING, VMState.STOPPED]
    assert fabric_power(endpoint, db01) == "stopped"
    subscription.refresh_from_db()
    assert (subscription.state, subscription.sync_state, subscription.state_reason) == ("active", "in_sync", "")
    # The history says who did what, and why.
    history = list(SUBSCRIPTION_STATES.history(subscription.pk).values_list("from_state", "to_state", "reason"))
    assert history == [("", "active", ""), ("active", "suspended", "Invoice 42 unpaid"), ("suspended", "active", "")]
    # Forgotten once activated: a later suspension remembers afresh.
    assert not VirtualMachine.objects.filter(running_before_suspension=True).exists()


def test_a_suspended_subscription_refuses_create_start_and_every_vm_action(subscription, three_vms, endpoint):
    web01, _, db01 = three_vms
    subscription_suspend(subscription=subscription, reason="Abuse report")
    run_queued_jobs()
    with pytest.raises(NotAllowed, match="suspended: Abuse report"):
        factories.make_vm_job(subscription, endpoint, "web03")
    for vm, action in ((db01, "start"), (web01, "start"), (web01, "delete")):
        with pytest.raises(NotAllowed):
            vm_action(vm=vm, action=action)
    assert not VirtualMachine.objects.filter(name="web03").exists()
    assert states(web01, db01) == [VMState.STOPPED, VMState.STOPPED]


def test_delete_leaves_nothing_on_the_fabric_and_keeps_the_records(subscription, three_vms, endpoint, staff_user):
    subscription_delete(subscription=subscription, by=staff_user)
    run_queued_jobs()
    assert endpoint_driver(endpoint).list_vms() == []
    assert states(*three_vms) == [VMState.DELETED] * 3
    subscription.refresh_from_db()
    assert (subscription.state, subscription.sync_state) == (SubscriptionState.DELETED, SyncState.IN_SYNC)
    with pytest.raises(NotAllowed):
        subscription_activate(subscription=subscription)


def test_a_fabric_refusal_leaves_the_subscription_out_of_sync_and_resync_finishes(
    monkeypatch, subscription, three_vms, endpoint, staff_user
):
    web01, web02, _ = three_vms
    works_again = refuse_for(monkeypatch, "stop_vm", web02, "Host hv-07 is in maintenance.")
    parent = subscription_suspend(subscription=subscription, reason="Unpaid", by=staff_user)
    run_queued_jobs()
    parent.refresh_from_db()
    assert parent.state == JobState.FAILED
    assert parent.error == "Not done on 1 of 2: web02: Host hv-07 is in maintenance."
    assert group_progress(parent).summary() == "2 of 2 done, 1 failed"
    subscription.refresh_from_db()
    assert subscription.sync_state == SyncState.OUT_OF_SYNC
    assert subscription.leftovers == [
        {"resource": "web02", "kind": "Virtual machine", "error": "Host hv-07 is in maintenance."}
    ]
    assert states(web01, web02) == [VMState.STOPPED, VMState.RUNNING]

    works_again()
    resync = subscription_resync(subscription=subscription, by=staff_user)
    assert list(resync.children.values_list("target_name", flat=True)) == ["web02"]
    run_queued_jobs()
    subscription.refresh_from_db()
    assert (subscription.sync_state, subscription.leftovers) == (SyncState.IN_SYNC, [])
    assert fabric_power(endpoint, web02) == "stopped"
    with pytest.raises(NotAllowed, match="in sync"):
        subscription_resync(subscription=subscription)
    # Activation still restarts both: web02 was running before the suspension too.
    subscription_activate(subscription=subscription)
    run_queued_jobs()
    assert states(web01, web02) == [VMState.RUNNING, VMState.RUNNING]


def test_retrying_the_parent_retries_its_failed_children(monkeypatch, subscription, three_vms, staff_user):
    _, web02, _ = three_vms
    works_again = refuse_for(monkeypatch, "delete_vm", web02, "Disk locked.")
    parent = subscription_delete(subscription=subscription, by=staff_user)
    run_queued_jobs()
    parent.refresh_from_db()
    assert parent.state == JobState.FAILED and "web02: Disk locked." in parent.error
    works_again()
    job_retry(job=parent, by=staff_user)
    parent.refresh_from_db()
    assert parent.state == JobState.RUNNING
    assert sync_state_of(subscription) == SyncState.SYNCING
    run_queued_jobs()
    parent.refresh_from_db()
    assert parent.state == JobState.SUCCEEDED
    assert states(*three_vms) == [VMState.DELETED] * 3
    assert sync_state_of(subscription) == SyncState.IN_SYNC


def sync_state_of(subscription) -> str:
    subscription.refresh_from_db()
    return subscription.sync_state


def test_cancelling_the_parent_cancels_its_unfinished_children(subscription, three_vms, staff_user):
    web01, web02, _ = three_vms
    parent = subscription_suspend(subscription=subscription, reason="Unpaid", by=staff_user)
    job_cancel(job=parent, by=staff_user)
    parent.refresh_from_db()
    assert parent.state == JobState.CANCELLED
    assert set(parent.children.values_list("state", flat=True)) == {JobState.CANCELLED}
    # Each VM is back where it was, and the subscription says what is left.
    assert states(web01, web02) == [VMState.RUNNING, VMState.RUNNING]
    subscription.refresh_from_db()
    assert subscription.sync_state == SyncState.OUT_OF_SYNC
    assert [item["resource"] for item in subscription.leftovers] == ["web01", "web02"]
    assert run_queued_jobs() == 0


def test_a_second_lifecycle_action_is_refused_while_one_runs(subscription, three_vms):
    subscription_suspend(subscription=subscription, reason="Unpaid")
    with pytest.raises(Conflict) as busy:
        subscription_delete(subscription=subscription)
    assert busy.value.status == 409
    run_queued_jobs()
    subscription_delete(subscription=subscription)


def test_a_subscription_without_resources_is_in_sync_at_once(subscription):
    parent = subscription_suspend(subscription=subscription, reason="Unpaid")
    assert parent.state == JobState.SUCCEEDED
    subscription.refresh_from_db()
    assert subscription.sync_state == SyncState.IN_SYNC


def test_suspend_needs_a_reason(subscription):
    with pytest.raises(ValidationError) as missing:
        subscription_suspend(subscription=subscription, reason="  ")
    assert "reason" in missing.value.error_dict
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.ACTIVE
    assert not Job.objects.filter(kind__startswith="subscription.").exists()


def test_change_plan_is_refused_naming_each_quota_that_does_not_fit(subscription, three_vms, endpoint, staff_user):
    small = factories.make_plan(endpoint, max_vms=2, max_cores=None, max_memory_mb=1024)
    with pytest.raises(NotAllowed) as refused:
        subscription_change_plan(subscription=subscription, plan=small, by=staff_user)
    message = refused.value.message
    assert "Virtual machines: 3 in use, the plan allows 2" in message
    assert "Memory:" in message and "the plan allows 1024 MB" in message
    assert "vCPU" not in message
    subscription.refresh_from_db()
    assert subscription.plan_id != small.pk

    roomy = factories.make_plan(endpoint, max_vms=5)
    subscription_change_plan(subscription=subscription, plan=roomy, by=staff_user)
    subscription.refresh_from_db()
    assert subscription.plan_id == roomy.pk


def test_only_the_owner_cancels_by_typing_the_name(subscription, three_vms, tenant_user, other_tenant):
    with pytest.raises(Forbidden):
        subscription_cancel(subscription=subscription, user=other_tenant, confirm_name=subscription.name)
    with pytest.raises(ValidationError):
        subscription_cancel(subscription=subscription, user=tenant_user, confirm_name="something else")
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.ACTIVE
    subscription_cancel(subscription=subscription, user=tenant_user, confirm_name=subscription.name)
    run_queued_jobs()
    assert states(*three_vms) == [VMState.DELETED] * 3


def test_staff_may_subscribe_an_account_to_a_private_plan_but_not_a_decommissioned_one(
    tenant_user, endpoint, staff_user
):
    from tenants.services import plan_set_state, subscription_create

    private = factories.make_plan(endpoint, public=False)
    with pytest.raises(NotAllowed):
        subscription_create(owner=tenant_user, plan=private, by=tenant_user)
    sub = subscription_create(owner=tenant_user, plan=private, name="Assigned", by=staff_user)
    assert sub.plan_id == private.pk
    plan_set_state(plan=private, state="decommissioned")
    other = factories.UserFactory()
    with pytest.raises(NotAllowed):
        subscription_create(owner=other, plan=private, by=staff_user)


def test_the_vm_cloud_service_is_a_lifecycle_service():
    assert [service.name for service in lifecycle_services()] == ["vm_cloud"]


def test_a_tenant_cannot_rerun_the_providers_lifecycle_jobs(monkeypatch, subscription, three_vms, tenant_user):
    _, web02, _ = three_vms
    refuse_for(monkeypatch, "stop_vm", web02, "Host hv-07 is in maintenance.")
    parent = subscription_suspend(subscription=subscription, reason="Unpaid")
    run_queued_jobs()
    child = parent.children.get(target_name="web02")
    monkeypatch.undo()
    for job in (parent, child):
        with pytest.raises(NotAllowed):
            job_retry(job=job, by=tenant_user)
    assert states(web02) == [VMState.RUNNING]


def test_a_vm_busy_when_the_action_ran_is_left_out_of_sync_until_a_resync(subscription, endpoint):
    vm, _ = factories.make_vm_job(subscription, endpoint, "web03")  # still being created
    parent = subscription_suspend(subscription=subscription, reason="Unpaid")
    assert parent.state == JobState.SUCCEEDED  # nothing was running to stop
    subscription.refresh_from_db()
    assert subscription.sync_state == SyncState.OUT_OF_SYNC
    assert subscription.leftovers == [
        {"resource": "web03", "kind": "Virtual machine", "error": "It is creating; re-sync to finish."}
    ]
    run_queued_jobs()  # the create ends: web03 runs on a suspended subscription
    assert states(vm) == [VMState.RUNNING]
    subscription_resync(subscription=subscription)
    run_queued_jobs()
    assert states(vm) == [VMState.STOPPED]
    subscription.refresh_from_db()
    assert subscription.sync_state == SyncState.IN_SYNC
