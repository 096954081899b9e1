"""A staff account enrols an authenticator app in Chromium and signs in with its code, on the real
staff process, under the sites' Content-Security-Policy (the QR code is inline SVG)."""

from __future__ import annotations

import base64
import time

import pytest
from django_otp.oath import TOTP

from tests import factories

pytestmark = pytest.mark.e2e


def app_code(secret: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the key typed by hand (30 s steps, 6 digits)."""
    totp = TOTP(base64.b32decode(secret), step=30, t0=0, digits=6)
    totp.time = time.time() + steps_ahead * 30
    return f"{totp.token():06d}"


def sign_in(page, url: str, email: str) -> None:
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", email)
    page.fill("input[type=password]", factories.PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


def test_staff_enrol_totp_and_sign_in_with_the_code(canopy_sites, browser_page):
    factories.UserFactory(is_staff=True, email="totp@example.test")
    page, url = browser_page, canopy_sites.staff_url
    sign_in(page, url, "totp@example.test")
    page.goto(f"{url}/two-factor/")
    assert page.locator(".qr svg").is_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("input[name=code]", app_code(secret))
    page.click("main button[type=submit]")  # not the top bar's Sign out
    page.wait_for_load_state()
    assert "Two-factor sign-in is on" in page.content()

    page.click("text=Sign out")
    page.wait_for_load_state()
    sign_in(page, url, "totp@example.test")
    assert page.url.endswith("/login/verify/")
    page.fill("input[name=code]", app_code(secret, steps_ahead=1))  # the enrolment used this step's
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert page.url.rstrip("/") == url and "Overview" in page.title()
