"""Benchmark the tenant's VM list (API and HTML page, first page) at 2,000 and 50,000 VMs.

    DATABASE_URL=postgres://canopy:canopy@127.0.0.1/canopy .venv/bin/python bench/vm_list.py \\
        [--sizes 2000 50000] [--no-wrk] [--explain]

Needs PostgreSQL (DATABASE_URL; the role must be allowed to create databases: a scratch database
`canopy_bench_<pid>` is created, migrated and dropped) and wrk (Debian: `apt-get install wrk`).

The tenant owns one subscription holding N VMs (bulk-inserted, creation times spread over a year,
every 10th deleted, five newest still being created with a running job); another tenant holds N/10.
At each size, after VACUUM ANALYZE, it prints:

- in process (Django's test client, no network): median ms and query count of the API's first page,
  the HTML list page, the floor view and the minimal view; the ratio of the large size to the small
  one is the target (flat in N: <= 1.3x);
- over HTTP: req/s of the same four URLs under `wrk -c16 -d10s` against `gunicorn -w 2` with the
  tenant settings plus bench.urls (bench/settings.py). The floor view (bench/views.py) runs the same
  selectors (the same SQL), middleware and session sign-in as the API and returns the rows through
  JsonResponse: the API is measured against it (target >= 0.8x); the floor against the minimal view.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

URLS = {
    "API   /api/v1/vms/": "tenant-api:vm-list",
    "page  /vms/": "tenant:vms",
    "floor (bench view)": "bench-floor-vms",
    "minimal (bench view)": "bench-minimal",
}


def seed_size(fabric: common.Fabric, mine: object, theirs: object, seeded: int, size: int) -> None:
    """Grow the tenant's subscription to `size` VMs (and the other tenant's to size/10), each with its
    finished create job."""
    from django.utils import timezone

    from portal.models import JobState

    since = timezone.now()
    vms = common.bulk_vms(mine, fabric, size - seeded, start=seeded)
    vms += common.bulk_vms(theirs, fabric, (size - seeded) // 10, start=seeded)
    common.bulk_jobs(vms, state=JobState.SUCCEEDED)
    common.spread_created_at("fabric_virtualmachine", since)
    common.spread_created_at("portal_job", since)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 50000], help="VMs of the tenant")
    parser.add_argument("--requests", type=int, default=30, help="timed in-process requests per URL (default 30)")
    parser.add_argument("--rounds", type=int, default=common.WRK_ROUNDS, help="wrk runs per URL, median (default 3)")
    parser.add_argument("--no-wrk", action="store_true", help="in-process figures only")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the first page's query")
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    common.require_tools(wrk=not args.no_wrk)

    with common.django_on_scratch("bench.settings") as tmp:
        from django.test import Client
        from django.urls import reverse

        from fabric.models import VMState
        from fabric.selectors import vm_list
        from portal.models import JobState

        print(common.machine())
        fabric = common.seed_fabric(tmp)
        user, mine = common.make_tenant("bench@example.test", fabric)
        _, theirs = common.make_tenant("other@example.test", fabric)
        client = Client()
        client.force_login(user, backend="portal.auth.SiteBackend")
        cookie = common.session_cookie(user)
        urls = {label: reverse(name) for label, name in URLS.items()}

        local: dict[int, dict[str, common.InProcess]] = {}
        http: dict[int, dict[str, float]] = {}
        seeded = 0
        with common.gunicorn("bench.settings") if not args.no_wrk else contextlib.nullcontext("") as base:
            for size in sizes:
                started = time.perf_counter()
                seed_size(fabric, mine, theirs, seeded, size)
                if not seeded:  # the newest rows: VMs being created, their jobs running
                    creating = common.bulk_vms(mine, fabric, 5, start=10**6, state=VMState.CREATING)
                    common.bulk_jobs(creating, state=JobState.RUNNING)
                seeded = size
                common.analyze()
                print(f"seeded {size} VMs (+{size // 10} of another tenant) in {time.perf_counter() - started:.1f}s")
                if args.explain:
                    print(common.explain(vm_list(user=user)[:51]))
                local[size] = common.in_process(client, urls, requests=args.requests)
                for label, figure in local[size].items():
                    if figure.status != 200:
                        common.die(f"{label} answered {figure.status}")
                if base:
                    http[size] = common.wrk_rounds(base, urls, rounds=args.rounds, cookie=cookie)

    small, large = sizes[0], sizes[-1]
    print(f"\nIn process: median ms of {args.requests} requests (baseline: the same request at {small} VMs)")
    rows = []
    for label in urls:
        a, b = local[small][label], local[large][label]
        rows.append((label, f"{a.ms:.1f}", f"{b.ms:.1f}", common.ratio(b.ms, a.ms), f"{a.queries}", f"{b.queries}"))
    common.table(("request", f"ms @{small}", f"ms @{large}", "ratio", f"queries @{small}", f"queries @{large}"), rows)

    for size, figures in http.items():
        print(
            f"wrk -c{common.WRK_CONNECTIONS} -d{common.WRK_SECONDS}s (median of {args.rounds} runs), "
            f"gunicorn -w 2, {size} VMs: req/s"
        )
        floor, minimal = figures["floor (bench view)"], figures["minimal (bench view)"]
        rows = []
        for label, value in figures.items():
            reference = label.startswith(("floor", "minimal"))
            base_label, base_value = ("minimal", minimal) if reference else ("floor", floor)
            rows.append((label, f"{value:.0f}", f"{base_label} {base_value:.0f}", common.ratio(value, base_value)))
        common.table(("request", "req/s", "baseline", "ratio"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
