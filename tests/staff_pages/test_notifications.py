"""The staff notifications drawer: the jobs this staff member started, not every tenant's."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from portal.models import Job
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def drawer_jobs(body: str) -> list[str]:
    return re.findall(r'<article class="drawer-item" data-job="([0-9a-f-]{36})">', body)


@pytest.mark.parametrize("count", [1, 30])
def test_staff_see_the_jobs_they_started_with_queries_that_do_not_grow(
    staff_client, staff_user, subscription, endpoint, count, django_assert_num_queries
):
    factories.make_vm(subscription, endpoint, "tenants", run=False, created_by=subscription.owner)
    for _ in range(count):
        Job.objects.create(
            kind="endpoint.sync",
            target_type="fabric.fabricendpoint",
            target_id=str(endpoint.pk),
            target_name=endpoint.name,
            created_by=staff_user,
        )
    # session, user, the jobs
    with django_assert_num_queries(3):
        body = staff_client.get(reverse("notifications"), headers=HTMX).content.decode()
    mine = [str(pk) for pk in Job.objects.filter(created_by=staff_user).values_list("pk", flat=True)]
    assert drawer_jobs(body) == mine[:20] and "tenants" not in body
    assert reverse("staff:job", args=[mine[0]]) in body
    page = staff_client.get(reverse("staff:jobs")).content.decode()
    assert f'hx-get="{reverse("notifications")}"' in page


def test_the_staff_drawer_is_read_only(staff_client):
    assert staff_client.post(reverse("notifications")).status_code == 405
