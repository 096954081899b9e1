"""Real Celery worker processes against the pytest-django test database (PostgreSQL + Redis).

Each test gets its own queue: the test process sends to it (Celery's default queue is switched for
the test) and only the workers the test starts consume it, so runs in parallel don't steal each
other's messages. Workers run in their own session so a SIGKILL of the group takes the pool child
too, as when a machine dies.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from fabric.drivers.simulator import SimulatorDriver
from fabric.models import FabricEndpoint, VirtualMachine
from fabric.services import vm_create
from portal.celery import app as celery_app
from portal.models import Job
from tenants.models import Subscription
from tests import factories
from tests.integration.processes import Process, require_postgres_and_redis, worker_process


@pytest.fixture
def celery_queue() -> Iterator[str]:
    """A queue of this test alone; the test process's messages go to it while the test runs."""
    require_postgres_and_redis()
    queue = f"canopy-test-{uuid.uuid4().hex[:12]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        celery_app.conf.task_default_queue = previous
        with contextlib.suppress(Exception), celery_app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


@pytest.fixture
def start_worker(transactional_db, celery_queue, tmp_path) -> Iterator[Callable[[str], Process]]:
    """Start a real Celery worker (prefork, concurrency 1) on this test's queue; all are killed at the end.

    Depends on transactional_db so the workers are gone before the database is flushed.
    """
    started: list[Process] = []
    data_dir = tmp_path / "worker-data"
    data_dir.mkdir()

    def start(name: str = "worker") -> Process:
        process = worker_process(name, queue=celery_queue, data_dir=data_dir, log_dir=tmp_path).start()
        started.append(process)
        process.wait_for_log("ready.")
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@dataclass
class World:
    """A simulator endpoint, a public plan on its Gold cloud and one tenant's subscription."""

    endpoint: FabricEndpoint
    subscription: Subscription

    @property
    def driver(self) -> SimulatorDriver:
        return SimulatorDriver(self.endpoint.settings)

    def quick_create(self, name: str = "web01") -> tuple[VirtualMachine, Job]:
        template, size = factories.catalog(self.endpoint)
        return vm_create(
            subscription=self.subscription,
            name=name,
            template=template,
            hardware_profile=size,
            admin_password=factories.VM_PASSWORD,
        )

    def fabric_vm_states(self, vm: VirtualMachine) -> list[str]:
        """Power states of the fabric VMs carrying this portal VM's id (one, if nothing doubled it)."""
        return [str(info.power_state) for info in self.driver.list_vms() if info.vm_id == str(vm.pk)]


@pytest.fixture
def make_world(transactional_db, celery_queue, tmp_path) -> Callable[..., World]:
    """Build the fabric and a subscription; call it before starting workers (it syncs in-process)."""

    def build(*, latency: float | dict[str, float] = 0, max_vms: int = 10) -> World:
        endpoint = factories.make_endpoint(tmp_path, settings={"latency": latency})
        plan = factories.make_plan(endpoint, max_vms=max_vms)
        owner = factories.UserFactory()
        return World(endpoint=endpoint, subscription=factories.make_subscription(owner, plan))

    return build
