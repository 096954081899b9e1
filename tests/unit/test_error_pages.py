"""Error pages speak to users, in the portal's layout, without leaking anything."""

from django.test import Client


def test_unknown_page_is_a_friendly_404(tenant_client):
    response = tenant_client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Not found" in response.content and b"All items" in response.content  # the tenant rail


def test_a_stale_form_is_refused_with_an_explanation(tenant_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_user, backend="portal.auth.SiteBackend")
    response = client.post("/logout/")
    assert response.status_code == 403
    assert b"nothing was changed" in response.content
