"""The VM list's bulk actions, the VM page's state history, and the one declaration of VM actions
that the page's action bar, the list's bulk bar, the service and the API all read."""

import re
import uuid

import pytest
from django.urls import NoReverseMatch, reverse

from fabric.lifecycle import VM_ACTIONS, VMAction
from fabric.models import VirtualMachine, VMState
from fabric.selectors import vm_state_history
from fabric.services import vm_action, vm_allowed_actions
from portal.models import Job
from tests import factories
from tests.api.conftest import api_client

pytestmark = pytest.mark.django_db
make_vm = factories.make_vm
BULK = "tenant:vm-bulk-action"


def states(*vms):
    return [VirtualMachine.objects.get(pk=vm.pk).state for vm in vms]


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def bulk(client, action, vms, **extra):
    data = {"action": action, "vm": [str(getattr(vm, "pk", vm)) for vm in vms], **extra}
    return client.post(reverse(BULK), data, follow=True)


# --- the bulk bar on the list -------------------------------------------------------------------


def test_list_rows_have_checkboxes_and_the_bar_a_button_per_declared_action(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    body = tenant_client.get(reverse("tenant:vms")).content.decode()
    form = re.search(rf'<form method="post" action="{reverse(BULK)}".*?</form>', body, re.S).group(0)
    assert f'<input type="checkbox" name="vm" value="{vm.pk}"' in form
    buttons = re.findall(r'<button[^>]*name="action" value="([a-z]+)"[^>]*>([^<]+)</button>', form)
    assert buttons == [(a.name, a.label + ("…" if a.destructive else "")) for a in VM_ACTIONS.values()]


def test_a_bulk_action_is_applied_to_each_vm_and_refusals_are_reported_per_vm(
    tenant_client, tenant_user, subscription, endpoint
):
    a, b, c = (make_vm(subscription, endpoint, name) for name in ("a", "b", "c"))
    vm_action(vm=c, action="stop")
    factories.run_queued_jobs()  # c is stopped

    response = bulk(tenant_client, "stop", [a, b, c], next=reverse("tenant:vms") + "?page=1")

    assert response.redirect_chain[-1][0] == reverse("tenant:vms") + "?page=1"
    assert states(a, b, c) == [VMState.STOPPING, VMState.STOPPING, VMState.STOPPED]
    jobs = Job.objects.filter(kind="vm.stop", created_by=tenant_user)
    assert sorted(job.target_name for job in jobs) == ["a", "b"]
    assert set(messages_of(response)) == {
        "Can't stop 'c' while it is stopped.",
        "Stopping 'b', 'a'. Progress is shown below.",
    }
    factories.run_queued_jobs()
    assert states(a, b) == [VMState.STOPPED, VMState.STOPPED]


def test_a_refusal_that_does_not_name_the_vm_is_prefixed_with_it(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    subscription.state = "suspended"
    subscription.save(update_fields=["state"])
    response = bulk(tenant_client, "restart", [vm])
    assert messages_of(response) == [f"'web01': Subscription '{subscription}' is suspended."]
    assert states(vm) == [VMState.RUNNING]


def test_another_tenants_vms_are_ignored_as_if_they_did_not_exist(
    tenant_client, subscription, other_subscription, endpoint
):
    mine = make_vm(subscription, endpoint, "mine")
    theirs = make_vm(other_subscription, endpoint, "theirs")

    response = bulk(tenant_client, "stop", [mine, theirs])
    assert states(mine, theirs) == [VMState.STOPPING, VMState.RUNNING]
    assert "1 of the selected virtual machines no longer exists." in messages_of(response)
    assert not Job.objects.filter(target_id=str(theirs.pk), kind="vm.stop").exists()

    # only theirs: nothing happens, and it reads the same as an id that never existed
    for ids in ([theirs], [uuid.uuid4()]):
        response = bulk(tenant_client, "delete", ids, confirm="yes")
        assert messages_of(response) == ["1 of the selected virtual machines no longer exists."]
    for ids in (["not-a-uuid"], []):
        response = bulk(tenant_client, "delete", ids, confirm="yes")
        assert messages_of(response) == ["Select the virtual machines to act on first."]
    assert states(theirs) == [VMState.RUNNING]
    assert Job.objects.filter(target_id=str(theirs.pk)).count() == 1


def test_delete_asks_on_a_page_listing_the_vms_then_deletes_those_it_may(tenant_client, subscription, endpoint):
    running = make_vm(subscription, endpoint, "running")
    creating = make_vm(subscription, endpoint, "creating", run=False)

    confirm = tenant_client.post(reverse(BULK), {"action": "delete", "vm": [running.pk, creating.pk]})
    assert confirm.status_code == 200 and confirm.templates[0].name == "tenant/fabric/vm_bulk_confirm.html"
    page = confirm.content.decode()
    assert ">running<" in page and ">creating<" in page and "Skipped: Not available while the VM is creating." in page
    assert "Delete 1 virtual machine</button>" in page
    assert states(running, creating) == [VMState.RUNNING, VMState.CREATING]  # nothing yet

    form = re.search(rf'<form method="post" action="{reverse(BULK)}">.*?</form>', page, re.S).group(0)
    data = dict(re.findall(r'<input type="hidden" name="(action|confirm|next)" value="([^"]*)"', form))
    data["vm"] = re.findall(r'name="vm" value="([^"]+)"', form)
    assert data["vm"] == [str(running.pk)] and data["confirm"] == "yes"
    done = tenant_client.post(reverse(BULK), data, follow=True)
    assert done.redirect_chain[-1][0] == reverse("tenant:vms")
    assert states(running, creating) == [VMState.DELETING, VMState.CREATING]
    assert "Deleting 'running'. Progress is shown below." in messages_of(done)


def test_bulk_rejects_get_unknown_actions_and_foreign_next(tenant_client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    assert tenant_client.get(reverse(BULK)).status_code == 405
    assert tenant_client.post(reverse(BULK), {"action": "explode", "vm": [vm.pk]}).status_code == 404
    response = tenant_client.post(reverse(BULK), {"action": "stop", "vm": [vm.pk], "next": "https://evil.test/"})
    assert response["Location"] == reverse("tenant:vms")


def test_anonymous_bulk_post_changes_nothing(client, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    response = client.post(reverse(BULK), {"action": "stop", "vm": [vm.pk]})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert states(vm) == [VMState.RUNNING]


# --- state history on the VM page ---------------------------------------------------------------


def test_the_vm_page_shows_its_state_history_with_jobs_and_who(tenant_client, tenant_user, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    stop = vm_action(vm=vm, action="stop", created_by=tenant_user)
    body = tenant_client.get(reverse("tenant:vm", args=[vm.pk])).content.decode()
    section = re.search(r'<section class="panel state-history">.*?</section>', body, re.S).group(0)
    rows = re.findall(r"<tr>.*?</tr>", section, re.S)
    assert len(rows) == 4  # header, running → stopping, creating → running, created
    assert "badge-running" in rows[1] and "badge-stopping" in rows[1]
    assert tenant_user.get_full_name() in rows[1] and reverse("tenant:job", args=[stop.pk]) in rows[1]
    assert "Created" in rows[3] and "badge-creating" in rows[3]


def test_state_history_is_scoped_like_everything_else(tenant_user, other_tenant, subscription, endpoint):
    vm = make_vm(subscription, endpoint)
    assert vm_state_history(user=tenant_user, vm=vm).count() == 2
    assert vm_state_history(user=other_tenant, vm=vm).count() == 0


def test_the_vm_page_query_count_does_not_grow_with_its_history(
    tenant_client, subscription, endpoint, django_assert_max_num_queries
):
    vm = make_vm(subscription, endpoint)
    url = reverse("tenant:vm", args=[vm.pk])
    counts = []
    for _ in range(2):
        with django_assert_max_num_queries(20) as captured:
            tenant_client.get(url)
        counts.append(len(captured))
        for action in ("stop", "start") * 4:
            vm_action(vm=vm, action=action)
            factories.run_queued_jobs()
    assert counts[0] == counts[1]


# --- one declaration, read by every surface -----------------------------------------------------


def test_every_declared_action_has_its_api_route(api, subscription, endpoint):
    for action in VM_ACTIONS.values():
        vm = make_vm(subscription, endpoint, f"vm-{action.name}")
        if action.name != "stop" and not action.allows(VMState.RUNNING):
            vm_action(vm=vm, action="stop")
            factories.run_queued_jobs()
        if action.name == "delete":  # deleting is the VM's own DELETE
            response = api.delete(reverse("tenant-api:vm-detail", args=[vm.pk]))
        else:
            response = api.post(reverse(f"tenant-api:vm-{action.name}", args=[vm.pk]))
        assert response.status_code == 202, action.name
        assert Job.objects.get(pk=response.json()["job"]["id"]).kind == action.job_kind
        assert states(vm) == [action.busy_state]
    with pytest.raises(NoReverseMatch):
        reverse("tenant-api:vm-delete", args=[vm.pk])


@pytest.fixture
def api(tenant_user):
    return api_client(tenant_user)


def _surfaces(client, api, vm):
    """The actions each surface shows (`page`, `bulk`) or allows now for the VM (the rest)."""
    detail = client.get(reverse("tenant:vm", args=[vm.pk])).content.decode()
    bar = re.search(r'<div class="action-bar" role="group" aria-label="Actions">.*?\n  </div>', detail, re.S).group(0)
    forms = re.findall(r'/actions/([a-z]+)/" class="inline">\s*<input[^>]*>\s*(<button[^>]*>)', bar)
    delete_link = f'href="{reverse("tenant:vm-delete", args=[vm.pk])}"' in bar
    listing = client.get(reverse("tenant:vms")).content.decode()
    return {
        "page": {name for name, _ in forms} | ({"delete"} if "Delete…" in bar else set()),
        "page_enabled": {name for name, button in forms if "disabled" not in button}
        | ({"delete"} if delete_link else set()),
        "bulk": set(re.findall(r'name="action" value="([a-z]+)"', listing)),
        "service": set(vm_allowed_actions(vm)),
        "api": set(api.get(reverse("tenant-api:vm-detail", args=[vm.pk])).json()["allowed_actions"]),
    }


def test_adding_or_removing_a_declared_action_changes_every_surface(
    tenant_client, api, subscription, endpoint, monkeypatch
):
    vm = make_vm(subscription, endpoint)  # running
    declared, allowed = {"start", "stop", "shutdown", "restart", "delete"}, {"stop", "shutdown", "restart", "delete"}
    before = _surfaces(tenant_client, api, vm)
    assert before["page"] == before["bulk"] == declared
    assert before["page_enabled"] == before["service"] == before["api"] == allowed

    monkeypatch.delitem(VM_ACTIONS, "restart")
    reboot = VMAction("reboot", "Reboot", "Rebooting", (VMState.RUNNING,), VMState.RESTARTING, "vm.restart", "running")
    monkeypatch.setitem(VM_ACTIONS, "reboot", reboot)
    after = _surfaces(tenant_client, api, vm)
    assert after["page"] == after["bulk"] == declared - {"restart"} | {"reboot"}
    assert after["page_enabled"] == after["service"] == after["api"] == allowed - {"restart"} | {"reboot"}

    # the removed action is refused everywhere; the added one works through the page
    assert tenant_client.post(reverse("tenant:vm-action", args=[vm.pk, "restart"])).status_code == 404
    assert tenant_client.post(reverse(BULK), {"action": "restart", "vm": [vm.pk]}).status_code == 404
    assert api.post(reverse("tenant-api:vm-restart", args=[vm.pk])).status_code == 400
    assert states(vm) == [VMState.RUNNING]
    tenant_client.post(reverse("tenant:vm-action", args=[vm.pk, "reboot"]))
    assert states(vm) == [VMState.RESTARTING]
