"""Personal API tokens on both APIs: `Authorization: Bearer <token>` in place of a password."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from fabric.models import VirtualMachine
from portal import crypto
from tenants.models import APIToken, TokenScope
from tenants.services import token_create, token_revoke
from tests import factories

from .conftest import assert_error, make_vm

pytestmark = pytest.mark.django_db


def script(secret: str, address: str = "203.0.113.5") -> APIClient:
    """A client with no session at all, as a script or the CLI would be."""
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def vm_body(subscription, endpoint) -> dict:
    template, size = factories.catalog(endpoint)
    return {
        "subscription": str(subscription.pk),
        "name": "from-script",
        "template": template.pk,
        "hardware_profile": size.pk,
        "admin_password": factories.VM_PASSWORD,
    }


def assert_rejected(response, message: str | None = None) -> None:
    body = assert_error(response, 401, "invalid_token")
    assert response["WWW-Authenticate"].startswith("Bearer")
    if message:
        assert message in body["message"]


def test_a_script_with_a_token_lists_its_vms_and_creates_one(tenant_user, subscription, other_subscription, endpoint):
    mine = make_vm(subscription, endpoint, "mine")
    make_vm(other_subscription, endpoint, "theirs")
    _, secret = token_create(user=tenant_user, name="backup", scope=TokenScope.WRITE)
    client = script(secret)
    response = client.get(reverse("tenant-api:vm-list"))
    assert response.status_code == 200
    assert [vm["id"] for vm in response.json()["results"]] == [str(mine.pk)]
    # No CSRF token needed: the token is not a cookie a browser would send on its own.
    assert client.post(reverse("tenant-api:vm-list"), vm_body(subscription, endpoint), format="json").status_code == 202
    assert VirtualMachine.objects.filter(name="from-script", subscription=subscription).exists()


def test_a_read_token_reads_but_cannot_write(tenant_user, subscription, endpoint):
    _, secret = token_create(user=tenant_user, name="monitoring", scope=TokenScope.READ)
    client = script(secret)
    assert client.get(reverse("tenant-api:vm-list")).status_code == 200
    response = client.post(reverse("tenant-api:vm-list"), vm_body(subscription, endpoint), format="json")
    body = assert_error(response, 403, "insufficient_scope")
    assert "read-only" in body["message"]
    assert not VirtualMachine.objects.filter(name="from-script").exists()


def test_an_expired_token_is_refused(tenant_user, subscription):
    token, secret = token_create(user=tenant_user, name="ci", expires_on=timezone.now().date())
    assert script(secret).get(reverse("tenant-api:vm-list")).status_code == 200  # works through its last day
    APIToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_rejected(script(secret).get(reverse("tenant-api:vm-list")), "expired")


def test_a_revoked_token_is_refused_at_once(tenant_user, subscription):
    token, secret = token_create(user=tenant_user, name="ci")
    client = script(secret)
    assert client.get(reverse("tenant-api:vm-list")).status_code == 200
    token_revoke(token=token)
    assert_rejected(client.get(reverse("tenant-api:vm-list")), "revoked")


def test_a_tenant_token_is_refused_by_the_staff_api_and_a_staff_token_works_there(staff_site, tenant_user, staff_user):
    _, tenant_secret = token_create(user=tenant_user, name="t")
    assert_rejected(script(tenant_secret).get(reverse("staff-api:plan-list")), "can't be used on this site")
    _, staff_secret = token_create(user=staff_user, name="s")
    assert script(staff_secret).get(reverse("staff-api:plan-list")).status_code == 200


def test_a_staff_token_is_refused_by_the_tenant_api(staff_user, subscription):
    _, secret = token_create(user=staff_user, name="s")
    assert_rejected(script(secret).get(reverse("tenant-api:vm-list")), "can't be used on this site")


def test_wrong_tokens_answer_401_then_429_for_that_address(settings, tenant_user, subscription):
    settings.CANOPY_TOKEN_FAILURE_LIMIT = 3
    _, secret = token_create(user=tenant_user, name="ci")
    url = reverse("tenant-api:vm-list")
    for wrong in ("cnp_guess", secret[:-1] + ("A" if secret[-1] != "A" else "B"), "not-even-a-token"):
        assert_rejected(script(wrong).get(url))
    response = script("cnp_another-guess").get(url)
    body = assert_error(response, 429, "throttled")
    assert "Too many failed API token" in body["message"] and int(response["Retry-After"]) > 0
    # The address is blocked, even with the right token; another address is not.
    assert_error(script(secret).get(url), 429, "throttled")
    assert script(secret, address="198.51.100.9").get(url).status_code == 200


def test_the_database_holds_only_a_prefix_and_a_keyed_hash(tenant_user):
    token, secret = token_create(user=tenant_user, name="ci")
    assert secret.startswith("cnp_") and len(secret) > 40
    assert token.prefix == secret[:12]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apitoken")
        dump = repr(cursor.fetchall())
    assert secret not in dump and secret[12:] not in dump and secret[12:30] not in dump
    assert token.prefix in dump and token.digest in dump


def test_tokens_survive_a_key_rotation(settings, tenant_user, subscription):
    old = Fernet.generate_key().decode()
    settings.CANOPY_SECRET_KEYS = [old]
    crypto._hmac_keys.cache_clear()
    _, secret = token_create(user=tenant_user, name="ci")
    settings.CANOPY_SECRET_KEYS = [Fernet.generate_key().decode(), old]
    crypto._hmac_keys.cache_clear()
    try:
        assert script(secret).get(reverse("tenant-api:vm-list")).status_code == 200
        settings.CANOPY_SECRET_KEYS = [Fernet.generate_key().decode()]  # the old key dropped: tokens go too
        crypto._hmac_keys.cache_clear()
        assert_rejected(script(secret).get(reverse("tenant-api:vm-list")))
    finally:
        crypto._hmac_keys.cache_clear()


def test_last_used_is_written_at_most_once_a_minute(tenant_user, subscription, django_assert_num_queries):
    token, secret = token_create(user=tenant_user, name="ci")
    assert token.last_used_at is None
    client = script(secret)
    client.get(reverse("tenant-api:plan-list"))
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    client.get(reverse("tenant-api:plan-list"))
    token.refresh_from_db()
    assert token.last_used_at == first
    APIToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(reverse("tenant-api:plan-list"))
    token.refresh_from_db()
    assert token.last_used_at > first


def test_basic_auth_no_longer_signs_in_to_the_api(tenant_user, subscription):
    """Basic auth cost a password hash per request; with the right password it now authenticates nobody."""
    credentials = base64.b64encode(f"{tenant_user.email}:{factories.PASSWORD}".encode()).decode()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert_error(client.get(reverse("tenant-api:vm-list")), 403, "not_authenticated")


def test_a_token_cannot_be_created_with_a_past_expiry_or_no_name(tenant_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        token_create(user=tenant_user, name=" ", expires_on=timezone.now().date() - timedelta(days=1))
    assert set(exc.value.message_dict) == {"name", "expires_on"}
    assert not APIToken.objects.exists()


def test_the_openapi_schema_describes_the_bearer_token(db):
    from .test_schema import generate

    schemes = generate("portal.urls.tenant")["components"]["securitySchemes"]
    assert schemes["apiToken"] == {"type": "http", "scheme": "bearer"}
    assert not any(s.get("scheme") == "basic" for s in schemes.values())
