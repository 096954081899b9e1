"""Staff API of tenant accounts and of staff accounts and roles: the same services and role check as
the pages (reading for every staff role, changes for administrators)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from portal.access import StaffRole
from tenants.models import Subscription, SubscriptionState, User
from tests import factories

from .conftest import api_client, assert_error
from .test_schema import generate


@pytest.fixture
def operator(db):
    return factories.UserFactory(is_staff=True, staff_role=StaffRole.OPERATOR, email="operator@example.test")


@pytest.fixture
def operator_api(staff_site, operator):
    return api_client(operator)


def test_list_searches_by_email_or_name(staff_api, db):
    factories.UserFactory(email="alice@shop.test", full_name="Alice Martin")
    factories.UserFactory(email="bob@bakery.test", full_name="Robert Stone")

    def emails(q):
        return [a["email"] for a in staff_api.get(reverse("staff-api:account-list"), {"search": q}).json()["results"]]

    assert emails("shop") == ["alice@shop.test"]
    assert emails("STONE") == ["bob@bakery.test"]
    assert emails("") == ["alice@shop.test", "bob@bakery.test"]


@pytest.mark.parametrize("accounts", [3, 60])
def test_the_account_list_costs_the_same_at_two_sizes(staff_api, db, accounts, django_assert_num_queries):
    for _ in range(accounts):
        factories.UserFactory()
    with django_assert_num_queries(4):  # session, user, count, page
        body = staff_api.get(reverse("staff-api:account-list"), {"search": "example"}).json()
    assert body["count"] == accounts


def test_detail_lock_unlock(staff_api, tenant_user):
    url = reverse("staff-api:account-detail", args=[tenant_user.pk])
    assert staff_api.get(url).json()["is_active"] is True
    locked = staff_api.post(reverse("staff-api:account-lock", args=[tenant_user.pk]))
    assert locked.status_code == 200 and locked.json()["is_active"] is False
    assert not User.objects.get(pk=tenant_user.pk).is_active
    unlocked = staff_api.post(reverse("staff-api:account-unlock", args=[tenant_user.pk]))
    assert unlocked.json()["is_active"] is True


def test_reset_password_answers_it_once_uncached(staff_api, tenant_user):
    response = staff_api.post(reverse("staff-api:account-reset-password", args=[tenant_user.pk]))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["account"]["email"] == tenant_user.email
    tenant_user.refresh_from_db()
    assert tenant_user.check_password(body["password"])


def test_delete_refused_with_a_live_subscription_then_done(staff_api, subscription):
    owner = subscription.owner
    url = reverse("staff-api:account-detail", args=[owner.pk])
    error = assert_error(staff_api.delete(url), 409, "not_allowed")
    assert subscription.name in error["message"]
    Subscription.objects.filter(pk=subscription.pk).update(state=SubscriptionState.DELETED)
    assert staff_api.delete(url).status_code == 204
    assert_error(staff_api.get(url), 404)


def test_staff_accounts_are_not_tenant_accounts(staff_api, staff_user):
    assert_error(staff_api.get(reverse("staff-api:account-detail", args=[staff_user.pk])), 404)
    assert_error(staff_api.post(reverse("staff-api:account-lock", args=[staff_user.pk])), 404)


def test_an_operator_reads_accounts_but_changes_none(operator_api, tenant_user):
    assert operator_api.get(reverse("staff-api:account-list")).status_code == 200
    assert operator_api.get(reverse("staff-api:account-detail", args=[tenant_user.pk])).status_code == 200
    for name in ("account-lock", "account-reset-password"):
        error = assert_error(operator_api.post(reverse(f"staff-api:{name}", args=[tenant_user.pk])), 403)
        assert "Only administrators" in error["message"]
    assert_error(operator_api.delete(reverse("staff-api:account-detail", args=[tenant_user.pk])), 403)
    tenant_user.refresh_from_db()
    assert tenant_user.is_active and tenant_user.check_password(factories.PASSWORD)


# --- staff accounts and roles --------------------------------------------------------------------


def test_create_staff_accounts_with_a_password_or_a_link(staff_api):
    created = staff_api.post(
        reverse("staff-api:staff-account-list"),
        {"email": "ops@example.test", "role": "operator", "password": "Long-Enough-Pass-1"},
        format="json",
    )
    assert created.status_code == 201 and created.json()["role"] == "operator"
    assert "password" not in created.json() and not mail.outbox
    linked = staff_api.post(
        reverse("staff-api:staff-account-list"), {"email": "new@example.test", "role": "administrator"}, format="json"
    )
    assert linked.status_code == 201 and mail.outbox[0].to == ["new@example.test"]
    assert not User.objects.get(email="new@example.test").has_usable_password()
    error = assert_error(
        staff_api.post(
            reverse("staff-api:staff-account-list"), {"email": "x@example.test", "role": "boss"}, format="json"
        ),
        400,
    )
    assert "role" in error["fields"]


def test_change_role_keeps_the_last_administrator(staff_api, staff_user, operator):
    url = reverse("staff-api:staff-account-role", args=[staff_user.pk])
    error = assert_error(staff_api.post(url, {"role": "operator"}, format="json"), 409, "not_allowed")
    assert "last active administrator" in error["message"]
    promoted = staff_api.post(reverse("staff-api:staff-account-role", args=[operator.pk]), {"role": "administrator"})
    assert promoted.json()["role"] == "administrator"
    assert staff_api.post(url, {"role": "operator"}, format="json").json()["role"] == "operator"


def test_deactivate_and_activate(staff_api, staff_user, operator):
    assert_error(staff_api.post(reverse("staff-api:staff-account-deactivate", args=[staff_user.pk])), 409)
    assert (
        staff_api.post(reverse("staff-api:staff-account-deactivate", args=[operator.pk])).json()["is_active"] is False
    )
    assert staff_api.post(reverse("staff-api:staff-account-activate", args=[operator.pk])).json()["is_active"] is True


def test_an_operator_may_not_manage_staff(operator_api, operator, staff_user):
    assert_error(operator_api.get(reverse("staff-api:staff-account-list")), 403)
    assert_error(
        operator_api.post(reverse("staff-api:staff-account-role", args=[operator.pk]), {"role": "administrator"}), 403
    )
    assert User.objects.get(pk=operator.pk).staff_role == StaffRole.OPERATOR


def test_roles_are_listed_with_what_each_may_do(operator_api):
    roles = {r["role"]: r["capabilities"] for r in operator_api.get(reverse("staff-api:staff-role-list")).json()}
    assert roles == {"administrator": ["administer", "operate", "view"], "operator": ["operate", "view"]}


def test_a_tenant_cannot_reach_these_apis(staff_site, tenant_user):
    client = api_client(tenant_user)  # a tenant session isn't an account of the staff site
    assert_error(client.get(reverse("staff-api:account-list")), 403)
    assert_error(client.get(reverse("staff-api:staff-account-list")), 403)


def test_an_operator_token_carries_the_operator_role(staff_site, operator):
    from tenants.services import token_create

    _, secret = token_create(user=operator, name="ops", scope="write")
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(reverse("staff-api:account-list")).status_code == 200
    assert_error(client.post(reverse("staff-api:plan-list"), {"name": "Nope"}, format="json"), 403)


def test_the_schema_documents_accounts_and_roles(staff_site):
    paths = generate("portal.urls.staff")["paths"]
    assert {
        "/api/v1/accounts/{id}/lock/",
        "/api/v1/accounts/{id}/unlock/",
        "/api/v1/accounts/{id}/reset-password/",
        "/api/v1/staff-accounts/",
        "/api/v1/staff-accounts/{id}/role/",
        "/api/v1/staff-roles/",
    } <= set(paths)
    assert "delete" in paths["/api/v1/accounts/{id}/"]
    assert "search" in {p["name"] for p in paths["/api/v1/accounts/"]["get"]["parameters"]}


@pytest.mark.parametrize("count", [2, 40])
def test_the_staff_account_list_costs_the_same_at_two_sizes(staff_api, db, count, django_assert_num_queries):
    for _ in range(count):
        factories.UserFactory(is_staff=True, staff_role=StaffRole.OPERATOR)
    with django_assert_num_queries(4):  # session, user, count, page (with each one's two-factor state)
        body = staff_api.get(reverse("staff-api:staff-account-list")).json()
    assert body["count"] == count + 1
