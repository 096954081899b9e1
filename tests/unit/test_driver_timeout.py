"""An endpoint's `timeout` setting bounds its driver's calls: a shutdown that hangs is retried, then fails."""

import time

from fabric.models import VirtualMachine, VMState
from fabric.services import endpoint_driver, vm_action
from portal.models import Job, JobState
from tests import factories


def test_a_hanging_shutdown_is_cut_at_the_endpoint_timeout_and_retried(db, tmp_path, tenant_user):
    endpoint = factories.make_endpoint(tmp_path, settings={"latency": {"shutdown_vm": 60}, "timeout": 0.3})
    assert endpoint_driver(endpoint).timeout == 0.3
    subscription = factories.make_subscription(tenant_user, factories.make_plan(endpoint))
    vm = factories.make_vm(subscription, endpoint, "slow")
    job = vm_action(vm=vm, action="shutdown")

    started = time.monotonic()
    factories.run_queued_jobs()
    assert time.monotonic() - started < 10

    job = Job.objects.get(pk=job.pk)
    assert job.state == JobState.QUEUED and job.retry_at is not None  # Unavailable: retried with backoff
    assert "timed out after 0.3 s" in job.step  # shown in both portals: "… — Retrying in 2 s (attempt 2 of 3)"
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.STOPPING
