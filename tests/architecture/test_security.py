"""Security settings of both sites: sign-in lockout (django-axes), the strict Content-Security-Policy
(django-csp), and production settings that make `check --deploy` clean while the embedded default
still serves plain http://127.0.0.1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories

BASE_DIR = Path(__file__).resolve().parent.parent.parent
LOCKED = "Too many failed sign-ins for this account from your address."


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


def _post_sign_in(client: Client, email: str, password: str, **extra):
    return client.post(reverse("login"), {"username": email, "password": password}, **extra)


def _fail(client: Client, email: str, times: int, **extra) -> None:
    for _ in range(times):
        response = _post_sign_in(client, email, "wrong-password", **extra)
        assert response.status_code == 200
        assert "Wrong email or password for this portal." in response.content.decode()


def _lock(client: Client, email: str) -> None:
    """The limit's (3rd) failure answers the lockout itself."""
    _fail(client, email, 2)
    assert _post_sign_in(client, email, "wrong-password").status_code == 429


# --- lockout -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("site", ["tenant", "staff"])
def test_an_account_is_locked_out_after_repeated_failures_with_the_reason_on_the_sign_in_page(
    site, request, tenant_user, staff_user
):
    if site == "staff":
        request.getfixturevalue("staff_site")
    user = staff_user if site == "staff" else tenant_user
    client = Client()
    _lock(client, user.email)
    response = _post_sign_in(client, user.email, factories.PASSWORD)  # even the right password now
    assert response.status_code == 429
    body = response.content.decode()
    assert LOCKED in body and 'name="password"' in body  # the sign-in page itself, not a bare error page
    assert "_auth_user_id" not in client.session


def test_a_successful_sign_in_clears_the_failure_count(tenant_user):
    client = Client()
    _fail(client, tenant_user.email, 2)
    assert _post_sign_in(client, tenant_user.email, factories.PASSWORD).status_code == 302
    client.post(reverse("logout"))
    _fail(client, tenant_user.email, 2)
    assert _post_sign_in(client, tenant_user.email, factories.PASSWORD).status_code == 302


def test_the_lockout_is_per_account_and_address(tenant_user, other_tenant):
    client = Client()
    _lock(client, tenant_user.email)
    assert _post_sign_in(client, tenant_user.email, factories.PASSWORD).status_code == 429
    # Another account from the same address, and the same account from another address, still sign in.
    assert _post_sign_in(Client(), other_tenant.email, factories.PASSWORD).status_code == 302
    response = _post_sign_in(Client(), tenant_user.email, factories.PASSWORD, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 302


def test_axes_reset_unlocks(tenant_user):
    from django.core.management import call_command

    _lock(Client(), tenant_user.email)
    assert _post_sign_in(Client(), tenant_user.email, factories.PASSWORD).status_code == 429
    call_command("axes_reset_username", tenant_user.email)
    assert _post_sign_in(Client(), tenant_user.email, factories.PASSWORD).status_code == 302


# --- Content-Security-Policy -----------------------------------------------------------------------------

STRICT = ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'")


def _assert_strict_csp(response) -> None:
    policy = response["Content-Security-Policy"]
    for directive in STRICT:
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_tenant_site_sends_a_strict_csp(tenant_client):
    _assert_strict_csp(Client().get(reverse("login")))
    _assert_strict_csp(tenant_client.get(reverse("tenant:dashboard")))


def test_the_staff_site_sends_a_strict_csp(staff_client):
    _assert_strict_csp(Client().get(reverse("login")))
    _assert_strict_csp(staff_client.get(reverse("staff:dashboard")))


INLINE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|\shx-on|javascript:", re.IGNORECASE)
TEMPLATE_COMMENT = re.compile(r"{#.*?#}|{% comment %}.*?{% endcomment %}", re.DOTALL)


def test_no_template_or_static_file_has_inline_script_or_style():
    """What the strict policy would block: inline <script>/<style>, style=, on*= and hx-on attributes."""
    offenders = []
    for root in ("templates", "static", "portal", "tenants", "fabric", "websites"):
        for path in (BASE_DIR / root).rglob("*"):
            if path.suffix not in (".html", ".js"):
                continue
            text = TEMPLATE_COMMENT.sub("", path.read_text())
            offenders += [f"{path.relative_to(BASE_DIR)}: {m.group(0)}" for m in INLINE.finditer(text)]
    assert offenders == []


def test_the_inline_checker_finds_what_it_looks_for():
    for bad in ("<script>x()</script>", "<style>b{}</style>", '<p style="x">', '<a onclick="x">', "<b hx-on:x=y>"):
        assert INLINE.search(bad), bad
    assert not INLINE.search('<script src="/static/htmx.min.js" defer></script><p class="x">')


# --- production settings --------------------------------------------------------------------------------

PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "k" * 10 + "a-long-random-production-secret-key-of-fifty-chars+",
    "DJANGO_ALLOWED_HOSTS": "admin.cloud.example.com",
    "CANOPY_SECURE_COOKIES": "true",
    "CANOPY_SSL_REDIRECT": "true",
    "CANOPY_HSTS_SECONDS": "31536000",
    "CANOPY_HSTS_INCLUDE_SUBDOMAINS": "true",
    "CANOPY_HSTS_PRELOAD": "true",
    "CANOPY_TRUST_X_FORWARDED_PROTO": "true",
}


def _manage(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CANOPY_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, "CANOPY_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("site", ["staff", "tenant"])
def test_check_deploy_is_clean_with_the_documented_production_settings(site, tmp_path):
    env = {**PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": f"portal.settings.{site}"}
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_the_embedded_default_leaves_off(tmp_path):
    """Without that environment the same check flags HSTS and the SSL redirect: the settings do something."""
    result = _manage(["check", "--deploy"], {"DJANGO_SETTINGS_MODULE": "portal.settings.staff"}, tmp_path)
    assert "security.W004" in result.stdout + result.stderr and "security.W008" in result.stdout + result.stderr


def test_the_embedded_default_serves_plain_http(db):
    response = Client().get(reverse("login"))  # http://testserver, default settings
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response
