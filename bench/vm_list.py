"""Benchmark the tenant's VM list (page and API) with thousands of VMs in one subscription.

    .venv/bin/python bench/vm_list.py [--vms 2000] [--requests 20]

Runs on a scratch database that it creates and drops: PostgreSQL when DATABASE_URL is set (a
`test_`-prefixed database next to it), otherwise a temporary SQLite file. Prints the median time
and the query count of each request, through Django's test client (no network, no server), so
the numbers are the view's own cost. A query count that grows with --vms is an N+1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(tmp: Path) -> None:
    os.environ["CANOPY_DATA_DIR"] = str(tmp)
    (tmp / "static").mkdir()  # STATIC_ROOT; whitenoise warns when it is missing
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.tenant"
    # Jobs the seeding creates stay in a broker folder under tmp; no worker anywhere runs them.
    os.environ.pop("CELERY_BROKER_URL", None)
    import django
    from django.conf import settings

    django.setup()
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp / "bench.sqlite3")


def seed(n: int, tmp: Path):  # type: ignore[no-untyped-def]
    """One tenant with one subscription holding `n` VMs (bulk-inserted), a few with a job running."""
    from django.db import transaction

    from fabric.models import Cloud, HardwareProfile, VirtualMachine, VMState, VMTemplate
    from fabric.services import endpoint_register, plan_vm_cloud_set
    from portal.jobs import job_execute
    from portal.models import Job, JobState
    from tenants.models import PlanState, User
    from tenants.services import plan_create, plan_set_state, subscription_create

    endpoint, job = endpoint_register(
        name="Bench", driver="simulator", settings_={"path": str(tmp / "sim.sqlite3"), "latency": 0}
    )
    job_execute(str(job.pk))
    cloud = Cloud.objects.get(stamp__endpoint=endpoint, name="Gold")
    template = VMTemplate.objects.filter(endpoint=endpoint).first()
    size = HardwareProfile.objects.get(endpoint=endpoint, name="Small")
    with transaction.atomic():
        plan = plan_create(name="Bench")
        plan_vm_cloud_set(plan=plan, cloud=cloud, max_vms=None, max_cores=None, max_memory_mb=None)
        plan_set_state(plan=plan, state=PlanState.PUBLIC)
    user = User.objects.create_user("bench@example.test", "Bench-Pass-123")
    subscription = subscription_create(owner=user, plan=plan)

    states = [VMState.RUNNING] * 8 + [VMState.STOPPED, VMState.CREATING]
    vms = [
        VirtualMachine(
            subscription=subscription,
            cloud=cloud,
            name=f"vm{i:05d}",
            template=template,
            hardware_profile=size,
            cpu=size.cpu,
            memory_mb=size.memory_mb,
            disk_gb=template.disk_gb,
            admin_username="canopy",
            state=states[i % len(states)],
            fabric_id=f"sim-vm-{i:06d}",
        )
        for i in range(n)
    ]
    VirtualMachine.objects.bulk_create(vms, batch_size=1000)
    Job.objects.bulk_create(
        [
            Job(
                kind="vm.create",
                target_type="fabric.virtualmachine",
                target_id=str(vm.pk),
                target_name=vm.name,
                subscription=subscription,
                state=JobState.RUNNING,
                percent=40,
                step="Create the virtual machine on the fabric",
                attempts=1,
            )
            for vm in vms
            if vm.state == VMState.CREATING
        ],
        batch_size=1000,
    )
    return user, subscription


def measure(client, url: str, requests: int) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    """Median milliseconds, query count and status code of GET url."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up: templates compiled, connection open
    times, counts, status = [], [], 0
    for _ in range(requests):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        counts.append(len(queries))
        status = response.status_code
    return statistics.median(times), max(counts), status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=2000, help="VMs in the tenant's subscription (default 2000)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per URL (default 20)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="canopy-bench-") as tmp_name:
        tmp = Path(tmp_name)
        setup_django(tmp)
        from django.db import connection
        from django.test import Client
        from django.test.utils import setup_test_environment
        from django.urls import reverse

        setup_test_environment()
        db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            started = time.perf_counter()
            user, subscription = seed(args.vms, tmp)
            print(f"Seeded {args.vms} VMs on {connection.vendor} ({db_name}) in {time.perf_counter() - started:.1f}s")
            client = Client()
            client.force_login(user, backend="portal.auth.SiteBackend")
            last_page = max(1, -(-args.vms // 50))
            rows = [
                ("page  tenant:vms", reverse("tenant:vms")),
                ("page  tenant:vms (last page)", f"{reverse('tenant:vms')}?page={last_page}"),
                ("page  tenant:vms?subscription=", f"{reverse('tenant:vms')}?subscription={subscription.pk}"),
                ("API   tenant-api:vm-list", reverse("tenant-api:vm-list")),
                ("API   tenant-api:vm-list (last page)", f"{reverse('tenant-api:vm-list')}?page={last_page}"),
            ]
            print(f"{'request':40} {'median ms':>10} {'queries':>8} {'status':>7}")
            failed = False
            for label, url in rows:
                median, queries, status = measure(client, url, args.requests)
                failed |= status != 200
                print(f"{label:40} {median:10.1f} {queries:8d} {status:7d}")
        finally:
            connection.creation.destroy_test_db(db_name, verbosity=0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
