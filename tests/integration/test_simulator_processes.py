"""The simulator shared by several worker processes: its capacity check holds across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from fabric.drivers.simulator import SimulatorDriver
from tests.integration.processes import BASE_DIR

pytestmark = pytest.mark.worker

# Each process waits for the same instant, then creates one VM and prints what happened.
CHILD = """
import json, sys, time
from fabric.drivers import CapacityExceeded, VMSpec
from fabric.drivers.simulator import SimulatorDriver

settings, vm_id, start_at = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
driver = SimulatorDriver(settings)
time.sleep(max(0.0, start_at - time.time()))
spec = VMSpec(vm_id=vm_id, name="vm", cloud_id="small", template_id="tpl", cpu=1, memory_mb=512,
              disk_gb=10, admin_username="canopy", admin_password="x")
try:
    driver.create_vm(spec)
    print("created")
except CapacityExceeded:
    print("capacity")
"""

TOPOLOGY = {
    "stamps": [{"id": "s1", "name": "S1"}],
    "clouds": [{"id": "small", "stamp_id": "s1", "name": "Small", "capacity": {"vcpu": 64, "vms": 3}}],
    "hardware_profiles": [{"id": "hw", "name": "Small", "cpu": 1, "memory_mb": 512}],
    "templates": [{"id": "tpl", "name": "Linux", "os_type": "linux", "disk_gb": 10}],
}


def test_concurrent_processes_never_overfill_a_cloud(tmp_path):
    settings = {"path": str(tmp_path / "sim.sqlite3"), "latency": {"create_vm": 0.2}, "topology": TOPOLOGY}
    driver = SimulatorDriver(settings)
    assert driver.get_cloud("small").total.vms == 3

    start_at = time.time() + 3  # every child imported and waiting by then
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(settings), str(uuid.uuid4()), str(start_at)],
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        outcomes.append(out.strip())

    assert sorted(outcomes) == ["capacity"] * 5 + ["created"] * 3
    assert len(driver.list_vms("small")) == 3
    assert driver.get_cloud("small").used.vms == 3
