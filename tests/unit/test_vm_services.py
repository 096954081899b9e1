"""The VM lifecycle through services and jobs run in-process."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fabric.models import Cloud, VirtualMachine, VMState
from fabric.services import vm_action
from portal.exceptions import NotAllowed, QuotaExceeded
from portal.models import Job, JobState
from tests import factories


def create(subscription, endpoint, name="web01", **kw):
    if "size" in kw:
        kw["hardware_profile"] = kw.pop("size")
    return factories.make_vm_job(subscription, endpoint, name, **kw)


def test_quick_create_runs_to_running_and_wipes_the_secret(subscription, endpoint):
    vm, job = create(subscription, endpoint)
    assert vm.state == VMState.CREATING
    assert job.secret and factories.VM_PASSWORD not in job.secret
    factories.run_queued_jobs()
    vm.refresh_from_db()
    job.refresh_from_db()
    assert (vm.state, job.state, job.percent, job.secret) == (VMState.RUNNING, JobState.SUCCEEDED, 100, "")
    assert vm.fabric_id.startswith("sim-vm-")
    assert Cloud.objects.get(pk=vm.cloud_id).vms_used == 1


def test_stop_start_delete_are_jobs_that_move_the_state(subscription, endpoint):
    vm, _ = create(subscription, endpoint)
    factories.run_queued_jobs()
    for action, busy, final in (
        ("stop", VMState.STOPPING, VMState.STOPPED),
        ("start", VMState.STARTING, VMState.RUNNING),
        ("delete", VMState.DELETING, VMState.DELETED),
    ):
        job = vm_action(vm=vm, action=action)
        assert VirtualMachine.objects.get(pk=vm.pk).state == busy
        factories.run_queued_jobs()
        assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED
        assert VirtualMachine.objects.get(pk=vm.pk).state == final
    assert Cloud.objects.get(pk=vm.cloud_id).vms_used == 0


def test_an_action_the_state_forbids_is_refused(subscription, endpoint):
    vm, _ = create(subscription, endpoint)
    with pytest.raises(NotAllowed):
        vm_action(vm=vm, action="start")  # still creating


@pytest.mark.parametrize("name", ["", "1abc", "bad_name", "x" * 16, "ends-"])
def test_invalid_name_creates_nothing(subscription, endpoint, name):
    with pytest.raises(ValidationError) as exc:
        create(subscription, endpoint, name=name)
    assert "name" in exc.value.error_dict
    assert not VirtualMachine.objects.exists() and not Job.objects.filter(kind="vm.create").exists()


def test_quota_refusal_names_quota_limit_and_use(tenant_user, endpoint):
    plan = factories.make_plan(endpoint, max_vms=1)
    sub = factories.make_subscription(tenant_user, plan)
    create(sub, endpoint, name="one")
    with pytest.raises(QuotaExceeded) as exc:
        create(sub, endpoint, name="two")
    assert "Virtual machines" in str(exc.value) and "limit is 1" in str(exc.value) and "1 in use" in str(exc.value)
    assert VirtualMachine.objects.count() == 1


def test_full_cloud_fails_the_job_with_the_reason(tenant_user, tmp_path):
    topology = {
        "stamps": [{"id": "s", "name": "S"}],
        "clouds": [{"id": "c", "stamp_id": "s", "name": "Gold", "capacity": {"vcpu": 1, "vms": 5}}],
        "hardware_profiles": [{"id": "hw", "name": "Small", "cpu": 1, "memory_mb": 512}],
        "templates": [{"id": "tpl-ubuntu-2404", "name": "Ubuntu", "os_type": "linux", "disk_gb": 10}],
    }
    endpoint = factories.make_endpoint(tmp_path, settings={"topology": topology})
    sub = factories.make_subscription(tenant_user, factories.make_plan(endpoint))
    create(sub, endpoint, name="a")
    vm, job = create(sub, endpoint, name="b")
    factories.run_queued_jobs()
    job.refresh_from_db()
    vm.refresh_from_db()
    assert job.state == JobState.FAILED and vm.state == VMState.FAILED
    assert "out of capacity" in job.error and "vCPU" in job.error


@pytest.mark.parametrize("existing", [1, 8])
def test_quick_create_costs_the_same_statements_however_many_vms_exist(subscription, endpoint, existing):
    for i in range(existing):
        create(subscription, endpoint, name=f"old{i}")
    template, size = factories.catalog(endpoint)
    # the audit log's savepoint, the service's savepoint, subscription lock with its offer, template
    # allowed by the plan?, size allowed?, name taken?, quota limits (plan + add-ons), quota use, VM,
    # job, its history row, release, the audit entry, release
    with CaptureQueriesContext(connection) as queries:
        create(subscription, endpoint, name="new", template=template, size=size)
    assert len(queries) == 14, "\n".join(q["sql"][:120] for q in queries.captured_queries)


def test_a_bulk_action_starts_what_it_may_and_names_each_refusal(subscription, endpoint):
    from fabric.services import BULK_MAX, vm_bulk_action

    running = factories.make_vm(subscription, endpoint, "running")
    stopped = factories.make_vm(subscription, endpoint, "stopped")
    vm_action(vm=stopped, action="stop")
    factories.run_queued_jobs()
    stopped.refresh_from_db()
    result = vm_bulk_action(vms=[running, stopped], action="stop")
    assert [vm.name for vm in result.started] == ["running"]
    assert [(vm.name, "stopped" in message) for vm, message in result.refused] == [("stopped", True)]
    with pytest.raises(ValidationError):
        vm_bulk_action(vms=[running] * (BULK_MAX + 1), action="start")
    with pytest.raises(ValidationError):
        vm_bulk_action(vms=[running], action="explode")
