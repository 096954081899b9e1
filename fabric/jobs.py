"""Job handlers of the fabric: endpoint sync and the VM lifecycle. Each step is idempotent."""

from __future__ import annotations

import contextlib

from portal.jobs import JobContext, JobHandler, register
from portal.models import Job

from .drivers import NotFound, VMSpec
from .models import EndpointState, FabricEndpoint, VirtualMachine, VMState
from .services import cloud_apply_usage, endpoint_apply, endpoint_driver


def _vm(job: Job) -> VirtualMachine:
    return VirtualMachine.objects.select_related("cloud__stamp__endpoint", "template").get(pk=job.target_id)


def _refresh_cloud(ctx: JobContext, vm: VirtualMachine) -> None:
    """Read the cloud's usage back from the fabric so the admin portal shows it."""
    info = endpoint_driver(vm.cloud.stamp.endpoint).get_cloud(vm.cloud.external_id)
    with ctx.guarded():
        cloud_apply_usage(cloud=vm.cloud, info=info)


@register
class EndpointSync(JobHandler):
    kind = "endpoint.sync"
    label = "Synchronize endpoint"

    def run(self, ctx: JobContext) -> None:
        endpoint = FabricEndpoint.objects.get(pk=ctx.job.target_id)
        with ctx.step("Read stamps, clouds and catalog from the fabric", done_percent=70):
            info = endpoint_driver(endpoint).describe()
        with ctx.step("Update the portal's fabric inventory", done_percent=100), ctx.guarded():
            endpoint_apply(endpoint=endpoint, info=info)

    def on_failed(self, job: Job) -> None:
        FabricEndpoint.objects.filter(pk=job.target_id).update(state=EndpointState.ERROR, last_error=job.error)


@register
class VMCreate(JobHandler):
    kind = "vm.create"
    label = "Create virtual machine"

    def run(self, ctx: JobContext) -> None:
        vm = _vm(ctx.job)
        driver = endpoint_driver(vm.cloud.stamp.endpoint)
        password = ctx.secret()
        if password is None:
            raise RuntimeError("the job's admin password is missing")
        with ctx.step("Create the virtual machine on the fabric", done_percent=85):
            info = driver.create_vm(
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
        with ctx.step("Update cloud usage", done_percent=95):
            _refresh_cloud(ctx, vm)

    def on_succeeded(self, job: Job) -> None:
        started = job.params.get("start", True)
        VirtualMachine.objects.filter(pk=job.target_id).update(state=VMState.RUNNING if started else VMState.STOPPED)

    def on_failed(self, job: Job) -> None:
        VirtualMachine.objects.filter(pk=job.target_id).update(state=VMState.FAILED)


class _VMPower(JobHandler):
    operation: str
    final_state: str

    def run(self, ctx: JobContext) -> None:
        vm = _vm(ctx.job)
        driver = endpoint_driver(vm.cloud.stamp.endpoint)
        with ctx.step(f"{self.label} on the fabric", done_percent=100):
            getattr(driver, self.operation)(str(vm.pk))

    def on_succeeded(self, job: Job) -> None:
        VirtualMachine.objects.filter(pk=job.target_id).update(state=self.final_state)

    def on_failed(self, job: Job) -> None:
        # The action didn't happen: the VM is as it was.
        previous = job.params.get("previous_state", VMState.FAILED)
        VirtualMachine.objects.filter(pk=job.target_id).update(state=previous)


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
class VMDelete(JobHandler):
    kind = "vm.delete"
    label = "Delete virtual machine"

    def run(self, ctx: JobContext) -> None:
        vm = _vm(ctx.job)
        driver = endpoint_driver(vm.cloud.stamp.endpoint)
        # A VM already gone from the fabric is fine: deleting is idempotent.
        with (
            ctx.step("Turn off and delete the virtual machine on the fabric", done_percent=85),
            contextlib.suppress(NotFound),
        ):
            driver.delete_vm(str(vm.pk))
        with ctx.step("Update cloud usage", done_percent=95):
            _refresh_cloud(ctx, vm)

    def on_succeeded(self, job: Job) -> None:
        VirtualMachine.objects.filter(pk=job.target_id).update(state=VMState.DELETED)

    def on_failed(self, job: Job) -> None:
        VirtualMachine.objects.filter(pk=job.target_id).update(state=VMState.FAILED)
