"""Admin portal pages of plans, user accounts and subscriptions."""

import pytest
from django.urls import reverse

from fabric.models import Cloud, HardwareProfile, VirtualMachine, VMCloudPlanService
from portal.exceptions import QuotaExceeded
from tenants.models import AddOn, Plan, PlanState
from tenants.plan_services import quota_offer
from tenants.services import addon_save, plan_find_by_invitation, plan_set_state, subscription_addon_buy
from tests import factories


@pytest.mark.parametrize(
    "name",
    [
        "staff:dashboard",
        "staff:plans",
        "staff:plan-create",
        "staff:accounts",
        "staff:subscriptions",
        "staff:addons",
        "staff:addon-create",
        "staff:endpoints",
        "staff:endpoint-create",
    ],
)
def test_each_page_renders(staff_client, subscription, name):
    assert staff_client.get(reverse(name)).status_code == 200


def vm_cloud_post(cloud, *, vms="", cores="", memory_mb="", console=True, sizes=(), templates=()):
    """The plan editor's VM cloud section as a browser posts it."""
    data = {
        "vm_cloud-offer-cloud": cloud.pk if cloud is not None else "",
        "vm_cloud-quota-vms": vms,
        "vm_cloud-quota-cores": cores,
        "vm_cloud-quota-memory_mb": memory_mb,
        "vm_cloud-offer-hardware_profiles": [p.pk for p in sizes],
        "vm_cloud-offer-templates": [t.pk for t in templates],
    }
    if console:
        data["vm_cloud-quota-console"] = "on"
    return data


def test_create_plan_add_vm_cloud_and_make_it_public_end_to_end(staff_client, endpoint, tenant_user):
    response = staff_client.post(
        reverse("staff:plan-create"),
        {"name": "Silver VMs", "description": "Small VMs", "max_subscriptions_per_account": "2"},
    )
    plan = Plan.objects.get(name="Silver VMs")
    assert response["Location"] == reverse("staff:plan-edit", args=[plan.pk])
    assert (plan.state, plan.max_subscriptions_per_account) == (PlanState.PRIVATE, 2)
    assert not Plan.objects.visible_to(tenant_user).filter(pk=plan.pk).exists()

    page = staff_client.get(response["Location"]).content.decode()
    assert "Simulator / Stamp 01 / Silver" in page  # cloud choices are labelled endpoint / stamp / cloud
    assert "Add virtual machines" in page and "a change applies at once" in page

    silver = Cloud.objects.get(stamp__endpoint=endpoint, name="Silver")
    small = HardwareProfile.objects.get(endpoint=endpoint, name="Small")
    response = staff_client.post(
        reverse("staff:plan-service", args=[plan.pk, "vm_cloud"]),
        vm_cloud_post(silver, vms="5", memory_mb="8192", console=False, sizes=[small]),
    )
    assert response.status_code == 302
    service = VMCloudPlanService.objects.get(plan=plan)
    assert service.cloud == silver and list(service.hardware_profiles.all()) == [small]
    assert {q.key: q.limit for q in quota_offer(plan)} == {"vms": 5, "cores": None, "memory_mb": 8192, "console": 0}

    response = staff_client.post(reverse("staff:plan-state", args=[plan.pk]), {"state": "public"}, follow=True)
    assert "now public" in response.content.decode()
    assert Plan.objects.visible_to(tenant_user).filter(pk=plan.pk).exists()

    listing = staff_client.get(reverse("staff:plans")).content.decode()
    assert "Simulator / Stamp 01 / Silver" in listing
    assert "Virtual machines: 5 · vCPU cores: Unlimited · Memory: 8192 MB · Console access: no" in listing


def test_removing_a_service_is_refused_while_a_subscription_uses_it(staff_client, plan, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, "web01")
    plan_set_state(plan=plan, state=PlanState.PRIVATE)
    url = reverse("staff:plan-service-remove", args=[plan.pk, "vm_cloud"])
    body = staff_client.post(url, follow=True).content.decode()
    assert "still use virtual machines" in body and VMCloudPlanService.objects.filter(plan=plan).exists()
    VirtualMachine.objects.filter(pk=vm.pk).update(state="deleted")
    body = staff_client.post(url, follow=True).content.decode()
    assert "no longer offers virtual machines" in body and not VMCloudPlanService.objects.filter(plan=plan).exists()
    assert staff_client.post(reverse("staff:plan-service", args=[plan.pk, "nope"])).status_code == 404


def test_lowering_a_quota_names_the_subscriptions_now_over_it(staff_client, plan, subscription, endpoint):
    for i in range(3):
        factories.make_vm(subscription, endpoint, f"web{i}")
    gold = Cloud.objects.get(stamp__endpoint=endpoint, name="Gold")
    response = staff_client.post(
        reverse("staff:plan-service", args=[plan.pk, "vm_cloud"]), vm_cloud_post(gold, vms="1"), follow=True
    )
    body = response.content.decode()
    assert "1 subscription(s) of" in body and "are now over quota" in body
    assert f"{subscription.name}: Virtual machines 3 of 1 (+2)" in body
    assert "1 subscription over quota" in body  # the plan page's panel, with by how much
    # It keeps its VMs and is refused a new one.
    assert VirtualMachine.objects.filter(subscription=subscription).count() == 3
    with pytest.raises(QuotaExceeded):
        factories.make_vm(subscription, endpoint, "web9")


def test_clone_copies_services_quotas_and_allow_lists_as_a_private_plan(staff_client, plan, endpoint):
    small = HardwareProfile.objects.get(endpoint=endpoint, name="Small")
    VMCloudPlanService.objects.get(plan=plan).hardware_profiles.set([small])
    response = staff_client.post(reverse("staff:plan-clone", args=[plan.pk]), {"name": "Gold copy"})
    clone = Plan.objects.get(name="Gold copy")
    assert response["Location"] == reverse("staff:plan-edit", args=[clone.pk])
    assert clone.state == PlanState.PRIVATE
    assert list(VMCloudPlanService.objects.get(plan=clone).hardware_profiles.all()) == [small]
    assert [(q.key, q.limit) for q in quota_offer(clone)] == [(q.key, q.limit) for q in quota_offer(plan)]
    body = staff_client.post(reverse("staff:plan-clone", args=[plan.pk]), {"name": "gold COPY"}, follow=True)
    assert "already exists" in body.content.decode()


def test_invitation_code_is_shown_once_and_rotating_it_retires_the_old_one(staff_client, plan):
    plan_set_state(plan=plan, state=PlanState.PRIVATE)
    body = staff_client.post(reverse("staff:plan-invitation", args=[plan.pk]), follow=True).content.decode()
    code = body.split("Invitation code of")[1].split(": ", 1)[1].split(" ")[0]
    assert plan_find_by_invitation(code=code) == plan
    staff_client.post(reverse("staff:plan-invitation", args=[plan.pk]))
    assert plan_find_by_invitation(code=code) is None
    staff_client.post(reverse("staff:plan-invitation", args=[plan.pk]), {"action": "clear"})
    plan.refresh_from_db()
    assert plan.invitation_digest == ""


def test_addon_pages_create_edit_and_retire(staff_client, plan):
    response = staff_client.post(
        reverse("staff:addon-create"),
        {"name": "+4 vCPU", "max_per_subscription": "2", "plans": [plan.pk], "vm_cloud__cores": "4"},
    )
    assert response.status_code == 302
    addon = AddOn.objects.get(name="+4 vCPU")
    listing = staff_client.get(reverse("staff:addons")).content.decode()
    assert "+4 vCPU cores" in listing and plan.name in listing
    response = staff_client.post(
        reverse("staff:addon", args=[addon.pk]),
        {"name": "+4 vCPU", "max_per_subscription": "2", "vm_cloud__cores": "4", "vm_cloud__memory_mb": "8192"},
    )
    assert response.status_code == 302
    assert {(r.key, r.value) for r in addon.quota_limits.all()} == {("cores", 4), ("memory_mb", 8192)}
    assert not addon.plans.exists()
    empty = staff_client.post(reverse("staff:addon-create"), {"name": "Nothing", "max_per_subscription": "1"})
    assert empty.status_code == 200 and "adds at least one quota" in empty.content.decode()
    staff_client.post(reverse("staff:addon-state", args=[addon.pk]), {"state": "retired"})
    addon.refresh_from_db()
    assert addon.state == "retired"


def test_making_public_a_plan_without_a_service_shows_the_error(staff_client, tenant_user):
    plan = Plan.objects.create(name="Empty")
    response = staff_client.post(reverse("staff:plan-state", args=[plan.pk]), {"state": "public"}, follow=True)
    assert "Add at least one service to the plan before making it public." in response.content.decode()
    plan.refresh_from_db()
    assert plan.state == PlanState.PRIVATE
    assert not Plan.objects.visible_to(tenant_user).exists()


def test_unknown_state_is_an_error_message_not_a_500(staff_client, plan):
    response = staff_client.post(reverse("staff:plan-state", args=[plan.pk]), {"state": "bogus"}, follow=True)
    assert response.status_code == 200
    assert "Unknown plan state" in response.content.decode()


def test_duplicate_plan_name_and_bad_quota_are_form_errors(staff_client, plan, endpoint):
    response = staff_client.post(
        reverse("staff:plan-create"), {"name": plan.name.upper(), "max_subscriptions_per_account": "1"}
    )
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert Plan.objects.count() == 1

    gold = Cloud.objects.get(stamp__endpoint=endpoint, name="Gold")
    url = reverse("staff:plan-service", args=[plan.pk, "vm_cloud"])
    response = staff_client.post(url, vm_cloud_post(gold, vms="-1"))
    assert response.status_code == 400 and "greater than or equal to 0" in response.content.decode()
    assert quota_offer(plan)[0].limit == 10

    response = staff_client.post(url, {"vm_cloud-offer-cloud": "999999"})
    assert "Select a valid choice" in response.content.decode()


def test_plan_detail_shows_subscriber_count_and_subscriptions(staff_client, plan, subscription, other_subscription):
    body = staff_client.get(reverse("staff:plan", args=[plan.pk])).content.decode()
    assert "<dt>Subscribers</dt><dd>2</dd>" in body
    assert "tenant@example.test" in body and "other@example.test" in body
    listing = staff_client.get(reverse("staff:plans")).content.decode()
    assert "<td>2</td>" in listing
    assert "Use against what the plan sold" in body


def test_unknown_plan_is_404(staff_client):
    assert staff_client.get(reverse("staff:plan", args=[424242])).status_code == 404
    assert staff_client.get(reverse("staff:plan-edit", args=[424242])).status_code == 404
    assert staff_client.post(reverse("staff:plan-state", args=[424242]), {"state": "public"}).status_code == 404


def test_subscriptions_page_shows_owner_plan_state_and_quota_use(staff_client, endpoint, plan, subscription):
    factories.make_vm(subscription, endpoint, "web01")
    body = staff_client.get(reverse("staff:subscriptions")).content.decode()
    assert "tenant@example.test" in body and plan.name in body and "Active" in body
    assert '<meter class="quota-meter" min="0" max="10" value="1"' in body


def _many_subscriptions(plan, n):
    plan.max_subscriptions_per_account = 1
    plan.save()
    for _ in range(n):
        factories.make_subscription(factories.UserFactory(), plan)


def test_accounts_page_paginates_with_pinned_queries(staff_client, plan, django_assert_max_num_queries):
    _many_subscriptions(plan, 60)
    with django_assert_max_num_queries(10):
        response = staff_client.get(reverse("staff:accounts"))
    body = response.content.decode()
    assert body.count("<td>1</td>") == 50  # 50 rows per page, each with its one subscription
    assert "Page 1 of 2 (60 items)" in body
    assert "staff@example.test" not in body.split("<table", 1)[1]  # staff accounts aren't listed


@pytest.mark.parametrize("size", [3, 60])
def test_subscriptions_page_costs_the_same_queries_at_any_size(staff_client, plan, size, django_assert_num_queries):
    _many_subscriptions(plan, size)
    # session, user, count, page; quotas: plan rows, offers (+2 allow-lists), add-ons, usage; the plan
    # filter's choices; rail (6)
    with django_assert_num_queries(4 + 6 + 1 + 6):
        response = staff_client.get(reverse("staff:subscriptions"))
    assert response.content.decode().count("quota-meter") == 3 * min(size, 50)  # VMs, vCPU, memory
    if size > 50:
        assert staff_client.get(reverse("staff:subscriptions") + "?page=2").content.decode().count("<tr>") == 11


@pytest.mark.parametrize("size", [2, 9])
def test_plans_page_costs_the_same_queries_at_any_size(staff_client, endpoint, size, django_assert_num_queries):
    for _ in range(size):
        factories.make_plan(endpoint)
    # session, user, count, page; offers: plan rows, offers, 2 allow-lists; rail (6)
    with django_assert_num_queries(4 + 4 + 6):
        response = staff_client.get(reverse("staff:plans"))
    assert response.content.decode().count("Simulator / Stamp 01 / Gold") == size


@pytest.mark.parametrize("size", [3, 60])
def test_plan_page_costs_the_same_queries_at_any_size(staff_client, plan, size, django_assert_num_queries):
    _many_subscriptions(plan, size)
    # A fixed number whatever the subscriptions: totals, over-quota state, the offers and the page of
    # subscriptions with their quotas each read in a fixed number of queries.
    with django_assert_num_queries(29):
        response = staff_client.get(reverse("staff:plan", args=[plan.pk]))
    assert response.content.decode().count("quota-meter") == 3 * min(size, 50)


@pytest.mark.parametrize("size", [3, 60])
def test_plan_editor_costs_the_same_queries_at_any_size(staff_client, plan, size, django_assert_num_queries):
    _many_subscriptions(plan, size)
    with django_assert_num_queries(28):
        response = staff_client.get(reverse("staff:plan-edit", args=[plan.pk]))
    assert "Save virtual machines" in response.content.decode()


def test_the_plan_page_reads_the_plan_and_its_editor_changes_it(staff_client, plan, endpoint):
    """The read-only page shows each offered service with its cloud, quotas (Unlimited when unset) and
    allow-lists; the forms are on the editor, linked from the page for administrators."""
    gold = Cloud.objects.get(stamp__endpoint=endpoint, name="Gold")
    small = HardwareProfile.objects.get(endpoint=endpoint, name="Small")
    staff_client.post(
        reverse("staff:plan-service", args=[plan.pk, "vm_cloud"]), vm_cloud_post(gold, vms="3", sizes=[small])
    )
    addon_save(name="+2 VMs", plans=[plan], quotas={"vm_cloud": {"vms": 2}})
    body = staff_client.get(reverse("staff:plan", args=[plan.pk])).content.decode()
    assert "Simulator / Stamp 01 / Gold" in body
    assert 'quota-figure">3</span>' in body and "Unlimited" in body  # 3 VMs; vCPU and memory unset
    assert "Sizes (hardware profiles): Small" in body and "+2 VMs" in body
    assert "<form" not in body.split('id="services-head"')[1]  # no form below the page head
    assert reverse("staff:plan-edit", args=[plan.pk]) in body
    editor = staff_client.get(reverse("staff:plan-edit", args=[plan.pk])).content.decode()
    assert "Save details" in editor and "Save virtual machines" in editor and "Clone plan" in editor
    response = staff_client.post(
        reverse("staff:plan-edit", args=[plan.pk]), {"name": "Renamed", "max_subscriptions_per_account": "3"}
    )
    assert response["Location"] == reverse("staff:plan-edit", args=[plan.pk])
    plan.refresh_from_db()
    assert (plan.name, plan.max_subscriptions_per_account) == ("Renamed", 3)
    # The plan page itself takes no write.
    assert staff_client.post(reverse("staff:plan", args=[plan.pk]), {"name": "Nope"}).status_code == 405


def test_a_tenant_account_is_refused_even_with_a_session(staff_site, tenant_client, plan):
    response = tenant_client.get(reverse("staff:plans"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_staff_subscription_page_shows_plan_plus_addons_and_what_it_holds(staff_client, plan, subscription):
    addon = addon_save(name="+4 vCPU", plans=[plan], quotas={"vm_cloud": {"cores": 4}})
    subscription_addon_buy(subscription=subscription, addon=addon, user=subscription.owner)
    body = staff_client.get(reverse("staff:subscription", args=[subscription.pk])).content.decode()
    assert "Plan 16 + add-ons 4 = 20" in body and "+4 vCPU</a> (+4 vCPU cores)" in body
    listing = staff_client.get(reverse("staff:subscriptions")).content.decode()
    assert "Plan 16 + add-ons 4 = 20" in listing


@pytest.mark.parametrize("size", [2, 12])
def test_addon_list_costs_the_same_queries_at_any_size(staff_client, plan, size, django_assert_num_queries):
    for i in range(size):
        addon_save(name=f"Pack {i}", plans=[plan], quotas={"vm_cloud": {"cores": i + 1}})
    # session, user, count, page, plans and quota rows prefetched; rail (6)
    with django_assert_num_queries(6 + 6):
        body = staff_client.get(reverse("staff:addons")).content.decode()
    assert body.count("Retire Pack") == size
