"""The tenant's notifications drawer: the jobs they started, newest first, with progress and Retry."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from portal import jobs
from portal.models import Job, JobState
from portal.selectors import NOTIFICATIONS_SHOWN
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def drawer_jobs(body: str) -> list[str]:
    return re.findall(r'<article class="drawer-item" data-job="([0-9a-f-]{36})">', body)


def test_the_top_bar_opens_the_drawer_with_htmx_and_links_to_it_without(tenant_client):
    page = tenant_client.get(reverse("tenant:jobs")).content.decode()
    url = reverse("notifications")
    assert f'href="{url}" hx-get="{url}" hx-target="#drawer"' in page
    assert f'hx-get="{url}?part=count" hx-trigger="load"' in page and 'id="drawer"' in page


def test_the_drawer_lists_what_the_tenant_started_newest_first_with_progress(
    tenant_client, tenant_user, subscription, other_subscription, endpoint
):
    first = factories.make_vm(subscription, endpoint, "web01", created_by=tenant_user)
    factories.make_vm(subscription, endpoint, "web02", run=False, created_by=tenant_user)
    factories.make_vm(other_subscription, endpoint, "theirs", run=False, created_by=other_subscription.owner)
    mine = [str(pk) for pk in Job.objects.filter(created_by=tenant_user).values_list("pk", flat=True)]

    drawer = tenant_client.get(reverse("notifications"), headers=HTMX).content.decode()
    assert drawer_jobs(drawer) == mine and "theirs" not in drawer
    assert "<html" not in drawer  # a partial for the drawer
    assert "web02" in drawer and "<progress" in drawer and "Succeeded" in drawer
    assert reverse("tenant:job", args=[mine[1]]) in drawer
    # the running one follows the page's one batched poll
    assert f'hx-get="{reverse("job-statuses")}?ids={mine[0]}.' in drawer
    assert Job.objects.get(target_id=str(first.pk)).state == JobState.SUCCEEDED

    page = tenant_client.get(reverse("notifications")).content.decode()
    assert "<html" in page and drawer_jobs(page) == mine  # the same list as a page, without JavaScript

    count = tenant_client.get(reverse("notifications") + "?part=count", headers=HTMX).content.decode()
    assert '">1</span>' in count  # one running


def test_a_failed_job_shows_its_error_and_a_retry_that_runs_it_again(
    tenant_client, tenant_user, subscription, endpoint, monkeypatch
):
    _vm, job = factories.make_vm_job(subscription, endpoint, created_by=tenant_user)
    works_again = factories.fabric_refuses(monkeypatch, "create_vm", "Cloud is full.")
    jobs.job_execute(str(job.pk))
    works_again()

    vm_page = reverse("tenant:vm", args=[_vm.pk])
    opened_on = {**HTMX, "HX-Current-URL": f"http://testserver{vm_page}"}
    drawer = tenant_client.get(reverse("notifications"), headers=opened_on).content.decode()
    retry = reverse("tenant:job-retry", args=[job.pk])
    assert "Cloud is full." in drawer and f'action="{retry}"' in drawer
    # Retry goes back to the page the drawer was opened on, not to the notifications page.
    assert f'name="next" value="{vm_page}"' in drawer
    response = tenant_client.post(retry, {"next": vm_page})
    assert response.status_code == 302 and response["Location"] == vm_page
    assert Job.objects.get(pk=job.pk).state == JobState.QUEUED


def test_another_tenants_jobs_never_show(other_client, tenant_user, subscription, endpoint):
    factories.make_vm(subscription, endpoint, "mine", run=False, created_by=tenant_user)
    body = other_client.get(reverse("notifications"), headers=HTMX).content.decode()
    assert drawer_jobs(body) == [] and "Nothing you started yet." in body


def test_the_drawer_is_read_only(tenant_client):
    assert tenant_client.post(reverse("notifications")).status_code == 405


@pytest.mark.parametrize("count", [2, NOTIFICATIONS_SHOWN + 5])
def test_the_drawer_is_bounded_and_its_queries_do_not_grow(
    tenant_client, tenant_user, endpoint, count, django_assert_num_queries
):
    plan = factories.make_plan(endpoint, max_vms=None, max_cores=None, max_memory_mb=None)
    sub = factories.make_subscription(tenant_user, plan)
    for i in range(count):
        factories.make_vm(sub, endpoint, f"vm{i}", run=False, created_by=tenant_user)
    # session, user, subscription ids, the jobs
    with django_assert_num_queries(4):
        body = tenant_client.get(reverse("notifications"), headers=HTMX).content.decode()
    assert len(drawer_jobs(body)) == min(count, NOTIFICATIONS_SHOWN)


def test_the_drawer_polls_on_its_own_poller_beside_the_pages(tenant_client, tenant_user, subscription, endpoint):
    """A page that already follows jobs (a VM page) keeps its own poll when the drawer opens: the
    drawer's poll answers replace the drawer's poller only, never the page's."""
    factories.make_vm(subscription, endpoint, "web02", run=False, created_by=tenant_user)
    running = Job.objects.get(created_by=tenant_user)
    drawer = tenant_client.get(reverse("notifications"), headers=HTMX).content.decode()
    assert 'id="drawer-poller"' in drawer and 'id="job-poller"' not in drawer
    assert "&amp;poller=drawer-poller" in drawer

    url = reverse("job-statuses")
    answer = tenant_client.get(f"{url}?ids={running.pk}.stale&poller=drawer-poller", headers=HTMX).content.decode()
    assert 'id="drawer-poller"' in answer and 'id="job-poller"' not in answer
    answer = tenant_client.get(f"{url}?ids={running.pk}.stale", headers=HTMX).content.decode()
    assert 'id="job-poller"' in answer and 'id="drawer-poller"' not in answer
    answer = tenant_client.get(f"{url}?ids={running.pk}.stale&poller=evil", headers=HTMX).content.decode()
    assert 'id="job-poller"' in answer and "evil" not in answer
