"""Sign-up as the provider's policy allows, email verification, and password change and reset.
Mail goes through Django's email backend: tests read django.core.mail.outbox."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from portal.models import PortalSettings, SignupPolicy
from tenants.models import Subscription, User
from tenants.services import email_verification_token
from tests import factories

pytestmark = pytest.mark.django_db

FORM = {
    "full_name": "Ada Tenant",
    "email": "ada@example.test",
    "password": "Correct-Horse-42",
    "password_confirm": "Correct-Horse-42",
}


def set_policy(policy: str) -> None:
    PortalSettings.load()
    PortalSettings.objects.update(signup_policy=policy)


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def test_open_sign_up_mails_a_link_and_subscribing_waits_for_it(client, plan):
    response = client.post(reverse("signup"), FORM, follow=True)
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("tenant:plans")
    assert "We sent a link to ada@example.test" in body and "Send the link again" in body
    user = User.objects.get(email="ada@example.test")
    assert user.email_verified_at is None
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.test"]

    refused = client.post(reverse("tenant:plan-subscribe", args=[plan.pk]), follow=True)
    assert "Verify your email address before subscribing" in refused.content.decode()
    assert not Subscription.objects.exists()

    link = link_in(mail.outbox[0])
    verified = client.get(link, follow=True)
    assert "ada@example.test is verified" in verified.content.decode()
    assert "Send the link again" not in verified.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is not None
    client.post(reverse("tenant:plan-subscribe", args=[plan.pk]))
    assert Subscription.objects.filter(owner=user).count() == 1
    assert client.get(link).status_code == 302  # again: still verified, nothing else


def test_the_link_can_be_sent_again_but_not_in_a_flood(client):
    client.post(reverse("signup"), FORM)
    mail.outbox.clear()
    from django.core.cache import cache

    cache.clear()  # the sign-up's own mail started the one-a-minute count
    first = client.post(reverse("verify-email-resend"), {"next": reverse("tenant:plans")}, follow=True)
    assert "We sent a new link" in first.content.decode() and len(mail.outbox) == 1
    second = client.post(reverse("verify-email-resend"), {"next": "https://evil.example/"})
    assert second["Location"] == reverse("tenant:plans")  # never another site
    assert "less than a minute ago" in client.get(reverse("tenant:plans")).content.decode()
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("tamper", ["forged", "expired", "changed address"])
def test_a_bad_verification_link_verifies_nothing(client, tamper, monkeypatch):
    user = factories.UserFactory(email="bob@example.test", email_verified_at=None)
    token = email_verification_token(user)
    if tamper == "forged":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif tamper == "expired":
        from tenants import services

        monkeypatch.setattr(services, "EMAIL_VERIFICATION_MAX_AGE", timedelta(seconds=-1))
    else:
        User.objects.filter(pk=user.pk).update(email="robert@example.test")
    response = client.get(reverse("verify-email", args=[token]))
    assert response.status_code == 400
    assert "expired" in response.content.decode() if tamper == "expired" else "not valid" in response.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_closed_sign_up_says_so_and_creates_nothing(client):
    set_policy(SignupPolicy.CLOSED)
    page = client.get(reverse("signup")).content.decode()
    assert "Sign-up is closed" in page and "<form" not in page.split("<main")[1].split("Sign in</a>")[0]
    client.post(reverse("signup"), FORM)
    assert not User.objects.filter(email="ada@example.test").exists()


def test_invitation_only_sign_up_needs_a_valid_invitation(client, staff_user):
    from tenants.services import signup_invitation_create

    set_policy(SignupPolicy.INVITATION)
    page = client.get(reverse("signup")).content.decode()
    assert "by invitation only" in page and 'name="invitation_code"' in page and "Invitation code" in page

    refused = client.post(reverse("signup"), FORM)
    assert "enter the code of your invitation" in refused.content.decode()
    wrong = client.post(reverse("signup"), {**FORM, "invitation_code": "inv_nope"})
    assert "not valid" in wrong.content.decode()
    assert not User.objects.filter(email="ada@example.test").exists()

    _, other_code, _ = signup_invitation_create(by=staff_user, email="eve@example.test", link=lambda c: c)
    stolen = client.post(reverse("signup"), {**FORM, "invitation_code": other_code})
    assert "for another email address" in stolen.content.decode()

    invitation, code, sent = signup_invitation_create(
        by=staff_user, email="ada@example.test", link=lambda c: f"http://tenant/signup/?invitation={c}"
    )
    assert sent and code in mail.outbox[-1].body
    prefilled = client.get(reverse("signup"), {"invitation": code}).content.decode()
    assert f'value="{code}"' in prefilled
    accepted = client.post(reverse("signup"), {**FORM, "invitation_code": code}, follow=True)
    assert "your account is ready" in accepted.content.decode()
    user = User.objects.get(email="ada@example.test")
    assert user.email_verified_at is not None  # the invitation was mailed to this address
    invitation.refresh_from_db()
    assert invitation.used_by == user and invitation.status == "used"

    again = Client().post(reverse("signup"), {**FORM, "email": "ada2@example.test", "invitation_code": code})
    assert "not valid" in again.content.decode()


def test_password_change(tenant_client, tenant_user):
    page = tenant_client.get(reverse("password-change")).content.decode()
    assert "Old password" in page and "New password confirmation" in page
    wrong = tenant_client.post(
        reverse("password-change"),
        {"old_password": "nope", "new_password1": "Brand-New-Pass-7", "new_password2": "Brand-New-Pass-7"},
    )
    assert wrong.status_code == 200 and "incorrect" in wrong.content.decode()
    response = tenant_client.post(
        reverse("password-change"),
        {"old_password": factories.PASSWORD, "new_password1": "Brand-New-Pass-7", "new_password2": "Brand-New-Pass-7"},
        follow=True,
    )
    assert "Your password is changed." in response.content.decode()
    tenant_user.refresh_from_db()
    assert tenant_user.check_password("Brand-New-Pass-7")
    assert tenant_client.get(reverse("tenant:dashboard")).status_code == 200  # still signed in


def test_password_change_needs_sign_in(client):
    response = client.get(reverse("password-change"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_password_reset_by_email(client, tenant_user):
    sign_in = client.get(reverse("login")).content.decode()
    assert reverse("password-reset") in sign_in
    response = client.post(reverse("password-reset"), {"email": "TENANT@example.test"}, follow=True)
    assert "Check your mailbox" in response.content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [tenant_user.email]
    link = link_in(mail.outbox[0])
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "Reset-Pass-77", "new_password2": "Reset-Pass-77"}, follow=True
    )
    assert "Your password is changed" in done.content.decode()
    tenant_user.refresh_from_db()
    assert tenant_user.check_password("Reset-Pass-77")
    assert "doesn" in client.get(link).content.decode()  # used once


def test_password_reset_tells_nobody_which_addresses_have_accounts(client, tenant_user, staff_user):
    answers = {
        email: client.post(reverse("password-reset"), {"email": email}, follow=True)
        for email in ("nobody@example.test", staff_user.email, tenant_user.email)
    }
    pages = {email: (tuple(r.redirect_chain), r.content.decode().split("<main")[1]) for email, r in answers.items()}
    assert len(set(pages.values())) == 1
    # Only the tenant account of this portal gets a mail: a staff account resets on the admin portal.
    assert [m.to for m in mail.outbox] == [[tenant_user.email]]


def test_staff_reset_and_change_their_password_on_the_admin_portal(staff_site, client, staff_user, tenant_user):
    client.post(reverse("password-reset"), {"email": tenant_user.email})
    assert mail.outbox == []
    client.post(reverse("password-reset"), {"email": staff_user.email})
    assert mail.outbox[0].to == [staff_user.email] and "/password-reset/" in mail.outbox[0].body
    client.force_login(staff_user, backend="portal.auth.SiteBackend")
    response = client.post(
        reverse("password-change"),
        {"old_password": factories.PASSWORD, "new_password1": "Staff-New-Pass-3", "new_password2": "Staff-New-Pass-3"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("staff:dashboard")
