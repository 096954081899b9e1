"""The tenant REST API: plans, subscriptions, quotas, catalog, VMs and jobs."""

from __future__ import annotations

import json
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.urls import resolve, reverse
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from fabric.api.serializers import VMSerializer
from fabric.models import HardwareProfile, VirtualMachine, VMState, VMTemplate
from fabric.selectors import vm_active_jobs, vm_list
from portal.models import Job, JobState
from tenants.models import Subscription
from tenants.services import addon_save, plan_invitation_rotate
from tests import factories

from .conftest import api_client, assert_error, make_vm

pytestmark = pytest.mark.django_db


def quick_create_body(sub, endpoint, **overrides):
    template, size = factories.catalog(endpoint)
    return {
        "subscription": str(sub.pk),
        "name": "web01",
        "template": template.pk,
        "hardware_profile": size.pk,
        "admin_password": factories.VM_PASSWORD,
        **overrides,
    }


# --- access ----------------------------------------------------------------------------------------


def test_unauthenticated_gets_403_with_the_error_body(subscription):
    response = api_client().get(reverse("tenant-api:vm-list"))
    assert_error(response, 403, "not_authenticated")


def test_a_staff_account_cannot_use_the_tenant_api(staff_user):
    client = api_client()
    client.force_authenticate(staff_user)
    assert_error(client.get(reverse("tenant-api:vm-list")), 403, "permission_denied")


# --- plans and subscriptions -----------------------------------------------------------------------


def test_plans_lists_public_plans_with_their_services(api, plan, endpoint):
    private = factories.make_plan(endpoint, public=False)
    body = api.get(reverse("tenant-api:plan-list")).json()
    assert [p["id"] for p in body["results"]] == [plan.pk]
    (service,) = body["results"][0]["services"]
    assert service["service"] == "vm_cloud" and "target" not in service  # no fabric for tenants
    assert {q["key"]: q["limit"] for q in service["quotas"]} == {
        "vms": 10,
        "cores": 16,
        "memory_mb": 32768,
        "console": None,
    }
    assert api.get(reverse("tenant-api:plan-detail", args=[plan.pk])).json()["name"] == plan.name
    assert_error(api.get(reverse("tenant-api:plan-detail", args=[private.pk])), 404, "not_found")


def test_subscribe_to_a_public_plan(api, tenant_user, plan):
    response = api.post(reverse("tenant-api:subscription-list"), {"plan": plan.pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["plan"] == {"id": plan.pk, "name": plan.name} and body["state"] == "active"
    assert Subscription.objects.get(pk=body["id"]).owner == tenant_user
    # The plan allows one subscription per account.
    again = api.post(reverse("tenant-api:subscription-list"), {"plan": plan.pk}, format="json")
    assert "the most this plan allows" in assert_error(again, 409, "conflict")["message"]


def test_subscribing_to_a_private_or_garbage_plan_is_a_field_error(api, endpoint):
    private = factories.make_plan(endpoint, public=False)
    for value in (private.pk, "abc", None):
        response = api.post(reverse("tenant-api:subscription-list"), {"plan": value}, format="json")
        assert "plan" in assert_error(response, 400, "invalid")["fields"]
    assert not Subscription.objects.exists()


def test_subscriptions_lists_only_mine(api, subscription, other_subscription):
    body = api.get(reverse("tenant-api:subscription-list")).json()
    assert [s["id"] for s in body["results"]] == [str(subscription.pk)]
    assert api.get(reverse("tenant-api:subscription-detail", args=[subscription.pk])).status_code == 200
    assert_error(api.get(reverse("tenant-api:subscription-detail", args=[other_subscription.pk])), 404)


def test_quotas_show_limit_use_and_remaining(api, subscription, endpoint):
    make_vm(subscription, endpoint, run=False)
    response = api.get(reverse("tenant-api:subscription-quotas", args=[subscription.pk]))
    assert response.status_code == 200
    quotas = {q["key"]: q for q in response.json()}
    small = HardwareProfile.objects.get(endpoint=endpoint, name="Small")
    assert quotas["vms"] == {
        "service": "vm_cloud",
        "key": "vms",
        "label": "Virtual machines",
        "kind": "number",
        "plan_limit": 10,
        "addon_extra": 0,
        "limit": 10,
        "over": 0,
        "used": 1,
        "remaining": 9,
        "unit": "",
        "percent": 10,
    }
    assert (quotas["cores"]["used"], quotas["cores"]["remaining"]) == (small.cpu, 16 - small.cpu)
    assert quotas["memory_mb"]["unit"] == "MB"


def test_buy_and_remove_an_addon_through_the_api(api, subscription, plan, other_subscription):
    addon = addon_save(name="+4 vCPU", plans=[plan], max_per_subscription=1, quotas={"vm_cloud": {"cores": 4}})
    url = reverse("tenant-api:subscription-addons", args=[subscription.pk])
    listed = api.get(url).json()
    assert [(r["addon"]["id"], r["quantity"]) for r in listed] == [(addon.pk, 0)]
    bought = api.post(url, {"addon": addon.pk}, format="json")
    assert bought.status_code == 200 and bought.json()[0]["quantity"] == 1
    cores = next(
        q
        for q in api.get(reverse("tenant-api:subscription-quotas", args=[subscription.pk])).json()
        if q["key"] == "cores"
    )
    assert (cores["plan_limit"], cores["addon_extra"], cores["limit"]) == (16, 4, 20)
    assert_error(api.post(url, {"addon": addon.pk}, format="json"), 409, "conflict")  # at its maximum
    remove = reverse("tenant-api:subscription-addon-remove", args=[subscription.pk, addon.pk])
    assert api.delete(remove).json()[0]["quantity"] == 0
    assert_error(api.delete(remove), 404)
    # Another tenant's subscription: 404, whatever the add-on.
    other = reverse("tenant-api:subscription-addons", args=[other_subscription.pk])
    assert_error(api.post(other, {"addon": addon.pk}, format="json"), 404)
    assert_error(
        api.delete(reverse("tenant-api:subscription-addon-remove", args=[other_subscription.pk, addon.pk])), 404
    )


def test_a_coadmin_lists_addons_but_buying_or_removing_one_is_403(coadmin, coadmin_user, subscription, plan):
    addon = addon_save(name="Pack", plans=[plan], quotas={"vm_cloud": {"cores": 4}})
    client = api_client(coadmin_user)
    url = reverse("tenant-api:subscription-addons", args=[subscription.pk])
    assert client.get(url).json()[0]["addon"]["id"] == addon.pk
    assert_error(client.post(url, {"addon": addon.pk}, format="json"), 403, "forbidden")
    remove = reverse("tenant-api:subscription-addon-remove", args=[subscription.pk, addon.pk])
    assert_error(client.delete(remove), 403, "forbidden")


def test_subscribe_to_a_private_plan_with_its_invitation_code(api, tenant_user, endpoint):
    private = factories.make_plan(endpoint, public=False)
    url = reverse("tenant-api:subscription-list")
    assert_error(api.post(url, {"plan": private.pk}, format="json"), 400)  # not visible: a field error
    assert_error(api.post(url, {"invitation_code": "guess"}, format="json"), 409, "not_allowed")
    code = plan_invitation_rotate(plan=private)
    response = api.post(url, {"invitation_code": code}, format="json")
    assert response.status_code == 201 and response.json()["plan"]["id"] == private.pk


@pytest.mark.parametrize("size", [2, 9])
def test_plan_list_costs_the_same_queries_at_any_size(api, endpoint, size, django_assert_num_queries):
    for _ in range(size):
        factories.make_plan(endpoint)
    # authentication (2), count, page; offers: plan rows, offers, 2 allow-lists
    with django_assert_num_queries(8):
        assert len(api.get(reverse("tenant-api:plan-list")).json()["results"]) == size


def test_catalog_lists_what_the_subscription_may_use(api, subscription, endpoint, tmp_path):
    elsewhere = factories.make_endpoint(tmp_path, name="Elsewhere")
    body = api.get(reverse("tenant-api:subscription-catalog", args=[subscription.pk])).json()
    template_ids = {t["id"] for t in body["templates"]}
    assert template_ids == set(VMTemplate.objects.filter(endpoint=endpoint).values_list("pk", flat=True))
    assert not template_ids & set(VMTemplate.objects.filter(endpoint=elsewhere).values_list("pk", flat=True))
    assert {p["name"] for p in body["hardware_profiles"]} >= {"Small"}


def test_catalog_of_another_tenants_subscription_is_404(api, other_subscription):
    assert_error(api.get(reverse("tenant-api:subscription-catalog", args=[other_subscription.pk])), 404)
    assert_error(api.get(reverse("tenant-api:subscription-catalog", args=["not-a-uuid"])), 404)


# --- VMs -------------------------------------------------------------------------------------------


def test_quick_create_answers_202_with_the_job_and_the_vm(api, subscription, endpoint):
    response = api.post(reverse("tenant-api:vm-list"), quick_create_body(subscription, endpoint), format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    job = Job.objects.get(pk=body["job"]["id"])
    vm = VirtualMachine.objects.get(pk=body["vm"]["id"])
    assert response["Location"] == body["job"]["url"]
    assert body["job"]["url"].endswith(reverse("tenant-api:job-detail", args=[job.pk]))
    assert body["vm"]["url"].endswith(reverse("tenant-api:vm-detail", args=[vm.pk]))
    assert (body["vm"]["state"], body["vm"]["job"]["id"]) == ("creating", str(job.pk))
    assert "admin_password" not in body["vm"] and factories.VM_PASSWORD not in response.content.decode()

    # The job URL answers with the job; once it ran, the VM is running.
    polled = api.get(response["Location"])
    assert (polled.status_code, polled.json()["id"], polled.json()["kind"]) == (200, str(job.pk), "vm.create")
    factories.run_queued_jobs()
    assert api.get(response["Location"]).json()["state"] == JobState.SUCCEEDED
    detail = api.get(body["vm"]["url"]).json()
    assert (detail["state"], detail["job"]) == ("running", None)
    assert set(detail["allowed_actions"]) == {"stop", "shutdown", "restart", "delete"}


def test_invalid_vm_name_is_a_field_error(api, subscription, endpoint):
    body = quick_create_body(subscription, endpoint, name="bad_name!")
    error = assert_error(api.post(reverse("tenant-api:vm-list"), body, format="json"), 400, "invalid")
    assert "name" in error["fields"] and "letters" in error["fields"]["name"][0]
    assert not VirtualMachine.objects.exists()


def test_wrong_types_are_400_not_500(api, subscription, endpoint):
    body = quick_create_body(subscription, endpoint, template="abc", hardware_profile=[1], subscription=5)
    fields = assert_error(api.post(reverse("tenant-api:vm-list"), body, format="json"), 400)["fields"]
    assert {"template", "hardware_profile", "subscription"} <= set(fields)
    garbage = api.post(reverse("tenant-api:vm-list"), "{not json", content_type="application/json")
    assert_error(garbage, 400, "parse_error")


def test_a_template_outside_the_plan_is_a_field_error(api, subscription, tmp_path):
    elsewhere = factories.make_endpoint(tmp_path, name="Elsewhere")
    body = quick_create_body(subscription, elsewhere)
    fields = assert_error(api.post(reverse("tenant-api:vm-list"), body, format="json"), 400)["fields"]
    assert "template" in fields
    assert not VirtualMachine.objects.exists()


def test_creating_in_another_tenants_subscription_is_a_field_error(api, other_subscription, endpoint):
    body = quick_create_body(other_subscription, endpoint)
    assert "subscription" in assert_error(api.post(reverse("tenant-api:vm-list"), body, format="json"), 400)["fields"]
    assert not VirtualMachine.objects.exists()


def test_quota_exceeded_is_409_naming_the_quota(api, tenant_user, endpoint):
    sub = factories.make_subscription(tenant_user, factories.make_plan(endpoint, max_vms=1))
    make_vm(sub, endpoint, run=False)
    response = api.post(reverse("tenant-api:vm-list"), quick_create_body(sub, endpoint, name="web02"), format="json")
    message = assert_error(response, 409, "quota_exceeded")["message"]
    assert "Virtual machines" in message and "limit is 1" in message and "1 in use" in message
    assert VirtualMachine.objects.count() == 1


@pytest.mark.parametrize(
    ("action", "state"),
    [("stop", VMState.STOPPING), ("shutdown", VMState.STOPPING), ("restart", VMState.RESTARTING)],
)
def test_power_actions_answer_202_with_the_job(api, subscription, endpoint, action, state):
    vm = make_vm(subscription, endpoint)
    response = api.post(reverse(f"tenant-api:vm-{action}", args=[vm.pk]))
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.kind == f"vm.{action}" and response["Location"].endswith(reverse("tenant-api:job-detail", args=[job.pk]))
    assert response.json()["vm"]["state"] == state
    factories.run_queued_jobs()
    vm.refresh_from_db()
    assert vm.state == (VMState.RUNNING if action == "restart" else VMState.STOPPED)


def test_start_a_stopped_vm(api, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    api.post(reverse("tenant-api:vm-stop", args=[vm.pk]))
    factories.run_queued_jobs()
    response = api.post(reverse("tenant-api:vm-start", args=[vm.pk]))
    assert response.status_code == 202
    factories.run_queued_jobs()
    assert api.get(reverse("tenant-api:vm-detail", args=[vm.pk])).json()["state"] == "running"


def test_an_action_the_state_forbids_is_409(api, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    message = assert_error(api.post(reverse("tenant-api:vm-start", args=[vm.pk])), 409, "not_allowed")["message"]
    assert "running" in message
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.RUNNING


def test_delete_answers_202_and_the_vm_goes_away(api, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    response = api.delete(reverse("tenant-api:vm-detail", args=[vm.pk]))
    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["job"]["id"]).kind == "vm.delete"
    factories.run_queued_jobs()
    assert_error(api.get(reverse("tenant-api:vm-detail", args=[vm.pk])), 404)


def test_another_tenants_vm_and_job_are_404(api, other_subscription, endpoint):
    vm = make_vm(other_subscription, endpoint, run=False)
    job = Job.objects.get(target_id=str(vm.pk))
    assert_error(api.get(reverse("tenant-api:vm-detail", args=[vm.pk])), 404, "not_found")
    assert_error(api.post(reverse("tenant-api:vm-stop", args=[vm.pk])), 404, "not_found")
    assert_error(api.get(reverse("tenant-api:job-detail", args=[job.pk])), 404, "not_found")
    assert api.get(reverse("tenant-api:job-list")).json()["results"] == []
    for garbage in ("not-a-uuid", str(uuid.uuid4())):
        assert_error(api.get(reverse("tenant-api:vm-detail", args=[garbage])), 404, "not_found")


def test_vm_list_filters_by_subscription_and_state(api, tenant_user, subscription, endpoint):
    second = factories.make_subscription(tenant_user, factories.make_plan(endpoint))
    running = make_vm(subscription, endpoint, "run1")
    creating = make_vm(second, endpoint, "new1", run=False)
    url = reverse("tenant-api:vm-list")
    assert {v["id"] for v in api.get(url).json()["results"]} == {str(running.pk), str(creating.pk)}
    assert [v["id"] for v in api.get(url, {"subscription": second.pk}).json()["results"]] == [str(creating.pk)]
    assert [v["id"] for v in api.get(url, {"state": "running"}).json()["results"]] == [str(running.pk)]
    assert "state" in assert_error(api.get(url, {"state": "nonsense"}), 400)["fields"]
    assert "subscription" in assert_error(api.get(url, {"subscription": "x"}), 400)["fields"]


@pytest.mark.parametrize("vms", [3, 60])
def test_vm_list_pages_by_cursor_with_queries_that_do_not_grow(
    api, tenant_user, endpoint, vms, django_assert_num_queries
):
    sub = factories.make_subscription(
        tenant_user, factories.make_plan(endpoint, max_vms=None, max_cores=None, max_memory_mb=None)
    )
    made = [make_vm(sub, endpoint, f"vm{i:02d}", run=False) for i in range(vms)]
    # session, user, the tenant's subscription ids, the page, the page's running jobs
    with django_assert_num_queries(5):
        body = api.get(reverse("tenant-api:vm-list")).json()
    assert set(body) == {"next", "previous", "results"} and body["previous"] is None
    assert all(v["job"] and v["job"]["state"] == "queued" for v in body["results"])
    pages = [body["results"]]
    while body["next"]:
        body = api.get(body["next"]).json()
        pages.append(body["results"])
    assert [len(p) for p in pages] == ([vms] if vms <= 50 else [50, vms - 50])
    # newest first, every VM exactly once
    assert [v["id"] for p in pages for v in p] == [str(vm.pk) for vm in reversed(made)]
    if len(pages) > 1:
        back = api.get(body["previous"]).json()
        assert [v["id"] for v in back["results"]] == [v["id"] for v in pages[0]]


@pytest.mark.parametrize("run", [True, False])
def test_vm_rows_are_what_drf_would_have_serialized(api, tenant_user, subscription, endpoint, run):
    """VMSerializer builds its dict by hand for speed: it must equal DRF's field-by-field result."""
    vm = make_vm(subscription, endpoint, run=run)
    path = reverse("tenant-api:vm-list")
    request = APIRequestFactory().get(path)
    request.user, request.resolver_match = tenant_user, resolve(path)
    vm = vm_list(user=tenant_user).get(pk=vm.pk)
    context = {"request": Request(request), "active_jobs": vm_active_jobs([vm])}
    serializer = VMSerializer(vm, context=context)
    by_hand, generic = serializer.data, serializers.ModelSerializer.to_representation(serializer, vm)
    assert list(by_hand) == list(generic) and json.loads(JSONRenderer().render(by_hand)) == json.loads(
        JSONRenderer().render(generic)
    )
    assert api.get(path).json()["results"] == [json.loads(JSONRenderer().render(by_hand))]
    assert (by_hand["job"] is None) == run
    with timezone.override(ZoneInfo("Europe/Paris")):  # dates in the current time zone, as DRF writes them
        paris = VMSerializer(vm, context=context)
        assert paris.data == serializers.ModelSerializer.to_representation(paris, vm)
        assert paris.data["created_at"].endswith(("+01:00", "+02:00"))


def test_vm_pages_neither_skip_nor_repeat_vms_created_in_the_same_instant(api, tenant_user, endpoint):
    """Bulk imports give many VMs one created_at: the id tie-break keeps the cursor exact."""
    sub = factories.make_subscription(
        tenant_user, factories.make_plan(endpoint, max_vms=None, max_cores=None, max_memory_mb=None)
    )
    vms = [make_vm(sub, endpoint, f"vm{i:02d}") for i in range(7)]
    VirtualMachine.objects.filter(pk__in=[vm.pk for vm in vms]).update(created_at=vms[0].created_at)
    seen, url = [], reverse("tenant-api:vm-list") + "?page_size=3"
    while url:
        body = api.get(url).json()
        seen += [v["id"] for v in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(str(vm.pk) for vm in vms) and len(seen) == 7


def test_a_cursor_that_is_not_ours_is_a_404_with_the_error_body(api, subscription):
    assert_error(api.get(reverse("tenant-api:vm-list"), {"cursor": "bz14"}), 404, "not_found")
    assert_error(api.get(reverse("tenant-api:job-list"), {"cursor": "garbage!"}), 404, "not_found")


def test_job_list_is_paginated_and_scoped(
    api, subscription, other_subscription, endpoint, django_assert_max_num_queries
):
    for i in range(3):
        make_vm(subscription, endpoint, f"mine{i}", run=False)
    make_vm(other_subscription, endpoint, "theirs", run=False)
    with django_assert_max_num_queries(4):
        body = api.get(reverse("tenant-api:job-list"), {"state": "queued"}).json()
    assert set(body) == {"next", "previous", "results"}
    assert [j["target_name"] for j in body["results"]] == ["mine2", "mine1", "mine0"]


def test_another_plans_template_or_size_is_refused_exactly_like_one_that_does_not_exist(
    api, subscription, endpoint, tmp_path
):
    """Ids resolve through the scoped catalog: the answer can't tell another provider cloud's
    template exists."""
    elsewhere = factories.make_endpoint(tmp_path, name="Elsewhere")
    foreign_template, foreign_size = factories.catalog(elsewhere)
    missing = max(VMTemplate.objects.order_by("-pk")[0].pk, HardwareProfile.objects.order_by("-pk")[0].pk) + 1000
    for field, foreign in (("template", foreign_template.pk), ("hardware_profile", foreign_size.pk)):
        answers = []
        for pk in (foreign, missing):
            body = {**quick_create_body(subscription, endpoint), field: pk}
            error = assert_error(api.post(reverse("tenant-api:vm-list"), body, format="json"), 400, "invalid")
            answers.append(error["fields"][field][0].replace(str(pk), "<id>"))
        assert answers[0] == answers[1]
    assert not VirtualMachine.objects.exists()
