"""The two portals are separate sites: sign-in per account kind, no staff URL on the tenant site,
and their own cookies and URLconfs."""

from __future__ import annotations

import importlib
import re
import uuid

import pytest
from django.test import Client
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve, reverse

from tests import factories

SAMPLE_UUID = str(uuid.UUID(int=1))
CONVERTER_SAMPLES = {"int": "1", "uuid": SAMPLE_UUID, "slug": "x", "str": "x", "path": "x"}
ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")

# --- walking a URLconf into concrete paths -----------------------------------------------------------


def _regex_sample(regex: str) -> str:
    """A concrete string for a regex route (DRF routers): named groups get a value their regex accepts."""
    out, i = [], 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(regex[j], 0) if regex[j - 1 : j] != "\\" else 0
                if depth == 0:
                    break
                j += 1
            group = regex[i : j + 1]
            inner = group[group.index(">") + 1 : -1]
            candidates = ["1", SAMPLE_UUID, "x", "json"]
            out.append(next((c for c in candidates if re.fullmatch(inner, c)), "1"))
            i = j + 1
        else:
            out.append(regex[i])
            i += 1
    text = "".join(out).lstrip("^").rstrip("$").replace("/?", "/")
    return re.sub(r"\\(.)", r"\1", text)


def _route_sample(route: str) -> str:
    return ROUTE_PARAM.sub(lambda m: CONVERTER_SAMPLES.get(m["converter"] or "str", "x"), route)


def _pattern_text(pattern) -> str:
    text = str(pattern.pattern)
    if hasattr(pattern.pattern, "converters") and not text.startswith("^"):
        return _route_sample(text)
    return _regex_sample(text)


def url_paths(urlconf: str) -> list[tuple[str, object]]:
    """(concrete path, view callback) for every pattern of a URLconf, includes followed."""
    found: list[tuple[str, object]] = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            text = prefix + _pattern_text(p)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, text)
            elif isinstance(p, URLPattern):
                found.append(("/" + text, p.callback))

    walk(get_resolver(urlconf).url_patterns, "")
    return found


def is_staff_view(func) -> bool:
    """A view defined for the admin portal: in a `*.staff` / `staff_*` / `*_staff` module, or named staff…"""
    target = getattr(func, "view_class", None) or getattr(func, "cls", None) or func
    parts = target.__module__.split(".")
    in_staff_module = any(p == "staff" or p.startswith("staff_") or p.endswith("_staff") for p in parts)
    return in_staff_module or target.__name__.lower().startswith("staff")


STAFF_PATHS = url_paths("portal.urls.staff")


def test_the_walker_covers_every_staff_pattern():
    """Each generated path resolves on the staff URLconf to the pattern it came from, so (b) checks them all."""
    assert len(STAFF_PATHS) >= 10
    for path, callback in STAFF_PATHS:
        assert resolve(path, urlconf="portal.urls.staff").func == callback, path
    staff_views = {path for path, callback in STAFF_PATHS if is_staff_view(callback)}
    assert {reverse("staff:endpoints", urlconf="portal.urls.staff"), "/", "/plans/"} <= staff_views


def test_no_staff_view_resolves_on_the_tenant_urlconf():
    leaked = []
    for path, _ in STAFF_PATHS:
        try:
            match = resolve(path, urlconf="portal.urls.tenant")
        except Resolver404:
            continue
        if is_staff_view(match.func):
            leaked.append(path)
    assert leaked == []
    # Nor anywhere else in the tenant URLconf.
    assert [path for path, callback in url_paths("portal.urls.tenant") if is_staff_view(callback)] == []


@pytest.mark.django_db
def test_staff_paths_requested_on_the_tenant_site_by_a_staff_session_reach_no_staff_view(staff_user):
    client = Client()
    client.force_login(staff_user, backend="portal.auth.SiteBackend")
    for path, _ in STAFF_PATHS:
        response = client.get(path)
        assert response.wsgi_request.user.is_anonymous, path  # a staff session means nothing here
        if response.status_code != 404:
            assert not is_staff_view(resolve(path, urlconf="portal.urls.tenant").func), path
            assert response.status_code in (200, 302, 401, 403, 405), (path, response.status_code)


# --- sign-in per account kind --------------------------------------------------------------------------


def _sign_in(email: str) -> Client:
    client = Client()
    client.post(reverse("login"), {"username": email, "password": factories.PASSWORD})
    return client


def test_a_tenant_account_cannot_sign_in_on_the_staff_site(staff_site, tenant_user):
    client = Client()
    response = client.post(reverse("login"), {"username": tenant_user.email, "password": factories.PASSWORD})
    assert response.status_code == 200
    assert "Wrong email or password for this portal." in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("staff:dashboard")).status_code == 302


def test_a_staff_account_signs_in_on_the_staff_site(staff_site, staff_user):
    client = _sign_in(staff_user.email)
    assert client.session["_auth_user_id"] == str(staff_user.pk)
    assert client.get(reverse("staff:dashboard")).status_code == 200


def test_a_staff_account_cannot_sign_in_on_the_tenant_site(staff_user):
    client = Client()
    response = client.post(reverse("login"), {"username": staff_user.email, "password": factories.PASSWORD})
    assert response.status_code == 200
    assert "Wrong email or password for this portal." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_tenant_account_signs_in_on_the_tenant_site(tenant_user):
    client = _sign_in(tenant_user.email)
    assert client.session["_auth_user_id"] == str(tenant_user.pk)
    assert client.get(reverse("tenant:dashboard")).status_code == 200


def test_a_tenant_session_is_anonymous_on_the_staff_site(staff_site, tenant_client):
    response = tenant_client.get(reverse("staff:plans"))
    assert response.wsgi_request.user.is_anonymous
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_staff_session_is_anonymous_on_the_tenant_site(staff_user):
    client = Client()
    client.force_login(staff_user, backend="portal.auth.SiteBackend")
    response = client.get(reverse("tenant:dashboard"))
    assert response.wsgi_request.user.is_anonymous
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- settings ------------------------------------------------------------------------------------------


def test_the_two_sites_have_their_own_cookies_and_urlconf():
    staff = importlib.import_module("portal.settings.staff")
    tenant = importlib.import_module("portal.settings.tenant")
    for name in ("SESSION_COOKIE_NAME", "CSRF_COOKIE_NAME", "ROOT_URLCONF", "CANOPY_SITE"):
        assert getattr(staff, name) != getattr(tenant, name), name
    assert (staff.ROOT_URLCONF, tenant.ROOT_URLCONF) == ("portal.urls.staff", "portal.urls.tenant")
