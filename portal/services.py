"""Writes of the portal's own rows and sign-in security: the provider settings staff change in the
admin portal, staff TOTP devices (django-otp) and the release of sign-in lockouts (django-axes).
Pages call these, never the libraries' models directly."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import audit
from portal.models import PortalSettings, SignupPolicy


@audit.audited("settings.update")
def portal_settings_update(*, by: Any, signup_policy: str) -> PortalSettings:
    """Change the provider settings; takes effect on the next request of every process (the row is
    read per request, nothing is cached). Raises ValidationError for an unknown value."""
    if signup_policy not in SignupPolicy.values:
        raise ValidationError({"signup_policy": f"Unknown sign-up policy '{signup_policy}'."})
    with transaction.atomic():
        PortalSettings.load()
        row = PortalSettings.objects.select_for_update().get(pk=PortalSettings.SINGLETON_PK)
        audit.track(row)
        row.signup_policy = signup_policy
        row.updated_by = by if getattr(by, "pk", None) else None
        row.save()
    return row


TOTP_DEVICE_NAME = "Authenticator app"


def totp_device_confirmed(user: Any) -> TOTPDevice | None:
    """The account's confirmed TOTP device, which sign-in asks a code of; None without one."""
    if not getattr(user, "pk", None):
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def totp_enrolment_start(*, user: Any) -> TOTPDevice:
    """The account's device being enrolled: an unconfirmed one with a fresh random key, made once and
    shown again until it is confirmed (so the QR code stays the same on reload). Asks nothing at
    sign-in until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)


@audit.audited("account.two_factor_enrol", target="user")
def totp_enrolment_confirm(*, user: Any, device: TOTPDevice, token: str) -> TOTPDevice:
    """Confirm the device with a code from the app: from now on sign-in asks for a code. Raises
    ValidationError for a wrong code (django-otp counts it: repeated failures are throttled)."""
    if device.user_id != user.pk or device.confirmed:
        raise ValidationError({"code": "This device can't be confirmed; reload the page."})
    totp_verify(device=device, token=token)
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # One device per account: what another enrolment left unconfirmed is dropped.
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return device


@audit.audited("account.two_factor_reset", target="user")
def totp_devices_remove(*, user: Any) -> int:
    """Remove the account's TOTP devices (an administrator's help for a lost phone): its next
    sign-in asks only for the password, and, when TOTP is required, for a new enrolment. Returns how
    many were removed."""
    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    return removed


def totp_verify(*, device: TOTPDevice, token: str) -> None:
    """Accept the device's current code (one step of drift allowed, each code once only), or raise
    ValidationError saying why not: a wrong code, or a wait while django-otp throttles the device
    (the wait doubles with each wrong code)."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        raise ValidationError({"code": "Too many wrong codes: wait a few seconds, then enter the code your app shows."})
    token = "".join(token.split())
    if not (token.isdigit() and len(token) == device.digits and device.verify_token(token)):
        raise ValidationError({"code": "Wrong code: enter the 6 digits your app shows now."})


@audit.audited("account.lockout_release")
def signin_lockout_reset(*, username: str, ip_address: str) -> int:
    """Release the sign-in lockout of one account from one address (django-axes' reset of that pair):
    it may sign in at once, with a fresh count. Returns how many records were cleared; never clears
    everyone (both must be given)."""
    from axes.utils import reset  # imported here: it reads axes' settings at import

    if not username or not ip_address:
        raise ValidationError("Name the account and the address whose lockout to release.")
    audit.note(changes={"lockout": [f"{username} from {ip_address}", None]})
    return reset(ip=ip_address, username=username)
