"""Accounts, plans and subscriptions: the rules a tenant runs into."""

import pytest
from django.core.exceptions import ValidationError

from portal.exceptions import Conflict, NotAllowed
from tenants.models import Plan, PlanState, Subscription
from tenants.plan_services import quota_list
from tenants.selectors import plan_list
from tenants.services import account_create, plan_create, plan_set_state, subscription_create
from tests import factories


@pytest.mark.django_db
def test_sign_up_refuses_a_taken_email_and_a_weak_password():
    account_create(email="Ann@Example.test", password="Long-enough-pass-1")
    with pytest.raises(ValidationError) as taken:
        account_create(email="ann@example.test", password="Long-enough-pass-1")
    assert "email" in taken.value.error_dict
    with pytest.raises(ValidationError) as weak:
        account_create(email="bob@example.test", password="123")
    assert "password" in weak.value.error_dict


def test_private_plans_cannot_be_subscribed(tenant_user, endpoint):
    plan = factories.make_plan(endpoint, public=False)
    with pytest.raises(NotAllowed):
        subscription_create(owner=tenant_user, plan=plan)
    assert not Subscription.objects.exists()
    assert plan not in Plan.objects.visible_to(tenant_user)


def test_one_subscription_per_account_by_default(tenant_user, plan):
    subscription_create(owner=tenant_user, plan=plan)
    with pytest.raises(Conflict):
        subscription_create(owner=tenant_user, plan=plan)


@pytest.mark.django_db
def test_a_plan_without_services_cannot_go_public():
    plan = plan_create(name="Empty")
    with pytest.raises(NotAllowed, match="at least one service"):
        plan_set_state(plan=plan, state=PlanState.PUBLIC)


def test_quotas_and_subscriber_count(subscription, plan, staff_user):
    quotas = {q.key: q for q in quota_list(subscription)}
    assert (quotas["vms"].limit, quotas["vms"].used, quotas["cores"].limit) == (10, 0, 16)
    assert plan_list(user=staff_user).get(pk=plan.pk).subscriber_count == 1
