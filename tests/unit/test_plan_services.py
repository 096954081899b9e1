"""The plan-service registry's rules: effective quotas (plan + add-ons), booleans, allow-lists,
over-quota state, totals against what a plan sold, add-on purchase and removal, clone."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from fabric.models import HardwareProfile, VMCloudPlanService, VMTemplate
from fabric.selectors import vm_catalog
from portal.exceptions import Conflict, Forbidden, NotAllowed, QuotaExceeded
from tenants.models import PlanState, Subscription
from tenants.plan_services import (
    plan_quota_totals,
    plan_services,
    quota_allows,
    quota_list,
    subscription_quotas,
    subscriptions_over_quota,
)
from tenants.selectors import subscription_role
from tenants.services import (
    addon_save,
    addon_set_state,
    plan_clone,
    plan_invitation_rotate,
    plan_quotas_set,
    plan_service_remove,
    plan_set_state,
    subscription_addon_buy,
    subscription_addon_remove,
    subscription_create,
)
from tests import factories

pytestmark = pytest.mark.django_db


def test_vm_clouds_register_typed_quotas_and_allow_lists():
    (svc,) = [s for s in plan_services() if s.name == "vm_cloud"]
    assert [(q.key, q.kind, q.unit) for q in svc.quotas] == [
        ("vms", "number", ""),
        ("cores", "number", ""),
        ("memory_mb", "number", "MB"),
        ("console", "boolean", ""),
    ]
    assert [a.key for a in svc.allow_lists] == ["hardware_profiles", "templates"]


def test_effective_quota_is_plan_plus_addons_and_unset_is_unlimited(subscription, plan, tenant_user):
    addon = addon_save(name="+4 vCPU", plans=[plan], max_per_subscription=2, quotas={"vm_cloud": {"cores": 4}})
    subscription_addon_buy(subscription=subscription, addon=addon, user=tenant_user)
    subscription_addon_buy(subscription=subscription, addon=addon, user=tenant_user)
    cores = next(q for q in quota_list(subscription) if q.key == "cores")
    assert (cores.plan_limit, cores.addon_extra, cores.limit) == (16, 8, 24)
    plan_quotas_set(plan=plan, service="vm_cloud", quotas={"cores": None})
    cores = next(q for q in quota_list(subscription) if q.key == "cores")
    assert cores.limit is None  # an unlimited plan quota stays unlimited whatever the add-ons


def test_a_boolean_quota_is_granted_by_the_plan_or_an_addon(subscription, plan, tenant_user):
    sub = subscription
    assert quota_allows(subscription=sub, service="vm_cloud", key="console")  # unset: allowed
    plan_quotas_set(plan=plan, service="vm_cloud", quotas={"vms": 10, "console": False})
    assert not quota_allows(subscription=sub, service="vm_cloud", key="console")
    addon = addon_save(name="Console", plans=[plan], quotas={"vm_cloud": {"console": True}})
    subscription_addon_buy(subscription=sub, addon=addon, user=tenant_user)
    assert quota_allows(subscription=sub, service="vm_cloud", key="console")


def test_allow_lists_narrow_the_catalog_and_vm_create_refuses_the_rest(subscription, plan, endpoint):
    small = HardwareProfile.objects.get(endpoint=endpoint, name="Small")
    ubuntu = VMTemplate.objects.get(endpoint=endpoint, external_id="tpl-ubuntu-2404")
    offer = VMCloudPlanService.objects.get(plan=plan)
    offer.hardware_profiles.set([small])
    offer.templates.set([ubuntu])
    templates, sizes = vm_catalog(subscription=subscription)
    assert list(sizes) == [small] and list(templates) == [ubuntu]
    other_size = HardwareProfile.objects.filter(endpoint=endpoint).exclude(pk=small.pk).first()
    other_template = VMTemplate.objects.filter(endpoint=endpoint).exclude(pk=ubuntu.pk).first()
    with pytest.raises(ValidationError) as refused:
        factories.make_vm_job(subscription, endpoint, "big", hardware_profile=other_size, template=ubuntu)
    assert refused.value.message_dict == {"hardware_profile": ["Your plan does not allow this size."]}
    with pytest.raises(ValidationError) as refused:
        factories.make_vm_job(subscription, endpoint, "win", hardware_profile=small, template=other_template)
    assert refused.value.message_dict == {"template": ["Your plan does not allow this template."]}
    factories.make_vm_job(subscription, endpoint, "ok", hardware_profile=small, template=ubuntu)


def test_a_lowered_quota_leaves_use_in_place_refuses_more_and_is_listed_over_quota(subscription, plan, endpoint):
    for i in range(3):
        factories.make_vm(subscription, endpoint, f"vm{i}", run=False)
    plan_quotas_set(plan=plan, service="vm_cloud", quotas={"vms": 2, "cores": 16, "memory_mb": 32768})
    over = subscriptions_over_quota([subscription])
    assert [(q.key, q.used, q.limit, q.over) for q in over[subscription.pk]] == [("vms", 3, 2, 1)]
    with pytest.raises(QuotaExceeded):
        factories.make_vm(subscription, endpoint, "vm9", run=False)
    assert subscription.virtual_machines.count() == 3


@pytest.mark.parametrize("size", [2, 12])
def test_over_quota_and_quotas_of_many_subscriptions_cost_a_fixed_number_of_queries(
    endpoint, size, django_assert_num_queries
):
    plan = factories.make_plan(endpoint, max_vms=0)
    plan.max_subscriptions_per_account = 1
    plan.save()
    subs = [factories.make_subscription(factories.UserFactory(), plan) for _ in range(size)]
    # plan rows, offers (+2 allow-lists), add-ons, usage
    with django_assert_num_queries(6):
        quotas = subscription_quotas(subs)
    assert len(quotas) == size
    with django_assert_num_queries(6):
        assert subscriptions_over_quota(subs) == {}


def test_plan_totals_sum_use_against_what_was_sold(endpoint, tenant_user, other_tenant):
    plan = factories.make_plan(endpoint, max_vms=5, max_cores=None)
    a = factories.make_subscription(tenant_user, plan)
    factories.make_subscription(other_tenant, plan)
    factories.make_vm(a, endpoint, "web01", run=False)
    totals = {t.key: t for t in plan_quota_totals(plan)}
    assert (totals["vms"].used, totals["vms"].sold) == (1, 10)
    assert totals["cores"].sold is None  # unlimited somewhere: no total


def test_addon_rules_owner_only_offered_not_retired_and_bounded(subscription, plan, endpoint, other_tenant):
    addon = addon_save(name="Pack", plans=[plan], quotas={"vm_cloud": {"cores": 4}})
    assert subscription_role(subscription.owner, subscription) == "owner"
    assert subscription_role(other_tenant, subscription) is None
    with pytest.raises(Forbidden, match="Only the owner"):
        subscription_addon_buy(subscription=subscription, addon=addon, user=other_tenant)
    subscription_addon_buy(subscription=subscription, addon=addon, user=subscription.owner)
    with pytest.raises(Conflict, match="the most allowed"):
        subscription_addon_buy(subscription=subscription, addon=addon, user=subscription.owner)
    elsewhere = addon_save(name="Elsewhere", plans=[], quotas={"vm_cloud": {"cores": 4}})
    with pytest.raises(NotAllowed, match="not offered with the plan"):
        subscription_addon_buy(subscription=subscription, addon=elsewhere, user=subscription.owner)
    addon_set_state(addon=addon, state="retired")
    with pytest.raises(NotAllowed, match="no longer sold"):
        subscription_addon_buy(subscription=subscription, addon=addon, user=subscription.owner)
    # A retired add-on keeps counting for those who hold it, and can still be removed.
    assert next(q for q in quota_list(subscription) if q.key == "cores").limit == 20
    subscription_addon_remove(subscription=subscription, addon=addon, user=subscription.owner)
    assert next(q for q in quota_list(subscription) if q.key == "cores").limit == 16


def test_private_and_decommissioned_plans(endpoint, tenant_user, plan, subscription):
    private = factories.make_plan(endpoint, public=False)
    with pytest.raises(NotAllowed):
        subscription_create(owner=tenant_user, plan=private)
    code = plan_invitation_rotate(plan=private)
    with pytest.raises(NotAllowed):
        subscription_create(owner=tenant_user, plan=private, invitation_code="wrong")
    assert subscription_create(owner=tenant_user, plan=private, invitation_code=code).plan == private
    plan_set_state(plan=plan, state=PlanState.DECOMMISSIONED)
    with pytest.raises(NotAllowed):
        subscription_create(owner=factories.UserFactory(), plan=plan)
    factories.make_vm(subscription, endpoint, "still-works", run=False)  # existing subscriptions keep working


def test_clone_and_service_removal(plan, endpoint):
    small = HardwareProfile.objects.get(endpoint=endpoint, name="Small")
    VMCloudPlanService.objects.get(plan=plan).templates.set([])
    VMCloudPlanService.objects.get(plan=plan).hardware_profiles.set([small])
    addon = addon_save(name="Pack", plans=[plan], quotas={"vm_cloud": {"cores": 4}})
    clone = plan_clone(plan=plan, name="Copy")
    assert clone.state == PlanState.PRIVATE and list(clone.addons.all()) == [addon]
    assert [(q.key, q.limit) for q in quota_list(Subscription(plan=clone))] == [
        (q.key, q.limit) for q in quota_list(Subscription(plan=plan))
    ]
    assert list(VMCloudPlanService.objects.get(plan=clone).hardware_profiles.all()) == [small]
    with pytest.raises(NotAllowed, match="at least one service"):
        plan_service_remove(plan=plan, service="vm_cloud")  # public
    plan_service_remove(plan=clone, service="vm_cloud")
    assert quota_list(Subscription(plan=clone)) == []


def test_a_suspended_subscription_refuses_buying_and_removing_add_ons(subscription, plan, staff_user):
    """Suspended is read-only to its tenant: add-ons included, until staff activate it."""
    from tenants.services import subscription_activate, subscription_suspend

    addon = addon_save(name="Pack", plans=[plan], max_per_subscription=2, quotas={"vm_cloud": {"cores": 4}})
    subscription_addon_buy(subscription=subscription, addon=addon, user=subscription.owner)
    subscription_suspend(subscription=subscription, reason="Unpaid invoice", by=staff_user)
    with pytest.raises(NotAllowed, match="Unpaid invoice"):
        subscription_addon_buy(subscription=subscription, addon=addon, user=subscription.owner)
    with pytest.raises(NotAllowed, match="Unpaid invoice"):
        subscription_addon_remove(subscription=subscription, addon=addon, user=subscription.owner)
    assert next(q for q in quota_list(subscription) if q.key == "cores").limit == 20
    subscription_activate(subscription=subscription, by=staff_user)
    subscription_addon_remove(subscription=subscription, addon=addon, user=subscription.owner)
    assert next(q for q in quota_list(subscription) if q.key == "cores").limit == 16


def test_change_plan_counts_the_add_ons_the_subscription_holds(subscription, plan, endpoint, staff_user):
    from tenants.services import subscription_change_plan

    for i in range(3):
        factories.make_vm(subscription, endpoint, f"vm{i}", run=False)
    addon = addon_save(name="Two more VMs", plans=[plan], quotas={"vm_cloud": {"vms": 2}})
    subscription_addon_buy(subscription=subscription, addon=addon, user=subscription.owner)
    none = factories.make_plan(endpoint, max_vms=0)
    with pytest.raises(NotAllowed, match="Virtual machines: 3 in use, the plan with its add-ons allows 2"):
        subscription_change_plan(subscription=subscription, plan=none, by=staff_user)
    one = factories.make_plan(endpoint, max_vms=1)
    subscription_change_plan(subscription=subscription, plan=one, by=staff_user)  # 1 + 2 from the add-on
    subscription.refresh_from_db()
    assert subscription.plan_id == one.pk
    assert next(q for q in quota_list(subscription) if q.key == "vms").limit == 3
