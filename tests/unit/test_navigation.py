"""The navigation registry: a service appears in a portal's rail, "+ New" and overview by registering,
without any edit to portal/; the rail's counts run only when rendered, one bounded query each."""

from __future__ import annotations

import re

import pytest
from django.http import HttpResponse
from django.template import Template, engines
from django.test import RequestFactory
from django.urls import include, path, reverse

from portal import context_processors, navigation
from portal.navigation import Navigation, NewChoice, OverviewTile, RailEntry
from portal.urls import staff as staff_urls
from portal.urls import tenant as tenant_urls
from tenants.models import User
from tests import factories


def _page(request):
    """A page of the service, in the tenant portal's frame."""
    return HttpResponse(engines["django"].from_string('{% extends "tenant/base.html" %}').render({}, request))


# A service outside portal/ with its own pages, mounted in front of each site's own URLs.
_fake_pages = ([path("", _page, name="sites"), path("new/", _page, name="site-create")], "websites")


def _site_urls(site_urls):
    """A URLconf (any hashable object with `urlpatterns`): the site's own URLs and the service's."""
    return type("URLconf", (), {"urlpatterns": [path("websites/", include(_fake_pages)), *site_urls.urlpatterns]})


TENANT_URLS, STAFF_URLS = _site_urls(tenant_urls), _site_urls(staff_urls)


def _own_account(user):
    return User.objects.filter(pk=user.pk)


@pytest.fixture
def registry(monkeypatch):
    """The registry as the apps left it, restored after the test."""
    for name in ("_rail", "_new", "_tiles"):
        monkeypatch.setattr(navigation, name, list(getattr(navigation, name)))


@pytest.fixture
def web_sites(registry, settings):
    """A 'web sites' service registering itself on both sites, each with its own label."""
    for site, label in (("tenant", "Web sites"), ("staff", "Web site clouds")):
        navigation.register(
            RailEntry(site, label, "websites:sites", order=15, count=_own_account, active=("site",)),
            NewChoice(site, f"New {label.lower()}", "websites:site-create", f"Creates {label.lower()}.", order=15),
            OverviewTile(
                site, f"{label} tile", Template("<p class=fake-tile>{{ data.n }} sites</p>"), lambda r: {"n": 7}
            ),
        )
    settings.ROOT_URLCONF = TENANT_URLS


def rail(body: str) -> list[str]:
    nav = re.search(r'<nav class="rail"[^>]*>(.*?)</nav>', body, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", link).strip() for link in re.findall(r"<a [^>]*>.*?</a>", nav)]


def test_a_registered_service_appears_in_the_tenant_rail_new_and_overview(web_sites, tenant_client):
    body = tenant_client.get(reverse("tenant:dashboard")).content.decode()
    assert rail(body) == [
        "All items",
        "Virtual machines 0",
        "Web sites 1",
        "Subscriptions 0",
        "Jobs 0",
        "Audit log",
        "API tokens",
    ]
    # two choices now: "+ New" opens a menu of both
    menu = re.search(r'<details class="new-menu">(.*?)</details>', body, re.S).group(1)
    assert re.findall(r'<a href="([^"]+)"><strong>([^<]+)</strong>', menu) == [
        ("/vms/new/", "Virtual machine"),
        ("/websites/new/", "New web sites"),
    ]
    assert "Creates web sites." in menu and "Web site clouds" not in body
    assert "<h2>Web sites tile</h2>" in body and "<p class=fake-tile>7 sites</p>" in body
    page = tenant_client.get("/websites/").content.decode()
    assert '<a href="/websites/" class="active" aria-current="page">Web sites' in page


def test_a_registered_service_appears_in_the_staff_rail_new_and_overview(web_sites, staff_client, settings):
    settings.ROOT_URLCONF = STAFF_URLS
    body = staff_client.get(reverse("staff:dashboard")).content.decode()
    assert rail(body) == [
        "Overview",
        "Fabric 0",
        "Web site clouds 1",
        "Plans 0",
        "Add-ons 0",
        "User accounts 0",
        "Invitations",
        "Staff accounts",  # an administrator's (staff_client)
        "Subscriptions 0",
        "Jobs 0",
        "Audit log",
        "API tokens",
        "Two-factor sign-in",
        "Sign-in lockouts",
        "Settings",
    ]
    assert "New web site clouds" in body and "Web sites tile" not in body and "Web site clouds tile" in body


def test_without_registrations_the_portal_shows_only_its_own_pages(registry, tenant_client):
    # what portal/apps.py registers itself: each site's overview and jobs
    navigation._rail[:] = [e for e in navigation._rail if e.url_name.endswith((":dashboard", ":jobs"))]
    navigation._new[:] = []
    navigation._tiles[:] = [t for t in navigation._tiles if t.template.startswith("components/")]
    body = tenant_client.get(reverse("tenant:dashboard")).content.decode()
    assert rail(body) == ["All items", "Jobs 0"]
    assert "+ New" not in body and "<h2>Recent jobs</h2>" in body and "Virtual machines" not in body


def test_a_single_new_choice_is_a_plain_link(tenant_client):
    body = tenant_client.get(reverse("tenant:dashboard")).content.decode()
    assert '<a class="btn btn-new" href="/vms/new/">+ New</a>' in body and "new-menu" not in body


def test_the_context_processor_runs_no_query_until_a_count_is_read(tenant_user, django_assert_num_queries):
    request = RequestFactory().get("/")
    request.user = tenant_user
    with django_assert_num_queries(0):
        nav = context_processors.site(request)["nav"]
        links = {link.label: link for link in nav.rail}
        assert [choice.label for choice in nav.new] == ["Virtual machine"]
    with django_assert_num_queries(1):
        assert str(links["Subscriptions"].count) == "0"
        assert str(links["Subscriptions"].count) == "0"  # computed once


@pytest.mark.parametrize("size", [2, 30])
def test_the_rail_costs_the_same_queries_at_any_size(size, tenant_user, endpoint, django_assert_num_queries):
    sub = factories.make_subscription(
        tenant_user, factories.make_plan(endpoint, max_vms=None, max_cores=None, max_memory_mb=None)
    )
    for i in range(size):
        factories.make_vm(sub, endpoint, f"vm{i}", run=False)
    for site_name, queries in (("tenant", 5), ("staff", 6)):
        user = tenant_user if site_name == "tenant" else factories.UserFactory(is_staff=True)
        # tenant: VMs and jobs (subscription ids, then a bounded count each), subscriptions;
        # staff: endpoints, plans, add-ons, accounts, subscriptions, jobs
        with django_assert_num_queries(queries):
            counts = [str(link.count) for link in Navigation(site_name, user, "").rail if link.counted]
        if site_name == "tenant":
            assert counts == [str(size), "1", str(size)]  # every VM still has its queued create job


@pytest.mark.parametrize("size", [2, 30])
def test_the_tenant_overview_costs_the_same_queries_at_any_size(
    size, tenant_client, tenant_user, endpoint, django_assert_num_queries
):
    sub = factories.make_subscription(
        tenant_user, factories.make_plan(endpoint, max_vms=None, max_cores=None, max_memory_mb=None)
    )
    for i in range(size):
        factories.make_vm(sub, endpoint, f"vm{i}", run=False)
    # session, user; tiles: has a subscription, recent VMs and recent jobs (subscription ids, then the
    # rows each); rail: VMs and jobs (subscription ids, then a bounded count each), subscriptions
    with django_assert_num_queries(12):
        body = tenant_client.get(reverse("tenant:dashboard")).content.decode()
    assert "<h2>Virtual machines</h2>" in body and "Start with a subscription" not in body
    assert body.count('class="badge badge-') == min(size, 10) + min(size, 10)  # VM states, job states
