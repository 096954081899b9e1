"""The owner's co-administrators page, and what a co-administrator sees of the subscription."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tenants.models import SubscriptionCoAdmin
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_owner_adds_a_coadmin_who_then_sees_the_subscription_marked(
    tenant_client, subscription, coadmin_user, endpoint
):
    url = reverse("tenant:subscription-coadmins", kwargs={"pk": subscription.pk})
    listing = tenant_client.get(reverse("tenant:subscriptions")).content.decode()
    assert "Co-administrator</span>" not in listing
    assert url in tenant_client.get(reverse("tenant:subscription", args=[subscription.pk])).content.decode()
    page = tenant_client.get(url).content.decode()
    assert "No co-administrator yet." in page and "Email address of the co-administrator" in page
    response = tenant_client.post(url, {"email": coadmin_user.email}, follow=True)
    body = response.content.decode()
    assert f"{coadmin_user.email} is now a co-administrator" in body
    assert SubscriptionCoAdmin.objects.filter(subscription=subscription, user=coadmin_user).exists()

    factories.make_vm(subscription, endpoint, "web01")
    client = factories_client(coadmin_user)
    theirs = client.get(reverse("tenant:subscriptions")).content.decode()
    assert subscription.name in theirs and "Co-administrator</span>" in theirs
    assert f"Owned by {subscription.owner.email}" in theirs and url not in theirs
    assert "web01" in client.get(reverse("tenant:vms")).content.decode()


def factories_client(user):
    from django.test import Client

    client = Client()
    client.force_login(user, backend="portal.auth.SiteBackend")
    return client


def test_a_refused_add_is_a_form_error(tenant_client, subscription):
    url = reverse("tenant:subscription-coadmins", kwargs={"pk": subscription.pk})
    response = tenant_client.post(url, {"email": "nobody@example.test"})
    assert response.status_code == 200
    assert "No tenant account with a verified email address" in response.content.decode()
    assert not SubscriptionCoAdmin.objects.exists()


def test_the_owner_removes_a_coadmin_who_gets_404_on_the_next_request(
    tenant_client, subscription, coadmin, coadmin_client, endpoint
):
    vm = factories.make_vm(subscription, endpoint, "web01")
    vm_url = reverse("tenant:vm", kwargs={"pk": vm.pk})
    assert coadmin_client.get(vm_url).status_code == 200
    remove = reverse("tenant:subscription-coadmin-remove", kwargs={"pk": subscription.pk, "coadmin_pk": coadmin.pk})
    response = tenant_client.post(remove, follow=True)
    assert "is no longer a co-administrator" in response.content.decode()
    assert coadmin_client.get(vm_url).status_code == 404
    assert subscription.name not in coadmin_client.get(reverse("tenant:subscriptions")).content.decode()


def test_a_coadmin_cannot_manage_coadmins(coadmin_client, subscription, coadmin, other_tenant):
    url = reverse("tenant:subscription-coadmins", kwargs={"pk": subscription.pk})
    response = coadmin_client.get(url)
    assert response.status_code == 403
    assert "Only the owner" in response.content.decode()
    assert coadmin_client.post(url, {"email": other_tenant.email}).status_code == 403
    remove = reverse("tenant:subscription-coadmin-remove", kwargs={"pk": subscription.pk, "coadmin_pk": coadmin.pk})
    assert coadmin_client.post(remove).status_code == 403
    assert list(SubscriptionCoAdmin.objects.values_list("pk", flat=True)) == [coadmin.pk]


def test_a_coadmin_can_create_a_vm_in_the_subscription(coadmin_client, coadmin_user, subscription, endpoint):
    template, size = factories.catalog(endpoint)
    response = coadmin_client.post(
        reverse("tenant:vm-create"),
        {
            "subscription": subscription.pk,
            "name": "helper01",
            "admin_username": "canopy",
            "template": template.pk,
            "hardware_profile": size.pk,
            "admin_password": factories.VM_PASSWORD,
            "admin_password_confirm": factories.VM_PASSWORD,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert subscription.virtual_machines.filter(name="helper01").exists()


def test_the_coadmin_page_and_the_subscription_list_cost_the_same_at_two_sizes(
    tenant_client, tenant_user, subscription, plan
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants.services import coadmin_add

    pages = [reverse("tenant:subscription-coadmins", kwargs={"pk": subscription.pk}), reverse("tenant:subscriptions")]

    def costs() -> list[int]:
        counts = []
        for url in pages:
            with CaptureQueriesContext(connection) as captured:
                assert tenant_client.get(url).status_code == 200
            counts.append(len(captured))
        return counts

    def grow(start: int, stop: int) -> None:
        for n in range(start, stop):
            helper = factories.UserFactory(email=f"helper{n}@example.test")
            coadmin_add(subscription=subscription, by=tenant_user, email=helper.email)
            # ... each helper also co-administers a subscription of its own owner's that A can't see
            other = factories.make_subscription(factories.UserFactory(), plan)
            coadmin_add(subscription=other, by=other.owner, email=helper.email)

    grow(0, 1)
    small = costs()
    grow(1, 8)
    assert costs() == small
