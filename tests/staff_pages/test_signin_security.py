"""Sign-in security of the admin portal: TOTP enrolment and the code step at sign-in (django-otp),
TOTP required for staff, and the sign-in lockouts staff can release (django-axes)."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.access import StaffRole
from tests import factories


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # no wait after a wrong code, except in the throttling test


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the user's app shows (`steps_ahead` later: a code is accepted once, and one step of
    drift is allowed, so a test that signs in right after enrolling uses the next one)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in(client: Client, email: str, password: str = factories.PASSWORD, **extra):
    return client.post(reverse("login"), {"username": email, "password": password}, **extra)


def enrol(client: Client, user) -> TOTPDevice:
    page = client.get(reverse("staff:two-factor"))
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    body = page.content.decode()
    assert "<svg" in body and page.context["secret"] in body  # the QR code inline, and the key to type
    wrong = client.post(reverse("staff:two-factor"), {"code": "000000" if code(device) != "000000" else "111111"})
    assert wrong.status_code == 200 and "Wrong code" in wrong.content.decode()
    done = client.post(reverse("staff:two-factor"), {"code": code(device)})
    assert done.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_enrol_then_sign_in_asks_for_the_code(staff_client, staff_user):
    device = enrol(staff_client, staff_user)
    assert "Each sign-in asks for a code" in staff_client.get(reverse("staff:two-factor")).content.decode()

    client = Client()
    response = sign_in(client, staff_user.email)
    assert response.status_code == 302 and response["Location"] == reverse("login-verify")
    assert "_auth_user_id" not in client.session  # the password alone signs nobody in
    assert client.get(reverse("staff:dashboard")).status_code == 302

    wrong = client.post(reverse("login-verify"), {"code": "12345x"})
    assert wrong.status_code == 200 and "Wrong code" in wrong.content.decode()
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("login-verify"), {"code": code(device, steps_ahead=1)})
    assert response.status_code == 302 and response["Location"] == reverse("staff:dashboard")
    assert client.get(reverse("staff:dashboard")).status_code == 200


def test_wrong_codes_are_throttled(staff_client, staff_user, settings):
    device = enrol(staff_client, staff_user)
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    client = Client()
    sign_in(client, staff_user.email)
    wrong = "000000" if code(device, steps_ahead=1) != "000000" else "111111"
    assert "Wrong code" in client.post(reverse("login-verify"), {"code": wrong}).content.decode()
    # Even the right code is refused while the device is throttled.
    refused = client.post(reverse("login-verify"), {"code": code(device, steps_ahead=1)})
    assert "Too many wrong codes" in refused.content.decode() and "_auth_user_id" not in client.session


def test_the_code_step_without_a_password_step_goes_back_to_sign_in(staff_site, staff_user):
    response = Client().get(reverse("login-verify"))
    assert response.status_code == 302 and response["Location"] == reverse("login")


def test_an_account_without_a_device_signs_in_with_its_password(staff_site, staff_user):
    client = Client()
    assert sign_in(client, staff_user.email)["Location"] == reverse("staff:dashboard")


def test_required_totp_sends_staff_without_a_device_to_enrolment_first(staff_client, staff_user, settings):
    settings.CANOPY_STAFF_REQUIRE_TOTP = True
    for name in ("staff:dashboard", "staff:plans", "staff:accounts"):
        response = staff_client.get(reverse(name))
        assert response.status_code == 302 and response["Location"] == reverse("staff:two-factor")
    api = staff_client.get(reverse("staff-api:plan-list"))
    assert api.status_code == 403 and api.json()["code"] == "totp_required"
    page = staff_client.get(reverse("staff:two-factor"))
    assert "required for staff accounts" in page.content.decode()

    enrol(staff_client, staff_user)
    assert staff_client.get(reverse("staff:dashboard")).status_code == 200
    assert staff_client.get(reverse("staff-api:plan-list")).status_code == 200


def test_required_totp_leaves_the_tenant_site_alone(tenant_client, settings):
    settings.CANOPY_STAFF_REQUIRE_TOTP = True
    assert tenant_client.get(reverse("tenant:dashboard")).status_code == 200


# --- sign-in lockouts -------------------------------------------------------------------------------------


@pytest.fixture
def operator(db):
    return factories.UserFactory(is_staff=True, staff_role=StaffRole.OPERATOR, email="operator@example.test")


def lock_out(email: str, **extra) -> None:
    client = Client()
    for _ in range(2):
        assert sign_in(client, email, "wrong-password", **extra).status_code == 200
    assert sign_in(client, email, "wrong-password", **extra).status_code == 429


def test_locked_out_accounts_are_listed_and_released(staff_client, operator):
    lock_out(operator.email, REMOTE_ADDR="198.51.100.9")
    assert sign_in(Client(), operator.email, REMOTE_ADDR="198.51.100.9").status_code == 429

    page = staff_client.get(reverse("staff:signin-lockouts")).content.decode()
    assert operator.email in page and "198.51.100.9" in page and "Unlock" in page

    response = staff_client.post(
        reverse("staff:signin-lockout-release"), {"username": operator.email, "ip_address": "198.51.100.9"}, follow=True
    )
    assert f"{operator.email} may sign in again from 198.51.100.9" in response.content.decode()
    assert operator.email not in response.content.decode().split("<table", 1)[1]
    assert sign_in(Client(), operator.email, REMOTE_ADDR="198.51.100.9").status_code == 302


def test_an_operator_sees_the_lockouts_but_cannot_release_them(staff_site, operator, staff_user):
    lock_out(staff_user.email)
    client = Client()
    client.force_login(operator, backend="portal.auth.SiteBackend")
    page = client.get(reverse("staff:signin-lockouts")).content.decode()
    assert staff_user.email in page and "Unlock" not in page
    refused = client.post(
        reverse("staff:signin-lockout-release"), {"username": staff_user.email, "ip_address": "127.0.0.1"}
    )
    assert refused.status_code == 403
    assert sign_in(Client(), staff_user.email).status_code == 429


@pytest.mark.parametrize("lockouts", [2, 30])
def test_the_lockout_list_costs_the_same_at_two_sizes(staff_client, db, lockouts, django_assert_num_queries):
    for n in range(lockouts):
        lock_out(f"nobody{n}@example.test")
    with django_assert_num_queries(10):
        response = staff_client.get(reverse("staff:signin-lockouts"))
    assert len(response.context["lockouts"]) == lockouts


def test_an_administrator_resets_a_lost_two_factor_device(staff_client, staff_user, operator):
    client = Client()
    client.force_login(operator, backend="portal.auth.SiteBackend")
    enrol(client, operator)
    listing = staff_client.get(reverse("staff:staff-accounts"))
    assert [a.two_factor for a in listing.context["accounts"] if a.pk == operator.pk] == [True]

    staff_client.post(reverse("staff:staff-account-two-factor-reset", args=[operator.pk]))
    assert not TOTPDevice.objects.filter(user=operator).exists()
    # Its next sign-in asks only for the password.
    assert sign_in(Client(), operator.email)["Location"] == reverse("staff:dashboard")
