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
- ``failure_rate``: probability (0..1) that an operation fails as Unavailable: a number for all or
  a dict by operation name.
- ``timeout`` (every driver's): an operation whose latency is longer fails as Unavailable after
  that many seconds, without its effect.

Settings are checked at registration (``check_settings``): the state file must be under the data
directory, numbers in range, the topology well formed.

Tests inject failures with `inject_failure()`; they are stored in the state file, so a worker
process sees failures injected by the test process.

Cost per operation: each thread keeps one connection per state file (checked against the file on
disk, so a file deleted or replaced is opened anew and set up again), a new connection checks the
schema with one read, and an operation without latency is one transaction. With latency, create, power actions
and delete stay two transactions around the wait, so a worker killed mid-create leaves the VM
provisioning (holding capacity) for the next attempt to finish.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import (
    NUMBER,
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
    SettingField,
    StampInfo,
    TemplateInfo,
    Unavailable,
    VMInfo,
    VMSpec,
    type_error,
)

#: Operations that take `latency` and `failure_rate` settings.
OPERATIONS = ("create_vm", "start_vm", "stop_vm", "shutdown_vm", "restart_vm", "delete_vm", "describe")

# What each list of a topology holds: field -> JSON types.
_TOPOLOGY_ITEMS: dict[str, dict[str, tuple[type, ...]]] = {
    "stamps": {"id": (str,), "name": (str,)},
    "clouds": {"id": (str,), "stamp_id": (str,), "name": (str,)},
    "hardware_profiles": {"id": (str,), "name": (str,), "cpu": (int,), "memory_mb": (int,)},
    "templates": {"id": (str,), "name": (str,), "os_type": (str,), "disk_gb": (int,)},
}

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
CREATE INDEX IF NOT EXISTS vms_cloud ON vms (cloud_id);
"""
# The schema's last object: a file that has it is set up (schema and topology are one transaction).
_SCHEMA_MARK = "vms_cloud"

# Connections a thread keeps open, by state file; the least recently used beyond this are closed
# (a test run goes through hundreds of state files).
_MAX_OPEN_FILES = 8
_local = threading.local()


class _Open:
    """A thread's connection to one state file, valid while the file on disk is the one it opened."""

    def __init__(self, conn: sqlite3.Connection, identity: tuple[int, int]) -> None:
        self.conn, self.identity, self.pid = conn, identity, os.getpid()

    def close(self) -> None:
        if self.pid == os.getpid():  # never close what a parent process opened before forking
            self.conn.close()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _per_operation(value: Any, low: float, high: float | None) -> str | None:
    """Why a number-or-dict-by-operation setting is wrong (latency, failure_rate), or None."""
    items = value.items() if isinstance(value, Mapping) else [("", value)]
    for op, number in items:
        if op and op not in OPERATIONS:
            return f"Unknown operation '{op}'; operations: {', '.join(OPERATIONS)}."
        where = f" ({op})" if op else ""
        if (problem := type_error(number, NUMBER)) is not None:
            return problem[:-1] + where + "."
        if number < low or (high is not None and number > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            return f"Must be {bounds}{where}."
    return None


def _topology_error(topology: Mapping[str, Any]) -> str | None:
    """Why a topology can't seed a simulator (the first problem found), or None."""
    for key, fields in _TOPOLOGY_ITEMS.items():
        items = topology.get(key)
        if not isinstance(items, list):
            return f"'{key}' must be a list."
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                return f"{key}[{i}] must be an object."
            for name, types in fields.items():
                if (problem := type_error(item.get(name), types)) is not None:
                    return f"{key}[{i}].{name}: {problem}"
    stamps = {s["id"] for s in topology["stamps"]}
    for i, cloud in enumerate(topology["clouds"]):
        if cloud["stamp_id"] not in stamps:
            return f"clouds[{i}].stamp_id: no stamp '{cloud['stamp_id']}'."
        capacity = cloud.get("capacity", {})
        if not isinstance(capacity, Mapping):
            return f"clouds[{i}].capacity must be an object."
        for name, amount in capacity.items():
            if name not in ("vcpu", "memory_mb", "storage_gb", "vms"):
                return f"clouds[{i}].capacity: unknown amount '{name}'."
            if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount < 0):
                return f"clouds[{i}].capacity.{name} must be a whole number ≥ 0 or null (unlimited)."
    return None


class SimulatorDriver(FabricDriver):
    display_name = "Simulator"
    settings_schema = (
        SettingField("path", (str,), required=True, help="The state file, under the data directory."),
        SettingField("latency", (*NUMBER, dict), help="Seconds per operation: a number, or one per operation."),
        SettingField("failure_rate", (*NUMBER, dict), help="Probability (0..1) that an operation fails."),
        SettingField("topology", (dict,), help="Stamps, clouds, sizes and templates of a new state file."),
    )

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any], *, data_dir: Path) -> dict[str, str]:
        errors = super().check_settings(settings, data_dir=data_dir)
        if "path" not in errors and not Path(settings["path"]).resolve().is_relative_to(data_dir.resolve()):
            errors["path"] = f"The state file must be under the data directory ({data_dir})."
        if "latency" not in errors and (problem := _per_operation(settings.get("latency") or 0, 0, None)):
            errors["latency"] = problem
        if "failure_rate" not in errors and (problem := _per_operation(settings.get("failure_rate") or 0, 0, 1)):
            errors["failure_rate"] = problem
        if "topology" not in errors and settings.get("topology") and (problem := _topology_error(settings["topology"])):
            errors["topology"] = problem
        return errors

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        if not settings.get("path"):
            raise InvalidRequest("The simulator needs a 'path' for its state file.")
        self.path = Path(settings["path"])

    # --- plumbing -----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection to the state file, opened (and the file set up) when needed."""
        opened: OrderedDict[str, _Open] = _local.__dict__.setdefault("opened", OrderedDict())
        key = str(self.path)
        current = opened.get(key)
        identity = _identity(self.path)
        if current is not None and current.identity == identity and current.pid == os.getpid():
            opened.move_to_end(key)
            return current.conn
        if current is not None:
            del opened[key]
            current.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=min(30, self.timeout), isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # Durable across processes and their crashes (WAL); only an OS crash may lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._init(conn)
        except BaseException:
            conn.close()
            raise
        opened[key] = _Open(conn, _identity(self.path) or (0, 0))
        while len(opened) > _MAX_OPEN_FILES:
            opened.popitem(last=False)[1].close()
        return conn

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; a write holds the file's write lock from the start (BEGIN IMMEDIATE)."""
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._forget()  # start the next operation on a fresh connection
            raise Unavailable(f"The simulated fabric is not answering ({exc}).") from exc

    def _forget(self) -> None:
        opened: OrderedDict[str, _Open] = _local.__dict__.get("opened", OrderedDict())
        current = opened.pop(str(self.path), None)
        if current is not None:
            current.close()

    def _init(self, conn: sqlite3.Connection) -> None:
        """Create the schema and the topology of a new file (one read when the file has them)."""
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (_SCHEMA_MARK,)).fetchone():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if conn.execute("SELECT count(*) FROM stamps").fetchone()[0] == 0:
                self._seed(conn, self.settings.get("topology") or DEFAULT_TOPOLOGY)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _seed(conn: sqlite3.Connection, topo: Mapping[str, Any]) -> None:
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
            conn.execute("INSERT INTO profiles VALUES (?,?,?,?)", (p["id"], p["name"], p["cpu"], p["memory_mb"]))
        for t in topo["templates"]:
            conn.execute("INSERT INTO templates VALUES (?,?,?,?)", (t["id"], t["name"], t["os_type"], t["disk_gb"]))

    def _seconds(self, op: str) -> float:
        latency = self.settings.get("latency", 0)
        return float(latency.get(op, 0) if isinstance(latency, Mapping) else latency or 0)

    def _latency(self, op: str) -> None:
        """Wait as long as the operation takes, but no longer than the endpoint's timeout: a call
        that would take longer fails as Unavailable (like a real fabric that doesn't answer), and the
        operation's effect is not applied."""
        seconds = self._seconds(op)
        if seconds > self.timeout:
            time.sleep(self.timeout)
            raise Unavailable(f"The fabric did not finish {op} in time (timed out after {self.timeout:g} s).")
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
        rate = self.settings.get("failure_rate") or 0
        if isinstance(rate, Mapping):
            rate = rate.get(op, 0)
        if rate and random.random() < float(rate):  # noqa: S311 - simulation, not security
            raise Unavailable(f"The simulated fabric failed the operation {op} (random failure).")

    def _count(self, conn: sqlite3.Connection, name: str) -> int:
        sql = "INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value"
        return int(conn.execute(sql, (name,)).fetchone()[0])

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
        with self._tx(write=False) as conn:
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
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT * FROM clouds WHERE id = ?", (cloud_id,)).fetchone()
            if row is None:
                raise NotFound(f"The fabric has no cloud {cloud_id}.")
            return self._cloud(conn, row)

    def create_vm(self, spec: VMSpec) -> VMInfo:
        final = PowerState.RUNNING if spec.start else PowerState.STOPPED
        wait = self._seconds("create_vm") > 0
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM vms WHERE vm_id = ?", (spec.vm_id,)).fetchone()
            if row is None:
                self._maybe_fail(conn, "create_vm")
                cloud = conn.execute("SELECT * FROM clouds WHERE id = ?", (spec.cloud_id,)).fetchone()
                if cloud is None:
                    raise InvalidRequest(f"The fabric has no cloud {spec.cloud_id}.")
                if conn.execute("SELECT 1 FROM templates WHERE id = ?", (spec.template_id,)).fetchone() is None:
                    raise InvalidRequest(f"The fabric has no template {spec.template_id}.")
                self._check_capacity(self._cloud(conn, cloud), spec)
                seq = self._count(conn, "vm_created")
                row = conn.execute(
                    "INSERT INTO vms VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING *",
                    (
                        spec.vm_id,
                        f"sim-vm-{seq:06d}",
                        spec.name,
                        spec.cloud_id,
                        PowerState.PROVISIONING if wait else final,
                        spec.cpu,
                        spec.memory_mb,
                        spec.disk_gb,
                        spec.template_id,
                        spec.admin_username,
                        time.time(),
                    ),
                ).fetchone()
            if row["power_state"] != PowerState.PROVISIONING or not wait:
                return self._built(conn, row, final)
        # The VM exists (and holds capacity) while it is being built: a worker killed here leaves
        # it provisioning, and the next create_vm with the same id finishes it.
        self._latency("create_vm")
        with self._tx() as conn:
            return self._built(conn, self._get(conn, spec.vm_id), final)

    def _built(self, conn: sqlite3.Connection, row: sqlite3.Row, state: PowerState) -> VMInfo:
        """A VM still provisioning is finished in `state`; one that is built is returned as it is."""
        if row["power_state"] == PowerState.PROVISIONING:
            row = conn.execute(
                "UPDATE vms SET power_state = ? WHERE vm_id = ? RETURNING *", (state, row["vm_id"])
            ).fetchone()
        return self._vm(row)

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
        with self._tx(write=False) as conn:
            return self._vm(self._get(conn, vm_id))

    def list_vms(self, cloud_id: str | None = None) -> list[VMInfo]:
        with self._tx(write=False) as conn:
            if cloud_id is None:
                rows = conn.execute("SELECT * FROM vms ORDER BY created").fetchall()
            else:
                rows = conn.execute("SELECT * FROM vms WHERE cloud_id = ? ORDER BY created", (cloud_id,)).fetchall()
            return [self._vm(r) for r in rows]

    def _power(self, op: str, vm_id: str, state: PowerState) -> VMInfo:
        with self._tx() as conn:
            self._get(conn, vm_id)
            self._maybe_fail(conn, op)
            if not self._seconds(op):
                return self._set_power(conn, vm_id, state)
        self._latency(op)
        with self._tx() as conn:
            return self._set_power(conn, vm_id, state)

    def _set_power(self, conn: sqlite3.Connection, vm_id: str, state: PowerState) -> VMInfo:
        if self._get(conn, vm_id)["power_state"] == PowerState.PROVISIONING:
            raise DriverError("The virtual machine is still being provisioned.")
        return self._vm(
            conn.execute("UPDATE vms SET power_state = ? WHERE vm_id = ? RETURNING *", (state, vm_id)).fetchone()
        )

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
            if not self._seconds("delete_vm"):
                conn.execute("DELETE FROM vms WHERE vm_id = ?", (vm_id,))
                return
        self._latency("delete_vm")
        with self._tx() as conn:
            conn.execute("DELETE FROM vms WHERE vm_id = ?", (vm_id,))
