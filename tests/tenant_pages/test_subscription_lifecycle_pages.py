"""What a tenant sees of the subscription lifecycle: a suspended subscription read-only with its
reason, and cancelling a subscription by typing its name."""

from __future__ import annotations

from django.urls import reverse

from fabric.models import VirtualMachine, VMState
from tenants.models import SubscriptionState
from tenants.services import subscription_suspend
from tests import factories
from tests.factories import run_queued_jobs


def test_a_suspended_subscription_is_read_only_with_the_reason(tenant_client, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    subscription_suspend(subscription=subscription, reason="Invoice 42 unpaid")
    run_queued_jobs()

    body = tenant_client.get(reverse("tenant:subscriptions")).content.decode()
    assert "Suspended: Invoice 42 unpaid" in body
    assert "+ New VM" not in body

    body = tenant_client.get(reverse("tenant:vm", args=[vm.pk])).content.decode()
    assert "is suspended: Invoice 42 unpaid" in body
    # Every action button is disabled, its tooltip saying why.
    assert body.count(f'title="Subscription &#x27;{subscription.name}&#x27; is suspended: Invoice 42 unpaid."') == 5
    assert reverse("tenant:vm-delete", args=[vm.pk]) not in body

    body = tenant_client.get(reverse("tenant:vms")).content.decode()
    assert "is suspended: Invoice 42 unpaid" in body and "+ New virtual machine" not in body

    response = tenant_client.post(reverse("tenant:vm-action", args=[vm.pk, "start"]), follow=True)
    assert "is suspended: Invoice 42 unpaid." in response.content.decode()
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.STOPPED
    response = tenant_client.get(reverse("tenant:vm-create") + f"?subscription={subscription.pk}")
    assert str(subscription.pk) not in response.content.decode().split("<select", 1)[-1].split("</select>", 1)[0]


def test_the_owner_cancels_by_typing_the_name(tenant_client, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    body = tenant_client.get(reverse("tenant:subscription", args=[subscription.pk])).content.decode()
    url = reverse("tenant:subscription-cancel", args=[subscription.pk])
    assert url in body and "Cancel subscription…" in body
    body = tenant_client.get(url).content.decode()
    assert "Type the subscription&#x27;s name to confirm" in body

    response = tenant_client.post(url, {"confirm_name": "wrong"})
    assert "to confirm" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.ACTIVE

    response = tenant_client.post(url, {"confirm_name": subscription.name})
    assert response.status_code == 302 and response["Location"] == reverse("tenant:subscriptions")
    run_queued_jobs()
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.DELETED
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.DELETED
    assert tenant_client.get(url).status_code == 404


def test_another_tenant_cannot_cancel(other_client, subscription):
    url = reverse("tenant:subscription-cancel", args=[subscription.pk])
    assert other_client.get(url).status_code == 404
    assert other_client.post(url, {"confirm_name": subscription.name}).status_code == 404
    subscription.refresh_from_db()
    assert subscription.state == SubscriptionState.ACTIVE
