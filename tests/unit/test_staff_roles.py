"""The role check (portal.access) and the account services behind the staff pages and API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.test import RequestFactory

from portal.access import (
    Capability,
    StaffRole,
    capability_required,
    has_capability,
    route_capabilities,
    staff_required,
    view_capability,
)
from portal.exceptions import NotAllowed
from tenants.models import APIToken, Subscription, SubscriptionState, User
from tenants.services import (
    account_delete,
    account_lock,
    account_password_reset,
    account_unlock,
    staff_account_create,
    staff_account_deactivate,
    staff_role_set,
    token_create,
)
from tests import factories


@pytest.fixture
def operator(db):
    return factories.UserFactory(is_staff=True, staff_role=StaffRole.OPERATOR)


# --- the role check -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        (StaffRole.ADMINISTRATOR, {Capability.VIEW, Capability.OPERATE, Capability.ADMINISTER}),
        (StaffRole.OPERATOR, {Capability.VIEW, Capability.OPERATE}),
        ("", set()),  # a staff account without a role may do nothing
        ("owner", set()),  # nor one with a role this version doesn't know
    ],
)
def test_what_each_role_may_do(db, role, granted):
    user = factories.UserFactory(is_staff=True)
    user.staff_role = role
    assert {c for c in Capability if has_capability(user, c)} == granted


def test_tenants_and_anonymous_users_have_no_staff_capability(tenant_user):
    tenant_user.staff_role = StaffRole.ADMINISTRATOR  # a stray role on a tenant account grants nothing
    for capability in Capability:
        assert not has_capability(tenant_user, capability)
        assert not has_capability(AnonymousUser(), capability)


def _page(request):
    return HttpResponse("ok")


def test_the_page_decorator_declares_and_enforces(operator, staff_user):
    view = capability_required(Capability.ADMINISTER)(_page)
    assert view.capability == Capability.ADMINISTER
    request = RequestFactory().get("/plans/1/")
    request.user = staff_user
    assert view(request).status_code == 200
    request.user = operator
    with pytest.raises(PermissionDenied, match="Only administrators may do this; your account's role is operator"):
        view(request)
    request.user = AnonymousUser()
    assert view(request).status_code == 302  # to sign in


def test_staff_required_is_undeclared_and_for_administrators_only(operator, staff_user):
    view = staff_required(_page)
    assert route_capabilities(view) == dict.fromkeys(("get", "post", "put", "patch", "delete"))
    request = RequestFactory().get("/")
    request.user = operator
    with pytest.raises(PermissionDenied):
        view(request)
    request.user = staff_user
    assert view(request).status_code == 200


def test_a_tenant_passes_a_shared_view_but_not_a_staff_one(tenant_user):
    request = RequestFactory().get("/jobs/")
    request.user = tenant_user
    assert capability_required(Capability.OPERATE, tenants=True)(_page)(request).status_code == 200
    assert capability_required(Capability.VIEW)(_page)(request).status_code == 302


def test_a_viewset_declares_per_action():
    class Viewset:
        capabilities = {"list": Capability.VIEW, "create": Capability.ADMINISTER}
        action = "create"

    view = Viewset()
    assert view_capability(view) == Capability.ADMINISTER
    view.action = "metadata"  # OPTIONS is a read
    assert view_capability(view) == Capability.VIEW
    view.action = "destroy"  # not declared: None, which IsStaff treats as administer
    assert view_capability(view) is None


# --- staff accounts ------------------------------------------------------------------------------


def test_create_a_staff_account_with_a_role(db):
    account = staff_account_create(email="Ops@Example.test", full_name="Ops", role="operator", password=None)
    assert (account.email, account.is_staff, account.staff_role) == ("ops@example.test", True, "operator")
    assert not account.has_usable_password()  # set through the emailed link
    with pytest.raises(ValidationError) as refused:
        staff_account_create(email="x@example.test", role="owner", password=None)
    assert "role" in refused.value.error_dict


def test_the_last_active_administrator_is_never_demoted_or_deactivated(staff_user, operator):
    with pytest.raises(NotAllowed, match="last active administrator"):
        staff_role_set(account=staff_user, role=StaffRole.OPERATOR)
    with pytest.raises(NotAllowed, match="last active administrator"):
        staff_account_deactivate(account=staff_user)
    staff_user.refresh_from_db()
    assert (staff_user.staff_role, staff_user.is_active) == (StaffRole.ADMINISTRATOR, True)

    staff_role_set(account=operator, role=StaffRole.ADMINISTRATOR)  # now there are two
    staff_role_set(account=staff_user, role=StaffRole.OPERATOR)
    staff_user.refresh_from_db()
    assert staff_user.staff_role == StaffRole.OPERATOR
    with pytest.raises(NotAllowed):
        staff_account_deactivate(account=operator)  # the only administrator again


def test_an_inactive_administrator_does_not_count(staff_user, db):
    other = factories.UserFactory(is_staff=True, is_active=False)  # an administrator, deactivated
    assert other.staff_role == StaffRole.ADMINISTRATOR
    with pytest.raises(NotAllowed):
        staff_account_deactivate(account=staff_user)


def test_staff_services_refuse_tenant_accounts_and_the_reverse(tenant_user, staff_user):
    with pytest.raises(NotAllowed):
        staff_role_set(account=tenant_user, role=StaffRole.OPERATOR)
    with pytest.raises(NotAllowed):
        account_lock(account=staff_user)


# --- tenant accounts ----------------------------------------------------------------------------------


def test_lock_and_unlock(tenant_user):
    account_lock(account=tenant_user)
    tenant_user.refresh_from_db()
    assert not tenant_user.is_active
    account_unlock(account=tenant_user)
    tenant_user.refresh_from_db()
    assert tenant_user.is_active


def test_password_reset_returns_a_new_password_once(tenant_user):
    old_hash = tenant_user.password
    password = account_password_reset(account=tenant_user)
    tenant_user.refresh_from_db()
    assert len(password) >= 16 and tenant_user.password != old_hash and password not in tenant_user.password
    assert tenant_user.check_password(password) and not tenant_user.check_password(factories.PASSWORD)


def test_delete_is_refused_while_a_subscription_is_not_deleted(subscription):
    owner = subscription.owner
    with pytest.raises(NotAllowed, match=f"still holds subscriptions that aren't deleted \\('{subscription.name}'\\)"):
        account_delete(account=owner)
    owner.refresh_from_db()
    assert owner.is_active and owner.deleted_at is None


def test_delete_keeps_the_row_of_an_account_with_deleted_subscriptions_wiped(subscription):
    owner = subscription.owner
    token_create(user=owner, name="script", scope="read")
    Subscription.objects.filter(pk=subscription.pk).update(state=SubscriptionState.DELETED)
    account_delete(account=owner)
    owner.refresh_from_db()
    assert owner.deleted_at is not None and not owner.is_active and not owner.has_usable_password()
    assert owner.email.endswith("@accounts.invalid") and owner.full_name == ""
    assert not APIToken.objects.filter(user=owner).exists()
    assert Subscription.objects.filter(pk=subscription.pk, owner=owner).exists()  # kept for usage and audit


def test_delete_removes_an_account_that_never_subscribed(tenant_user):
    account_delete(account=tenant_user)
    assert not User.objects.filter(pk=tenant_user.pk).exists()
