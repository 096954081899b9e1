"""The audit-entries API of both sites: read-only, the audit page's filters, keyset pages, scoped."""

from __future__ import annotations

import pytest
from django.urls import reverse

from fabric.services import vm_action
from portal.models import AuditEntry
from tests import factories

from .conftest import assert_error

pytestmark = pytest.mark.django_db


def test_staff_list_filters_and_detail(staff_api, subscription, other_subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    factories.make_vm(other_subscription, endpoint, "theirs")
    vm_action(vm=vm, action="stop")
    url = reverse("staff-api:audit-entry-list")
    body = staff_api.get(url).json()
    assert set(body) == {"next", "previous", "results"}
    assert [row["id"] for row in body["results"]] == list(AuditEntry.objects.values_list("pk", flat=True)[:50])
    (stop,) = staff_api.get(url, {"action": "vm.stop"}).json()["results"]
    assert stop["changes"] == {"state": ["running", "stopping"]} and stop["object_repr"] == str(vm)
    assert stop["subscription"] == str(subscription.pk) and stop["outcome"] == "succeeded" and "ip" in stop
    mine = staff_api.get(url, {"subscription": str(subscription.pk)}).json()["results"]
    assert mine and all(row["subscription"] == str(subscription.pk) for row in mine)
    assert staff_api.get(reverse("staff-api:audit-entry-detail", args=[stop["id"]])).json() == stop
    assert_error(staff_api.get(url, {"subscription": "nope"}), 400)
    assert_error(staff_api.get(url, {"outcome": "maybe"}), 400)


def test_the_api_is_read_only(staff_api, plan):
    entry = AuditEntry.objects.first()
    for method in ("post", "put", "patch", "delete"):
        detail = getattr(staff_api, method)(reverse("staff-api:audit-entry-detail", args=[entry.pk]), {}, format="json")
        assert detail.status_code == 405
    assert staff_api.post(reverse("staff-api:audit-entry-list"), {}, format="json").status_code == 405
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_tenant_list_is_scoped_and_hides_staff_and_addresses(api, subscription, other_subscription, endpoint):
    mine = factories.make_vm(subscription, endpoint, "mine")
    factories.make_vm(other_subscription, endpoint, "theirs")
    AuditEntry.objects.filter(object_id=str(mine.pk)).update(by_staff=True, actor_label="ops@provider.test")
    rows = api.get(reverse("tenant-api:audit-entry-list")).json()["results"]
    assert {row["subscription"] for row in rows} == {str(subscription.pk), None}
    # entries of no subscription are the tenant's own (its sign-in here)
    assert {row["actor"] for row in rows if row["subscription"] is None} == {subscription.owner.email}
    assert all("ip" not in row for row in rows)
    assert {row["actor"] for row in rows if row["object_id"] == str(mine.pk)} == {"Provider staff"}
    theirs = AuditEntry.objects.filter(subscription=other_subscription).first()
    assert_error(api.get(reverse("tenant-api:audit-entry-detail", args=[theirs.pk])), 404)


@pytest.mark.parametrize("site", ["staff", "tenant"])
def test_the_schema_documents_audit_entries_read_only(site, request):
    client = request.getfixturevalue("staff_api" if site == "staff" else "api")
    paths = client.get(reverse(f"{site}-api:schema")).json()["paths"]
    assert set(paths["/api/v1/audit-entries/"]) == {"get"}
    assert set(paths["/api/v1/audit-entries/{id}/"]) == {"get"}
    params = {p["name"] for p in paths["/api/v1/audit-entries/"]["get"]["parameters"]}
    assert params >= {"q", "actor", "subscription", "action", "object_type", "object_id", "outcome", "since", "until"}
