"""Sign-up policy, invitations and email verification, at the service level."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.exceptions import NotAllowed
from portal.models import PortalSettings, SignupPolicy
from portal.services import portal_settings_update
from tenants.models import SignupInvitation, User
from tenants.services import (
    account_signup,
    email_verification_send,
    email_verify,
    signup_invitation_create,
    signup_invitation_revoke,
    subscription_create,
)
from tests import factories

pytestmark = pytest.mark.django_db
PASSWORD = "Long-enough-pass-1"


def invite(staff_user, email="ada@example.test", **kwargs):
    return signup_invitation_create(
        by=staff_user, email=email, link=lambda code: f"http://t/signup/?invitation={code}", **kwargs
    )


def test_settings_default_to_open_and_refuse_unknown_values(staff_user):
    assert PortalSettings.load().signup_policy == SignupPolicy.OPEN
    with pytest.raises(ValidationError):
        portal_settings_update(by=staff_user, signup_policy="maybe")
    portal_settings_update(by=staff_user, signup_policy=SignupPolicy.INVITATION)
    assert PortalSettings.objects.get().signup_policy == SignupPolicy.INVITATION


def test_closed_sign_up_refuses_even_with_an_invitation(staff_user):
    _, code, _ = invite(staff_user)
    portal_settings_update(by=staff_user, signup_policy=SignupPolicy.CLOSED)
    with pytest.raises(NotAllowed, match="closed"):
        account_signup(email="ada@example.test", password=PASSWORD, invitation_code=code)
    assert not User.objects.filter(email="ada@example.test").exists()


@pytest.mark.parametrize("state", ["revoked", "expired", "used"])
def test_an_invitation_works_once_while_pending(staff_user, state):
    portal_settings_update(by=staff_user, signup_policy=SignupPolicy.INVITATION)
    invitation, code, _ = invite(staff_user)
    if state == "revoked":
        signup_invitation_revoke(invitation=invitation)
    elif state == "expired":
        SignupInvitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    else:
        account_signup(email="ada@example.test", password=PASSWORD, invitation_code=code)
        User.objects.filter(email="ada@example.test").delete()
    with pytest.raises(ValidationError) as caught:
        account_signup(email="ada@example.test", password=PASSWORD, invitation_code=code)
    assert "invitation_code" in caught.value.message_dict
    assert not User.objects.filter(email="ada@example.test").exists()


def test_an_invitation_is_stored_as_a_digest_and_mailed(staff_user):
    invitation, code, sent = invite(staff_user, valid_days=2)
    assert sent and code not in invitation.digest and code.startswith(invitation.prefix)
    assert mail.outbox[0].to == ["ada@example.test"] and f"invitation={code}" in mail.outbox[0].body
    assert timedelta(days=1) < invitation.expires_at - timezone.now() <= timedelta(days=2)
    with pytest.raises(ValidationError, match="1 to 90"):
        invite(staff_user, email="b@example.test", valid_days=91)


def test_an_open_sign_up_is_unverified_until_the_link(staff_user, plan):
    user = account_signup(email="ada@example.test", password=PASSWORD)
    assert not user.email_verified
    with pytest.raises(NotAllowed, match="Verify your email"):
        subscription_create(owner=user, plan=plan)
    links: list[str] = []
    assert email_verification_send(user=user, link=lambda token: links.append(token) or f"http://t/{token}")
    with pytest.raises(NotAllowed, match="less than a minute"):
        email_verification_send(user=user, link=str)
    assert email_verify(token=links[0]).email_verified
    with pytest.raises(NotAllowed, match="already verified"):
        email_verification_send(user=User.objects.get(pk=user.pk), link=str)
    subscription_create(owner=User.objects.get(pk=user.pk), plan=plan)


def test_accounts_made_by_staff_and_scripts_are_verified():
    assert User.objects.create_user("s@example.test", PASSWORD).email_verified
    assert factories.UserFactory().email_verified
