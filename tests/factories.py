"""Test data built through the same services the portals use, so tests exercise real rules."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import factory
from django.db.models import Q
from django.utils import timezone

from fabric.drivers import CapacityExceeded
from fabric.drivers.simulator import SimulatorDriver
from fabric.models import Cloud, FabricEndpoint, HardwareProfile, VirtualMachine, VMTemplate
from fabric.services import endpoint_register, plan_vm_cloud_set, vm_create
from portal.access import StaffRole
from portal.jobs import job_execute
from portal.models import Job, JobState
from tenants.models import Plan, PlanState, Subscription, User
from tenants.services import plan_create, plan_set_state, subscription_create

PASSWORD = "Test-Pass-123"
VM_PASSWORD = "Vm-Passw0rd!"
_seq = itertools.count(1)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    is_staff = False
    email_verified_at = factory.LazyFunction(timezone.now)
    # Staff accounts are administrators unless a test says otherwise (as before roles).
    staff_role = factory.LazyAttribute(lambda o: StaffRole.ADMINISTRATOR if o.is_staff else "")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


def make_endpoint(tmp_path: Path, *, name: str | None = None, settings: dict[str, Any] | None = None) -> FabricEndpoint:
    """A simulator endpoint with zero latency, synchronized in-process."""
    options = {"path": str(tmp_path / f"sim-{next(_seq)}.sqlite3"), "latency": 0, **(settings or {})}
    endpoint, job = endpoint_register(name=name or f"Sim {next(_seq)}", driver="simulator", settings_=options)
    if job_execute(str(job.pk)) is None:
        # A live worker (tests/e2e, tests/integration) claimed the sync first: let it finish.
        deadline = time.monotonic() + 30
        while not Job.objects.get(pk=job.pk).is_finished and time.monotonic() < deadline:
            time.sleep(0.1)
    endpoint.refresh_from_db()
    return endpoint


def make_plan(
    endpoint: FabricEndpoint,
    *,
    cloud_name: str = "Gold",
    max_vms: int | None = 10,
    max_cores: int | None = 16,
    max_memory_mb: int | None = 32768,
    public: bool = True,
) -> Plan:
    plan = plan_create(name=f"Plan {next(_seq)}")
    cloud = Cloud.objects.get(stamp__endpoint=endpoint, name=cloud_name)
    plan_vm_cloud_set(plan=plan, cloud=cloud, max_vms=max_vms, max_cores=max_cores, max_memory_mb=max_memory_mb)
    if public:
        plan_set_state(plan=plan, state=PlanState.PUBLIC)
    return plan


def make_subscription(owner: User, plan: Plan) -> Subscription:
    return subscription_create(owner=owner, plan=plan)


def catalog(endpoint: FabricEndpoint) -> tuple[VMTemplate, HardwareProfile]:
    """The endpoint's Ubuntu template and Small size."""
    return (
        VMTemplate.objects.get(endpoint=endpoint, external_id="tpl-ubuntu-2404"),
        HardwareProfile.objects.get(endpoint=endpoint, name="Small"),
    )


def make_vm_job(
    subscription: Subscription, endpoint: FabricEndpoint, name: str = "web01", **overrides: Any
) -> tuple[VirtualMachine, Job]:
    """A VM quick-created through the service (the Ubuntu template, size Small, unless `overrides`
    say otherwise), and its create job (queued, not run). The one wrapper of vm_create in tests."""
    if "template" not in overrides or "hardware_profile" not in overrides:
        template, size = catalog(endpoint)
        overrides = {"template": template, "hardware_profile": size, **overrides}
    return vm_create(subscription=subscription, name=name, **{"admin_password": VM_PASSWORD, **overrides})


def fabric_refuses(monkeypatch: Any, operation: str, message: str = "Cloud 'Gold' is out of capacity.") -> Any:
    """Make the simulator refuse `operation` (CapacityExceeded, which is never retried); returns a
    function that lets it work again."""
    original = getattr(SimulatorDriver, operation)

    def refuse(self: SimulatorDriver, *args: Any, **kwargs: Any) -> Any:
        raise CapacityExceeded(message)

    monkeypatch.setattr(SimulatorDriver, operation, refuse)
    return lambda: monkeypatch.setattr(SimulatorDriver, operation, original)


def make_vm(
    subscription: Subscription,
    endpoint: FabricEndpoint,
    name: str = "web01",
    *,
    run: bool = True,
    created_by: User | None = None,
) -> VirtualMachine:
    """A VM quick-created through the service; `run` executes its job so it ends up running."""
    vm, _ = make_vm_job(subscription, endpoint, name, created_by=created_by)
    if run:
        run_queued_jobs()
        vm.refresh_from_db()
    return vm


def run_queued_jobs() -> int:
    """Run every queued job that is due in this process (what a worker would do); returns how many
    ran. A job a transient failure put back for later is left for the test to bring forward."""
    count = 0
    while True:
        due = Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now())
        job = Job.objects.filter(due, state=JobState.QUEUED).order_by("created_at").first()
        if job is None:
            return count
        job_execute(str(job.pk))
        count += 1
