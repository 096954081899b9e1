"""What the bench scripts share: a scratch PostgreSQL database, bulk seeding, in-process timing, and
req/s of gunicorn (`-w 2`) under wrk (`-c16`).

Every script needs DATABASE_URL pointing at a PostgreSQL server whose role may create databases:
it creates its own scratch database there (`canopy_bench_<pid>`), migrates it, and drops it at the
end. wrk is the Debian package `wrk` (`apt-get install wrk`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WRK_CONNECTIONS = 16
WRK_SECONDS = 10
WRK_ROUNDS = 3
PASSWORD = "Bench-Pass-123"


def die(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(2)


def require_tools(*, wrk: bool = True) -> str:
    """DATABASE_URL (PostgreSQL), and wrk when req/s are measured."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        die("Set DATABASE_URL to a PostgreSQL server (postgres://user:pass@host/db); the bench makes its own database.")
    if wrk and not shutil.which("wrk"):
        die("wrk is missing: apt-get install wrk (or run with --no-wrk for in-process figures only).")
    return url


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A new empty database on the server of `url`, dropped afterwards; yields its URL."""
    import psycopg

    parts = urlsplit(url)
    name = f"canopy_bench_{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def django_on_scratch(settings_module: str) -> Iterator[Path]:
    """Django set up (and migrated) on a scratch database, data dir in a temporary folder."""
    url = require_tools(wrk=False)
    # A SIGTERM unwinds like Ctrl-C, so the scratch database is dropped and gunicorn stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="canopy-bench-") as tmp_name, scratch_database(url) as scratch:
        tmp = Path(tmp_name)
        (tmp / "static").mkdir()
        os.environ.update(
            {"DATABASE_URL": scratch, "CANOPY_DATA_DIR": str(tmp), "DJANGO_SETTINGS_MODULE": settings_module}
        )
        # Jobs the seeding creates stay in a broker folder under tmp; no worker anywhere runs them.
        os.environ.pop("CELERY_BROKER_URL", None)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        yield tmp


def machine() -> str:
    """nproc, CPU model, PostgreSQL version, load: printed with every run (the machine may be shared)."""
    from django.db import connection

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"nproc {os.cpu_count()}, {cpu}, PostgreSQL {pg}, load average {load}, code at {ROOT} ({commit})"


# --- seeding -----------------------------------------------------------------------------------------


@dataclass
class Fabric:
    cloud: Any
    template: Any
    size: Any
    plan: Any


def seed_fabric(tmp: Path) -> Fabric:
    """A simulator endpoint (synchronized in-process) and a public plan without quotas."""
    from django.conf import settings
    from django.db import transaction

    from fabric.models import Cloud, HardwareProfile, VMTemplate
    from fabric.services import endpoint_register, plan_vm_cloud_set
    from portal.jobs import job_execute
    from tenants.models import PlanState
    from tenants.services import plan_create, plan_set_state

    settings.CANOPY_SIMULATOR_DIR = tmp  # the state file lives in the scratch folder
    endpoint, job = endpoint_register(
        name="Bench", driver="simulator", settings_={"path": str(tmp / "sim.sqlite3"), "latency": 0}
    )
    job_execute(str(job.pk))
    cloud = Cloud.objects.get(stamp__endpoint=endpoint, name="Gold")
    with transaction.atomic():
        plan = plan_create(name="Bench")
        plan_vm_cloud_set(plan=plan, cloud=cloud, max_vms=None, max_cores=None, max_memory_mb=None)
        plan_set_state(plan=plan, state=PlanState.PUBLIC)
    return Fabric(
        cloud=cloud,
        template=VMTemplate.objects.filter(endpoint=endpoint).first(),
        size=HardwareProfile.objects.get(endpoint=endpoint, name="Small"),
        plan=plan,
    )


def make_tenant(email: str, fabric: Fabric) -> tuple[Any, Any]:
    from tenants.models import User
    from tenants.services import subscription_create

    user = User.objects.create_user(email, PASSWORD)
    return user, subscription_create(owner=user, plan=fabric.plan)


def spread_created_at(table: str, since: Any, *, days: int = 365) -> None:
    """Rows inserted since `since` get creation times spread over the past year (bulk inserts give them
    all the same few milliseconds, which no real list has)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET created_at = %s - random() * %s WHERE created_at >= %s",
            [since, timedelta(days=days), since],
        )


def bulk_vms(subscription: Any, fabric: Fabric, count: int, *, start: int = 0, state: str | None = None) -> list[Any]:
    """`count` VMs in the subscription, bulk-inserted: mostly running, some stopped, every 10th deleted."""
    from fabric.models import VirtualMachine, VMState

    states = [VMState.RUNNING] * 7 + [VMState.STOPPED, VMState.FAILED, VMState.DELETED]
    vms = [
        VirtualMachine(
            subscription=subscription,
            cloud=fabric.cloud,
            name=f"vm{i:06d}",
            template=fabric.template,
            hardware_profile=fabric.size,
            cpu=fabric.size.cpu,
            memory_mb=fabric.size.memory_mb,
            disk_gb=fabric.template.disk_gb,
            admin_username="canopy",
            state=state or states[i % len(states)],
            fabric_id=f"sim-vm-{i:06d}",
        )
        for i in range(start, start + count)
    ]
    return VirtualMachine.objects.bulk_create(vms, batch_size=2000)


def bulk_jobs(vms: list[Any], *, state: str, per_vm: int = 1) -> None:
    """Jobs on the VMs: finished ones (succeeded, in the past) or running ones at 40 %."""
    from django.utils import timezone

    from portal.models import Job, JobState

    now = timezone.now()
    finished = state != JobState.RUNNING
    Job.objects.bulk_create(
        [
            Job(
                kind="vm.create" if n == 0 else "vm.restart",
                target_type="fabric.virtualmachine",
                target_id=str(vm.pk),
                target_name=vm.name,
                subscription_id=vm.subscription_id,
                state=state,
                percent=100 if finished else 40,
                step="" if finished else "Create the virtual machine on the fabric",
                attempts=1,
                started_at=now,
                finished_at=now if finished else None,
                heartbeat=now,
            )
            for vm in vms
            for n in range(per_vm)
        ],
        batch_size=2000,
    )


def analyze() -> None:
    """VACUUM ANALYZE, as autovacuum would have done on a table this size: fresh statistics for the
    planner and a visibility map for index-only scans."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def session_cookie(user: Any) -> str:
    """`name=value` of a signed-in session for the user, usable by wrk and by gunicorn's workers."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user, backend="portal.auth.SiteBackend")
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


# --- in process --------------------------------------------------------------------------------------


@dataclass
class InProcess:
    ms: float
    queries: int
    status: int


def in_process(
    client: Any, urls: dict[str, str], *, requests: int = 30, headers: dict[str, str] | None = None
) -> dict[str, InProcess]:
    """Median milliseconds and query count of GET each url through Django's test client (no network).
    The URLs take turns, so a burst of load from elsewhere on the machine hits them all alike."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times: dict[str, list[float]] = {label: [] for label in urls}
    counts: dict[str, list[int]] = {label: [] for label in urls}
    status: dict[str, int] = {}
    for url in urls.values():
        client.get(url, headers=headers)  # warm-up: templates compiled, connection open
    for _ in range(requests):
        for label, url in urls.items():
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = client.get(url, headers=headers)
                times[label].append((time.perf_counter() - start) * 1000)
            counts[label].append(len(queries))
            status[label] = response.status_code
    return {label: InProcess(statistics.median(times[label]), max(counts[label]), status[label]) for label in urls}


def staff_site() -> Any:
    """The staff site's URLconf and cookies, for requests made in process by the test client."""
    from django.test import override_settings

    return override_settings(
        CANOPY_SITE="staff",
        ROOT_URLCONF="portal.urls.staff",
        SESSION_COOKIE_NAME="canopy_staff_session",
        CSRF_COOKIE_NAME="canopy_staff_csrftoken",
    )


def in_process_both_sites(
    staff_client: Any, tenant_client: Any, urls: list[tuple[str, str, bool]], *, requests: int
) -> dict[str, InProcess]:
    """`in_process` over (label, url, on the staff site) triples, each site's URLs with its own client;
    dies if any answer isn't 200 (a bench of an error page measures nothing)."""
    figures: dict[str, InProcess] = {}
    for on_staff in (False, True):
        client = staff_client if on_staff else tenant_client
        site_urls = {label: url for label, url, staff_url in urls if staff_url == on_staff}
        with staff_site() if on_staff else contextlib.nullcontext():
            figures.update(in_process(client, site_urls, requests=requests))
    for label, figure in figures.items():
        if figure.status != 200:
            die(f"{label} answered {figure.status}")
    return figures


def print_growth(figures: dict[int, dict[str, InProcess]], labels: list[str], *, requests: int, noun: str) -> None:
    """Each request's median at the smallest and largest size, their ratio and query counts."""
    sizes = sorted(figures)
    small, large = sizes[0], sizes[-1]
    print(f"\nIn process: median ms of {requests} requests (baseline: the same request at {small} {noun})")
    rows = []
    for label in labels:
        a, b = figures[small][label], figures[large][label]
        rows.append((label, f"{a.ms:.1f}", f"{b.ms:.1f}", ratio(b.ms, a.ms), f"{a.queries}", f"{b.queries}"))
    table(("request", f"ms @{small}", f"ms @{large}", "ratio", f"queries @{small}", f"queries @{large}"), rows)


def explain(queryset: Any) -> str:
    """EXPLAIN ANALYZE of a queryset: the plan, and whether it sorted (a sort means the whole scope was read)."""
    return str(queryset.explain(analyze=True))


# --- over HTTP ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch_status(url: str, cookie: str = "", headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers={"Cookie": cookie, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@contextlib.contextmanager
def gunicorn(settings_module: str, *, workers: int = 2) -> Iterator[str]:
    """`gunicorn portal.wsgi -w 2` with the bench's settings on the scratch database; yields its URL."""
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "gunicorn", "portal.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while fetch_status(f"{base}/login/") != 200:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    die(f"gunicorn did not start:\n{log.read().decode(errors='replace')[-3000:]}")
                time.sleep(0.3)
            yield base
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def wrk(url: str, cookie: str = "", headers: dict[str, str] | None = None) -> float:
    """Requests per second of GET url under `wrk -c16 -d10s`; every answer must be 2xx."""
    status = fetch_status(url, cookie, headers)
    if not 200 <= status < 300:
        die(f"GET {url} answered {status}")
    argv = ["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s"]
    for name, value in {"Cookie": cookie, **(headers or {})}.items():
        if value:
            argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        die(f"wrk {url}: {match.group(1)} answers weren't 2xx\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found:
        die(f"wrk printed no Requests/sec:\n{out}")
    return float(found.group(1))


def wrk_rounds(
    base: str, urls: dict[str, str], *, rounds: int, cookie: str = "", headers: dict[str, str] | None = None
) -> dict[str, float]:
    """Median req/s of each url over `rounds` turns (url after url, then again): on a shared machine
    the load changes from one 10 s run to the next, and taking turns spreads it over them all."""
    runs: dict[str, list[float]] = {label: [] for label in urls}
    for _ in range(rounds):
        for label, url in urls.items():
            runs[label].append(wrk(base + url, cookie, headers))
    return {label: statistics.median(values) for label, values in runs.items()}


# --- printing ----------------------------------------------------------------------------------------


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A plain text table; the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for n, row in enumerate([header, *rows]):
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"
