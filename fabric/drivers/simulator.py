"""A simulated fabric that behaves like a real one: durable state, capacity, latency, failures.

State lives in its own SQLite file (settings["path"]), so it survives worker restarts and is
shared by every worker process; writes take SQLite's write lock up front (BEGIN IMMEDIATE), so two
workers can't both take a cloud's last vCPU.

Settings (all optional but `path`):

- ``path``: the state file.
- ``latency``: seconds per operation, a number for all or a dict by operation name
  (``create_vm``, ``start_vm``, ``stop_vm``, ``shutdown_vm``, ``restart_vm``, ``delete_vm``,
  ``describe``). Zero in tests.
- ``topology``: stamps, clouds (with capacity), hardware profiles and templates to start with;
  see DEFAULT_TOPOLOGY. Used only when the state file is new.
- ``failure_rate``: probability (0..1) per operation name that it fails as Unavailable.

Tests inject failures with `inject_failure()`; they are stored in the state file, so a worker
process sees failures injected by the test process.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import (
    Capacity,
    CapacityExceeded,
    CloudInfo,
    DriverError,
    EndpointInfo,
    FabricDriver,
    HardwareProfileInfo,
    InvalidRequest,
    NotFound,
    PowerState,
    StampInfo,
    TemplateInfo,
    Unavailable,
    VMInfo,
    VMSpec,
)

DEFAULT_TOPOLOGY: dict[str, Any] = {
    "stamps": [{"id": "stamp-01", "name": "Stamp 01", "version": "sim-1.0"}],
    "clouds": [
        {
            "id": "cloud-gold",
            "stamp_id": "stamp-01",
            "name": "Gold",
            "capacity": {"vcpu": 64, "memory_mb": 262144, "storage_gb": 4000, "vms": 100},
        },
        {
            "id": "cloud-silver",
            "stamp_id": "stamp-01",
            "name": "Silver",
            "capacity": {"vcpu": 16, "memory_mb": 32768, "storage_gb": 1000, "vms": 20},
        },
    ],
    "hardware_profiles": [
        {"id": "hw-a0", "name": "ExtraSmall", "cpu": 1, "memory_mb": 768},
        {"id": "hw-a1", "name": "Small", "cpu": 1, "memory_mb": 1792},
        {"id": "hw-a2", "name": "Medium", "cpu": 2, "memory_mb": 3584},
        {"id": "hw-a3", "name": "Large", "cpu": 4, "memory_mb": 7168},
    ],
    "templates": [
        {"id": "tpl-ubuntu-2404", "name": "Ubuntu Server 24.04 LTS", "os_type": "linux", "disk_gb": 30},
        {"id": "tpl-ws2022", "name": "Windows Server 2022 Datacenter", "os_type": "windows", "disk_gb": 127},
    ],
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stamps (id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clouds (
    id TEXT PRIMARY KEY, stamp_id TEXT NOT NULL, name TEXT NOT NULL,
    vcpu INTEGER, memory_mb INTEGER, storage_gb INTEGER, vms INTEGER
);
CREATE TABLE IF NOT EXISTS profiles (id TEXT PRIMARY KEY, name TEXT, cpu INTEGER, memory_mb INTEGER);
CREATE TABLE IF NOT EXISTS templates (id TEXT PRIMARY KEY, name TEXT, os_type TEXT, disk_gb INTEGER);
CREATE TABLE IF NOT EXISTS vms (
    vm_id TEXT PRIMARY KEY, fabric_id TEXT UNIQUE NOT NULL, name TEXT NOT NULL, cloud_id TEXT NOT NULL,
    power_state TEXT NOT NULL, cpu INTEGER NOT NULL, memory_mb INTEGER NOT NULL, disk_gb INTEGER NOT NULL,
    template_id TEXT NOT NULL, admin_username TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (op TEXT NOT NULL, remaining INTEGER NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SimulatorDriver(FabricDriver):
    display_name = "Simulator"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        if not settings.get("path"):
            raise InvalidRequest("The simulator needs a 'path' for its state file.")
        self.path = Path(settings["path"])
        self._initialized = False

    # --- plumbing -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the file's write lock from the start."""
        conn = self._connect()
        try:
            if not self._initialized:
                self._init(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"The simulated fabric is not answering ({exc}).") from exc
        finally:
            conn.close()

    def _init(self, conn: sqlite3.Connection) -> None:
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT count(*) FROM stamps").fetchone()[0] == 0:
                topo = self.settings.get("topology") or DEFAULT_TOPOLOGY
                for s in topo["stamps"]:
                    conn.execute("INSERT INTO stamps VALUES (?,?,?)", (s["id"], s["name"], s.get("version", "")))
                for c in topo["clouds"]:
                    cap = c.get("capacity", {})
                    conn.execute(
                        "INSERT INTO clouds VALUES (?,?,?,?,?,?,?)",
                        (
                            c["id"],
                            c["stamp_id"],
                            c["name"],
                            cap.get("vcpu"),
                            cap.get("memory_mb"),
                            cap.get("storage_gb"),
                            cap.get("vms"),
                        ),
                    )
                for p in topo["hardware_profiles"]:
                    conn.execute(
                        "INSERT INTO profiles VALUES (?,?,?,?)",
                        (p["id"], p["name"], p["cpu"], p["memory_mb"]),
                    )
                for t in topo["templates"]:
                    conn.execute(
                        "INSERT INTO templates VALUES (?,?,?,?)",
                        (t["id"], t["name"], t["os_type"], t["disk_gb"]),
                    )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._initialized = True

    def _latency(self, op: str) -> None:
        latency = self.settings.get("latency", 0)
        seconds = float(latency.get(op, 0) if isinstance(latency, Mapping) else latency or 0)
        if seconds > 0:
            time.sleep(seconds)

    def _maybe_fail(self, conn: sqlite3.Connection, op: str) -> None:
        row = conn.execute(
            "SELECT rowid, remaining, message FROM failures WHERE op = ? AND remaining > 0 ORDER BY rowid LIMIT 1",
            (op,),
        ).fetchone()
        if row is not None:
            conn.execute("UPDATE failures SET remaining = remaining - 1 WHERE rowid = ?", (row["rowid"],))
            # Commit the decrement even though the operation fails.
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
            raise Unavailable(row["message"])
        rate = (self.settings.get("failure_rate") or {}).get(op, 0)
        if rate and random.random() < float(rate):  # noqa: S311 - simulation, not security
            raise Unavailable(f"The simulated fabric failed the operation {op} (random failure).")

    def _count(self, conn: sqlite3.Connection, name: str) -> int:
        conn.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1", (name,))
        return int(conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])

    @staticmethod
    def _vm(row: sqlite3.Row) -> VMInfo:
        return VMInfo(
            vm_id=row["vm_id"],
            fabric_id=row["fabric_id"],
            name=row["name"],
            cloud_id=row["cloud_id"],
            power_state=PowerState(row["power_state"]),
            cpu=row["cpu"],
            memory_mb=row["memory_mb"],
            disk_gb=row["disk_gb"],
        )

    def _get(self, conn: sqlite3.Connection, vm_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM vms WHERE vm_id = ?", (vm_id,)).fetchone()
        if row is None:
            raise NotFound(f"The fabric has no virtual machine {vm_id}.")
        return row

    def _cloud(self, conn: sqlite3.Connection, row: sqlite3.Row) -> CloudInfo:
        used = conn.execute(
            "SELECT count(*) AS n, coalesce(sum(cpu),0) AS cpu, coalesce(sum(memory_mb),0) AS mem, "
            "coalesce(sum(disk_gb),0) AS disk FROM vms WHERE cloud_id = ?",
            (row["id"],),
        ).fetchone()
        return CloudInfo(
            id=row["id"],
            stamp_id=row["stamp_id"],
            name=row["name"],
            total=Capacity(row["vcpu"], row["memory_mb"], row["storage_gb"], row["vms"]),
            used=Capacity(used["cpu"], used["mem"], used["disk"], used["n"]),
        )

    # --- test and demo knobs ------------------------------------------------------------------

    def inject_failure(self, op: str, message: str = "Injected failure", times: int = 1) -> None:
        """Make the next `times` calls of operation `op` fail with Unavailable(message)."""
        with self._tx() as conn:
            conn.execute("INSERT INTO failures VALUES (?,?,?)", (op, times, message))

    def operation_count(self, name: str) -> int:
        """How many times a counted event happened (e.g. 'vm_created'), for tests."""
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
            return int(row[0]) if row else 0

    # --- FabricDriver -------------------------------------------------------------------------

    def describe(self) -> EndpointInfo:
        self._latency("describe")
        with self._tx() as conn:
            self._maybe_fail(conn, "describe")
            return EndpointInfo(
                stamps=[StampInfo(r["id"], r["name"], r["version"]) for r in conn.execute("SELECT * FROM stamps")],
                clouds=[self._cloud(conn, r) for r in conn.execute("SELECT * FROM clouds ORDER BY name").fetchall()],
                hardware_profiles=[
                    HardwareProfileInfo(r["id"], r["name"], r["cpu"], r["memory_mb"])
                    for r in conn.execute("SELECT * FROM profiles ORDER BY cpu, memory_mb")
                ],
                templates=[
                    TemplateInfo(r["id"], r["name"], r["os_type"], r["disk_gb"])
                    for r in conn.execute("SELECT * FROM templates ORDER BY name")
                ],
            )

    def get_cloud(self, cloud_id: str) -> CloudInfo:
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM clouds WHERE id = ?", (cloud_id,)).fetchone()
            if row is None:
                raise NotFound(f"The fabric has no cloud {cloud_id}.")
            return self._cloud(conn, row)

    def create_vm(self, spec: VMSpec) -> VMInfo:
        with self._tx() as conn:
            existing = conn.execute("SELECT * FROM vms WHERE vm_id = ?", (spec.vm_id,)).fetchone()
            if existing is None:
                self._maybe_fail(conn, "create_vm")
                cloud = conn.execute("SELECT * FROM clouds WHERE id = ?", (spec.cloud_id,)).fetchone()
                if cloud is None:
                    raise InvalidRequest(f"The fabric has no cloud {spec.cloud_id}.")
                if conn.execute("SELECT 1 FROM templates WHERE id = ?", (spec.template_id,)).fetchone() is None:
                    raise InvalidRequest(f"The fabric has no template {spec.template_id}.")
                info = self._cloud(conn, cloud)
                self._check_capacity(info, spec)
                seq = self._count(conn, "vm_created")
                conn.execute(
                    "INSERT INTO vms VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        spec.vm_id,
                        f"sim-vm-{seq:06d}",
                        spec.name,
                        spec.cloud_id,
                        PowerState.PROVISIONING,
                        spec.cpu,
                        spec.memory_mb,
                        spec.disk_gb,
                        spec.template_id,
                        spec.admin_username,
                        time.time(),
                    ),
                )
        # The VM exists (and holds capacity) while it is being built: a worker killed here leaves
        # it provisioning, and the next create_vm with the same id finishes it.
        self._latency("create_vm")
        with self._tx() as conn:
            row = self._get(conn, spec.vm_id)
            if row["power_state"] == PowerState.PROVISIONING:
                state = PowerState.RUNNING if spec.start else PowerState.STOPPED
                conn.execute("UPDATE vms SET power_state = ? WHERE vm_id = ?", (state, spec.vm_id))
            return self._vm(self._get(conn, spec.vm_id))

    @staticmethod
    def _check_capacity(cloud: CloudInfo, spec: VMSpec) -> None:
        needs = (
            ("vms", 1, "virtual machines", ""),
            ("vcpu", spec.cpu, "vCPU", ""),
            ("memory_mb", spec.memory_mb, "memory", " MB"),
            ("storage_gb", spec.disk_gb, "storage", " GB"),
        )
        for attr, amount, label, unit in needs:
            total, used = getattr(cloud.total, attr), getattr(cloud.used, attr) or 0
            if total is not None and used + amount > total:
                raise CapacityExceeded(
                    f"Cloud '{cloud.name}' is out of capacity: it needs {amount}{unit} {label}, "
                    f"{max(0, total - used)}{unit} of {total}{unit} are free."
                )

    def get_vm(self, vm_id: str) -> VMInfo:
        with self._tx() as conn:
            return self._vm(self._get(conn, vm_id))

    def list_vms(self, cloud_id: str | None = None) -> list[VMInfo]:
        with self._tx() as conn:
            if cloud_id is None:
                rows = conn.execute("SELECT * FROM vms ORDER BY created").fetchall()
            else:
                rows = conn.execute("SELECT * FROM vms WHERE cloud_id = ? ORDER BY created", (cloud_id,)).fetchall()
            return [self._vm(r) for r in rows]

    def _power(self, op: str, vm_id: str, state: PowerState) -> VMInfo:
        with self._tx() as conn:
            self._get(conn, vm_id)
            self._maybe_fail(conn, op)
        self._latency(op)
        with self._tx() as conn:
            row = self._get(conn, vm_id)
            if row["power_state"] == PowerState.PROVISIONING:
                raise DriverError("The virtual machine is still being provisioned.")
            conn.execute("UPDATE vms SET power_state = ? WHERE vm_id = ?", (state, vm_id))
            return self._vm(self._get(conn, vm_id))

    def start_vm(self, vm_id: str) -> VMInfo:
        return self._power("start_vm", vm_id, PowerState.RUNNING)

    def stop_vm(self, vm_id: str) -> VMInfo:
        return self._power("stop_vm", vm_id, PowerState.STOPPED)

    def shutdown_vm(self, vm_id: str) -> VMInfo:
        return self._power("shutdown_vm", vm_id, PowerState.STOPPED)

    def restart_vm(self, vm_id: str) -> VMInfo:
        return self._power("restart_vm", vm_id, PowerState.RUNNING)

    def delete_vm(self, vm_id: str) -> None:
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM vms WHERE vm_id = ?", (vm_id,)).fetchone() is None:
                return
            self._maybe_fail(conn, "delete_vm")
        self._latency("delete_vm")
        with self._tx() as conn:
            conn.execute("DELETE FROM vms WHERE vm_id = ?", (vm_id,))
