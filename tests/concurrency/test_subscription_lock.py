"""A quick-create locks its subscription only: other subscribers of the same plan don't wait for it."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction

from portal import jobs
from tenants.services import subscription_lock
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def create_within_a_second(subscription, endpoint, name: str) -> None:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
        factories.make_vm_job(subscription, endpoint, name)


def test_a_held_subscription_lock_blocks_only_that_subscription(tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    monkeypatch.setattr(jobs, "job_dispatch", lambda job_id: None)  # no worker here
    endpoint = factories.make_endpoint(tmp_path)
    plan = factories.make_plan(endpoint)
    held = factories.make_subscription(factories.UserFactory(), plan)
    other = factories.make_subscription(factories.UserFactory(), plan)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                subscription_lock(held.pk)
                locked.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        create_within_a_second(other, endpoint, "free")  # the plan's row is not locked
        with pytest.raises(OperationalError, match="lock timeout"):
            create_within_a_second(held, endpoint, "waits")
    finally:
        release.set()
        holder.join(timeout=10)
