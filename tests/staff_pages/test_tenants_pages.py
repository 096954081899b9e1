"""Admin portal pages of plans, user accounts and subscriptions."""

import pytest
from django.urls import reverse

from fabric.models import Cloud, VMCloudPlanService
from tenants.models import Plan, PlanState
from tests import factories


@pytest.mark.parametrize(
    "name",
    [
        "staff:dashboard",
        "staff:plans",
        "staff:plan-create",
        "staff:accounts",
        "staff:subscriptions",
        "staff:endpoints",
        "staff:endpoint-create",
    ],
)
def test_each_page_renders(staff_client, subscription, name):
    assert staff_client.get(reverse(name)).status_code == 200


def test_create_plan_add_vm_cloud_and_make_it_public_end_to_end(staff_client, endpoint, tenant_user):
    response = staff_client.post(
        reverse("staff:plan-create"),
        {"name": "Silver VMs", "description": "Small VMs", "max_subscriptions_per_account": "2"},
    )
    plan = Plan.objects.get(name="Silver VMs")
    assert response["Location"] == reverse("staff:plan", args=[plan.pk])
    assert (plan.state, plan.max_subscriptions_per_account) == (PlanState.PRIVATE, 2)
    assert not Plan.objects.visible_to(tenant_user).filter(pk=plan.pk).exists()

    page = staff_client.get(response["Location"]).content.decode()
    assert "Simulator / Stamp 01 / Silver" in page  # cloud choices are labelled endpoint / stamp / cloud

    silver = Cloud.objects.get(stamp__endpoint=endpoint, name="Silver")
    response = staff_client.post(
        reverse("staff:plan", args=[plan.pk]),
        {"cloud": silver.pk, "max_vms": "5", "max_cores": "", "max_memory_mb": "8192"},
    )
    assert response.status_code == 302
    service = VMCloudPlanService.objects.get(plan=plan)
    assert (service.cloud, service.max_vms, service.max_cores, service.max_memory_mb) == (silver, 5, None, 8192)

    response = staff_client.post(reverse("staff:plan-state", args=[plan.pk]), {"state": "public"}, follow=True)
    assert "now public" in response.content.decode()
    assert Plan.objects.visible_to(tenant_user).filter(pk=plan.pk).exists()

    listing = staff_client.get(reverse("staff:plans")).content.decode()
    assert "Simulator / Stamp 01 / Silver" in listing and "5 / ∞ / 8192" in listing


def test_making_public_a_plan_without_a_service_shows_the_error(staff_client, tenant_user):
    plan = Plan.objects.create(name="Empty")
    response = staff_client.post(reverse("staff:plan-state", args=[plan.pk]), {"state": "public"}, follow=True)
    assert "Add at least one service to the plan before making it public." in response.content.decode()
    plan.refresh_from_db()
    assert plan.state == PlanState.PRIVATE
    assert not Plan.objects.visible_to(tenant_user).exists()


def test_unknown_state_is_an_error_message_not_a_500(staff_client, plan):
    response = staff_client.post(reverse("staff:plan-state", args=[plan.pk]), {"state": "bogus"}, follow=True)
    assert response.status_code == 200
    assert "Unknown plan state" in response.content.decode()


def test_duplicate_plan_name_and_bad_quota_are_form_errors(staff_client, plan, endpoint):
    response = staff_client.post(
        reverse("staff:plan-create"), {"name": plan.name.upper(), "max_subscriptions_per_account": "1"}
    )
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert Plan.objects.count() == 1

    gold = Cloud.objects.get(stamp__endpoint=endpoint, name="Gold")
    response = staff_client.post(reverse("staff:plan", args=[plan.pk]), {"cloud": gold.pk, "max_vms": "-1"})
    assert response.status_code == 200 and "greater than or equal to 0" in response.content.decode()
    assert VMCloudPlanService.objects.get(plan=plan).max_vms == 10

    response = staff_client.post(reverse("staff:plan", args=[plan.pk]), {"cloud": "999999"})
    assert "Select a valid choice" in response.content.decode()


def test_plan_detail_shows_subscriber_count_and_subscriptions(staff_client, plan, subscription, other_subscription):
    body = staff_client.get(reverse("staff:plan", args=[plan.pk])).content.decode()
    assert "<dt>Subscribers</dt><dd>2</dd>" in body
    assert "tenant@example.test" in body and "other@example.test" in body
    listing = staff_client.get(reverse("staff:plans")).content.decode()
    assert "<td>2</td>" in listing


def test_unknown_plan_is_404(staff_client):
    assert staff_client.get(reverse("staff:plan", args=[424242])).status_code == 404
    assert staff_client.post(reverse("staff:plan-state", args=[424242]), {"state": "public"}).status_code == 404


def test_subscriptions_page_shows_owner_plan_state_and_vm_count(staff_client, endpoint, plan, subscription):
    factories.make_vm(subscription, endpoint, "web01")
    body = staff_client.get(reverse("staff:subscriptions")).content.decode()
    assert "tenant@example.test" in body and plan.name in body and "Active" in body
    assert "<td>1</td>" in body


def _many_subscriptions(plan, n):
    plan.max_subscriptions_per_account = 1
    plan.save()
    for _ in range(n):
        factories.make_subscription(factories.UserFactory(), plan)


def test_accounts_page_paginates_with_pinned_queries(staff_client, plan, django_assert_max_num_queries):
    _many_subscriptions(plan, 60)
    with django_assert_max_num_queries(9):
        response = staff_client.get(reverse("staff:accounts"))
    body = response.content.decode()
    assert body.count("<td>1</td>") == 50  # 50 rows per page, each with its one subscription
    assert "Page 1 of 2 (60 items)" in body
    assert "staff@example.test" not in body.split("<table", 1)[1]  # staff accounts aren't listed


def test_subscriptions_page_paginates_with_pinned_queries(staff_client, plan, django_assert_max_num_queries):
    _many_subscriptions(plan, 60)
    with django_assert_max_num_queries(11):  # one more than before: the plan filter's choices
        response = staff_client.get(reverse("staff:subscriptions"))
    assert "Page 1 of 2 (60 items)" in response.content.decode()
    assert staff_client.get(reverse("staff:subscriptions") + "?page=2").content.decode().count("<tr>") == 11


def test_plans_page_query_count_is_pinned(staff_client, endpoint, django_assert_max_num_queries):
    for _ in range(8):
        factories.make_plan(endpoint)
    with django_assert_max_num_queries(9):
        response = staff_client.get(reverse("staff:plans"))
    assert response.content.decode().count("Simulator / Stamp 01 / Gold") == 8


def test_plan_detail_query_count_is_pinned(staff_client, plan, django_assert_max_num_queries):
    _many_subscriptions(plan, 60)
    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse("staff:plan", args=[plan.pk]))
    assert "Page 1 of 2 (60 items)" in response.content.decode()


def test_a_tenant_account_is_refused_even_with_a_session(staff_site, tenant_client, plan):
    response = tenant_client.get(reverse("staff:plans"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
