"""A subscription's suspension fanned out to real workers: the parent job ends when the last VM's
stop job ends in a worker process, and the subscription is in sync (two workers racing to end
children count each other, because each locks the parent)."""

from __future__ import annotations

import pytest

from fabric.models import VirtualMachine, VMState
from portal.models import Job, JobState
from tenants.models import Subscription, SyncState
from tenants.services import subscription_activate, subscription_suspend
from tests.integration.processes import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def ended(job: Job, timeout: float = 60) -> Job:
    return wait_for(
        lambda: (j := Job.objects.get(pk=job.pk)).is_finished and j, timeout=timeout, what=f"job {job.pk} to end"
    )


def test_a_suspension_fans_out_to_workers_and_activation_restarts_what_ran(make_world, start_worker):
    world = make_world()
    vms = [world.quick_create(f"web{i:02}")[0] for i in range(1, 5)]
    start_worker(concurrency=2)
    start_worker("worker2", concurrency=2)
    wait_for(
        lambda: VirtualMachine.objects.filter(state=VMState.RUNNING).count() == 4, timeout=60, what="4 VMs running"
    )

    parent = subscription_suspend(subscription=world.subscription, reason="Invoice 42 unpaid")
    assert parent.children.count() == 4
    parent = ended(parent)
    assert (parent.state, parent.percent, parent.error) == (JobState.SUCCEEDED, 100, "")
    assert set(VirtualMachine.objects.values_list("state", flat=True)) == {VMState.STOPPED}
    assert {world.fabric_vm_states(vm)[0] for vm in vms} == {"stopped"}
    sub = Subscription.objects.get(pk=world.subscription.pk)
    assert (sub.state, sub.sync_state, sub.leftovers) == ("suspended", SyncState.IN_SYNC, [])

    activation = ended(subscription_activate(subscription=sub))
    assert activation.state == JobState.SUCCEEDED
    assert {world.fabric_vm_states(vm)[0] for vm in vms} == {"running"}
    assert Subscription.objects.get(pk=sub.pk).sync_state == SyncState.IN_SYNC
