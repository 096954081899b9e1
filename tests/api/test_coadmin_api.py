"""Tenant API of co-administrators: the owner lists, adds and removes them; a co-administrator sees
the subscription (role "coadmin") and its VMs, gets 403 on the co-administrator routes, and 404 at
once when removed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tenants.models import SubscriptionCoAdmin
from tests import factories

from .conftest import api_client, assert_error

pytestmark = pytest.mark.django_db


def coadmins_url(subscription) -> str:
    return reverse("tenant-api:subscription-coadmins", kwargs={"pk": subscription.pk})


def remove_url(subscription, coadmin) -> str:
    return reverse("tenant-api:subscription-coadmin-remove", kwargs={"pk": subscription.pk, "coadmin_pk": coadmin.pk})


def test_the_owner_adds_lists_and_removes_a_coadmin(api, subscription, coadmin_user, endpoint):
    assert api.get(coadmins_url(subscription)).json() == []
    added = api.post(coadmins_url(subscription), {"email": coadmin_user.email}, format="json")
    assert added.status_code == 201
    assert added.json()["email"] == coadmin_user.email
    listed = api.get(coadmins_url(subscription)).json()
    assert [row["email"] for row in listed] == [coadmin_user.email]

    vm = factories.make_vm(subscription, endpoint, "web01")
    theirs = api_client(coadmin_user)
    subs = theirs.get(reverse("tenant-api:subscription-list")).json()["results"]
    assert [(s["id"], s["role"]) for s in subs] == [(str(subscription.pk), "coadmin")]
    assert api.get(reverse("tenant-api:subscription-list")).json()["results"][0]["role"] == "owner"
    vm_url = reverse("tenant-api:vm-detail", kwargs={"pk": vm.pk})
    assert theirs.get(vm_url).status_code == 200
    assert theirs.post(reverse("tenant-api:vm-stop", kwargs={"pk": vm.pk})).status_code == 202

    coadmin = SubscriptionCoAdmin.objects.get()
    assert api.delete(remove_url(subscription, coadmin)).status_code == 204
    assert_error(theirs.get(vm_url), 404)
    assert_error(theirs.get(reverse("tenant-api:subscription-detail", kwargs={"pk": subscription.pk})), 404)
    assert_error(api.delete(remove_url(subscription, coadmin)), 404)


def test_a_coadmin_gets_403_on_the_coadmin_routes(subscription, coadmin, coadmin_user, other_tenant):
    theirs = api_client(coadmin_user)
    assert_error(theirs.get(coadmins_url(subscription)), 403, "forbidden")
    assert_error(theirs.post(coadmins_url(subscription), {"email": other_tenant.email}, format="json"), 403)
    assert_error(theirs.delete(remove_url(subscription, coadmin)), 403)
    assert SubscriptionCoAdmin.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({"email": "nobody@example.test"}, "email"), ({"email": "not-an-email"}, "email"), ({}, "email")],
)
def test_a_refused_add_is_a_field_error(api, subscription, body, field):
    answer = assert_error(api.post(coadmins_url(subscription), body, format="json"), 400)
    assert field in answer["fields"]
    assert not SubscriptionCoAdmin.objects.exists()


def test_the_subscription_list_costs_the_same_with_more_coadministered_subscriptions(
    plan, coadmin_user, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants.services import coadmin_add

    client = api_client(coadmin_user)

    def share(n: int) -> None:
        for _ in range(n):
            sub = factories.make_subscription(factories.UserFactory(), plan)
            coadmin_add(subscription=sub, by=sub.owner, email=coadmin_user.email)

    def cost() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("tenant-api:subscription-list")).status_code == 200
        return len(captured)

    share(1)
    small = cost()
    share(6)
    assert cost() == small
    assert len(client.get(reverse("tenant-api:subscription-list")).json()["results"]) == 7
