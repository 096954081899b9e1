"""Benchmark what authenticating one API request costs: a personal API token against HTTP Basic auth
(what scripts used before, a password hash per request) and a session (the portals' own calls).

    DATABASE_URL=postgres://canopy:canopy@127.0.0.1/canopy .venv/bin/python bench/api_auth.py [--requests 30]

Needs PostgreSQL (DATABASE_URL; the role must be allowed to create databases: a scratch database
`canopy_bench_<pid>` is created, migrated and dropped). In process (Django's test client, no network),
the production password hasher: median ms and queries of the smallest DRF view (bench/views.py) behind
each authentication class alone, and of the tenant API's VM list (50 VMs) with a token and a session.
Baselines in the same run: Basic auth for the token; the minimal Django view for both.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="timed in-process requests per URL (default 30)")
    args = parser.parse_args()
    common.require_tools(wrk=False)

    with common.django_on_scratch("bench.settings") as tmp:
        from django.conf import settings
        from django.test import Client
        from django.urls import reverse

        from tenants.models import TokenScope
        from tenants.services import token_create

        print(common.machine())
        print(f"password hasher: {settings.PASSWORD_HASHERS[0].rsplit('.', 1)[-1]}")
        fabric = common.seed_fabric(tmp)
        user, mine = common.make_tenant("bench@example.test", fabric)
        common.bulk_vms(mine, fabric, 50)
        common.analyze()
        _, secret = token_create(user=user, name="bench", scope=TokenScope.READ)
        basic = base64.b64encode(f"{user.email}:{common.PASSWORD}".encode()).decode()
        session = Client()
        session.force_login(user, backend="portal.auth.SiteBackend")
        anonymous = Client()

        vms = reverse("tenant-api:vm-list")
        figures = {
            "minimal Django view": common.in_process(
                anonymous, {"x": reverse("bench-minimal")}, requests=args.requests
            ),
            "probe, session": common.in_process(session, {"x": reverse("bench-auth-session")}, requests=args.requests),
            "probe, Basic auth": common.in_process(
                anonymous,
                {"x": reverse("bench-auth-basic")},
                requests=args.requests,
                headers={"Authorization": f"Basic {basic}"},
            ),
            "probe, API token": common.in_process(
                anonymous,
                {"x": reverse("bench-auth-token")},
                requests=args.requests,
                headers={"Authorization": f"Bearer {secret}"},
            ),
            "VM list (50), session": common.in_process(session, {"x": vms}, requests=args.requests),
            "VM list (50), API token": common.in_process(
                anonymous, {"x": vms}, requests=args.requests, headers={"Authorization": f"Bearer {secret}"}
            ),
        }

    results = {label: by_url["x"] for label, by_url in figures.items()}
    basic_ms = results["probe, Basic auth"].ms
    print(f"\nIn process: median ms of {args.requests} requests (baseline: Basic auth, {basic_ms:.1f} ms)")
    common.table(
        ("request", "ms", "queries", "status", "vs Basic auth"),
        [
            (label, f"{f.ms:.1f}", f"{f.queries}", f"{f.status}", common.ratio(f.ms, basic_ms))
            for label, f in results.items()
        ],
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
