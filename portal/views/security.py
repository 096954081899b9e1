"""Sign-in security pages of the admin portal: TOTP enrolment and the sign-in's code step, setting
and the list of sign-in lockouts with their release.

The TOTP code step: a correct password of an account with a confirmed device signs nobody in; the
session only remembers, for a few minutes, who is half-way (`PENDING_SIGN_IN`), and the code page
signs in (django-otp's `otp_login` marks the session verified) once the code is right.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import load_backend, login
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from portal.access import Capability, capability_required, public
from portal.forms import LockoutResetForm, TOTPCodeForm, apply_service_error
from portal.selectors import signin_lockout_list
from portal.services import (
    signin_lockout_reset,
    totp_device_confirmed,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_verify,
)

PENDING_SIGN_IN = "canopy_pending_sign_in"
PENDING_SECONDS = 300


def totp_exempt(view: Any) -> Any:
    """A page an unverified staff session may open while TOTP is required (enrolment itself)."""
    view.totp_exempt = True
    return view


def pend_sign_in(request: HttpRequest, user: Any, next_url: str) -> HttpResponse:
    """Remember that `user` gave the right password and send them to the code step."""
    request.session[PENDING_SIGN_IN] = {
        "user": user.pk,
        "backend": user.backend,
        "next": next_url,
        "until": time.time() + PENDING_SECONDS,
    }
    return redirect("login-verify")


def _pending_user(request: HttpRequest) -> tuple[Any, dict[str, Any]] | tuple[None, None]:
    pending = request.session.get(PENDING_SIGN_IN)
    if not isinstance(pending, dict) or pending.get("until", 0) < time.time():
        return None, None
    # The backend's get_user applies the site's rules again (an account locked meanwhile is None).
    user = load_backend(pending["backend"]).get_user(pending["user"])
    return user, pending


@public
@never_cache
@require_http_methods(["GET", "POST"])
def sign_in_verify(request: HttpRequest) -> HttpResponse:
    """The sign-in's second step: the code from the account's authenticator app."""
    user, pending = _pending_user(request)
    device = totp_device_confirmed(user) if user is not None else None
    if user is None or pending is None or device is None:
        request.session.pop(PENDING_SIGN_IN, None)
        messages.error(request, "Sign in again: the code step expired.")
        return redirect("login")
    form = TOTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            totp_verify(device=device, token=form.cleaned_data["code"])
        except ValidationError as exc:
            apply_service_error(form, exc)
        else:
            del request.session[PENDING_SIGN_IN]
            login(request, user, backend=pending["backend"])
            otp_login(request, device)
            return redirect(pending["next"])
    return render(request, "staff/sign_in_verify.html", {"form": form})


def _qr_svg(url: str) -> str:
    """The otpauth:// URL as an inline SVG QR code (no image file, no inline style: CSP-safe)."""
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    svg = image.to_string(encoding="unicode")
    return svg[svg.index("<svg") :]  # drop the XML declaration: it is part of an HTML page


@totp_exempt
@never_cache
@capability_required(Capability.VIEW)
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the key), confirm with a code."""
    confirmed = totp_device_confirmed(request.user)
    if confirmed is not None:
        verified = bool(getattr(request.user, "is_verified", lambda: False)())
        return render(request, "staff/two_factor.html", {"enabled": True, "verified": verified})
    device = totp_enrolment_start(user=request.user)
    form = TOTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            totp_enrolment_confirm(user=request.user, device=device, token=form.cleaned_data["code"])
        except ValidationError as exc:
            apply_service_error(form, exc)
        else:
            otp_login(request, device)
            messages.success(request, "Two-factor sign-in is on: each sign-in now asks for a code from your app.")
            return redirect("staff:dashboard")
    context = {
        "enabled": False,
        "form": form,
        "qr": mark_safe(_qr_svg(device.config_url)),  # noqa: S308  # generated by qrcode from our own URL
        "secret": base64.b32encode(device.bin_key).decode(),
        "required": settings.CANOPY_STAFF_REQUIRE_TOTP,
    }
    return render(request, "staff/two_factor.html", context)


@capability_required(Capability.VIEW)
def signin_lockouts(request: HttpRequest) -> HttpResponse:
    """Accounts locked out of sign-in after repeated failures, each with its address."""
    page = Paginator(signin_lockout_list(), 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "lockouts": page.object_list,
        "limit": settings.AXES_FAILURE_LIMIT,
        "cooloff": timesince(timezone.now() - settings.AXES_COOLOFF_TIME, timezone.now()),
    }
    return render(request, "staff/signin_lockouts.html", context)


@capability_required(Capability.ADMINISTER)
@require_POST
def signin_lockout_release(request: HttpRequest) -> HttpResponse:
    form = LockoutResetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name the account and the address whose lockout to release.")
    else:
        username, ip_address = form.cleaned_data["username"], form.cleaned_data["ip_address"]
        signin_lockout_reset(username=username, ip_address=ip_address)
        messages.success(request, f"{username} may sign in again from {ip_address}.")
    return redirect("staff:signin-lockouts")
