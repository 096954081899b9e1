"""Job list pages of both sites: newest first in keyset pages, the same queries at any size, scoped."""

import re

import pytest
from django.urls import reverse

from portal.models import Job
from tests import factories

pytestmark = pytest.mark.django_db


def job_rows(body: str) -> list[str]:
    return re.findall(r'<tr>\s*<td><a href="[^"]*/jobs/([0-9a-f-]{36})/">', body)


def many_jobs(owner, endpoint, count: int) -> None:
    plan = factories.make_plan(endpoint, max_vms=None, max_cores=None, max_memory_mb=None)
    sub = factories.make_subscription(owner, plan)
    for i in range(count):
        factories.make_vm(sub, endpoint, f"vm{i}", run=False)


@pytest.mark.parametrize("jobs", [3, 60])
def test_tenant_job_list_pages_newest_first_with_queries_that_do_not_grow(
    tenant_client, tenant_user, other_subscription, endpoint, jobs, django_assert_num_queries
):
    many_jobs(tenant_user, endpoint, jobs)
    factories.make_vm(other_subscription, endpoint, "theirs", run=False)
    # session, user, subscription ids, page; rail: VMs and running jobs (subscription ids and a
    # bounded count each), subscriptions
    with django_assert_num_queries(9):
        body = tenant_client.get(reverse("tenant:jobs")).content.decode()
    mine = [str(pk) for pk in Job.objects.filter(subscription__owner=tenant_user).values_list("pk", flat=True)]
    assert job_rows(body) == mine[:50] and "theirs" not in body
    assert ("Older →" in body) == (jobs > 50)
    if jobs > 50:
        older = re.search(r'<a href="([^"]+)" rel="next">', body).group(1).replace("&amp;", "&")
        assert job_rows(tenant_client.get(older).content.decode()) == mine[50:]


@pytest.mark.parametrize("tenants", [2, 60])
def test_staff_job_list_pages_every_tenants_jobs_with_queries_that_do_not_grow(
    staff_client, endpoint, tenants, django_assert_num_queries
):
    for _ in range(tenants):
        many_jobs(factories.UserFactory(), endpoint, 1)
    # session, user, page; rail: endpoints, plans, add-ons, accounts, subscriptions, running jobs
    with django_assert_num_queries(9):
        body = staff_client.get(reverse("staff:jobs")).content.decode()
    assert job_rows(body) == [str(pk) for pk in Job.objects.values_list("pk", flat=True)[:50]]
    assert ("Older →" in body) == (tenants + 1 > 50)  # + the endpoint's sync
