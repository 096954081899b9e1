"""Tenant pages for plans and subscriptions: browse, subscribe, see quota use."""

import re

import pytest
from django.urls import reverse

from tenants.models import Subscription, SubscriptionAddOn
from tenants.services import addon_save, plan_invitation_rotate, plan_set_state, subscription_addon_buy
from tests import factories

pytestmark = pytest.mark.django_db


def test_plans_show_public_plans_with_their_quotas(tenant_client, plan, endpoint):
    private = factories.make_plan(endpoint, public=False)
    response = tenant_client.get(reverse("tenant:plans"))
    assert response.status_code == 200
    body = response.content.decode()
    assert plan.name in body and private.name not in body
    assert "Virtual machines" in body and "32,768 MB" in body
    assert "Console access" in body and "Sizes (hardware profiles): all available" in body
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


@pytest.mark.parametrize("size", [2, 8])
def test_subscriptions_page_costs_the_same_queries_at_any_size(
    tenant_client, tenant_user, endpoint, size, django_assert_num_queries
):
    for _ in range(size):
        factories.make_subscription(tenant_user, factories.make_plan(endpoint))
    # session, user, count, page; quotas: plan rows, offers (+2 allow-lists), add-ons, usage; rail counts
    with django_assert_num_queries(4 + 6 + 5):
        response = tenant_client.get(reverse("tenant:subscriptions"))
    assert response.content.decode().count("quota-meter") == 3 * size


@pytest.mark.parametrize("size", [2, 8])
def test_plans_page_costs_the_same_queries_at_any_size(tenant_client, endpoint, size, django_assert_num_queries):
    for _ in range(size):
        factories.make_plan(endpoint)
    # session, user, count, page, held plans; offers: plan rows, offers, 2 allow-lists; rail counts
    with django_assert_num_queries(5 + 4 + 3):
        response = tenant_client.get(reverse("tenant:plans"))
    assert response.content.decode().count("Subscribe</button>") == size


def test_a_private_plan_is_joined_with_its_invitation_code_only(tenant_client, tenant_user, endpoint):
    private = factories.make_plan(endpoint, public=False)
    body = tenant_client.get(reverse("tenant:plans")).content.decode()
    assert private.name not in body and 'name="invitation_code"' in body
    wrong = tenant_client.post(reverse("tenant:plan-join"), {"invitation_code": "nope"}, follow=True)
    assert "This invitation code is not valid" in wrong.content.decode()
    code = plan_invitation_rotate(plan=private)
    response = tenant_client.post(reverse("tenant:plan-join"), {"invitation_code": code}, follow=True)
    sub = Subscription.objects.get(owner=tenant_user, plan=private)
    assert response.redirect_chain[-1][0] == reverse("tenant:subscription", args=[sub.pk])
    plan_set_state(plan=private, state="decommissioned")
    again = tenant_client.post(reverse("tenant:plan-join"), {"invitation_code": code}, follow=True)
    assert "not valid" in again.content.decode()
    assert Subscription.objects.filter(owner=tenant_user).count() == 1


def test_buy_an_addon_and_the_bars_grow_then_remove_it(tenant_client, subscription, plan, endpoint):
    addon = addon_save(name="Two more VMs", plans=[plan], max_per_subscription=2, quotas={"vm_cloud": {"vms": 2}})
    url = reverse("tenant:subscription", args=[subscription.pk])
    body = tenant_client.get(url).content.decode()
    assert "Buy Two more VMs" in body and '<meter class="quota-meter" min="0" max="10"' in body
    body = tenant_client.post(
        reverse("tenant:subscription-addon-buy", args=[subscription.pk, addon.pk]), follow=True
    ).content.decode()
    assert "Plan 10 + add-ons 2 = 12" in body and '<meter class="quota-meter" min="0" max="12"' in body
    tenant_client.post(reverse("tenant:subscription-addon-buy", args=[subscription.pk, addon.pk]))
    body = tenant_client.get(url).content.decode()
    assert "Plan 10 + add-ons 4 = 14" in body and "Buy Two more VMs" not in body  # at its maximum
    body = tenant_client.post(
        reverse("tenant:subscription-addon-remove", args=[subscription.pk, addon.pk]), follow=True
    ).content.decode()
    assert "Plan 10 + add-ons 2 = 12" in body
    assert tenant_client.get(reverse("tenant:subscriptions")).content.decode().count("Plan 10 + add-ons 2 = 12") == 1


def test_removing_an_addon_that_current_use_needs_is_refused(tenant_client, tenant_user, endpoint):
    plan = factories.make_plan(endpoint, max_vms=1)
    sub = factories.make_subscription(tenant_user, plan)
    addon = addon_save(name="One more VM", plans=[plan], quotas={"vm_cloud": {"vms": 1}})
    subscription_addon_buy(subscription=sub, addon=addon, user=tenant_user)
    factories.make_vm(sub, endpoint, "web01", run=False)
    factories.make_vm(sub, endpoint, "web02", run=False)
    body = tenant_client.post(
        reverse("tenant:subscription-addon-remove", args=[sub.pk, addon.pk]), follow=True
    ).content.decode()
    assert "current use wouldn&#x27;t fit (Virtual machines: 2 in use, 1 without it)" in body
    assert SubscriptionAddOn.objects.get(subscription=sub).quantity == 1


def test_another_tenants_subscription_addons_are_404(tenant_client, other_subscription, plan):
    addon = addon_save(name="Pack", plans=[plan], quotas={"vm_cloud": {"cores": 4}})
    assert tenant_client.get(reverse("tenant:subscription", args=[other_subscription.pk])).status_code == 404
    for name in ("tenant:subscription-addon-buy", "tenant:subscription-addon-remove"):
        assert tenant_client.post(reverse(name, args=[other_subscription.pk, addon.pk])).status_code == 404
    assert not SubscriptionAddOn.objects.exists()


@pytest.mark.parametrize("name", ["tenant:plans", "tenant:subscriptions"])
def test_anonymous_is_sent_to_sign_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_plan_held_to_its_limit_shows_subscribed_instead_of_the_button(tenant_client, subscription, plan):
    body = tenant_client.get(reverse("tenant:plans")).content.decode()
    assert re.search(r"<button[^>]*disabled[^>]*>Subscribed</button>", body)


def test_a_suspended_subscription_shows_its_add_ons_read_only(tenant_client, subscription, plan, staff_user):
    from tenants.services import subscription_suspend

    addon = addon_save(name="Two more VMs", plans=[plan], max_per_subscription=2, quotas={"vm_cloud": {"vms": 2}})
    subscription_addon_buy(subscription=subscription, addon=addon, user=subscription.owner)
    subscription_suspend(subscription=subscription, reason="Unpaid invoice", by=staff_user)
    body = tenant_client.get(reverse("tenant:subscription", args=[subscription.pk])).content.decode()
    assert "Unpaid invoice" in body and "Plan 10 + add-ons 2 = 12" in body
    assert "Buy Two more VMs" not in body and "Remove one Two more VMs" not in body
    body = tenant_client.post(
        reverse("tenant:subscription-addon-buy", args=[subscription.pk, addon.pk]), follow=True
    ).content.decode()
    assert "Unpaid invoice" in body
    assert SubscriptionAddOn.objects.get(subscription=subscription, addon=addon).quantity == 1


def test_a_coadmin_sees_the_quotas_but_buys_no_addon(coadmin_client, subscription, plan):
    addon = addon_save(name="Pack", plans=[plan], quotas={"vm_cloud": {"cores": 4}})
    body = coadmin_client.get(reverse("tenant:subscription", args=[subscription.pk])).content.decode()
    assert "quota-meter" in body and "Only the subscription's owner buys add-ons." in body
    assert "Buy Pack" not in body
    response = coadmin_client.post(reverse("tenant:subscription-addon-buy", args=[subscription.pk, addon.pk]))
    assert response.status_code == 403
    assert not SubscriptionAddOn.objects.exists()
