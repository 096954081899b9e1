"""API clients signed in the way a browser session or script would be, through SiteBackend."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests import factories


def api_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user, backend="portal.auth.SiteBackend")
    return client


@pytest.fixture
def api(tenant_user) -> APIClient:
    return api_client(tenant_user)


@pytest.fixture
def other_api(other_tenant) -> APIClient:
    return api_client(other_tenant)


@pytest.fixture
def staff_api(staff_site, staff_user) -> APIClient:
    return api_client(staff_user)


make_vm = factories.make_vm


def assert_error(response, status: int, code: str | None = None) -> dict:
    """Every 4xx has the same body: code, message, fields."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["fields"], dict)
    if code is not None:
        assert body["code"] == code
    return body
