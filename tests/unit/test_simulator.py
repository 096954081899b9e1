"""The simulator driver keeps durable state, enforces capacity and is idempotent by VM id."""

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
