"""The audit log's pages: staff search and filter every entry, tenants see their subscriptions' and
their own; keyset pages with queries that don't grow; an entry's page shows what changed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from fabric.services import vm_action
from portal.models import AuditEntry
from tenants.services import plan_create, token_create
from tests import factories

pytestmark = pytest.mark.django_db


def entry_ids(body: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<td class="audit-when"><a href="/audit/(\d+)/">', body)]


def many_entries(count: int, **fields) -> None:
    AuditEntry.objects.bulk_create(
        AuditEntry(action="vm.start", actor_label="bulk@example.test", object_repr=f"vm{i}", **fields)
        for i in range(count)
    )


@pytest.mark.parametrize("count", [3, 70])
def test_staff_list_pages_every_entry_with_queries_that_do_not_grow(
    staff_client, subscription, count, django_assert_num_queries
):
    many_entries(count, subscription=subscription)
    # session, user, the page (with its subscriptions); rail: endpoints, plans, add-ons, accounts,
    # subscriptions, running jobs
    with django_assert_num_queries(9):
        body = staff_client.get(reverse("staff:audit")).content.decode()
    newest = list(AuditEntry.objects.values_list("pk", flat=True))
    assert entry_ids(body) == newest[:50]
    assert ("Older →" in body) == (len(newest) > 50)
    if len(newest) > 50:
        older = re.search(r'<a href="([^"]+)" rel="next">', body).group(1).replace("&amp;", "&")
        assert entry_ids(staff_client.get(older).content.decode()) == newest[50:100]


@pytest.mark.parametrize("count", [3, 70])
def test_tenant_list_queries_do_not_grow(tenant_client, subscription, count, django_assert_num_queries):
    many_entries(count, subscription=subscription)
    # session, user, subscription ids, the page; rail: VMs and running jobs (subscription ids and a
    # bounded count each), subscriptions
    with django_assert_num_queries(9):
        body = tenant_client.get(reverse("tenant:audit")).content.decode()
    assert len(entry_ids(body)) == min(50, AuditEntry.objects.visible_to(subscription.owner).count())


def test_staff_filter_by_each_field(staff_client, tenant_user, subscription, other_subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    theirs = factories.make_vm(other_subscription, endpoint, "theirs")
    vm_action(vm=vm, action="stop")
    with pytest.raises(Exception, match="name"):
        plan_create(name="")
    stop = AuditEntry.objects.get(action="vm.stop")
    AuditEntry.objects.filter(pk=stop.pk).update(request_id="req-1", actor_label="tenant@example.test")
    url = reverse("staff:audit")

    def shown(**params) -> set[int]:
        response = staff_client.get(url, params)
        assert response.status_code == 200
        return set(entry_ids(response.content.decode()))

    assert shown(action="vm.stop") == {stop.pk}
    assert shown(action="vm.") == set(AuditEntry.objects.filter(action__startswith="vm.").values_list("pk", flat=True))
    assert shown(subscription=str(other_subscription.pk)) == set(
        AuditEntry.objects.filter(subscription=other_subscription).values_list("pk", flat=True)
    )
    assert shown(object_type="fabric.virtualmachine", object_id=str(theirs.pk)) == set(
        AuditEntry.objects.filter(object_id=str(theirs.pk)).values_list("pk", flat=True)
    )
    assert shown(outcome="refused") == set(AuditEntry.objects.filter(outcome="refused").values_list("pk", flat=True))
    assert shown(request_id="req-1") == {stop.pk}
    assert shown(actor="Tenant@Example.test") == {stop.pk}
    assert stop.pk in shown(q="web01 stop")
    today = timezone.now().date()
    assert stop.pk in shown(since=today.isoformat(), until=today.isoformat())
    assert shown(until=(today - timedelta(days=1)).isoformat()) == set()
    bad = staff_client.get(url, {"subscription": "not-an-id", "since": "yesterday"}).content.decode()
    assert entry_ids(bad) == [] and "errorlist" in bad


def test_entry_page_shows_before_and_after(staff_client, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    vm_action(vm=vm, action="stop")
    entry = AuditEntry.objects.get(action="vm.stop")
    body = staff_client.get(reverse("staff:audit-entry", args=[entry.pk])).content.decode()
    assert re.search(r"<td>state</td><td><code>running</code></td><td><code>stopping</code></td>", body)
    assert "web01" in body and "system" in body
    assert staff_client.get(reverse("staff:audit-entry", args=[987654])).status_code == 404


def test_tenants_see_their_subscriptions_entries_and_their_own_only(
    tenant_client, tenant_user, other_tenant, subscription, other_subscription, endpoint, staff_user
):
    mine = factories.make_vm(subscription, endpoint, "mine")
    factories.make_vm(other_subscription, endpoint, "theirs")
    token_create(user=tenant_user, name="my-token")
    token_create(user=other_tenant, name="their-token")
    AuditEntry.objects.filter(action="token.create", object_repr__contains="my-token").update(actor=tenant_user)
    AuditEntry.objects.filter(action="token.create", object_repr__contains="their-token").update(actor=other_tenant)
    AuditEntry.objects.filter(object_id=str(mine.pk)).update(
        actor=staff_user, actor_label=staff_user.email, by_staff=True, ip="203.0.113.1"
    )
    body = tenant_client.get(reverse("tenant:audit")).content.decode()
    assert "mine" in body and "my-token" in body
    assert "theirs" not in body and "their-token" not in body
    # staff appear as the provider, and nobody's address is shown to tenants
    assert "Provider staff" in body and staff_user.email not in body and "203.0.113.1" not in body
    theirs = AuditEntry.objects.filter(subscription=other_subscription).first()
    assert tenant_client.get(reverse("tenant:audit-entry", args=[theirs.pk])).status_code == 404


def test_the_rail_links_the_audit_log_in_both_portals(tenant_client, staff_client):
    assert 'href="/audit/"' in staff_client.get(reverse("staff:dashboard")).content.decode()


def test_a_vm_page_links_its_history_in_the_audit_log(tenant_client, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    vm_action(vm=vm, action="stop")
    body = tenant_client.get(reverse("tenant:vm", args=[vm.pk])).content.decode()
    link = re.search(r'<a href="(/audit/\?object_type=fabric.virtualmachine&amp;object_id=[^"]+)">', body).group(1)
    history = tenant_client.get(link.replace("&amp;", "&")).content.decode()
    assert re.findall(r"<code>(vm\.\w+)</code>", history) == ["vm.stop", "vm.create"]
