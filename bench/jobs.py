"""Benchmark provisioning throughput: VM create jobs per second through real workers, beside no-op tasks.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python bench/jobs.py [--sizes 200 1000]

For each size N, on a scratch PostgreSQL database and a Redis queue of its own (both removed at the
end):

1. baseline: N no-op tasks (bench/noop_tasks.py) are queued, then two worker processes start
   (`celery -A portal worker --pool prefork --concurrency 1`, production settings) and run them;
   each execution notes its time in Redis: no-op tasks/s = N / (last - first).
2. jobs: a simulator endpoint (zero latency, unlimited capacity), a plan with unlimited quotas and
   a few subscriptions are seeded, N VMs are quick-created through `fabric.services.vm_create` with
   no worker running (jobs queued, messages on the queue), ANALYZE runs, then two fresh workers with
   the same settings start: jobs/s = N / (last Job.finished_at - first Job.started_at).

It prints both with their ratio (the target is 0.3), the PostgreSQL sessions the workers opened,
then the SQL statements one vm_create and a create job issue in this process (CaptureQueriesContext;
"job a/b": the first job of a process, which reads its cloud's usage back, and one in a burst,
which leaves that to the coalesced read; in a worker each task adds the health check of its
reused connection).
Worker logs stay in the temporary directory if a run fails (--keep keeps them anyway).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.3
# Capacity keys left out: the simulated cloud has no limit, so the fabric never refuses a create.
UNLIMITED_TOPOLOGY = {
    "stamps": [{"id": "stamp-01", "name": "Stamp 01"}],
    "clouds": [{"id": "cloud-bench", "stamp_id": "stamp-01", "name": "Bench", "capacity": {}}],
    "hardware_profiles": [{"id": "hw-a1", "name": "Small", "cpu": 1, "memory_mb": 1792}],
    "templates": [{"id": "tpl-linux", "name": "Linux", "os_type": "linux", "disk_gb": 30}],
}
SUBSCRIPTIONS = 10


def setup_django(tmp: Path, queue: str) -> None:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("bench/jobs.py needs DATABASE_URL=postgres://... (it creates a scratch database next to it)")
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        sys.exit("bench/jobs.py needs CELERY_BROKER_URL=redis://... (it uses a queue of its own)")
    os.environ["CANOPY_DATA_DIR"] = str(tmp)
    os.environ["CANOPY_CELERY_QUEUE"] = queue
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.staff"  # what workers run with by default
    import django

    django.setup()


class Workers:
    """Two `celery worker` processes (prefork, concurrency 1) on the bench's queue, each in its own session."""

    def __init__(self, tmp: Path, queue: str, database_url: str, label: str) -> None:
        from django.conf import settings

        self.tmp, self.queue, self.label = tmp, queue, label
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "PYTHONPATH": str(ROOT),  # for --include bench.noop_tasks
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 2) -> None:
        for i in range(count):
            argv = [
                *(sys.executable, "-m", "celery", "-A", "portal", "worker"),
                *("--pool", "prefork", "--concurrency", "1", "-Q", self.queue),
                *("-n", f"bench-{self.label}-{i}-{uuid.uuid4().hex[:6]}@%h"),
                *("--include", "bench.noop_tasks", "-l", "info"),
            ]
            with open(self.tmp / f"worker-{self.label}-{i}.log", "ab") as log:
                self.procs.append(
                    subprocess.Popen(
                        argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited with {proc.returncode}; see the logs in {self.tmp}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs = []


def wait_done(done: Callable[[], int], total: int, workers: Workers, *, stall: float = 60) -> None:
    """Poll `done()` until it reaches `total`; give up when it makes no progress for `stall` seconds."""
    last, last_change = -1, time.monotonic()
    while (count := done()) < total:
        workers.check_alive()
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > stall:
            raise RuntimeError(f"stuck at {count}/{total} for {stall:.0f}s; see the worker logs in {workers.tmp}")
        time.sleep(0.25)


def bench_noop(n: int, tmp: Path, queue: str, database_url: str, label: str) -> float:
    """Tasks per second of N queued no-op tasks through two workers, first to last execution."""
    import redis
    from django.conf import settings

    from bench.noop_tasks import noop

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    key = f"{queue}:noop-times"
    for _ in range(n):
        noop.apply_async(args=[key], queue=queue)
    workers = Workers(tmp, queue, database_url, f"noop-{label}")
    workers.start()
    try:
        wait_done(lambda: int(client.llen(key)), n, workers)
    finally:
        workers.stop()
    times = [float(t) for t in client.lrange(key, 0, -1)]
    client.delete(key)
    return n / (max(times) - min(times))


def seed(n: int, tmp: Path, label: str):  # type: ignore[no-untyped-def]
    """An endpoint, a plan with unlimited quotas, subscriptions, and N quick-created VMs (jobs queued)."""
    from django.conf import settings
    from django.db import connection, transaction

    from fabric.models import Cloud, HardwareProfile, VMTemplate
    from fabric.services import endpoint_register, plan_vm_cloud_set, vm_create
    from portal.jobs import job_execute
    from tenants.models import PlanState, User
    from tenants.services import plan_create, plan_set_state, subscription_create

    settings.CANOPY_SIMULATOR_DIR = tmp  # the state file lives in the scratch folder
    endpoint, job = endpoint_register(
        name="Bench",
        driver="simulator",
        settings_={"path": str(tmp / f"sim-{label}.sqlite3"), "latency": 0, "topology": UNLIMITED_TOPOLOGY},
    )
    job_execute(str(job.pk))  # its message stays queued; a worker drops it (already done) before the first VM
    cloud = Cloud.objects.get(stamp__endpoint=endpoint)
    template = VMTemplate.objects.get(endpoint=endpoint)
    size = HardwareProfile.objects.get(endpoint=endpoint)
    with transaction.atomic():
        plan = plan_create(name="Bench")
        plan_vm_cloud_set(plan=plan, cloud=cloud, max_vms=None, max_cores=None, max_memory_mb=None)
        plan_set_state(plan=plan, state=PlanState.PUBLIC)
    subscriptions = [
        subscription_create(owner=User.objects.create_user(f"bench{i}@example.test", "Bench-Pass-123"), plan=plan)
        for i in range(SUBSCRIPTIONS)
    ]
    for i in range(n):
        vm_create(
            subscription=subscriptions[i % SUBSCRIPTIONS],
            name=f"vm{i:05d}",
            template=template,
            hardware_profile=size,
            admin_password="Bench-Passw0rd!",
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return subscriptions[0], template, size


def database_sessions() -> int:
    """PostgreSQL sessions opened on this database so far (pg_stat_database, PostgreSQL 14+)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def bench_jobs(n: int, tmp: Path, queue: str, database_url: str, label: str) -> tuple[float, int, int, str]:
    """Jobs per second of N queued VM creates through two workers, the DB sessions the workers
    opened; then the statements of one create and of its job."""
    from django.db import connection
    from django.db.models import Max, Min
    from django.test.utils import CaptureQueriesContext

    from fabric.services import vm_create
    from portal.jobs import job_execute
    from portal.models import FINISHED_JOB_STATES, Job, JobState

    subscription, template, size = seed(n, tmp, label)
    creates = Job.objects.filter(kind="vm.create")
    sessions_before = database_sessions()
    workers = Workers(tmp, queue, database_url, f"jobs-{label}")
    workers.start()
    try:
        wait_done(lambda: creates.filter(state__in=FINISHED_JOB_STATES).count(), n, workers)
    finally:
        workers.stop()
    sessions = database_sessions() - sessions_before  # the workers have exited: their counts are in
    failed = creates.exclude(state=JobState.SUCCEEDED).count()
    if failed:
        raise RuntimeError(
            f"{failed} of {n} create jobs did not succeed: {creates.exclude(state='succeeded')[0].error}"
        )
    span = creates.aggregate(first=Min("started_at"), last=Max("finished_at"))
    rate = n / (span["last"] - span["first"]).total_seconds()

    # The statements of two more creates, outside the timed run (the messages they send are never
    # consumed): the first job of this process reads its cloud's usage back, the second (within
    # CANOPY_JOB_COALESCE_SECONDS) leaves it to the coalesced read, as jobs of a burst do.
    counted = []
    for name in ("counted1", "counted2"):
        with CaptureQueriesContext(connection) as create_queries:
            _, job = vm_create(
                subscription=subscription,
                name=name,
                template=template,
                hardware_profile=size,
                admin_password="Bench-Passw0rd!",
            )
        with CaptureQueriesContext(connection) as job_queries:
            job_execute(str(job.pk))
        counted.append(len(job_queries))
    from portal.jobs import job_flush_coalesced

    job_flush_coalesced()
    return rate, sessions, len(create_queries), f"{counted[0]}/{counted[1]}"


def scratch_database(tag: str) -> tuple[str, str]:
    """Create and migrate a scratch database; returns the name to restore when it is dropped and a
    DATABASE_URL of the scratch database for the workers."""
    from django.db import connection

    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"canopy_bench_jobs_{os.getpid()}_{tag}"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    url = urlsplit(os.environ["DATABASE_URL"])
    return original, urlunsplit(url._replace(path=f"/{name}"))


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return f"{os.cpu_count()} CPUs ({cpu}), PostgreSQL {pg}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000], help="jobs per run (default 200 1000)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per size; the medians are reported (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (worker logs)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="canopy-bench-jobs-"))
    (tmp / "static").mkdir()
    queue = f"canopy-bench-{uuid.uuid4().hex[:12]}"
    setup_django(tmp, queue)
    from django.db import connection

    from portal.celery import app

    rows = []
    ok = False
    try:
        for n in args.sizes:
            rounds = []
            for r in range(args.rounds):
                label = f"{n}_{r}"
                original, url = scratch_database(label)
                try:
                    if not rows and not rounds:
                        print(machine())
                    noop_rate = bench_noop(n, tmp, queue, url, label)
                    job_rate, sessions, create_statements, job_statements = bench_jobs(n, tmp, queue, url, label)
                finally:
                    connection.creation.destroy_test_db(original, verbosity=0)
                rounds.append((noop_rate, job_rate, job_rate / noop_rate, sessions))
                print(
                    f"  N={n} round {r + 1}: no-op {noop_rate:.0f}/s, jobs {job_rate:.1f}/s,"
                    f" {sessions} DB sessions opened by the workers",
                    flush=True,
                )
            medians = [statistics.median(column) for column in zip(*rounds, strict=True)]
            rows.append((n, *medians, create_statements, job_statements))
        ok = True
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"worker logs kept in {tmp}")

    median = " (medians)" if args.rounds > 1 else ""
    print(
        f"\n{'jobs':>6} {'no-op tasks/s':>14} {'VM create jobs/s':>17} {'ratio':>6} {'target':>7}"
        f"  {'sessions':>8}  statements{median}"
    )
    for n, noop_rate, job_rate, ratio, sessions, create_statements, job_statements in rows:
        verdict = "ok" if ratio >= TARGET_RATIO else "below"
        print(
            f"{n:6d} {noop_rate:14.0f} {job_rate:17.1f} {ratio:6.2f} {TARGET_RATIO:>5} {verdict:5} {sessions:8.0f}"
            f"  vm_create {create_statements}, job {job_statements}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
