"""Admin portal: the sign-up policy setting and sign-up invitations (administrator pages)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from portal.models import PortalSettings, SignupPolicy
from tenants.models import SignupInvitation

pytestmark = pytest.mark.django_db


def test_staff_set_the_sign_up_policy(staff_client, staff_user):
    page = staff_client.get(reverse("staff:settings")).content.decode()
    assert "Tenant sign-up" in page and "Invitation only" in page and "Save settings" in page
    response = staff_client.post(reverse("staff:settings"), {"signup_policy": "closed"}, follow=True)
    assert "Settings saved." in response.content.decode()
    row = PortalSettings.load()
    assert row.signup_policy == SignupPolicy.CLOSED and row.updated_by == staff_user
    bad = staff_client.post(reverse("staff:settings"), {"signup_policy": "sometimes"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    assert PortalSettings.load().signup_policy == SignupPolicy.CLOSED


def test_staff_invite_an_address_then_revoke(staff_client, staff_user, settings):
    settings.CANOPY_TENANT_URL = "https://cloud.example.test"
    response = staff_client.post(reverse("staff:invitations"), {"email": "Ada@Example.test", "valid_days": "3"})
    assert response.status_code == 201
    body = response.content.decode()
    invitation = SignupInvitation.objects.get()
    assert invitation.email == "ada@example.test" and invitation.created_by == staff_user
    code = body.split('id="new-invitation-code">')[1].split("<")[0]
    assert code.startswith("inv_") and code not in invitation.digest
    assert mail.outbox[0].to == ["ada@example.test"]
    assert f"https://cloud.example.test/signup/?invitation={code}" in mail.outbox[0].body
    listing = staff_client.get(reverse("staff:invitations")).content.decode()
    assert "Pending" in listing and code not in listing and invitation.prefix in listing

    staff_client.post(reverse("staff:invitation-revoke", kwargs={"pk": invitation.pk}))
    invitation.refresh_from_db()
    assert invitation.status == "revoked"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"email": "tenant@example.test", "valid_days": "7"}, "already exists"),
        ({"email": "x@example.test", "valid_days": "0"}, "greater than or equal to 1"),
        ({"email": "nope", "valid_days": "7"}, "valid email"),
    ],
)
def test_a_bad_invitation_is_a_form_error(staff_client, tenant_user, data, error):
    response = staff_client.post(reverse("staff:invitations"), data)
    assert response.status_code == 200 and error in response.content.decode()
    assert not SignupInvitation.objects.exists() and mail.outbox == []


@pytest.mark.parametrize("name", ["staff:settings", "staff:invitations"])
def test_tenants_cannot_reach_the_staff_pages(staff_site, tenant_user, name):
    client = Client()
    client.force_login(tenant_user, backend="portal.auth.SiteBackend")
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_invitation_list_costs_the_same_at_two_sizes(staff_client, staff_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants.services import account_signup, signup_invitation_create

    def grow(start: int, stop: int) -> None:
        for n in range(start, stop):
            _, code, _ = signup_invitation_create(by=staff_user, email=f"i{n}@example.test", link=str)
            if n % 2:
                account_signup(email=f"i{n}@example.test", password="Long-Pass-word-1", invitation_code=code)

    def cost() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(reverse("staff:invitations")).status_code == 200
        return len(captured)

    grow(0, 2)
    small = cost()
    grow(2, 9)
    assert cost() == small
