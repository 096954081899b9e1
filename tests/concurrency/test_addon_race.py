"""Quotas under concurrency, beyond the VM count: 32 simultaneous quick-creates against a vCPU or a
memory quota of 10 VMs' worth admit exactly 10; an add-on bought while creates race is never lost.

Creates, purchases and removals all take the subscription's row lock (tenants.services
.subscription_lock) before reading limits and usage. Needs PostgreSQL.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

from fabric.models import VirtualMachine
from fabric.services import vm_create
from portal import jobs
from portal.exceptions import QuotaExceeded
from tenants.models import SubscriptionAddOn
from tenants.plan_services import quota_list
from tenants.services import addon_save, subscription_addon_buy
from tests import factories

from .test_quota_race import QUOTA, THREADS, race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgres_only(transactional_db, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the quota race needs PostgreSQL (row locks); SQLite serializes all writers")
    monkeypatch.setattr(jobs, "job_dispatch", lambda job_id: None)


def _attempt(subscription, template, size):
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

    return attempt


@pytest.mark.parametrize("quota", ["cores", "memory_mb"])
def test_concurrent_creates_stop_exactly_at_a_vcpu_or_memory_quota(tenant_user, tmp_path, quota):
    endpoint = factories.make_endpoint(tmp_path)
    template, size = factories.catalog(endpoint)
    limits = {"max_vms": None, "max_cores": None, "max_memory_mb": None}
    limits["max_" + quota] = QUOTA * (size.cpu if quota == "cores" else size.memory_mb)
    subscription = factories.make_subscription(tenant_user, factories.make_plan(endpoint, **limits))

    assert race(_attempt(subscription, template, size)) == Counter({"accepted": QUOTA, "refused": THREADS - QUOTA})
    assert VirtualMachine.objects.filter(subscription=subscription).count() == QUOTA


BUYERS = 4


def test_addons_bought_while_creates_race_are_all_counted(tenant_user, tmp_path):
    """4 threads each buy one add-on (+1 VM) among 28 creating: no purchase is lost (4 held, a limit
    of 10 + 4) and no create passes the limit in force when it took the lock."""
    endpoint = factories.make_endpoint(tmp_path)
    template, size = factories.catalog(endpoint)
    plan = factories.make_plan(endpoint, max_vms=QUOTA, max_cores=None, max_memory_mb=None)
    subscription = factories.make_subscription(tenant_user, plan)
    addon = addon_save(name="One more VM", plans=[plan], max_per_subscription=BUYERS, quotas={"vm_cloud": {"vms": 1}})
    create = _attempt(subscription, template, size)

    def attempt(i: int) -> str:
        if i % (THREADS // BUYERS) == 0:
            subscription_addon_buy(subscription=subscription, addon=addon, user=tenant_user)
            return "bought"
        return create(i)

    outcomes = race(attempt)
    assert outcomes["bought"] == BUYERS
    assert SubscriptionAddOn.objects.get(subscription=subscription, addon=addon).quantity == BUYERS
    admitted = VirtualMachine.objects.filter(subscription=subscription).count()
    assert outcomes["accepted"] == admitted and QUOTA <= admitted <= QUOTA + BUYERS
    for i in range(admitted, QUOTA + BUYERS):
        assert create(100 + i) == "accepted"
    assert create(200) == "refused"
    vms = next(q for q in quota_list(subscription) if q.key == "vms")
    assert (vms.plan_limit, vms.addon_extra, vms.limit, vms.used) == (QUOTA, BUYERS, QUOTA + BUYERS, QUOTA + BUYERS)
