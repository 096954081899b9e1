"""Shared fixtures: accounts, a simulator fabric (zero latency), a public plan and subscriptions.

The tenant site is the default (portal.settings.test); `staff_site` switches a test to the admin
portal's URLconf, cookie names and sign-in rule.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from tests import factories


@pytest.fixture(autouse=True)
def simulator_dir(settings, tmp_path_factory):
    """The simulator's data directory is pytest's temporary folder, where tests put state files."""
    settings.CANOPY_SIMULATOR_DIR = tmp_path_factory.getbasetemp()
    return settings.CANOPY_SIMULATOR_DIR


@pytest.fixture(autouse=True)
def empty_cache():
    """Counters kept in Django's (per-process) cache, such as API token failures, start at zero."""
    cache.clear()


@pytest.fixture
def staff_site(settings):
    settings.CANOPY_SITE = "staff"
    settings.ROOT_URLCONF = "portal.urls.staff"
    settings.SESSION_COOKIE_NAME = "canopy_staff_session"
    settings.CSRF_COOKIE_NAME = "canopy_staff_csrftoken"
    settings.LOGIN_REDIRECT_URL = "staff:dashboard"
    return settings


@pytest.fixture
def staff_user(db):
    return factories.UserFactory(is_staff=True, email="staff@example.test")


@pytest.fixture
def tenant_user(db):
    return factories.UserFactory(email="tenant@example.test")


@pytest.fixture
def other_tenant(db):
    return factories.UserFactory(email="other@example.test")


@pytest.fixture
def endpoint(db, tmp_path):
    return factories.make_endpoint(tmp_path, name="Simulator")


@pytest.fixture
def plan(endpoint):
    return factories.make_plan(endpoint)


@pytest.fixture
def subscription(tenant_user, plan):
    return factories.make_subscription(tenant_user, plan)


@pytest.fixture
def other_subscription(other_tenant, plan):
    return factories.make_subscription(other_tenant, plan)


@pytest.fixture
def tenant_client(tenant_user) -> Client:
    client = Client()
    client.force_login(tenant_user, backend="portal.auth.SiteBackend")
    return client


@pytest.fixture
def other_client(other_tenant) -> Client:
    client = Client()
    client.force_login(other_tenant, backend="portal.auth.SiteBackend")
    return client


@pytest.fixture
def staff_client(staff_site, staff_user) -> Client:
    client = Client()
    client.force_login(staff_user, backend="portal.auth.SiteBackend")
    return client


@pytest.fixture
def vm_job(subscription, endpoint):
    """A quick-created VM 'web01' and its queued create job."""
    return factories.make_vm_job(subscription, endpoint)


@pytest.fixture
def coadmin_user(db):
    """Tenant C: co-administrator of tenant A's `subscription` (with the `coadmin` fixture)."""
    return factories.UserFactory(email="coadmin@example.test")


@pytest.fixture
def coadmin(subscription, tenant_user, coadmin_user):
    from tenants.services import coadmin_add

    return coadmin_add(subscription=subscription, by=tenant_user, email=coadmin_user.email)


@pytest.fixture
def coadmin_client(coadmin, coadmin_user) -> Client:
    client = Client()
    client.force_login(coadmin_user, backend="portal.auth.SiteBackend")
    return client
