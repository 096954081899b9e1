"""Admin portal subscription pages: list with search and filters, create for an account, detail
with quotas, resources, lifecycle progress, leftovers and history, and the lifecycle actions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from fabric.models import VirtualMachine, VMState
from tenants.models import Subscription, SubscriptionState, SyncState
from tenants.services import plan_quotas_set, subscription_suspend
from tests import factories
from tests.factories import run_queued_jobs


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def rows(body: str) -> int:
    return body.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>")


def test_list_searches_and_filters(staff_client, endpoint, plan, subscription, other_subscription, staff_user):
    subscription_suspend(subscription=other_subscription, reason="Unpaid", by=staff_user)
    url = reverse("staff:subscriptions")
    body = staff_client.get(url).content.decode()
    assert 'for="id_search">Search' in body and 'for="id_sync_state">Sync state' in body
    assert rows(body) == 2
    body = staff_client.get(url + "?state=suspended").content.decode()
    assert rows(body) == 1 and "other@example.test" in body and "tenant@example.test" not in body
    body = staff_client.get(url + "?search=tenant@").content.decode()
    assert rows(body) == 1 and "tenant@example.test" in body
    body = staff_client.get(url + f"?plan={plan.pk}&sync_state=out_of_sync").content.decode()
    assert "No subscription matches these filters." in body
    assert staff_client.get(url + "?state=asleep").status_code == 200  # a form error, not a 500


@pytest.mark.parametrize("size", [3, 60])
def test_list_query_count_is_pinned_at_two_sizes(staff_client, plan, size, django_assert_max_num_queries):
    plan.max_subscriptions_per_account = 1
    plan.save()
    for _ in range(size):
        factories.make_subscription(factories.UserFactory(), plan)
    # The same count at both sizes: session, user, count, page; the filters' plan choices (validated
    # and listed); quotas: plan rows, offers (+2 allow-lists), add-ons, usage; rail (6).
    with django_assert_max_num_queries(4 + 2 + 6 + 6):
        response = staff_client.get(reverse("staff:subscriptions") + f"?plan={plan.pk}&state=active")
    body = response.content.decode()
    assert rows(body) == min(size, 50)
    if size > 50:
        assert "Page 1 of 2 (60 items)" in body
        assert f"plan={plan.pk}" in body.split('class="pagination"', 1)[1]  # the filters survive paging


@pytest.mark.parametrize("size", [2, 12])
def test_over_quota_filter_lists_subscriptions_over_a_lowered_quota_with_by_how_much(
    staff_client, endpoint, size, django_assert_num_queries
):
    plan = factories.make_plan(endpoint, max_vms=5)
    plan.max_subscriptions_per_account = 1
    plan.save()
    subs = [factories.make_subscription(factories.UserFactory(), plan) for _ in range(size)]
    over = subs[0]
    for i in range(3):
        factories.make_vm(over, endpoint, f"vm{i}", run=False)
    factories.make_vm(subs[1], endpoint, "fits", run=False)
    plan_quotas_set(plan=plan, service="vm_cloud", quotas={"vms": 2})
    url = reverse("staff:subscriptions")
    # session, user; over-quota ids (the filtered subscriptions, then plan rows, offers +2
    # allow-lists, add-ons, usage); count, page; the page's quotas (the same six); the plan filter's
    # choices; rail (6)
    with django_assert_num_queries(2 + 7 + 2 + 6 + 1 + 6):
        body = staff_client.get(url + "?over_quota=true").content.decode()
    assert rows(body) == 1 and over.owner.email in body
    assert "Over quota: Virtual machines by 1" in body
    body = staff_client.get(url + "?over_quota=false").content.decode()
    assert rows(body) == size - 1 and over.owner.email not in body and "Over quota:" not in body
    body = staff_client.get(url).content.decode()
    assert rows(body) == size and body.count("Over quota:") == 1


def test_staff_create_a_subscription_for_an_account_on_a_private_plan(staff_client, endpoint, tenant_user):
    private = factories.make_plan(endpoint, public=False)
    url = reverse("staff:subscription-create")
    body = staff_client.get(url).content.decode()
    assert "Account&#x27;s email" in body or "Account's email" in body
    response = staff_client.post(url, {"owner": "nobody@example.test", "plan": private.pk})
    assert "No tenant account has this email address." in response.content.decode()
    response = staff_client.post(url, {"owner": tenant_user.email, "plan": private.pk, "name": "Assigned"})
    sub = Subscription.objects.get(name="Assigned")
    assert response["Location"] == reverse("staff:subscription", args=[sub.pk])
    assert (sub.owner, sub.plan) == (tenant_user, private)


def test_suspend_activate_from_the_detail_page(staff_client, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    url = reverse("staff:subscription", args=[subscription.pk])
    body = staff_client.get(url).content.decode()
    assert "Suspend subscription" in body and "web01" in body and "Virtual machines" in body

    action = reverse("staff:subscription-action", args=[subscription.pk, "suspend"])
    response = staff_client.post(action, {"reason": ""}, follow=True)
    assert "Say why the subscription is suspended" in " ".join(messages_of(response))
    response = staff_client.post(action, {"reason": "Invoice 42 unpaid"}, follow=True)
    body = response.content.decode()
    assert "Suspended: Invoice 42 unpaid" in body
    assert 'id="job-poller"' in body and "Suspend subscription" in body and "0 of 1 done" in body
    run_queued_jobs()
    body = staff_client.get(url).content.decode()
    assert "Activate subscription" in body and "In sync" in body
    assert "active → suspended" in body and "Invoice 42 unpaid" in body
    staff_client.post(reverse("staff:subscription-action", args=[subscription.pk, "activate"]))
    run_queued_jobs()
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.RUNNING


def test_an_out_of_sync_subscription_lists_what_is_left_and_resync_finishes(
    staff_client, subscription, endpoint, monkeypatch
):
    factories.make_vm(subscription, endpoint, "web01")
    works_again = factories.fabric_refuses(monkeypatch, "stop_vm", "Host hv-07 is in maintenance.")
    staff_client.post(reverse("staff:subscription-action", args=[subscription.pk, "suspend"]), {"reason": "Unpaid"})
    run_queued_jobs()
    body = staff_client.get(reverse("staff:subscription", args=[subscription.pk])).content.decode()
    assert "Out of sync" in body and "Host hv-07 is in maintenance." in body and "Re-sync subscription" in body
    works_again()
    staff_client.post(reverse("staff:subscription-action", args=[subscription.pk, "resync"]))
    run_queued_jobs()
    subscription.refresh_from_db()
    assert subscription.sync_state == SyncState.IN_SYNC


def test_delete_is_confirmed_on_its_own_page(staff_client, subscription, endpoint):
    factories.make_vm(subscription, endpoint, "web01")
    url = reverse("staff:subscription-delete", args=[subscription.pk])
    body = staff_client.get(url).content.decode()
    assert "Delete subscription" in body and "web01" in body
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.ACTIVE
    staff_client.post(url)
    run_queued_jobs()
    subscription.refresh_from_db()
    assert (subscription.state, subscription.sync_state) == (SubscriptionState.DELETED, SyncState.IN_SYNC)
    assert VirtualMachine.objects.get(name="web01").state == VMState.DELETED


def test_change_plan_refusal_is_shown(staff_client, subscription, endpoint):
    factories.make_vm(subscription, endpoint, "web01")
    factories.make_vm(subscription, endpoint, "web02")
    small = factories.make_plan(endpoint, max_vms=1)
    response = staff_client.post(
        reverse("staff:subscription-change-plan", args=[subscription.pk]), {"plan": small.pk}, follow=True
    )
    assert "Virtual machines: 2 in use, the plan allows 1" in " ".join(messages_of(response))
    subscription.refresh_from_db()
    assert subscription.plan_id != small.pk


def test_a_second_action_while_one_runs_is_refused_with_a_message(staff_client, subscription, endpoint):
    factories.make_vm(subscription, endpoint, "web01")
    staff_client.post(reverse("staff:subscription-action", args=[subscription.pk, "suspend"]), {"reason": "Unpaid"})
    response = staff_client.post(reverse("staff:subscription-delete", args=[subscription.pk]), follow=True)
    assert "busy with another action" in " ".join(messages_of(response))
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.SUSPENDED


def test_detail_of_an_unknown_subscription_is_404(staff_client, db):
    assert (
        staff_client.get(reverse("staff:subscription", args=["00000000-0000-0000-0000-000000000000"])).status_code
        == 404
    )


def test_the_parent_jobs_page_lists_each_resource_with_its_progress(staff_client, subscription, endpoint, monkeypatch):
    factories.make_vm(subscription, endpoint, "web01")
    factories.make_vm(subscription, endpoint, "web02")
    factories.fabric_refuses(monkeypatch, "stop_vm", "Host hv-07 is in maintenance.")
    parent = subscription_suspend(subscription=subscription, reason="Unpaid")
    body = staff_client.get(reverse("staff:job", args=[parent.pk])).content.decode()
    assert "0 of 2 done" in body and 'id="job-poller"' in body
    run_queued_jobs()
    body = staff_client.get(reverse("staff:job", args=[parent.pk])).content.decode()
    assert "Not done on 2 of 2: web01: Host hv-07 is in maintenance; web02: Host hv-07 is in maintenance." in body
    for child in parent.children.all():
        assert reverse("staff:job", args=[child.pk]) in body
    assert "Retry" in body
