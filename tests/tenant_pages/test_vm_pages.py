"""Tenant VM pages: list with live job rows, quick create, detail with actions, scoping."""

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from fabric.models import VirtualMachine, VMState
from fabric.services import vm_action
from portal.jobs import job_execute
from portal.models import Job, JobState
from tests import factories
from tests.htmx import poller_url

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


make_vm = factories.make_vm


def create_data(subscription, endpoint, **overrides):
    template, size = factories.catalog(endpoint)
    data = {
        "subscription": str(subscription.pk),
        "name": "web01",
        "template": template.pk,
        "hardware_profile": size.pk,
        "admin_username": "canopy",
        "admin_password": factories.VM_PASSWORD,
        "admin_password_confirm": factories.VM_PASSWORD,
    }
    return {**data, **overrides}


# --- list -------------------------------------------------------------------------------------------


def test_list_shows_the_owners_vms_only(tenant_client, subscription, other_subscription, endpoint):
    mine = make_vm(subscription, endpoint, "mine")
    theirs = make_vm(other_subscription, endpoint, "theirs")
    body = tenant_client.get(reverse("tenant:vms")).content.decode()
    assert reverse("tenant:vm", args=[mine.pk]) in body
    assert "badge-running" in body and "Small" in body and "Ubuntu" in body
    assert theirs.name not in body


def unlimited_subscription(tenant_user, endpoint):
    plan = factories.make_plan(endpoint, max_vms=None, max_cores=None, max_memory_mb=None)
    return factories.make_subscription(tenant_user, plan)


def test_rows_show_their_running_job_and_the_page_polls_once_for_all(tenant_client, subscription, endpoint):
    vms = [make_vm(subscription, endpoint, f"vm{i}", run=False) for i in range(3)]
    body = tenant_client.get(reverse("tenant:vms")).content.decode()
    for vm in vms:
        job = Job.objects.get(target_id=str(vm.pk))
        row = re.search(rf'<tr id="vm-row-{vm.pk}".*?</tr>', body, re.S).group(0)
        assert f'id="job-{job.pk}"' in row and "hx-trigger" not in row
        assert f"{job.pk}." in poller_url(body)
    assert body.count('hx-trigger="every 1s"') == 1  # one poller for the page, not one per row
    assert poller_url(body).startswith(reverse("tenant:vm-statuses") + "?ids=")


def test_no_poller_when_nothing_runs(tenant_client, subscription, endpoint):
    make_vm(subscription, endpoint)
    body = tenant_client.get(reverse("tenant:vms")).content.decode()
    assert poller_url(body) is None and "every 1s" not in body


def test_the_poll_swaps_what_changed_then_the_rows_whose_job_ended_then_stops(tenant_client, subscription, endpoint):
    first, second = (make_vm(subscription, endpoint, name, run=False) for name in ("first", "second"))
    first_job, second_job = (Job.objects.get(target_id=str(vm.pk)) for vm in (first, second))
    url = poller_url(tenant_client.get(reverse("tenant:vms")).content.decode())

    quiet = tenant_client.get(url, **HTMX)
    assert (quiet.status_code, quiet.content) == (200, b"")  # nothing changed: nothing sent, polling goes on

    Job.objects.filter(pk=second_job.pk).update(percent=55, step="Booting")
    progress = tenant_client.get(url, **HTMX)
    body = progress.content.decode()
    assert progress.status_code == 200 and "HX-Trigger" not in progress
    assert re.search(rf'<div class="job-status job-queued" id="job-{second_job.pk}"[^>]*hx-swap-oob="true"', body)
    assert "55%" in body and "Booting" in body and f"job-{first_job.pk}" not in body
    url = poller_url(body)  # the new poller knows the version the page shows now
    assert 'id="job-poller" hidden' in body and 'hx-swap-oob="true"' in body

    job_execute(str(first_job.pk))
    ended = tenant_client.get(url, **HTMX)
    body = ended.content.decode()
    assert ended.status_code == 200 and ended["HX-Trigger"] == "canopy:job-finished"
    row = re.search(
        rf'<template><tr id="vm-row-{first.pk}" class="vm-row" hx-swap-oob="true">.*?</tr></template>', body, re.S
    )
    assert row and "badge-running" in row.group(0) and "job-status" not in row.group(0)
    # the row's checkbox keeps its tick across the swap (htmx keeps the element on the page)
    assert f'id="vm-select-{first.pk}" hx-preserve' in row.group(0)
    assert f"job-{second_job.pk}" not in body  # unchanged since the last answer
    url = poller_url(body)
    assert str(second_job.pk) in url and str(first_job.pk) not in url

    job_execute(str(second_job.pk))
    last = tenant_client.get(url, **HTMX)
    assert last.status_code == 286  # htmx stops polling
    assert f'<tr id="vm-row-{second.pk}"' in last.content.decode() and poller_url(last.content.decode()) is None


def test_the_poll_removes_the_row_of_a_vm_whose_deletion_ended(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    vm_action(vm=vm, action="delete")
    url = poller_url(tenant_client.get(reverse("tenant:vms")).content.decode())
    factories.run_queued_jobs()
    response = tenant_client.get(url, **HTMX)
    assert response.status_code == 286
    assert f'<template><tr id="vm-row-{vm.pk}" hx-swap-oob="delete"></tr></template>' in response.content.decode()


def test_the_poll_follows_a_job_that_started_on_a_row_meanwhile(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint, run=False)
    url = poller_url(tenant_client.get(reverse("tenant:vms")).content.decode())
    factories.run_queued_jobs()
    stop = vm_action(vm=VirtualMachine.objects.get(pk=vm.pk), action="stop")
    body = tenant_client.get(url, **HTMX).content.decode()
    assert f'id="job-{stop.pk}"' in body and str(stop.pk) in poller_url(body)


@pytest.mark.parametrize("running", [1, 20])
def test_the_batched_poll_query_count_does_not_grow_with_jobs(
    tenant_client, tenant_user, endpoint, running, django_assert_num_queries
):
    sub = unlimited_subscription(tenant_user, endpoint)
    for i in range(running):
        make_vm(sub, endpoint, f"vm{i}", run=False)
    url = poller_url(tenant_client.get(reverse("tenant:vms")).content.decode())
    assert url.count(",") == running - 1
    # session, user, the tenant's subscription ids, the polled jobs
    with django_assert_num_queries(4):
        assert tenant_client.get(url, **HTMX).status_code == 200
    factories.run_queued_jobs()
    # ... and for the rows of the finished jobs: subscription ids, their VMs, their running jobs
    with django_assert_num_queries(7):
        response = tenant_client.get(url, **HTMX)
    assert response.status_code == 286 and response.content.decode().count('class="vm-row"') == running


def test_empty_list_offers_new_vm_or_plans(tenant_client, tenant_user, plan):
    body = tenant_client.get(reverse("tenant:vms")).content.decode()
    assert "You need a subscription first" in body and reverse("tenant:plans") in body
    factories.make_subscription(tenant_user, plan)
    body = tenant_client.get(reverse("tenant:vms")).content.decode()
    assert "+ New virtual machine" in body and reverse("tenant:vm-create") in body


def test_list_filtered_by_subscription(tenant_client, tenant_user, subscription, endpoint, other_subscription):
    second = factories.make_subscription(tenant_user, factories.make_plan(endpoint))
    make_vm(subscription, endpoint, "first")
    make_vm(second, endpoint, "second")
    body = tenant_client.get(reverse("tenant:vms"), {"subscription": second.pk}).content.decode()
    assert ">second<" in body and ">first<" not in body
    assert tenant_client.get(reverse("tenant:vms"), {"subscription": other_subscription.pk}).status_code == 404
    assert tenant_client.get(reverse("tenant:vms"), {"subscription": "nope"}).status_code == 404


@pytest.mark.parametrize("vms", [3, 60])
def test_list_query_count_does_not_grow_with_vms(tenant_client, tenant_user, endpoint, vms, django_assert_num_queries):
    sub = unlimited_subscription(tenant_user, endpoint)
    for i in range(vms):
        make_vm(sub, endpoint, f"vm{i}", run=i < vms - 2)  # the two newest still have a queued create job
    # session, user, subscription ids, page, the page's running jobs; rail: VMs and running jobs
    # (subscription ids and a bounded count each), subscriptions
    with django_assert_num_queries(10):
        response = tenant_client.get(reverse("tenant:vms"))
    body = response.content.decode()
    assert body.count('class="vm-row"') == min(vms, 50) and body.count('class="job-status') == 2
    assert ("Older →" in body) == (vms > 50) and "← Newer" not in body


def test_list_pages_by_cursor_newest_first(tenant_client, tenant_user, endpoint):
    sub = unlimited_subscription(tenant_user, endpoint)
    made = [make_vm(sub, endpoint, f"vm{i}") for i in range(55)]
    first = tenant_client.get(reverse("tenant:vms")).content.decode()
    older = re.search(r'<a href="([^"]+)" rel="next">Older', first).group(1)
    second = tenant_client.get(html.unescape(older)).content.decode()
    assert second.count('class="vm-row"') == 5 and "Older →" not in second and "← Newer" in second
    names = re.findall(r'<tr id="vm-row-[^"]+" class="vm-row">.*?<td><a [^>]+>(vm\d+)</a>', first + second, re.S)
    assert names == [vm.name for vm in reversed(made)]
    assert tenant_client.get(reverse("tenant:vms"), {"cursor": "not-a-cursor"}).status_code == 404


def test_the_rail_count_is_bounded(tenant_client, subscription, endpoint, settings, monkeypatch):
    monkeypatch.setattr("portal.navigation.RAIL_COUNT_LIMIT", 2)
    for i in range(3):
        make_vm(subscription, endpoint, f"vm{i}")
    body = tenant_client.get(reverse("tenant:dashboard")).content.decode()
    assert re.search(r'Virtual machines <span class="count">2\+</span>', body)


# --- quick create -----------------------------------------------------------------------------------


def test_create_form_preselects_the_only_subscription_and_shows_what_is_left(tenant_client, subscription, endpoint):
    make_vm(subscription, endpoint)
    response = tenant_client.get(reverse("tenant:vm-create"))
    body = response.content.decode()
    assert re.search(rf'<option value="{subscription.pk}" selected>', body)
    assert "1 of 10" in body and "9 left" in body and "Ubuntu" in body and "Small" in body
    for field in ("name", "template", "hardware_profile", "admin_username", "admin_password"):
        assert f'<label for="id_{field}"' in body
    assert 'value="canopy"' in body


def test_create_without_subscription_leads_to_plans(tenant_client):
    body = tenant_client.get(reverse("tenant:vm-create")).content.decode()
    assert "You need an active subscription first" in body and reverse("tenant:plans") in body


def test_create_catalog_partial_for_the_chosen_subscription(tenant_client, tenant_user, subscription, endpoint):
    factories.make_subscription(tenant_user, factories.make_plan(endpoint))
    full = tenant_client.get(reverse("tenant:vm-create")).content.decode()
    assert "Choose a subscription to see" in full
    response = tenant_client.get(reverse("tenant:vm-create"), {"subscription": subscription.pk}, **HTMX)
    body = response.content.decode().strip()
    assert body.startswith('<div id="catalog"') and "<form" not in body
    assert "0 of 10" in body and "Ubuntu" in body
    assert "HX-Request" in response["Vary"]


def test_quick_create_creates_a_vm_and_job_and_shows_progress(tenant_client, tenant_user, subscription, endpoint):
    response = tenant_client.post(reverse("tenant:vm-create"), create_data(subscription, endpoint))
    vm = VirtualMachine.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("tenant:vm", args=[vm.pk])
    job = Job.objects.get(kind="vm.create", target_id=str(vm.pk))
    assert (vm.name, vm.subscription_id, job.created_by) == ("web01", subscription.pk, tenant_user)
    body = tenant_client.get(response["Location"]).content.decode()
    assert "Creating &#x27;web01&#x27;" in body and f'id="job-{job.pk}"' in body and str(job.pk) in poller_url(body)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "bad_name"}, "Use 1 to 15 letters"),
        ({"admin_password_confirm": "Other-Pass-1"}, "The passwords don"),
        ({"admin_password": "weak", "admin_password_confirm": "weak"}, "8 to 123 characters"),
        ({"admin_username": "root"}, "reserved"),
        ({"template": "999999"}, "Select a valid choice"),
    ],
)
def test_invalid_input_rerenders_the_form_and_creates_nothing(
    tenant_client, subscription, endpoint, overrides, message
):
    response = tenant_client.post(reverse("tenant:vm-create"), create_data(subscription, endpoint, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not VirtualMachine.objects.exists() and not Job.objects.filter(kind="vm.create").exists()


def test_quota_exceeded_names_the_quota_and_creates_nothing(tenant_client, tenant_user, endpoint):
    sub = factories.make_subscription(tenant_user, factories.make_plan(endpoint, max_vms=1))
    make_vm(sub, endpoint, "one")
    response = tenant_client.post(reverse("tenant:vm-create"), create_data(sub, endpoint, name="two"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Quota exceeded for Virtual machines: the limit is 1, 1 in use" in body
    assert VirtualMachine.objects.count() == 1


def test_template_of_another_cloud_is_refused(tenant_client, subscription, tmp_path):
    elsewhere = factories.make_endpoint(tmp_path, name="Elsewhere")
    template, _ = factories.catalog(elsewhere)
    data = create_data(subscription, subscription.plan.vm_cloud_service.cloud.stamp.endpoint, template=template.pk)
    response = tenant_client.post(reverse("tenant:vm-create"), data)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not VirtualMachine.objects.exists()


def test_cannot_create_in_another_tenants_subscription(tenant_client, subscription, other_subscription, endpoint):
    response = tenant_client.post(reverse("tenant:vm-create"), create_data(other_subscription, endpoint))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not VirtualMachine.objects.exists()


# --- detail and actions -----------------------------------------------------------------------------


def test_detail_shows_facts_actions_and_jobs(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    body = tenant_client.get(reverse("tenant:vm", args=[vm.pk])).content.decode()
    assert vm.fabric_id in body and "Gold" in body and subscription.name in body
    create_job = Job.objects.get(target_id=str(vm.pk))
    assert reverse("tenant:job", args=[create_job.pk]) in body
    start = re.search(r"<button[^>]*>Start</button>", body).group(0)
    assert "disabled" in start and 'title="Available when the VM is stopped."' in start
    stop = re.search(r"<button[^>]*>Stop</button>", body).group(0)
    assert "disabled" not in stop
    assert reverse("tenant:vm-delete", args=[vm.pk]) in body


def test_stop_then_start_move_the_state(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    for action, busy, final in (
        ("stop", VMState.STOPPING, VMState.STOPPED),
        ("start", VMState.STARTING, VMState.RUNNING),
    ):
        response = tenant_client.post(reverse("tenant:vm-action", args=[vm.pk, action]), follow=True)
        assert response.redirect_chain[-1][0] == reverse("tenant:vm", args=[vm.pk])
        job = Job.objects.filter(target_id=str(vm.pk)).latest("created_at")
        assert job.kind == f"vm.{action}" and VirtualMachine.objects.get(pk=vm.pk).state == busy
        body = response.content.decode()
        assert str(job.pk) in poller_url(body) and 'hx-trigger="canopy:job-finished from:body"' in body
        factories.run_queued_jobs()
        assert VirtualMachine.objects.get(pk=vm.pk).state == final


def test_detail_partial_after_the_job_shows_the_new_state(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    vm_action(vm=vm, action="stop")
    factories.run_queued_jobs()
    response = tenant_client.get(reverse("tenant:vm", args=[vm.pk]), **HTMX)
    body = response.content.decode().strip()
    assert body.startswith('<div id="vm-summary"') and "<html" not in body
    assert "badge-stopped" in body and "hx-trigger" not in body
    assert "HX-Request" in response["Vary"]


def test_disallowed_action_is_a_message_not_an_error(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint, run=False)
    response = tenant_client.post(reverse("tenant:vm-action", args=[vm.pk, "start"]), follow=True)
    assert response.status_code == 200
    assert "Can&#x27;t start &#x27;web01&#x27; while it is creating." in response.content.decode()
    assert Job.objects.filter(target_id=str(vm.pk)).count() == 1


def test_unknown_action_is_404_and_get_is_refused(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    assert tenant_client.post(reverse("tenant:vm-action", args=[vm.pk, "explode"])).status_code == 404
    assert tenant_client.get(reverse("tenant:vm-action", args=[vm.pk, "stop"])).status_code == 405


def test_delete_asks_then_deletes_and_the_page_goes_back_to_the_list(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    confirm = tenant_client.get(reverse("tenant:vm-delete", args=[vm.pk])).content.decode()
    assert "This can't be undone" in confirm and reverse("tenant:vm-action", args=[vm.pk, "delete"]) in confirm
    tenant_client.post(reverse("tenant:vm-action", args=[vm.pk, "delete"]))
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.DELETING
    factories.run_queued_jobs()
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.DELETED
    refresh = tenant_client.get(reverse("tenant:vm", args=[vm.pk]), **HTMX)
    assert refresh["HX-Redirect"] == reverse("tenant:vms")
    assert "has been deleted" in tenant_client.get(reverse("tenant:vms")).content.decode()
    assert tenant_client.get(reverse("tenant:vm", args=[vm.pk])).status_code == 404


def test_other_tenant_gets_404_everywhere_and_changes_nothing(other_client: Client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    for name in ("tenant:vm", "tenant:vm-delete"):
        assert other_client.get(reverse(name, args=[vm.pk])).status_code == 404, name
    for action in ("stop", "restart", "delete"):
        assert other_client.post(reverse("tenant:vm-action", args=[vm.pk, action])).status_code == 404
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.RUNNING
    assert Job.objects.filter(target_id=str(vm.pk)).count() == 1


def test_anonymous_is_sent_to_sign_in(client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    for url in (
        reverse("tenant:vms"),
        reverse("tenant:vm-create"),
        reverse("tenant:vm", args=[vm.pk]),
        reverse("tenant:vm-delete", args=[vm.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    response = client.post(reverse("tenant:vm-action", args=[vm.pk, "stop"]))
    assert response.status_code == 302
    assert Job.objects.filter(target_id=str(vm.pk), state=JobState.QUEUED).count() == 0
