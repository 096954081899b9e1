"""The simulator driver keeps durable state, enforces capacity and is idempotent by VM id."""

import sqlite3
import threading
import time

import pytest

from fabric.drivers import CapacityExceeded, NotFound, PowerState, Unavailable, VMSpec, driver_class, load_driver
from fabric.drivers.simulator import SimulatorDriver


def spec(vm_id="vm-1", cpu=2, cloud="cloud-silver"):
    return VMSpec(
        vm_id=vm_id,
        name=vm_id,
        cloud_id=cloud,
        template_id="tpl-ubuntu-2404",
        cpu=cpu,
        memory_mb=1024,
        disk_gb=30,
        admin_username="canopy",
        admin_password="x",
    )


@pytest.fixture
def sim(tmp_path):
    return SimulatorDriver({"path": str(tmp_path / "sim.sqlite3")})


def test_drivers_load_by_entry_point_name_or_dotted_path(tmp_path):
    assert driver_class("simulator") is SimulatorDriver
    assert driver_class("fabric.drivers.simulator.SimulatorDriver") is SimulatorDriver
    with pytest.raises(ImportError):
        driver_class("no-such-driver")
    assert isinstance(load_driver("simulator", {"path": str(tmp_path / "a.sqlite3")}), SimulatorDriver)


def test_create_is_idempotent_and_state_survives_a_new_driver_instance(sim, tmp_path):
    first = sim.create_vm(spec())
    again = sim.create_vm(spec())
    assert first.fabric_id == again.fabric_id and first.power_state == PowerState.RUNNING
    reopened = SimulatorDriver({"path": str(tmp_path / "sim.sqlite3")})
    assert [v.vm_id for v in reopened.list_vms()] == ["vm-1"]
    assert reopened.operation_count("vm_created") == 1


def test_capacity_is_enforced_with_a_clear_reason(sim):
    sim.create_vm(spec("a", cpu=10))
    with pytest.raises(CapacityExceeded, match=r"Silver.*vCPU"):
        sim.create_vm(spec("b", cpu=10))  # Silver has 16 vCPU
    assert sim.get_cloud("cloud-silver").used.vcpu == 10


def test_power_actions_and_delete(sim):
    sim.create_vm(spec())
    assert sim.stop_vm("vm-1").power_state == PowerState.STOPPED
    assert sim.start_vm("vm-1").power_state == PowerState.RUNNING
    sim.delete_vm("vm-1")
    sim.delete_vm("vm-1")  # deleting what is gone succeeds
    with pytest.raises(NotFound):
        sim.get_vm("vm-1")


def test_injected_failures_happen_once(sim):
    sim.inject_failure("start_vm", "Host unreachable")
    sim.create_vm(spec(cpu=1))
    sim.stop_vm("vm-1")
    with pytest.raises(Unavailable, match="Host unreachable"):
        sim.start_vm("vm-1")
    assert sim.start_vm("vm-1").power_state == PowerState.RUNNING


def in_thread(fn):
    """Run fn in another thread (its own connection, as another worker process would have); return its result."""
    result = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(timeout=30)
    return result[0]


@pytest.fixture
def traced(monkeypatch):
    """Every SQLite connection opened from now on, and the statements each one runs."""
    connections: list[list[str]] = []
    connect = sqlite3.connect

    def tracing_connect(*args, **kwargs):
        conn = connect(*args, **kwargs)
        statements: list[str] = []
        connections.append(statements)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", tracing_connect)
    return connections


def test_one_connection_per_thread_serves_every_driver_of_a_file_one_transaction_per_operation(tmp_path, traced):
    settings = {"path": str(tmp_path / "fresh.sqlite3")}
    SimulatorDriver(settings).create_vm(spec("a"))
    assert len(traced) == 1
    traced[0].clear()

    driver = SimulatorDriver(settings)  # a new driver (e.g. another job) reuses the thread's connection
    driver.create_vm(spec("b"))
    driver.get_cloud("cloud-silver")
    driver.stop_vm("b")
    assert len(traced) == 1
    transactions = [s for s in traced[0] if s.startswith("BEGIN")]
    assert transactions == ["BEGIN IMMEDIATE", "BEGIN", "BEGIN IMMEDIATE"]  # the read takes no write lock
    assert not any("CREATE" in s for s in traced[0])  # the schema was set up once, with the file

    assert in_thread(lambda: len(driver.list_vms())) == 2
    assert len(traced) == 2  # another thread, its own connection


def test_state_and_injected_failures_are_shared_by_connections(sim):
    in_thread(lambda: sim.inject_failure("create_vm", "Host hv-03 is in maintenance."))
    with pytest.raises(Unavailable, match="hv-03"):
        sim.create_vm(spec())
    sim.create_vm(spec())
    assert [v.vm_id for v in in_thread(sim.list_vms)] == ["vm-1"]


def test_with_latency_a_vm_is_provisioning_and_holds_capacity_until_built(tmp_path):
    sim = SimulatorDriver({"path": str(tmp_path / "slow.sqlite3"), "latency": {"create_vm": 1}})
    sim.get_cloud("cloud-silver")
    creating = threading.Thread(target=sim.create_vm, args=(spec(cpu=10),))
    creating.start()
    time.sleep(0.5)
    assert sim.get_vm("vm-1").power_state == PowerState.PROVISIONING
    with pytest.raises(CapacityExceeded):
        sim.create_vm(spec("b", cpu=10))
    creating.join(timeout=10)
    assert sim.get_vm("vm-1").power_state == PowerState.RUNNING


def test_a_deleted_state_file_starts_afresh(sim, tmp_path):
    sim.create_vm(spec())
    for path in tmp_path.glob("sim.sqlite3*"):
        path.unlink()
    assert sim.list_vms() == []
    assert sim.get_cloud("cloud-silver").used.vms == 0
    sim.create_vm(spec())
    assert sim.operation_count("vm_created") == 1


def test_an_operation_slower_than_the_timeout_fails_as_unavailable_without_its_effect(tmp_path):
    path = str(tmp_path / "timeout.sqlite3")
    SimulatorDriver({"path": path}).create_vm(spec())
    slow = SimulatorDriver({"path": path, "latency": {"shutdown_vm": 30}, "timeout": 0.2})
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"timed out after 0\.2 s"):
        slow.shutdown_vm("vm-1")
    assert time.monotonic() - started < 5
    assert slow.get_vm("vm-1").power_state == PowerState.RUNNING
    assert SimulatorDriver({"path": path}).timeout == 60  # the default
