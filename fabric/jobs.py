"""Job handlers of the fabric: endpoint sync and the VM lifecycle.

Each step is idempotent (drivers are keyed by the portal's VM id), so a re-run after a crash, a
transient failure or a user's retry resumes safely. The VM's state follows what the fabric did:
reading a cloud's usage back is bookkeeping, and its failure never marks a built VM failed.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from portal.jobs import JobContext, JobFailure, JobHandler, Step, job_wipe_secrets, register
from portal.models import Job
from portal.prepared import PreparedGet

from .drivers import NotFound, VMSpec
from .lifecycle import VM_STATES, vm_action_of_job
from .models import EndpointState, FabricEndpoint, VirtualMachine, VMState
from .services import (
    cloud_apply_usage,
    cloud_usage_versions,
    endpoint_apply,
    endpoint_driver,
    endpoint_prepare_retry,
    vm_prepare_retry,
)

logger = logging.getLogger(__name__)

USAGE_STEP = "Update cloud usage"
# Every VM job loads its VM so; compiled once per process (portal.prepared).
_VM_WITH_FABRIC = PreparedGet(lambda: VirtualMachine.objects.select_related("cloud__stamp__endpoint", "template"))


def _vm_transition(job: Job, *, source: str, target: str, reason: str = "") -> None:
    """Move the job's VM from the state the job put it in to where the job leaves it, recording the
    job. If something else moved the VM meanwhile, the newer state stands and the job still ends.
    (A run's end sends it within the statement that ends the job: portal.jobs.job_end_part.)"""
    # The job knows all the transition writes (id, subscription, the state it left the VM in): no read.
    assert job.subscription_id is not None, "VM jobs belong to the VM's subscription"
    vm = VirtualMachine(pk=job.target_id, subscription_id=job.subscription_id, name=job.target_name, state=source)
    VM_STATES.transition_if_unchanged(vm, source=source, target=target, job=job, reason=reason)


class _VMJob(JobHandler):
    """Shared by VM jobs: load the VM with its fabric, read its cloud's usage back, retry rules."""

    target_query = _VM_WITH_FABRIC

    def load(self, ctx: JobContext) -> VirtualMachine:
        return _VM_WITH_FABRIC.get(ctx.job.target_id)

    def refresh_usage(self, ctx: JobContext, vm: VirtualMachine) -> None:
        """Read the cloud's usage back from the fabric so the admin portal shows it (bookkeeping).
        Coalesced per cloud (Step.coalesce_by): a burst of jobs in one cloud reads it once a second."""
        # Read now, not with the VM: a coalesced run may come after other jobs' refreshes.
        seen = cloud_usage_versions(cloud=vm.cloud).get(vm.cloud.pk)
        info = endpoint_driver(vm.cloud.stamp.endpoint).get_cloud(vm.cloud.external_id)
        cloud_apply_usage(cloud=vm.cloud, info=info, seen_version=seen)

    def usage_key(self, ctx: JobContext, vm: VirtualMachine) -> Any:
        return vm.cloud_id

    def prepare_retry(self, job: Job, *, by: Any) -> None:
        vm_prepare_retry(job=job, by=by)


@register
class EndpointSync(JobHandler):
    kind = "endpoint.sync"
    label = "Synchronize endpoint"
    steps = (
        # A read: repeated on every attempt, since the next step needs what it returns.
        Step("Read stamps, clouds and catalog from the fabric", "read", 70, once=False),
        Step("Update the portal's fabric inventory", "apply", 100),
    )

    def load(self, ctx: JobContext) -> FabricEndpoint:
        return FabricEndpoint.objects.get(pk=ctx.job.target_id)

    def read(self, ctx: JobContext, endpoint: FabricEndpoint) -> None:
        ctx.data["versions"] = cloud_usage_versions(endpoint=endpoint)
        ctx.data["info"] = endpoint_driver(endpoint).describe()

    def apply(self, ctx: JobContext, endpoint: FabricEndpoint) -> None:
        with ctx.guarded():
            endpoint_apply(endpoint=endpoint, info=ctx.data["info"], seen_versions=ctx.data["versions"])

    def on_failed(self, job: Job) -> None:
        FabricEndpoint.objects.filter(pk=job.target_id).update(state=EndpointState.ERROR, last_error=job.error)

    def prepare_retry(self, job: Job, *, by: Any) -> None:
        endpoint_prepare_retry(job=job)


@register
class VMCreate(_VMJob):
    kind = "vm.create"
    label = "Create virtual machine"
    steps = (
        Step("Create the virtual machine on the fabric", "create", 85),
        Step(USAGE_STEP, "refresh_usage", 95, best_effort=True, coalesce_by="usage_key"),
    )

    def create(self, ctx: JobContext, vm: VirtualMachine) -> None:
        password = ctx.secret()
        if password is None:
            raise JobFailure(
                "The admin password of this virtual machine is no longer kept (it is forgotten a while after "
                "a failure); delete the virtual machine and create it again."
            )
        info = endpoint_driver(vm.cloud.stamp.endpoint).create_vm(
            VMSpec(
                vm_id=str(vm.pk),
                name=vm.name,
                cloud_id=vm.cloud.external_id,
                template_id=vm.template.external_id,
                cpu=vm.cpu,
                memory_mb=vm.memory_mb,
                disk_gb=vm.disk_gb,
                admin_username=vm.admin_username,
                admin_password=password,
                start=bool(ctx.params.get("start", True)),
            )
        )
        # Recorded with the run's next write (the end of the job, in a burst), together with this
        # step's "done": if that write is lost, the step runs again and the driver returns this VM.
        ctx.fenced_update_later(VirtualMachine.objects.filter(pk=vm.pk), fabric_id=info.fabric_id)

    def on_succeeded(self, job: Job) -> None:
        started = job.params.get("start", True)
        _vm_transition(job, source=VMState.CREATING, target=VMState.RUNNING if started else VMState.STOPPED)

    def on_failed(self, job: Job) -> None:
        _vm_transition(job, source=VMState.CREATING, target=VMState.FAILED, reason=job.error)


class _VMActionJob(_VMJob):
    """A declared VM action's job (fabric.lifecycle): on success the action's resulting state; on
    failure the action didn't happen (or not entirely), so the VM goes back to where it was."""

    def on_succeeded(self, job: Job) -> None:
        action = vm_action_of_job(job.kind)
        _vm_transition(job, source=action.busy_state, target=action.success_state)

    def on_failed(self, job: Job) -> None:
        action = vm_action_of_job(job.kind)
        previous = job.params.get("previous_state", VMState.FAILED)
        _vm_transition(job, source=action.busy_state, target=previous, reason=job.error)


class _VMPower(_VMActionJob):
    operation: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.steps = (Step(f"{cls.label} on the fabric", "power", 100),)

    def power(self, ctx: JobContext, vm: VirtualMachine) -> None:
        getattr(endpoint_driver(vm.cloud.stamp.endpoint), self.operation)(str(vm.pk))


@register
class VMStart(_VMPower):
    kind, label, operation = "vm.start", "Start", "start_vm"


@register
class VMStop(_VMPower):
    kind, label, operation = "vm.stop", "Stop", "stop_vm"


@register
class VMShutdown(_VMPower):
    kind, label, operation = "vm.shutdown", "Shut down", "shutdown_vm"


@register
class VMRestart(_VMPower):
    kind, label, operation = "vm.restart", "Restart", "restart_vm"


@register
class VMDelete(_VMActionJob):
    kind = "vm.delete"
    label = "Delete virtual machine"
    steps = (
        Step("Turn off and delete the virtual machine on the fabric", "delete", 85),
        Step(USAGE_STEP, "refresh_usage", 95, best_effort=True, coalesce_by="usage_key"),
    )

    def delete(self, ctx: JobContext, vm: VirtualMachine) -> None:
        # A VM already gone from the fabric is fine: deleting is idempotent.
        with contextlib.suppress(NotFound):
            endpoint_driver(vm.cloud.stamp.endpoint).delete_vm(str(vm.pk))

    def on_succeeded(self, job: Job) -> None:
        super().on_succeeded(job)
        job_wipe_secrets(target=VirtualMachine(pk=job.target_id))
