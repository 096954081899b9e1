"""Job handlers of the fabric: endpoint sync and the VM lifecycle.

Each step is idempotent (drivers are keyed by the portal's VM id), so a re-run after a crash, a
transient failure or a user's retry resumes safely. The VM's state follows what the fabric did:
reading a cloud's usage back is bookkeeping, and its failure never marks a built VM failed.
"""

from __future__ import annotations

import contextlib
from typing import Any

from portal.jobs import JobContext, JobFailure, JobHandler, Step, job_wipe_secrets, register
from portal.models import Job

from .drivers import NotFound, VMSpec
from .models import EndpointState, FabricEndpoint, VirtualMachine, VMState
from .services import (
    cloud_apply_usage,
    cloud_usage_versions,
    endpoint_apply,
    endpoint_driver,
    endpoint_prepare_retry,
    vm_prepare_retry,
)

USAGE_STEP = "Update cloud usage"


class _VMJob(JobHandler):
    """Shared by VM jobs: load the VM with its fabric, read its cloud's usage back, retry rules."""

    def load(self, ctx: JobContext) -> VirtualMachine:
        return VirtualMachine.objects.select_related("cloud__stamp__endpoint", "template").get(pk=ctx.job.target_id)

    def refresh_usage(self, ctx: JobContext, vm: VirtualMachine) -> None:
        """Read the cloud's usage back from the fabric so the admin portal shows it (bookkeeping)."""
        seen = cloud_usage_versions(cloud=vm.cloud)
        info = endpoint_driver(vm.cloud.stamp.endpoint).get_cloud(vm.cloud.external_id)
        cloud_apply_usage(cloud=vm.cloud, info=info, seen_version=seen.get(vm.cloud.pk))

    def on_failed(self, job: Job) -> None:
        # The action didn't happen (or not entirely): the VM is as it was before the job.
        previous = job.params.get("previous_state", VMState.FAILED)
        VirtualMachine.objects.filter(pk=job.target_id).update(state=previous)

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
        Step(USAGE_STEP, "refresh_usage", 95, best_effort=True),
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
        with ctx.guarded():
            VirtualMachine.objects.filter(pk=vm.pk).update(fabric_id=info.fabric_id)

    def on_succeeded(self, job: Job) -> None:
        started = job.params.get("start", True)
        VirtualMachine.objects.filter(pk=job.target_id).update(state=VMState.RUNNING if started else VMState.STOPPED)

    def on_failed(self, job: Job) -> None:
        VirtualMachine.objects.filter(pk=job.target_id).update(state=VMState.FAILED)


class _VMPower(_VMJob):
    operation: str
    final_state: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.steps = (Step(f"{cls.label} on the fabric", "power", 100),)

    def power(self, ctx: JobContext, vm: VirtualMachine) -> None:
        getattr(endpoint_driver(vm.cloud.stamp.endpoint), self.operation)(str(vm.pk))

    def on_succeeded(self, job: Job) -> None:
        VirtualMachine.objects.filter(pk=job.target_id).update(state=self.final_state)


@register
class VMStart(_VMPower):
    kind, label, operation, final_state = "vm.start", "Start", "start_vm", VMState.RUNNING


@register
class VMStop(_VMPower):
    kind, label, operation, final_state = "vm.stop", "Stop", "stop_vm", VMState.STOPPED


@register
class VMShutdown(_VMPower):
    kind, label, operation, final_state = "vm.shutdown", "Shut down", "shutdown_vm", VMState.STOPPED


@register
class VMRestart(_VMPower):
    kind, label, operation, final_state = "vm.restart", "Restart", "restart_vm", VMState.RUNNING


@register
class VMDelete(_VMJob):
    kind = "vm.delete"
    label = "Delete virtual machine"
    steps = (
        Step("Turn off and delete the virtual machine on the fabric", "delete", 85),
        Step(USAGE_STEP, "refresh_usage", 95, best_effort=True),
    )

    def delete(self, ctx: JobContext, vm: VirtualMachine) -> None:
        # A VM already gone from the fabric is fine: deleting is idempotent.
        with contextlib.suppress(NotFound):
            endpoint_driver(vm.cloud.stamp.endpoint).delete_vm(str(vm.pk))

    def on_succeeded(self, job: Job) -> None:
        VirtualMachine.objects.filter(pk=job.target_id).update(state=VMState.DELETED)
        vm = VirtualMachine(pk=job.target_id)
        job_wipe_secrets(target=vm)
