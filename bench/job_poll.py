"""Benchmark the live progress of the VM list: how many open list pages with 20 running jobs each two
gunicorn workers keep polled once a second.

    DATABASE_URL=postgres://canopy:canopy@127.0.0.1/canopy .venv/bin/python bench/job_poll.py [--no-wrk]

Needs PostgreSQL (DATABASE_URL; the role must be allowed to create databases: a scratch database
`canopy_bench_<pid>` is created, migrated and dropped) and wrk (Debian: `apt-get install wrk`).

The tenant has 2,000 VMs, the 20 newest being created (their jobs running). A list page polls once a
second: one request for its 20 jobs (the VM list's batched poll, `vms/status/?ids=`), or, as before,
one request per row. Measured in process (median ms, queries) and under `wrk -c16 -d10s` against
`gunicorn -w 2`, for: the batched poll when nothing changed (the usual answer: empty), the batched
poll when all 20 jobs changed (every element sent), and one job per request (what each row asked
before). Pages kept live = req/s / requests per page per second; the baseline is one poll per row.
On a checkout without the batched poll only the per-row figure is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from html import unescape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

RUNNING = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="timed in-process requests per URL (default 30)")
    parser.add_argument("--rounds", type=int, default=common.WRK_ROUNDS, help="wrk runs per URL, median (default 3)")
    parser.add_argument("--no-wrk", action="store_true", help="in-process figures only")
    args = parser.parse_args()
    common.require_tools(wrk=not args.no_wrk)

    with common.django_on_scratch("bench.settings") as tmp:
        from django.test import Client
        from django.urls import NoReverseMatch, reverse
        from django.utils import timezone

        from fabric.models import VMState
        from portal.models import Job, JobState

        print(common.machine())
        fabric = common.seed_fabric(tmp)
        user, mine = common.make_tenant("bench@example.test", fabric)
        since = timezone.now()
        common.bulk_jobs(common.bulk_vms(mine, fabric, 2000), state=JobState.SUCCEEDED)
        common.spread_created_at("fabric_virtualmachine", since)
        creating = common.bulk_vms(mine, fabric, RUNNING, start=10**6, state=VMState.CREATING)
        common.bulk_jobs(creating, state=JobState.RUNNING)
        common.analyze()
        client = Client()
        client.force_login(user, backend="portal.auth.SiteBackend")
        cookie = common.session_cookie(user)
        hx = {"HX-Request": "true"}
        one_job = Job.objects.filter(state=JobState.RUNNING).first()

        urls: dict[str, tuple[str, int]] = {}  # label: (url, requests per page per second)
        try:
            reverse("tenant:vm-statuses")
        except NoReverseMatch:  # before the batched poll: each row polled its own job
            urls["per row: 1 job per request"] = (reverse("job-status", args=[one_job.pk]), RUNNING)
        else:
            page = client.get(reverse("tenant:vms")).content.decode()
            poll = unescape(re.search(r'<div id="job-poller"[^>]*hx-get="([^"]+)"', page).group(1))
            assert poll.count(",") == RUNNING - 1, poll
            urls[f"batched: {RUNNING} jobs, none changed"] = (poll, 1)
            urls[f"batched: {RUNNING} jobs, all changed"] = (re.sub(r"\.[0-9a-f]+", ".x", poll), 1)
            single = f"{reverse('job-statuses')}?ids={one_job.pk}.x"
            urls["per row: 1 job per request"] = (single, RUNNING)

        plain = {label: url for label, (url, _) in urls.items()}
        local = common.in_process(client, plain, requests=args.requests, headers=hx)
        http: dict[str, float] = {}
        if not args.no_wrk:
            with common.gunicorn("bench.settings") as base:
                http = common.wrk_rounds(base, plain, rounds=args.rounds, cookie=cookie, headers=hx)

    print(f"\nIn process: median ms of {args.requests} polls")
    common.table(
        ("poll", "ms", "queries", "status"),
        [(label, f"{f.ms:.1f}", f"{f.queries}", f"{f.status}") for label, f in local.items()],
    )
    if http:
        print(
            f"wrk -c{common.WRK_CONNECTIONS} -d{common.WRK_SECONDS}s (median of {args.rounds} runs), "
            f"gunicorn -w 2: list pages with {RUNNING} running jobs kept live"
        )
        per_row = http["per row: 1 job per request"] / RUNNING
        rows = []
        for label, rps in http.items():
            pages = rps / urls[label][1]
            rows.append((label, f"{rps:.0f}", f"{pages:.0f}", f"per row {per_row:.0f}", common.ratio(pages, per_row)))
        common.table(("poll", "req/s", "pages", "baseline", "ratio"), rows)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
