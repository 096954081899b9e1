"""Real Celery worker and beat processes against the pytest-django test database (PostgreSQL + Redis).

Each test gets its own queue: the test process sends to it (Celery's default queue is switched for
the test) and only the workers the test starts consume it, so runs in parallel don't steal each
other's messages. Workers run in their own session so a SIGKILL of the group takes the pool child
too, as when a machine dies. A test may also run on the embedded default's filesystem broker (the
`broker` fixture), whose messages live in a data dir of the test's own.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fabric.drivers.simulator import SimulatorDriver
from fabric.models import FabricEndpoint, VirtualMachine
from portal.celery import app as celery_app
from portal.models import Job
from portal.settings.base import filesystem_broker_options
from tenants.models import Subscription
from tests import factories
from tests.integration.processes import (
    Broker,
    Process,
    beat_process,
    require_postgres_and_redis,
    worker_process,
)


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
def worker_data_dir(tmp_path) -> Path:
    """CANOPY_DATA_DIR of this test's processes: the filesystem broker's messages, beat's schedule."""
    path = tmp_path / "worker-data"
    path.mkdir()
    return path


@pytest.fixture(params=["redis", "filesystem"])
def broker(request, celery_queue, worker_data_dir, monkeypatch) -> Broker:
    """Each broker in turn: Redis (production) and the filesystem (the embedded default).

    On the filesystem broker the test process sends there too (jobs it creates, sweeps it runs),
    into the same data dir as the processes it starts.
    """
    if request.param == "filesystem":
        monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")  # Celery reads it before its settings
        monkeypatch.setitem(celery_app.conf, "broker_transport_options", filesystem_broker_options(worker_data_dir))
        # Forget the pooled Redis connections (as Celery does after a fork), so the next message
        # connects to the filesystem broker; the Redis ones are put back after the test.
        monkeypatch.setattr(celery_app, "_pool", None)
        monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    return request.param


@pytest.fixture
def start_worker(transactional_db, celery_queue, worker_data_dir, tmp_path) -> Iterator[Callable[..., Process]]:
    """Start a real Celery worker (concurrency 1 unless told) on this test's queue; all are killed at the end.

    Its pool is the one the settings choose for the broker. Depends on transactional_db so the
    workers are gone before the database is flushed.
    """
    started: list[Process] = []

    def start(name: str = "worker", *, broker: Broker = "redis", concurrency: int = 1) -> Process:
        process = worker_process(
            name, queue=celery_queue, data_dir=worker_data_dir, log_dir=tmp_path, broker=broker, concurrency=concurrency
        ).start()
        started.append(process)
        process.wait_for_log("ready.")
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture
def start_beat(transactional_db, celery_queue, worker_data_dir, tmp_path) -> Iterator[Callable[..., Process]]:
    """Start `celery beat` on this test's queue, sweeping every `sweep_seconds`; stopped at the end."""
    started: list[Process] = []

    def start(*, broker: Broker = "redis", sweep_seconds: float = 0.5) -> Process:
        process = beat_process(
            "beat",
            queue=celery_queue,
            data_dir=worker_data_dir,
            log_dir=tmp_path,
            broker=broker,
            CANOPY_JOB_SWEEP_SECONDS=str(sweep_seconds),
        ).start()
        started.append(process)
        process.wait_for_log("beat: Starting...")
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
        return factories.make_vm_job(self.subscription, self.endpoint, name)

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
