"""The staff REST API: endpoints, clouds, plans, subscriptions, accounts and jobs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from fabric.models import Cloud, EndpointState, FabricEndpoint, HardwareProfile
from portal.models import Job, JobState
from tenants.models import Plan, PlanState
from tenants.services import addon_save, plan_find_by_invitation
from tests import factories

from .conftest import api_client, assert_error, make_vm

pytestmark = pytest.mark.django_db


def test_a_tenant_account_cannot_use_the_staff_api(staff_site, tenant_user):
    client = api_client()
    client.force_authenticate(tenant_user)
    assert_error(client.get(reverse("staff-api:endpoint-list")), 403, "permission_denied")
    # Signed in the normal way, SiteBackend doesn't even accept the session on the staff site.
    assert_error(api_client(tenant_user).get(reverse("staff-api:plan-list")), 403, "not_authenticated")


def test_unauthenticated_gets_403_with_the_error_body(staff_site, db):
    assert_error(api_client().get(reverse("staff-api:job-list")), 403, "not_authenticated")


# --- endpoints and clouds ----------------------------------------------------------------------------


def test_endpoints_list_and_detail_show_stamps_clouds_and_capacity(staff_api, endpoint):
    body = staff_api.get(reverse("staff-api:endpoint-list")).json()
    assert [e["name"] for e in body["results"]] == ["Simulator"]
    row = body["results"][0]
    assert "settings" not in row and row["state"] == "ready"
    clouds = {c["name"]: c for s in row["stamps"] for c in s["clouds"]}
    gold = Cloud.objects.get(stamp__endpoint=endpoint, name="Gold")
    assert clouds["Gold"]["capacity"]["vcpu"] == {"used": gold.vcpu_used, "total": gold.vcpu_total}
    detail = staff_api.get(reverse("staff-api:endpoint-detail", args=[endpoint.pk])).json()
    assert {t["name"] for t in detail["templates"]} and {p["name"] for p in detail["hardware_profiles"]} >= {"Small"}
    assert_error(staff_api.get(reverse("staff-api:endpoint-detail", args=["abc"])), 404, "not_found")


def test_register_an_endpoint_answers_202_with_the_sync_job(staff_api, tmp_path):
    data = {"name": "Lab", "driver": "simulator", "settings": {"path": str(tmp_path / "lab.sqlite3"), "latency": 0}}
    response = staff_api.post(reverse("staff-api:endpoint-list"), data, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    job = Job.objects.get(pk=body["job"]["id"])
    assert job.kind == "endpoint.sync" and body["endpoint"]["name"] == "Lab"
    assert response["Location"] == body["job"]["url"]
    assert staff_api.get(response["Location"]).json()["id"] == str(job.pk)
    factories.run_queued_jobs()
    endpoint = FabricEndpoint.objects.get(pk=body["endpoint"]["id"])
    assert endpoint.state == EndpointState.READY and endpoint.stamps.exists()


def test_register_with_a_bad_driver_or_no_name_is_a_field_error(staff_api, endpoint):
    url = reverse("staff-api:endpoint-list")
    assert "driver" in assert_error(staff_api.post(url, {"name": "X", "driver": "nope"}, format="json"), 400)["fields"]
    assert "name" in assert_error(staff_api.post(url, {"driver": "simulator"}, format="json"), 400)["fields"]
    taken = staff_api.post(url, {"name": "simulator", "driver": "simulator"}, format="json")
    assert "already exists" in assert_error(taken, 400)["fields"]["name"][0]
    bad = staff_api.post(
        url, {"name": "X", "driver": "simulator", "settings": {"path": "/x.db", "latency": -1}}, format="json"
    )
    fields = assert_error(bad, 400)["fields"]
    assert "under the data directory" in fields["settings.path"][0] and "at least 0" in fields["settings.latency"][0]
    assert FabricEndpoint.objects.count() == 1


def test_sync_answers_202_and_a_second_sync_is_409(staff_api, endpoint):
    url = reverse("staff-api:endpoint-sync", args=[endpoint.pk])
    response = staff_api.post(url)
    assert response.status_code == 202
    assert response.json()["endpoint"]["state"] == "syncing"
    assert response["Location"].endswith(reverse("staff-api:job-detail", args=[response.json()["job"]["id"]]))
    assert_error(staff_api.post(url), 409, "conflict")
    factories.run_queued_jobs()
    assert staff_api.post(url).status_code == 202


def test_clouds_list_capacity(staff_api, subscription, endpoint):
    make_vm(subscription, endpoint)
    body = staff_api.get(reverse("staff-api:cloud-list")).json()
    gold = next(c for c in body["results"] if c["name"] == "Gold")
    assert gold["endpoint_name"] == "Simulator" and gold["vm_count"] == 1
    assert gold["capacity"]["vms"]["used"] == 1 and gold["capacity"]["vcpu"]["total"] is not None


# --- plans -------------------------------------------------------------------------------------------


def test_plans_list_with_subscriber_count_and_services(staff_api, plan, subscription, other_subscription):
    body = staff_api.get(reverse("staff-api:plan-list")).json()
    row = next(p for p in body["results"] if p["id"] == plan.pk)
    assert row["subscriber_count"] == 2 and row["state"] == "public" and row["has_invitation_code"] is False
    (service,) = row["services"]
    assert service["service"] == "vm_cloud" and service["target"] == "Simulator / Stamp 01 / Gold"
    assert {q["key"]: q["limit"] for q in service["quotas"]} == {
        "vms": 10,
        "cores": 16,
        "memory_mb": 32768,
        "console": None,
    }
    assert [(a["key"], a["items"]) for a in service["allow"]] == [("hardware_profiles", []), ("templates", [])]
    assert "vm_cloud" not in row  # services come from the registry, not by name


def test_create_a_plan_offer_a_cloud_and_make_it_public(staff_api, endpoint):
    response = staff_api.post(reverse("staff-api:plan-list"), {"name": "Silver plan"}, format="json")
    assert response.status_code == 201, response.content
    plan_id = response.json()["id"]
    assert (response.json()["state"], response.json()["services"]) == ("private", [])

    state_url = reverse("staff-api:plan-state", args=[plan_id])
    # Nothing offered yet: it can't go public.
    assert_error(staff_api.post(state_url, {"state": "public"}, format="json"), 409, "not_allowed")

    silver = Cloud.objects.get(stamp__endpoint=endpoint, name="Silver")
    small = HardwareProfile.objects.get(endpoint=endpoint, name="Small")
    body = {
        "offer": {"cloud": silver.pk, "hardware_profiles": [small.pk]},
        "quotas": {"vms": 3, "cores": None, "memory_mb": 4096, "console": False},
    }
    put = staff_api.put(reverse("staff-api:plan-service", args=[plan_id, "vm_cloud"]), body, format="json")
    assert put.status_code == 200, put.content
    (service,) = put.json()["services"]
    assert service["target_id"] == silver.pk
    assert {q["key"]: q["limit"] for q in service["quotas"]} == {
        "vms": 3,
        "cores": None,
        "memory_mb": 4096,
        "console": 0,
    }
    assert service["allow"][0]["items"] == [{"id": small.pk, "name": str(small)}]

    public = staff_api.post(state_url, {"state": "public"}, format="json")
    assert public.status_code == 200 and public.json()["state"] == "public"
    assert Plan.objects.get(pk=plan_id).state == PlanState.PUBLIC

    clone = staff_api.post(reverse("staff-api:plan-clone", args=[plan_id]), {"name": "Silver 2"}, format="json")
    assert clone.status_code == 201 and clone.json()["state"] == "private"
    assert clone.json()["services"][0]["quotas"] == service["quotas"]

    invitation = reverse("staff-api:plan-invitation", args=[clone.json()["id"]])
    code = staff_api.post(invitation).json()["invitation_code"]
    assert plan_find_by_invitation(code=code).pk == clone.json()["id"]
    withdrawn = staff_api.delete(invitation)
    assert withdrawn.json()["has_invitation_code"] is False and plan_find_by_invitation(code=code) is None

    patch = staff_api.patch(reverse("staff-api:plan-detail", args=[plan_id]), {"description": "Hi"}, format="json")
    assert patch.status_code == 200 and patch.json()["description"] == "Hi" and patch.json()["name"] == "Silver plan"


def test_plan_input_errors_are_field_errors(staff_api, plan):
    assert "name" in assert_error(staff_api.post(reverse("staff-api:plan-list"), {}, format="json"), 400)["fields"]
    dup = staff_api.post(reverse("staff-api:plan-list"), {"name": plan.name}, format="json")
    assert "name" in assert_error(dup, 400)["fields"]
    bad_state = staff_api.post(reverse("staff-api:plan-state", args=[plan.pk]), {"state": "gone"}, format="json")
    assert "state" in assert_error(bad_state, 400)["fields"]
    url = reverse("staff-api:plan-service", args=[plan.pk, "vm_cloud"])
    fields = assert_error(staff_api.put(url, {"offer": {"cloud": 999999}}, format="json"), 400)["fields"]
    assert "offer.cloud" in fields
    gold = plan.vm_cloud_service.cloud_id
    fields = assert_error(
        staff_api.put(url, {"offer": {"cloud": gold}, "quotas": {"vms": -1, "bogus": 1}}, format="json"), 400
    )["fields"]
    assert {"vms", "bogus"} <= set(fields)
    unknown = staff_api.put(reverse("staff-api:plan-service", args=[plan.pk, "nope"]), {"offer": {}}, format="json")
    assert_error(unknown, 404)


def test_addons_crud_and_retire(staff_api, plan):
    body = {"name": "+4 vCPU", "plans": [plan.pk], "max_per_subscription": 2, "quotas": {"vm_cloud": {"cores": 4}}}
    created = staff_api.post(reverse("staff-api:addon-list"), body, format="json")
    assert created.status_code == 201, created.content
    addon = created.json()
    assert addon["plans"] == [plan.pk] and addon["quotas"] == [
        {"service": "vm_cloud", "key": "cores", "label": "vCPU cores", "unit": "", "value": 4}
    ]
    url = reverse("staff-api:addon-detail", args=[addon["id"]])
    put = staff_api.put(url, {**body, "quotas": {"vm_cloud": {"cores": 4, "memory_mb": 8192}}}, format="json")
    assert put.status_code == 200 and len(put.json()["quotas"]) == 2
    retired = staff_api.post(reverse("staff-api:addon-state", args=[addon["id"]]), {"state": "retired"}, format="json")
    assert retired.json()["state"] == "retired"
    bad_body = {**body, "name": "GPU", "quotas": {"vm_cloud": {"gpus": 1}}}
    bad = staff_api.post(reverse("staff-api:addon-list"), bad_body, format="json")
    assert "vm_cloud.gpus" in assert_error(bad, 400)["fields"]


def test_lowered_quota_shows_the_subscription_over_quota(staff_api, plan, subscription, endpoint):
    make_vm(subscription, endpoint, "a", run=False)
    make_vm(subscription, endpoint, "b", run=False)
    url = reverse("staff-api:plan-service", args=[plan.pk, "vm_cloud"])
    staff_api.put(url, {"offer": {"cloud": plan.vm_cloud_service.cloud_id}, "quotas": {"vms": 1}}, format="json")
    quotas = staff_api.get(reverse("staff-api:subscription-quotas", args=[subscription.pk])).json()
    vms = next(q for q in quotas if q["key"] == "vms")
    assert (vms["limit"], vms["used"], vms["over"]) == (1, 2, 1)


# --- subscriptions, accounts, jobs ------------------------------------------------------------------


def test_subscriptions_and_accounts_list_every_tenant(staff_api, staff_user, subscription, other_subscription):
    subs = staff_api.get(reverse("staff-api:subscription-list")).json()
    assert {s["owner"]["email"] for s in subs["results"]} == {"tenant@example.test", "other@example.test"}
    accounts = staff_api.get(reverse("staff-api:account-list")).json()
    assert {a["email"]: a["subscription_count"] for a in accounts["results"]} == {
        "other@example.test": 1,
        "tenant@example.test": 1,
    }


def test_jobs_list_all_tenants_and_filters_by_state(staff_api, subscription, other_subscription, endpoint):
    make_vm(subscription, endpoint)
    make_vm(other_subscription, endpoint, run=False)
    url = reverse("staff-api:job-list")
    body = staff_api.get(url).json()
    assert set(body) == {"next", "previous", "results"}
    # the endpoint's sync and both creates, newest first
    assert [j["id"] for j in body["results"]] == [str(pk) for pk in Job.objects.values_list("pk", flat=True)]
    assert len(body["results"]) >= 3
    queued = staff_api.get(url, {"state": "queued"}).json()["results"]
    assert [j["target_name"] for j in queued] == ["web01"] and queued[0]["state"] == JobState.QUEUED
    assert "state" in assert_error(staff_api.get(url, {"state": "bogus"}), 400)["fields"]


@pytest.mark.parametrize(
    ("route", "max_queries"),
    [("plan-list", 9), ("subscription-list", 4), ("account-list", 4), ("cloud-list", 4), ("addon-list", 6)],
)
@pytest.mark.parametrize("size", [3, 60])
def test_staff_lists_do_not_grow_with_rows(
    staff_api, endpoint, route, max_queries, size, django_assert_max_num_queries
):
    for i in range(size):
        user = factories.UserFactory()
        sub = factories.make_subscription(user, factories.make_plan(endpoint))
        make_vm(sub, endpoint, run=False)
        addon_save(name=f"Pack {i}", plans=[sub.plan], quotas={"vm_cloud": {"cores": 1}})
    # plans: count, page, add-ons, then offers (plan rows, offers, 2 allow-lists); add-ons: count, page,
    # 2 prefetches (and the session's own reads)
    with django_assert_max_num_queries(max_queries):
        body = staff_api.get(reverse(f"staff-api:{route}")).json()
    assert len(body["results"]) == min(body["count"], 50) and body["count"] >= 2


@pytest.mark.parametrize("tenants", [2, 60])
def test_staff_job_list_pages_by_cursor_with_queries_that_do_not_grow(
    staff_api, endpoint, tenants, django_assert_num_queries
):
    for _ in range(tenants):
        sub = factories.make_subscription(factories.UserFactory(), factories.make_plan(endpoint))
        make_vm(sub, endpoint, run=False)
    # session, user, the page (staff see every job: no scope to read first)
    with django_assert_num_queries(3):
        body = staff_api.get(reverse("staff-api:job-list")).json()
    assert len(body["results"]) == min(tenants + 1, 50)  # + the endpoint's sync
    assert (body["next"] is not None) == (tenants + 1 > 50)


def test_endpoint_list_does_not_grow_with_rows(staff_api, tmp_path, django_assert_max_num_queries):
    for i in range(5):
        factories.make_endpoint(tmp_path, name=f"E{i}")
    with django_assert_max_num_queries(6):
        body = staff_api.get(reverse("staff-api:endpoint-list")).json()
    assert body["count"] == 5 and all(e["stamps"] and e["stamps"][0]["clouds"] for e in body["results"])
