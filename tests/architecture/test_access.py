"""The one access rule (portal.access): every model a user can see scopes through `visible_to`,
anonymous users see nothing, staff everything, tenants only what is theirs or offered to them.

The first test is generated from the installed models, so a new model with a scoped manager is
covered without editing it.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import AnonymousUser

from fabric.models import FabricEndpoint, HardwareProfile, VMTemplate
from portal.access import OwnedQuerySet, ScopedQuerySet
from portal.models import Job
from tests import factories

SCOPED = [model for model in apps.get_models() if isinstance(model._default_manager.all(), ScopedQuerySet)]


def test_the_models_users_read_are_scoped():
    names = {model._meta.label for model in SCOPED}
    expected = {"portal.Job", "portal.StateTransition", "tenants.Plan", "tenants.Subscription"}
    expected |= {"fabric.FabricEndpoint", "fabric.Cloud", "fabric.HardwareProfile", "fabric.VMTemplate"}
    assert expected | {"fabric.VirtualMachine"} <= names


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label)
def test_anonymous_sees_nothing_and_staff_everything(model, subscription, endpoint, staff_user):
    factories.make_vm(subscription, endpoint)
    assert not model._default_manager.visible_to(AnonymousUser()).exists()
    assert not model._default_manager.visible_to(None).exists()
    if isinstance(model._default_manager.all(), OwnedQuerySet):
        return  # personal rows (API tokens): their own test below; staff see only theirs
    visible = model._default_manager.visible_to(staff_user).count()
    hidden_from_all = model._default_manager.exclude(pk__in=model._default_manager.visible_to(staff_user).values("pk"))
    assert visible + hidden_from_all.count() == model._default_manager.count()
    if model._meta.label != "fabric.VirtualMachine":  # deleted VMs are gone for everyone
        assert not hidden_from_all.exists()


def test_a_tenant_sees_the_catalog_its_plans_offer_and_nothing_of_the_fabric(
    subscription, tenant_user, other_tenant, tmp_path
):
    elsewhere = factories.make_endpoint(tmp_path, name="Elsewhere")
    ours = subscription.plan.vm_cloud_service.cloud.stamp.endpoint
    assert set(VMTemplate.objects.visible_to(tenant_user)) == set(VMTemplate.objects.filter(endpoint=ours))
    assert set(HardwareProfile.objects.visible_to(tenant_user)) == set(HardwareProfile.objects.filter(endpoint=ours))
    assert not VMTemplate.objects.visible_to(tenant_user).filter(endpoint=elsewhere).exists()
    assert not FabricEndpoint.objects.visible_to(tenant_user).exists()
    assert not VMTemplate.objects.visible_to(other_tenant).exists()  # no subscription: nothing offered


def test_a_tenant_sees_its_own_jobs_only(subscription, other_subscription, endpoint, tenant_user):
    mine = factories.make_vm(subscription, endpoint, "mine")
    factories.make_vm(other_subscription, endpoint, "theirs")
    assert {job.target_name for job in Job.objects.visible_to(tenant_user)} == {mine.name}


def test_staff_is_decided_in_one_place():
    """Views, selectors and querysets ask portal.access, not `user.is_staff` themselves."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for app in ("portal", "tenants", "fabric", "websites")
        for path in (root / app).rglob("*.py")
        if (path.name in {"selectors.py", "querysets.py"} or "views" in path.parts) and ".is_staff" in path.read_text()
    ]
    assert offenders == []


def test_personal_rows_are_their_owners_alone_staff_included(tenant_user, other_tenant, staff_user):
    from tenants.models import APIToken
    from tenants.services import token_create

    mine, _ = token_create(user=tenant_user, name="mine", scope="read")
    token_create(user=other_tenant, name="theirs", scope="read")
    assert list(APIToken.objects.visible_to(tenant_user)) == [mine]
    assert not APIToken.objects.visible_to(staff_user).exists()
    assert not APIToken.objects.visible_to(AnonymousUser()).exists()
