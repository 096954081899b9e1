"""Tenant pages for plans and subscriptions: browse, subscribe, see quota use."""

import re

import pytest
from django.urls import reverse

from tenants.models import Subscription
from tests import factories

pytestmark = pytest.mark.django_db


def test_plans_show_public_plans_with_their_quotas(tenant_client, plan, endpoint):
    private = factories.make_plan(endpoint, public=False)
    response = tenant_client.get(reverse("tenant:plans"))
    assert response.status_code == 200
    body = response.content.decode()
    assert plan.name in body and private.name not in body
    assert "Virtual machines" in body and "32,768 MB" in body
    assert reverse("tenant:plan-subscribe", args=[plan.pk]) in body


def test_subscribe_then_the_subscription_is_listed_with_its_quotas(tenant_client, tenant_user, plan):
    response = tenant_client.post(reverse("tenant:plan-subscribe", args=[plan.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("tenant:subscriptions")
    body = response.content.decode()
    assert f"You are subscribed to &#x27;{plan.name}&#x27;" in body
    assert Subscription.objects.filter(owner=tenant_user, plan=plan).count() == 1
    assert "0 of 10" in body and "Virtual machines" in body


def test_subscribing_twice_is_a_message_not_an_error(tenant_client, tenant_user, subscription, plan):
    response = tenant_client.post(reverse("tenant:plan-subscribe", args=[plan.pk]), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("tenant:plans")
    assert "You already hold 1 subscription" in response.content.decode()
    assert Subscription.objects.filter(owner=tenant_user).count() == 1


def test_a_private_plan_cannot_be_subscribed(tenant_client, tenant_user, endpoint):
    private = factories.make_plan(endpoint, public=False)
    response = tenant_client.post(reverse("tenant:plan-subscribe", args=[private.pk]))
    assert response.status_code == 404
    assert not Subscription.objects.filter(owner=tenant_user).exists()


def test_subscribe_needs_post(tenant_client, plan):
    assert tenant_client.get(reverse("tenant:plan-subscribe", args=[plan.pk])).status_code == 405


def test_subscriptions_show_quota_use(tenant_client, subscription, endpoint, other_subscription):
    vm = factories.make_vm(subscription, endpoint, "web01", run=False)
    response = tenant_client.get(reverse("tenant:subscriptions"))
    body = response.content.decode()
    assert "1 of 10" in body and f"{vm.cpu} of 16" in body
    assert '<meter class="quota-meter" min="0" max="10" value="1"' in body
    assert str(other_subscription.pk) not in body


def test_no_subscription_leads_to_the_plans(tenant_client):
    body = tenant_client.get(reverse("tenant:subscriptions")).content.decode()
    assert "No subscription yet" in body and reverse("tenant:plans") in body


def test_subscriptions_query_count_is_pinned(tenant_client, tenant_user, endpoint, django_assert_max_num_queries):
    for _ in range(3):
        factories.make_subscription(tenant_user, factories.make_plan(endpoint))
    # session, user, count, page, 2 per subscription for quotas, rail counts (VMs and running jobs
    # read the subscription ids first)
    with django_assert_max_num_queries(4 + 2 * 3 + 5):
        response = tenant_client.get(reverse("tenant:subscriptions"))
    assert response.status_code == 200


def test_plans_query_count_is_pinned(tenant_client, endpoint, django_assert_max_num_queries):
    for _ in range(3):
        factories.make_plan(endpoint)
    # session, user, count, page, held plans, one limits query per plan, rail counts
    with django_assert_max_num_queries(5 + 3 + 3):
        response = tenant_client.get(reverse("tenant:plans"))
    assert response.status_code == 200


@pytest.mark.parametrize("name", ["tenant:plans", "tenant:subscriptions"])
def test_anonymous_is_sent_to_sign_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_plan_held_to_its_limit_shows_subscribed_instead_of_the_button(tenant_client, subscription, plan):
    body = tenant_client.get(reverse("tenant:plans")).content.decode()
    assert re.search(r"<button[^>]*disabled[^>]*>Subscribed</button>", body)
