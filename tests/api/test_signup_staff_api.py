"""Admin API of the sign-up policy and sign-up invitations."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from portal.models import PortalSettings, SignupPolicy
from tenants.models import SignupInvitation

from .conftest import api_client, assert_error

pytestmark = pytest.mark.django_db


def test_staff_read_and_set_the_sign_up_policy(staff_api):
    url = reverse("staff-api:settings")
    assert staff_api.get(url).json()["signup_policy"] == "open"
    answer = staff_api.put(url, {"signup_policy": "invitation"}, format="json")
    assert answer.status_code == 200 and answer.json()["signup_policy"] == "invitation"
    assert PortalSettings.load().signup_policy == SignupPolicy.INVITATION
    error = assert_error(staff_api.put(url, {"signup_policy": "sometimes"}, format="json"), 400)
    assert "signup_policy" in error["fields"]


def test_staff_invite_list_and_revoke(staff_api, settings):
    settings.CANOPY_TENANT_URL = "https://cloud.example.test/"
    created = staff_api.post(reverse("staff-api:invitation-list"), {"email": "ada@example.test"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "pending" and body["mail_sent"] is True and body["code"].startswith(body["prefix"])
    assert f"https://cloud.example.test/signup/?invitation={body['code']}" in mail.outbox[0].body
    listed = staff_api.get(reverse("staff-api:invitation-list")).json()["results"]
    assert [row["email"] for row in listed] == ["ada@example.test"] and "code" not in listed[0]
    revoked = staff_api.post(reverse("staff-api:invitation-revoke", kwargs={"pk": body["id"]}))
    assert revoked.json()["status"] == "revoked"
    assert SignupInvitation.objects.get().revoked_at is not None


def test_a_bad_invitation_is_a_field_error(staff_api, tenant_user):
    url = reverse("staff-api:invitation-list")
    assert "email" in assert_error(staff_api.post(url, {"email": tenant_user.email}, format="json"), 400)["fields"]
    assert (
        "valid_days" in assert_error(staff_api.post(url, {"email": "a@example.test", "valid_days": 0}), 400)["fields"]
    )
    assert not SignupInvitation.objects.exists()


def test_tenants_cannot_use_the_staff_routes(staff_site, tenant_user):
    client = api_client(tenant_user)
    assert client.get(reverse("staff-api:settings")).status_code in (401, 403)
    assert client.post(reverse("staff-api:invitation-list"), {"email": "x@example.test"}).status_code in (401, 403)
    assert not SignupInvitation.objects.exists()
