"""32 simultaneous quick-creates against a quota of 10 VMs: exactly 10 get in.

The quota check and the insert happen under the subscription's row lock; without it, concurrent
requests all read "9 in use" and the tenant ends up over quota. Needs PostgreSQL: SQLite
serializes every writer anyway, so it can't show the race.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from fabric.models import VirtualMachine
from fabric.services import vm_create
from portal import jobs
from portal.exceptions import QuotaExceeded
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 32
QUOTA = 10


@pytest.fixture(autouse=True)
def postgres_only(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("the quota race needs PostgreSQL (row locks); SQLite serializes all writers")


@pytest.fixture
def world(tenant_user, tmp_path, monkeypatch):
    # No worker runs here: keep the jobs queued instead of sending them to a broker.
    monkeypatch.setattr(jobs, "job_dispatch", lambda job_id: None)
    endpoint = factories.make_endpoint(tmp_path)
    plan = factories.make_plan(endpoint, max_vms=QUOTA, max_cores=64, max_memory_mb=262144)
    subscription = factories.make_subscription(tenant_user, plan)
    template, size = factories.catalog(endpoint)
    return subscription, template, size


def race(attempt: Callable[[int], str]) -> Counter[str]:
    """Run `attempt(i)` in THREADS threads released at once, each on its own DB connection."""
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcome = attempt(i)
        except Exception as exc:  # anything else is a bug the assertion below will show
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return Counter(outcomes)


def test_concurrent_quick_creates_stop_exactly_at_the_quota(world):
    subscription, template, size = world

    def attempt(i: int) -> str:
        try:
            vm_create(
                subscription=subscription,
                name=f"vm{i:02d}",
                template=template,
                hardware_profile=size,
                admin_password=factories.VM_PASSWORD,
            )
        except QuotaExceeded:
            return "refused"
        return "accepted"

    assert race(attempt) == Counter({"accepted": QUOTA, "refused": THREADS - QUOTA})
    assert VirtualMachine.objects.filter(subscription=subscription).count() == QUOTA


def test_concurrent_api_creates_stop_exactly_at_the_quota(world, tenant_user):
    url = reverse("tenant-api:vm-list")
    subscription, template, size = world

    def attempt(i: int) -> str:
        client = Client()
        client.force_login(tenant_user, backend="portal.auth.SiteBackend")
        response = client.post(
            url,
            {
                "subscription": str(subscription.pk),
                "name": f"api{i:02d}",
                "template": template.pk,
                "hardware_profile": size.pk,
                "admin_password": factories.VM_PASSWORD,
            },
            content_type="application/json",
        )
        if response.status_code == 202:
            return "accepted"
        body = response.json()
        return "refused" if (response.status_code, body.get("code")) == (409, "quota_exceeded") else str(body)

    assert race(attempt) == Counter({"accepted": QUOTA, "refused": THREADS - QUOTA})
    assert VirtualMachine.objects.filter(subscription=subscription).count() == QUOTA
