"""The "API tokens" page of both portals: create (shown once), list, revoke."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import APIToken
from tenants.services import token_create

pytestmark = pytest.mark.django_db

SECRET = re.compile(r'<code id="new-token">(cnp_[^<]+)</code>')


def create(client, site: str = "tenant", **data):
    return client.post(reverse(f"{site}:tokens"), {"name": "ci", "scope": "read", "expires_on": "", **data})


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_the_created_token_is_shown_once_and_the_list_never_shows_it_again(tenant_client, tenant_user, subscription):
    response = create(tenant_client, name="backup script", scope="write")
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    secret = SECRET.search(response.content.decode())[1]
    token = APIToken.objects.get(user=tenant_user)
    assert (token.name, token.scope, token.prefix) == ("backup script", "write", secret[:12])
    assert bearer(secret).get(reverse("tenant-api:vm-list")).status_code == 200

    page = tenant_client.get(reverse("tenant:tokens")).content.decode()
    assert secret not in page and secret[12:20] not in page
    assert "backup script" in page and f"{token.prefix}…" in page and "Read and write" in page


def test_the_form_refuses_a_missing_name_and_a_past_expiry(tenant_client):
    response = create(tenant_client, name="", expires_on="2000-01-01")
    assert response.status_code == 200
    body = response.content.decode()
    assert "This field is required." in body
    assert not SECRET.search(body) and not APIToken.objects.exists()
    response = create(tenant_client, expires_on="2000-01-01")
    assert "The expiry date is in the past." in response.content.decode()
    assert not APIToken.objects.exists()


def test_revoke_refuses_the_token_at_once_and_the_list_says_so(tenant_client, tenant_user, subscription):
    token, secret = token_create(user=tenant_user, name="ci")
    response = tenant_client.post(reverse("tenant:token-revoke", args=[token.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("tenant:tokens")
    assert bearer(secret).get(reverse("tenant-api:vm-list")).status_code == 401
    page = tenant_client.get(reverse("tenant:tokens")).content.decode()
    assert "Revoked" in page and reverse("tenant:token-revoke", args=[token.pk]) not in page
    assert tenant_client.get(reverse("tenant:token-revoke", args=[token.pk])).status_code == 405


def test_another_accounts_token_is_not_listed_nor_revocable(tenant_client, other_tenant):
    token, _ = token_create(user=other_tenant, name="theirs")
    assert "theirs" not in tenant_client.get(reverse("tenant:tokens")).content.decode()
    assert tenant_client.post(reverse("tenant:token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_staff_portal_has_the_page_and_its_tokens_work_on_the_staff_api(staff_client, staff_user):
    response = create(staff_client, site="staff", scope="read")
    assert response.status_code == 201
    secret = SECRET.search(response.content.decode())[1]
    assert bearer(secret).get(reverse("staff-api:plan-list")).status_code == 200
    assert f'href="{reverse("staff:tokens")}"' in staff_client.get(reverse("staff:dashboard")).content.decode()


def test_the_list_costs_the_same_queries_at_two_sizes(tenant_client, tenant_user):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert tenant_client.get(reverse("tenant:tokens")).status_code == 200
        return len(ctx)

    token_create(user=tenant_user, name="one", expires_on=timezone.now().date())
    few = queries()
    for n in range(30):
        token_create(user=tenant_user, name=f"t{n}")
    assert queries() == few
