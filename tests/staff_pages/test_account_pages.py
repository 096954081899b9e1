"""Admin portal pages of tenant accounts (search, page, lock, password reset, delete) and of staff
accounts and roles."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from portal.access import StaffRole
from tenants.models import Subscription, SubscriptionState, User
from tenants.services import account_lock, account_password_reset, account_unlock
from tests import factories


@pytest.fixture
def operator(db):
    return factories.UserFactory(is_staff=True, staff_role=StaffRole.OPERATOR, email="operator@example.test")


@pytest.fixture
def operator_client(staff_site, operator) -> Client:
    client = Client()
    client.force_login(operator, backend="portal.auth.SiteBackend")
    return client


# --- tenant accounts --------------------------------------------------------------------------------


def test_search_finds_accounts_by_email_or_name(staff_client, db):
    factories.UserFactory(email="alice@shop.test", full_name="Alice Martin")
    factories.UserFactory(email="bob@bakery.test", full_name="Robert Stone")
    found = lambda q: [a.email for a in staff_client.get(reverse("staff:accounts"), {"q": q}).context["accounts"]]  # noqa: E731
    assert found("SHOP") == ["alice@shop.test"]
    assert found("stone") == ["bob@bakery.test"]
    assert found("nobody") == []
    assert "No tenant account matches" in staff_client.get(reverse("staff:accounts"), {"q": "nobody"}).content.decode()


@pytest.mark.parametrize("accounts", [3, 60])
def test_account_list_costs_the_same_at_two_sizes(staff_client, db, accounts, django_assert_num_queries):
    for _ in range(accounts):
        factories.UserFactory()
    # The same at 3 and at 60 accounts: session, user, the rail's bounded counts (6, add-ons included), count and page.
    with django_assert_num_queries(10):
        response = staff_client.get(reverse("staff:accounts"), {"q": "example"})
    assert len(response.context["accounts"]) == min(accounts, 50)


def test_the_account_page_lists_its_subscriptions(staff_client, subscription):
    body = staff_client.get(reverse("staff:account", args=[subscription.owner.pk])).content.decode()
    assert subscription.owner.email in body and subscription.name in body and subscription.plan.name in body


def test_a_staff_account_has_no_tenant_account_page(staff_client, staff_user):
    assert staff_client.get(reverse("staff:account", args=[staff_user.pk])).status_code == 404


def test_lock_and_unlock_from_the_account_page(staff_client, tenant_user):
    response = staff_client.post(reverse("staff:account-lock", args=[tenant_user.pk]), follow=True)
    assert "is locked" in response.content.decode() and "Unlock" in response.content.decode()
    assert not User.objects.get(pk=tenant_user.pk).is_active
    response = staff_client.post(reverse("staff:account-unlock", args=[tenant_user.pk]), follow=True)
    assert "is unlocked" in response.content.decode()
    assert User.objects.get(pk=tenant_user.pk).is_active


def test_a_locked_account_session_ends_at_its_next_request_and_sign_in_is_refused(tenant_client, tenant_user):
    """On the tenant site (the default here), as the tenant sees it."""
    assert tenant_client.get(reverse("tenant:dashboard")).status_code == 200
    account_lock(account=tenant_user)
    response = tenant_client.get(reverse("tenant:dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    refused = Client().post(reverse("login"), {"username": tenant_user.email, "password": factories.PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in refused.wsgi_request.session
    account_unlock(account=tenant_user)
    signed_in = Client().post(reverse("login"), {"username": tenant_user.email, "password": factories.PASSWORD})
    assert signed_in.status_code == 302


def test_a_password_reset_ends_the_tenant_sessions(tenant_client, tenant_user):
    account_password_reset(account=tenant_user)
    response = tenant_client.get(reverse("tenant:dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_reset_password_shows_a_temporary_password_once_which_signs_in(staff_client, tenant_user, settings):
    response = staff_client.post(reverse("staff:account-password", args=[tenant_user.pk]))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    password = response.context["password"]
    assert password in response.content.decode()
    assert password not in staff_client.get(reverse("staff:account", args=[tenant_user.pk])).content.decode()
    tenant_user.refresh_from_db()
    assert tenant_user.check_password(password) and not tenant_user.check_password(factories.PASSWORD)


def test_delete_is_refused_with_a_live_subscription_and_works_without(staff_client, subscription):
    owner = subscription.owner
    response = staff_client.post(reverse("staff:account-delete", args=[owner.pk]), follow=True)
    assert "still holds subscriptions that aren&#x27;t deleted" in response.content.decode()
    assert User.objects.get(pk=owner.pk).deleted_at is None

    Subscription.objects.filter(pk=subscription.pk).update(state=SubscriptionState.DELETED)
    response = staff_client.post(reverse("staff:account-delete", args=[owner.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("staff:accounts") and "deleted" in response.content.decode()
    assert owner.email not in response.content.decode().split("<table", 1)[1]  # no longer listed
    assert staff_client.get(reverse("staff:account", args=[owner.pk])).status_code == 404


def test_an_operator_reads_accounts_without_the_account_actions(operator_client, subscription):
    page = operator_client.get(reverse("staff:account", args=[subscription.owner.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Reset password" not in body and "Delete account" not in body and "Lock" not in body
    assert operator_client.post(reverse("staff:account-lock", args=[subscription.owner.pk])).status_code == 403
    assert User.objects.get(pk=subscription.owner.pk).is_active


# --- staff accounts ---------------------------------------------------------------------------------------


def test_add_a_staff_account_with_a_password(staff_client, staff_site):
    response = staff_client.post(
        reverse("staff:staff-account-create"),
        {"email": "ops@example.test", "full_name": "Ops", "role": "operator", "password": "Long-Enough-Pass-1"},
        follow=True,
    )
    assert "Staff account ops@example.test created." in response.content.decode()
    account = User.objects.get(email="ops@example.test")
    assert (account.is_staff, account.staff_role) == (True, StaffRole.OPERATOR)
    signed_in = Client().post(reverse("login"), {"username": "ops@example.test", "password": "Long-Enough-Pass-1"})
    assert signed_in.status_code == 302


def test_add_a_staff_account_with_a_set_password_link(staff_client, staff_site):
    response = staff_client.post(
        reverse("staff:staff-account-create"), {"email": "new@example.test", "role": "administrator"}, follow=True
    )
    assert "a set-password link was emailed" in response.content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.test"]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password-reset/" in line)
    client = Client()
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "Fresh-Passw0rd-9", "new_password2": "Fresh-Passw0rd-9"}
    )
    assert done.status_code == 302 and done["Location"] == reverse("password-reset-complete")
    assert (
        Client().post(reverse("login"), {"username": "new@example.test", "password": "Fresh-Passw0rd-9"}).status_code
        == 302
    )
    assert not Client().get(link, follow=True).context["validlink"]  # used once


def test_a_taken_email_and_a_weak_password_are_form_errors(staff_client, staff_user):
    response = staff_client.post(
        reverse("staff:staff-account-create"), {"email": staff_user.email, "role": "operator", "password": "x"}
    )
    assert response.status_code == 200 and "email" in response.context["form"].errors


def test_change_role_and_the_last_administrator_is_kept(staff_client, staff_user, operator):
    response = staff_client.post(
        reverse("staff:staff-account-role", args=[staff_user.pk]), {"role": "operator"}, follow=True
    )
    assert "is the last active administrator" in response.content.decode()
    staff_user.refresh_from_db()
    assert staff_user.staff_role == StaffRole.ADMINISTRATOR

    staff_client.post(reverse("staff:staff-account-role", args=[operator.pk]), {"role": "administrator"})
    operator.refresh_from_db()
    assert operator.staff_role == StaffRole.ADMINISTRATOR
    listing = staff_client.get(reverse("staff:staff-accounts")).content.decode()
    assert "operator@example.test" in listing and staff_user.email in listing


def test_deactivate_ends_the_staff_session(staff_client, operator, staff_site):
    other = Client()
    other.force_login(operator, backend="portal.auth.SiteBackend")
    assert other.get(reverse("staff:dashboard")).status_code == 200
    staff_client.post(reverse("staff:staff-account-deactivate", args=[operator.pk]))
    response = other.get(reverse("staff:dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    staff_client.post(reverse("staff:staff-account-activate", args=[operator.pk]))
    assert User.objects.get(pk=operator.pk).is_active


def test_an_operator_cannot_open_staff_management_nor_see_it_in_the_rail(operator_client):
    assert operator_client.get(reverse("staff:staff-accounts")).status_code == 403
    dashboard = operator_client.get(reverse("staff:dashboard")).content.decode()
    assert "Staff accounts" not in dashboard and "User accounts" in dashboard


def test_an_operator_reads_the_plan_but_cannot_open_the_plan_editor(operator_client, plan, subscription):
    listing = operator_client.get(reverse("staff:plans")).content.decode()
    assert reverse("staff:plan", args=[plan.pk]) in listing and reverse("staff:plan-create") not in listing
    page = operator_client.get(reverse("staff:plan", args=[plan.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert (
        "Simulator / Stamp 01 / Gold" in body and subscription.name in body and "Use against what the plan sold" in body
    )
    assert reverse("staff:plan-edit", args=[plan.pk]) not in body and "Make private" not in body
    response = operator_client.get(reverse("staff:plan-edit", args=[plan.pk]))
    assert response.status_code == 403
    assert "Only administrators may do this; your account&#x27;s role is operator." in response.content.decode()


@pytest.mark.parametrize("count", [2, 40])
def test_staff_list_costs_the_same_at_two_sizes(staff_client, db, count, django_assert_num_queries):
    for n in range(count):
        factories.UserFactory(is_staff=True, staff_role=StaffRole.OPERATOR if n % 2 else StaffRole.ADMINISTRATOR)
    with django_assert_num_queries(10):  # session, user, the rail's bounded counts (6), count and page
        response = staff_client.get(reverse("staff:staff-accounts"))
    assert len(response.context["accounts"]) == count + 1


@pytest.mark.parametrize("count", [1, 30])
def test_the_account_page_costs_the_same_at_two_sizes(
    staff_client, plan, tenant_user, count, django_assert_num_queries
):
    for n in range(count):
        Subscription.objects.create(owner=tenant_user, plan=plan, name=f"sub {n}")
    with django_assert_num_queries(11):  # session, user, rail, the account, count and page of subscriptions
        response = staff_client.get(reverse("staff:account", args=[tenant_user.pk]))
    assert len(response.context["subscriptions"]) == count


def test_an_operator_is_not_offered_what_it_may_not_do(operator_client, endpoint):
    fabric = operator_client.get(reverse("staff:endpoints")).content.decode()
    assert "Register endpoint" not in fabric
    overview = operator_client.get(reverse("staff:dashboard")).content.decode()
    assert "+ New" not in overview  # every "+ New" choice of the admin portal is an administrator's
    page = operator_client.get(reverse("staff:endpoint", args=[endpoint.pk])).content.decode()
    assert "Sync" in page  # an operator re-reads the fabric
