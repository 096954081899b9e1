"""Staff API of subscriptions (filters, create, lifecycle actions as 202 + job) and the tenant's cancel."""

from __future__ import annotations

from django.urls import reverse

from fabric.models import VirtualMachine, VMState
from tenants.models import Subscription
from tests import factories
from tests.api.conftest import api_client, assert_error
from tests.factories import run_queued_jobs


def staff_url(name: str, *args) -> str:
    return reverse(f"staff-api:{name}", args=args)


def test_staff_list_filters_by_plan_state_owner_sync_state_and_search(
    staff_api, endpoint, plan, subscription, other_subscription, staff_user
):
    other_plan = factories.make_plan(endpoint)
    third = factories.make_subscription(factories.UserFactory(email="carol@example.test"), other_plan)
    from tenants.services import subscription_suspend

    subscription_suspend(subscription=other_subscription, reason="Unpaid", by=staff_user)
    url = staff_url("subscription-list")

    def ids(query: str) -> set[str]:
        response = staff_api.get(url + query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("") == {str(subscription.pk), str(other_subscription.pk), str(third.pk)}
    assert ids(f"?plan={other_plan.pk}") == {str(third.pk)}
    assert ids("?state=suspended") == {str(other_subscription.pk)}
    assert ids("?owner=CAROL@example.test") == {str(third.pk)}
    assert ids("?sync_state=in_sync") == {str(subscription.pk), str(third.pk), str(other_subscription.pk)}
    assert ids("?search=carol") == {str(third.pk)}
    assert ids(f"?search={str(subscription.pk)[:8]}") == {str(subscription.pk)}
    assert_error(staff_api.get(url + "?state=asleep"), 400, "invalid")


def test_staff_list_filters_over_quota(staff_api, endpoint, plan, subscription, other_subscription):
    """Over quota is use above a lowered plan quota, counted live (tenants.plan_services)."""
    from tenants.services import plan_quotas_set

    for i in range(2):
        factories.make_vm(subscription, endpoint, f"vm{i}", run=False)
    plan_quotas_set(plan=plan, service="vm_cloud", quotas={"vms": 1})
    url = staff_url("subscription-list")
    over = staff_api.get(url + "?over_quota=true").json()["results"]
    assert [row["id"] for row in over] == [str(subscription.pk)]
    within = staff_api.get(url + "?over_quota=false&state=active").json()["results"]
    assert [row["id"] for row in within] == [str(other_subscription.pk)]
    assert_error(staff_api.get(url + "?over_quota=maybe"), 400, "invalid")


def test_staff_list_query_count_does_not_grow(staff_api, plan, django_assert_max_num_queries):
    plan.max_subscriptions_per_account = 1
    plan.save()
    for size in (3, 30):
        while Subscription.objects.count() < size:
            factories.make_subscription(factories.UserFactory(), plan)
        with django_assert_max_num_queries(6):
            response = staff_api.get(staff_url("subscription-list") + "?state=active")
        assert response.json()["count"] == size


def test_staff_creates_a_subscription_on_a_private_plan_for_an_account(staff_api, endpoint, tenant_user):
    private = factories.make_plan(endpoint, public=False)
    response = staff_api.post(
        staff_url("subscription-list"), {"owner": tenant_user.pk, "plan": private.pk, "name": "Assigned"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["owner"]["email"], body["plan"]["id"]) == ("Assigned", tenant_user.email, private.pk)
    assert body["sync_state"] == "in_sync"
    assert_error(
        staff_api.post(staff_url("subscription-list"), {"owner": 999999, "plan": private.pk}, format="json"),
        400,
        "invalid",
    )


def test_suspend_and_activate_answer_202_with_the_job(staff_api, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    response = staff_api.post(
        staff_url("subscription-suspend", subscription.pk), {"reason": "Invoice 42 unpaid"}, format="json"
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["job"]["url"].endswith(f"/api/v1/jobs/{body['job']['id']}/")
    assert body["subscription"]["state"] == "suspended"
    assert body["subscription"]["sync_state"] == "syncing"
    # While it runs, a second lifecycle action is refused.
    assert_error(staff_api.post(staff_url("subscription-activate", subscription.pk)), 409, "lifecycle_busy")
    run_queued_jobs()
    job = staff_api.get(body["job"]["url"]).json()
    assert (job["state"], job["percent"]) == ("succeeded", 100)
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.STOPPED
    assert_error(staff_api.post(staff_url("subscription-suspend", subscription.pk), {}, format="json"), 400, "invalid")

    response = staff_api.post(staff_url("subscription-activate", subscription.pk))
    assert response.status_code == 202
    run_queued_jobs()
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.RUNNING


def test_the_tenant_api_shows_the_reason_and_refuses_create_start_and_delete(api, subscription, endpoint):
    from tenants.services import subscription_suspend

    vm = factories.make_vm(subscription, endpoint, "web01")
    subscription_suspend(subscription=subscription, reason="Invoice 42 unpaid")
    run_queued_jobs()
    mine = api.get(reverse("tenant-api:subscription-detail", args=[subscription.pk])).json()
    assert (mine["state"], mine["state_reason"]) == ("suspended", "Invoice 42 unpaid")
    refused = assert_error(api.post(reverse("tenant-api:vm-start", args=[vm.pk])), 409, "subscription_suspended")
    assert "Invoice 42 unpaid" in refused["message"]
    template, size = factories.catalog(endpoint)
    create = api.post(
        reverse("tenant-api:vm-list"),
        {
            "subscription": str(subscription.pk),
            "name": "web02",
            "template": template.pk,
            "hardware_profile": size.pk,
            "admin_password": factories.VM_PASSWORD,
        },
        format="json",
    )
    assert_error(create, 409, "subscription_suspended")
    assert_error(api.delete(reverse("tenant-api:vm-detail", args=[vm.pk])), 409, "subscription_suspended")
    assert VirtualMachine.objects.filter(subscription=subscription).count() == 1
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.STOPPED


def test_out_of_sync_detail_names_the_leftover_and_resync_finishes(staff_api, subscription, endpoint, monkeypatch):
    factories.make_vm(subscription, endpoint, "web01")
    works_again = factories.fabric_refuses(monkeypatch, "delete_vm", "Disk is locked.")
    assert staff_api.delete(staff_url("subscription-detail", subscription.pk)).status_code == 202
    run_queued_jobs()
    body = staff_api.get(staff_url("subscription-detail", subscription.pk)).json()
    assert (body["state"], body["sync_state"]) == ("deleted", "out_of_sync")
    assert body["leftovers"] == [{"resource": "web01", "kind": "Virtual machine", "error": "Disk is locked."}]
    assert body["lifecycle_job"]["error"] == "Not done on 1 of 1: web01: Disk is locked."
    works_again()
    assert staff_api.post(staff_url("subscription-resync", subscription.pk)).status_code == 202
    run_queued_jobs()
    body = staff_api.get(staff_url("subscription-detail", subscription.pk)).json()
    assert (body["sync_state"], body["leftovers"]) == ("in_sync", [])


def test_change_plan_refusal_names_the_quota(staff_api, subscription, endpoint):
    factories.make_vm(subscription, endpoint, "web01")
    factories.make_vm(subscription, endpoint, "web02")
    small = factories.make_plan(endpoint, max_vms=1)
    body = assert_error(
        staff_api.post(staff_url("subscription-change-plan", subscription.pk), {"plan": small.pk}, format="json"),
        409,
        "quota_exceeded",
    )
    assert "Virtual machines: 2 in use, the plan allows 1" in body["message"]
    assert body["fields"] == {"plan": [body["message"]]}
    roomy = factories.make_plan(endpoint)
    response = staff_api.post(staff_url("subscription-change-plan", subscription.pk), {"plan": roomy.pk}, format="json")
    assert response.status_code == 200 and response.json()["plan"]["id"] == roomy.pk


def test_tenant_cancels_its_subscription_by_typing_its_name(api, other_api, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    url = reverse("tenant-api:subscription-cancel", args=[subscription.pk])
    assert_error(other_api.post(url, {"confirm_name": subscription.name}, format="json"), 404)
    body = assert_error(api.post(url, {"confirm_name": "nope"}, format="json"), 400, "invalid")
    assert "confirm_name" in body["fields"]
    response = api.post(url, {"confirm_name": subscription.name}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["subscription"]["state"] == "deleted"
    run_queued_jobs()
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.DELETED
    # Gone from the tenant's view.
    assert_error(api.get(reverse("tenant-api:subscription-detail", args=[subscription.pk])), 404)


def test_lifecycle_routes_are_staff_only(staff_site, tenant_user, subscription):
    tenant = api_client(tenant_user)
    response = tenant.post(staff_url("subscription-suspend", subscription.pk), {"reason": "x"}, format="json")
    assert response.status_code in (401, 403)
    subscription.refresh_from_db()
    assert subscription.state == "active"
