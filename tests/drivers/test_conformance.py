"""The driver conformance suite: what every fabric driver must do, whatever its fabric.

Each entry of DRIVERS builds a driver on a fresh fabric that has at least one template, one hardware
profile and one cloud with a finite number of VMs (kept small: the capacity test fills it). A new
driver is admitted by adding its factory here (the simulator is the first); the tests speak only the
FabricDriver interface.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from fabric.drivers import (
    CapacityExceeded,
    FabricDriver,
    InvalidRequest,
    NotFound,
    PowerState,
    VMSpec,
)
from fabric.drivers.simulator import DEFAULT_TOPOLOGY, SimulatorDriver

SMALL_TOPOLOGY = {
    **DEFAULT_TOPOLOGY,
    "clouds": [
        *DEFAULT_TOPOLOGY["clouds"],
        {"id": "cloud-tiny", "stamp_id": "stamp-01", "name": "Tiny", "capacity": {"vms": 2}},
    ],
}


def simulator(tmp_path: Path) -> FabricDriver:
    return SimulatorDriver({"path": str(tmp_path / "conformance.sqlite3"), "topology": SMALL_TOPOLOGY})


DRIVERS: dict[str, Callable[[Path], FabricDriver]] = {"simulator": simulator}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request, tmp_path) -> FabricDriver:
    return DRIVERS[request.param](tmp_path)


def spec(driver: FabricDriver, *, cloud_id: str | None = None, start: bool = True, **changes) -> VMSpec:
    """A VM of the fabric's smallest size from its first template, in the given (or the roomiest) cloud."""
    info = driver.describe()
    size = min(info.hardware_profiles, key=lambda p: (p.cpu, p.memory_mb))
    template = info.templates[0]
    if cloud_id is None:
        cloud_id = max(info.clouds, key=lambda c: c.total.vms if c.total.vms is not None else 10**9).id
    values = {
        "vm_id": str(uuid.uuid4()),
        "name": "conformance",
        "cloud_id": cloud_id,
        "template_id": template.id,
        "cpu": size.cpu,
        "memory_mb": size.memory_mb,
        "disk_gb": template.disk_gb,
        "admin_username": "canopy",
        "admin_password": "Conformance-1!",
        "start": start,
        **changes,
    }
    return VMSpec(**values)


def test_describe_reports_stamps_clouds_and_catalog(driver):
    info = driver.describe()
    stamps = {s.id for s in info.stamps}
    assert stamps and info.templates and info.hardware_profiles and info.clouds
    for cloud in info.clouds:
        assert cloud.stamp_id in stamps
        for amount in ("vcpu", "memory_mb", "storage_gb", "vms"):
            total, used = getattr(cloud.total, amount), getattr(cloud.used, amount)
            assert used is None or total is None or 0 <= used <= total
        assert driver.get_cloud(cloud.id) == cloud
    assert driver.timeout > 0


def test_create_is_idempotent_by_vm_id(driver):
    vm_spec = spec(driver)
    used_before = driver.get_cloud(vm_spec.cloud_id).used.vms
    first = driver.create_vm(vm_spec)
    again = driver.create_vm(vm_spec)
    assert first == again and first.fabric_id and first.power_state == PowerState.RUNNING
    assert (first.vm_id, first.cloud_id, first.cpu) == (vm_spec.vm_id, vm_spec.cloud_id, vm_spec.cpu)
    assert [vm.vm_id for vm in driver.list_vms()].count(vm_spec.vm_id) == 1
    assert driver.get_cloud(vm_spec.cloud_id).used.vms == (used_before or 0) + 1


def test_create_without_start_leaves_it_stopped(driver):
    assert driver.create_vm(spec(driver, start=False)).power_state == PowerState.STOPPED


def test_get_and_list_find_the_vm_in_its_cloud(driver):
    vm = driver.create_vm(spec(driver))
    assert driver.get_vm(vm.vm_id) == vm
    assert vm.vm_id in {v.vm_id for v in driver.list_vms(cloud_id=vm.cloud_id)}
    others = [c.id for c in driver.describe().clouds if c.id != vm.cloud_id]
    for cloud_id in others:
        assert vm.vm_id not in {v.vm_id for v in driver.list_vms(cloud_id=cloud_id)}


def test_power_operations_change_the_power_state_and_repeat_harmlessly(driver):
    vm_id = driver.create_vm(spec(driver)).vm_id
    steps = [
        (driver.stop_vm, PowerState.STOPPED),
        (driver.stop_vm, PowerState.STOPPED),
        (driver.start_vm, PowerState.RUNNING),
        (driver.start_vm, PowerState.RUNNING),
        (driver.shutdown_vm, PowerState.STOPPED),
        (driver.start_vm, PowerState.RUNNING),
        (driver.restart_vm, PowerState.RUNNING),
    ]
    for operation, state in steps:
        assert operation(vm_id).power_state == state, operation.__name__
        assert driver.get_vm(vm_id).power_state == state


def test_delete_is_idempotent_and_frees_the_capacity(driver):
    vm_spec = spec(driver)
    used_before = driver.get_cloud(vm_spec.cloud_id).used
    driver.create_vm(vm_spec)
    driver.delete_vm(vm_spec.vm_id)
    driver.delete_vm(vm_spec.vm_id)
    with pytest.raises(NotFound):
        driver.get_vm(vm_spec.vm_id)
    assert driver.get_cloud(vm_spec.cloud_id).used == used_before


@pytest.mark.parametrize("operation", ["get_vm", "start_vm", "stop_vm", "shutdown_vm", "restart_vm"])
def test_unknown_vm_is_not_found(driver, operation):
    with pytest.raises(NotFound):
        getattr(driver, operation)(str(uuid.uuid4()))


def test_unknown_cloud_is_not_found(driver):
    with pytest.raises(NotFound):
        driver.get_cloud("no-such-cloud")


def test_unknown_template_or_cloud_is_an_invalid_request_and_builds_nothing(driver):
    for bad in (spec(driver, template_id="no-such-template"), spec(driver, cloud_id="no-such-cloud")):
        with pytest.raises(InvalidRequest):
            driver.create_vm(bad)
        with pytest.raises(NotFound):
            driver.get_vm(bad.vm_id)


def test_a_full_cloud_refuses_with_capacity_exceeded(driver):
    cloud = min(
        (c for c in driver.describe().clouds if c.total.vms is not None), key=lambda c: c.total.vms - (c.used.vms or 0)
    )
    room = cloud.total.vms - (cloud.used.vms or 0)
    assert room <= 10, "the conformance fabric needs a small cloud"
    for _ in range(room):
        driver.create_vm(spec(driver, cloud_id=cloud.id))
    refused = spec(driver, cloud_id=cloud.id)
    with pytest.raises(CapacityExceeded):
        driver.create_vm(refused)
    with pytest.raises(NotFound):
        driver.get_vm(refused.vm_id)
    assert driver.get_cloud(cloud.id).used.vms == cloud.total.vms
