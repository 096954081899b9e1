"""Co-administrators: the owner adds and removes them; they see and manage the subscription's
resources but not the owner's actions; removal takes effect on the next read."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from fabric.models import VirtualMachine
from portal.access import visible_subscription_ids
from portal.exceptions import Forbidden
from portal.models import Job
from tenants.models import Subscription, SubscriptionCoAdmin
from tenants.selectors import subscription_held, subscription_role
from tenants.services import coadmin_add, coadmin_remove, subscription_require_owner
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_owner_adds_a_coadmin_who_then_sees_the_subscription_and_its_resources(
    subscription, tenant_user, coadmin_user, endpoint
):
    vm = factories.make_vm(subscription, endpoint, "web01")
    assert not Subscription.objects.visible_to(coadmin_user).exists()
    coadmin_add(subscription=subscription, by=tenant_user, email="  CoAdmin@Example.test ")
    assert list(Subscription.objects.visible_to(coadmin_user)) == [subscription]
    assert visible_subscription_ids(coadmin_user) == [subscription.pk]
    assert list(VirtualMachine.objects.visible_to(coadmin_user)) == [vm]
    assert Job.objects.visible_to(coadmin_user).count() == Job.objects.visible_to(tenant_user).count() > 0
    assert subscription_role(coadmin_user, subscription) == "coadmin"
    assert subscription_role(tenant_user, subscription) == "owner"


def test_an_owned_subscription_with_several_coadmins_is_listed_once(subscription, tenant_user):
    for n in range(3):
        factories.UserFactory(email=f"c{n}@example.test")
        coadmin_add(subscription=subscription, by=tenant_user, email=f"c{n}@example.test")
    assert list(Subscription.objects.visible_to(tenant_user)) == [subscription]


def test_a_removed_coadmin_loses_everything_at_once(subscription, tenant_user, coadmin, coadmin_user, endpoint):
    factories.make_vm(subscription, endpoint, "web01")
    assert VirtualMachine.objects.visible_to(coadmin_user).exists()
    coadmin_remove(subscription=subscription, by=tenant_user, coadmin=coadmin)
    assert not SubscriptionCoAdmin.objects.exists()
    assert not Subscription.objects.visible_to(coadmin_user).exists()
    assert not VirtualMachine.objects.visible_to(coadmin_user).exists()
    assert not Job.objects.visible_to(coadmin_user).exists()
    assert subscription_role(coadmin_user, subscription) is None


def test_a_coadmin_manages_resources_in_the_subscription(subscription, coadmin, coadmin_user, endpoint):
    from fabric.services import vm_action

    vm = factories.make_vm(subscription, endpoint, "web01", created_by=coadmin_user)
    assert vm.state == "running"
    vm_action(vm=vm, action="stop", created_by=coadmin_user)
    factories.run_queued_jobs()
    vm.refresh_from_db()
    assert vm.state == "stopped"


def test_only_the_owner_manages_coadmins(subscription, tenant_user, coadmin, coadmin_user, other_tenant):
    with pytest.raises(Forbidden, match="Only the owner"):
        subscription_require_owner(user=coadmin_user, subscription=subscription)
    with pytest.raises(Forbidden):
        coadmin_add(subscription=subscription, by=coadmin_user, email=other_tenant.email)
    with pytest.raises(Forbidden):
        coadmin_remove(subscription=subscription, by=coadmin_user, coadmin=coadmin)
    assert list(SubscriptionCoAdmin.objects.values_list("user__email", flat=True)) == [coadmin_user.email]


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("nobody@example.test", "No tenant account"),
        ("staff@example.test", "No tenant account"),
        ("unverified@example.test", "No tenant account"),
        ("disabled@example.test", "No tenant account"),
        ("tenant@example.test", "owner"),
        ("coadmin@example.test", "already a co-administrator"),
        ("", "Enter the email"),
    ],
)
def test_who_can_be_added(subscription, tenant_user, coadmin, staff_user, email, message):
    factories.UserFactory(email="unverified@example.test", email_verified_at=None)
    factories.UserFactory(email="disabled@example.test", is_active=False)
    with pytest.raises(ValidationError, match=message) as caught:
        coadmin_add(subscription=subscription, by=tenant_user, email=email)
    assert "email" in caught.value.message_dict
    assert SubscriptionCoAdmin.objects.count() == 1


def test_coadministered_subscriptions_dont_count_against_a_plan_limit(subscription, coadmin, coadmin_user, plan):
    assert not subscription_held(user=coadmin_user).exists()
    mine = factories.make_subscription(coadmin_user, plan)
    assert list(subscription_held(user=coadmin_user)) == [mine]


def test_a_deleted_subscription_is_hidden_from_its_coadmin(subscription, coadmin, coadmin_user):
    Subscription.objects.filter(pk=subscription.pk).update(state="deleted")
    assert not Subscription.objects.visible_to(coadmin_user).exists()
