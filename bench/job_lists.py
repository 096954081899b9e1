"""Benchmark the job lists (tenant and staff; page and API, first page) at 2,000 and 100,000 finished jobs.

    DATABASE_URL=postgres://canopy:canopy@127.0.0.1/canopy .venv/bin/python bench/job_lists.py \\
        [--sizes 2000 100000] [--explain]

Needs PostgreSQL (DATABASE_URL; the role must be allowed to create databases: a scratch database
`canopy_bench_<pid>` is created, migrated and dropped). In process only (Django's test client).

The tenant owns one subscription with 2,000 VMs; its finished jobs grow to each size (creation
times spread over a year), another tenant has a tenth as many, and 5 jobs still run. At each size,
after VACUUM ANALYZE, it prints the median ms and query count of each list's first page (and of the
tenant's running jobs, `?state=running`); the ratio of the large size to the small one is the
target (flat in N).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

VMS = 2000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 100000], help="finished jobs of the tenant")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per URL (default 30)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the first pages' queries")
    args = parser.parse_args()
    sizes = sorted(args.sizes)

    with common.django_on_scratch("bench.settings") as tmp:
        from django.test import Client
        from django.utils import timezone

        from portal.models import JobState
        from portal.selectors import job_list
        from tenants.models import User

        print(common.machine())
        fabric = common.seed_fabric(tmp)
        user, mine = common.make_tenant("bench@example.test", fabric)
        _, theirs = common.make_tenant("other@example.test", fabric)
        staff = User.objects.create_user("staff@example.test", common.PASSWORD, is_staff=True)
        since = timezone.now()
        my_vms = common.bulk_vms(mine, fabric, VMS)
        their_vms = common.bulk_vms(theirs, fabric, VMS // 10)
        common.spread_created_at("fabric_virtualmachine", since)
        common.bulk_jobs(my_vms[:5], state=JobState.RUNNING)

        tenant = Client()
        tenant.force_login(user, backend="portal.auth.SiteBackend")
        with common.staff_site():
            staff_client = Client()
            staff_client.force_login(staff, backend="portal.auth.SiteBackend")
        urls = [  # label, url, on the staff site
            ("tenant page  /jobs/", "/jobs/", False),
            ("tenant API   /api/v1/jobs/", "/api/v1/jobs/", False),
            ("tenant API   /api/v1/jobs/?state=running", "/api/v1/jobs/?state=running", False),
            ("tenant page  / (dashboard)", "/", False),
            ("staff  page  /jobs/", "/jobs/", True),
            ("staff  API   /api/v1/jobs/", "/api/v1/jobs/", True),
        ]

        local: dict[int, dict[str, common.InProcess]] = {}
        seeded = 0
        for size in sizes:
            started = time.perf_counter()
            since = timezone.now()
            per_vm = -(-(size - seeded) // VMS)
            common.bulk_jobs(my_vms, state=JobState.SUCCEEDED, per_vm=per_vm)
            common.bulk_jobs(their_vms, state=JobState.SUCCEEDED, per_vm=per_vm)
            common.spread_created_at("portal_job", since)
            seeded += per_vm * VMS
            common.analyze()
            print(f"seeded {seeded} finished jobs of the tenant in {time.perf_counter() - started:.1f}s")
            if args.explain:
                print(common.explain(job_list(user=user)[:51]))
                print(common.explain(job_list(user=staff)[:51]))
                print(common.explain(job_list(user=user).filter(state="running")[:51]))
            local[size] = common.in_process_both_sites(staff_client, tenant, urls, requests=args.requests)

    common.print_growth(local, [label for label, *_ in urls], requests=args.requests, noun="jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
