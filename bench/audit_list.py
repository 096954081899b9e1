"""Benchmark the audit log's lists (staff and tenant; page and API, first page, a few filters) at
2,000 and 100,000 entries.

    DATABASE_URL=postgres://canopy:canopy@127.0.0.1/canopy .venv/bin/python bench/audit_list.py \\
        [--sizes 2000 100000] [--explain]

Needs PostgreSQL (DATABASE_URL; the role must be allowed to create databases: a scratch database
`canopy_bench_<pid>` is created, migrated and dropped). In process only (Django's test client).

Entries grow to each size over a year (PostgreSQL's generate_series): half in the tenant's
subscription, a third in another tenant's, the rest staff actions without a subscription; one in
fifty refused. At each size, after VACUUM ANALYZE, it prints the median ms and query count of each
list's first page; the ratio of the large size to the small one is the target (flat in N).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common


def seed_entries(count: int, *, mine: Any, theirs: Any, tenant: Any, staff: Any) -> None:
    """`count` entries spread over the past year, straight in SQL (the services' path is measured by
    the tests; this is about reading)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO portal_auditentry (created_at, actor_id, actor_label, by_staff, subscription_id, action,
                object_type, object_id, object_repr, changes, outcome, message, ip, request_id, site)
            SELECT now() - random() * interval '365 days',
                   CASE WHEN i %% 6 < 3 THEN %s WHEN i %% 6 < 5 THEN NULL ELSE %s END,
                   CASE WHEN i %% 6 < 3 THEN %s WHEN i %% 6 < 5 THEN 'other@example.test' ELSE %s END,
                   i %% 6 = 5,
                   CASE WHEN i %% 6 < 3 THEN %s::uuid WHEN i %% 6 < 5 THEN %s::uuid ELSE NULL END,
                   (ARRAY['vm.start', 'vm.stop', 'vm.create', 'plan.create', 'token.create'])[1 + i %% 5],
                   'fabric.virtualmachine', md5(i::text), 'vm' || i,
                   '{"state": ["running", "stopping"]}'::jsonb,
                   CASE WHEN i %% 50 = 0 THEN 'refused' ELSE 'succeeded' END, '', '192.0.2.1',
                   md5((i * 7)::text), 'tenant'
            FROM generate_series(1, %s) AS i
            """,
            [tenant.pk, staff.pk, tenant.email, staff.email, str(mine.pk), str(theirs.pk), count],
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 100000], help="audit entries in all")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per URL (default 30)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the first pages' queries")
    args = parser.parse_args()
    sizes = sorted(args.sizes)

    with common.django_on_scratch("bench.settings") as tmp:
        from django.test import Client

        from portal.selectors import audit_entry_list
        from tenants.models import User

        print(common.machine())
        fabric = common.seed_fabric(tmp)
        user, mine = common.make_tenant("bench@example.test", fabric)
        _, theirs = common.make_tenant("other@example.test", fabric)
        staff = User.objects.create_user("staff@example.test", common.PASSWORD, is_staff=True)

        tenant = Client()
        tenant.force_login(user, backend="portal.auth.SiteBackend")
        with common.staff_site():
            staff_client = Client()
            staff_client.force_login(staff, backend="portal.auth.SiteBackend")
        urls = [  # label, url, on the staff site
            ("tenant page  /audit/", "/audit/", False),
            ("tenant API   /api/v1/audit-entries/", "/api/v1/audit-entries/", False),
            ("staff  page  /audit/", "/audit/", True),
            ("staff  API   /api/v1/audit-entries/", "/api/v1/audit-entries/", True),
            ("staff  API   ?subscription=", f"/api/v1/audit-entries/?subscription={mine.pk}", True),
            ("staff  API   ?actor=", "/api/v1/audit-entries/?actor=bench@example.test", True),
            ("staff  API   ?outcome=refused", "/api/v1/audit-entries/?outcome=refused", True),
            ("staff  API   ?action=vm.", "/api/v1/audit-entries/?action=vm.", True),
        ]

        local: dict[int, dict[str, common.InProcess]] = {}
        seeded = 0
        for size in sizes:
            started = time.perf_counter()
            seed_entries(size - seeded, mine=mine, theirs=theirs, tenant=user, staff=staff)
            seeded = size
            common.analyze()
            print(f"seeded {seeded} audit entries in {time.perf_counter() - started:.1f}s")
            if args.explain:
                print(common.explain(audit_entry_list(user=user)[:51]))
                print(common.explain(audit_entry_list(user=staff).filter(outcome="refused")[:51]))
            local[size] = common.in_process_both_sites(staff_client, tenant, urls, requests=args.requests)

    common.print_growth(local, [label for label, *_ in urls], requests=args.requests, noun="entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
