"""A new tenant's first visit, clicked through in Chromium against the real processes.

Sign up, subscribe to the public plan, quick-create a VM and watch its job progress live to
Running (no page reload), be refused by the quota and by a bad name, stop, start and delete it —
and see the admin portal count the subscriber and the cloud's used capacity.
"""

import re

import pytest
from playwright.sync_api import expect

from fabric.models import VirtualMachine, VMState
from tests import factories
from tests.e2e.conftest import watch_csp

pytestmark = pytest.mark.e2e

# Long enough to see progress, short enough for CI.
LATENCY = {"create_vm": 3, "start_vm": 1, "stop_vm": 1, "delete_vm": 1}
STATE_TIMEOUT = 30_000


@pytest.fixture
def fabric(canopy_sites, tmp_path):
    endpoint = factories.make_endpoint(tmp_path, name="Simulator", settings={"latency": LATENCY})
    plan = factories.make_plan(endpoint, max_vms=1)
    staff = factories.UserFactory(is_staff=True, email="operator@example.test")
    return endpoint, plan, staff


def sign_up(page, url):
    page.goto(f"{url}/signup/")
    page.get_by_label("Full name").fill("Ada Tenant")
    page.get_by_label("Email").fill("ada@example.test")
    page.get_by_label(re.compile(r"^Password")).fill("Correct-Horse-42")
    page.get_by_label("Confirm password").fill("Correct-Horse-42")
    page.get_by_role("button", name="Sign up").click()


def fill_quick_create(page, name):
    page.get_by_role("link", name="+ New").first.click()
    page.get_by_label(re.compile(r"^Name")).fill(name)
    page.get_by_label("Template").select_option(label="Ubuntu Server 24.04 LTS")
    page.get_by_label("Size (hardware profile)").select_option(index=1)
    page.get_by_label("Administrator password").fill("Vm-Passw0rd!")
    page.get_by_label("Confirm password").fill("Vm-Passw0rd!")
    page.get_by_role("button", name="Create virtual machine").click()


def vm_state_badge(page):
    return page.locator("#vm-summary h1 .badge")


def test_tenant_signs_up_subscribes_and_runs_a_vm(canopy_sites, fabric, browser, browser_page):
    page = browser_page
    _endpoint, plan, staff = fabric

    sign_up(page, canopy_sites.tenant_url)
    expect(page).to_have_url(re.compile(r"/plans/$"))
    # Subscribing waits for the email address to be verified, through the link mailed at sign-up.
    expect(page.get_by_text("Verify your email address")).to_be_visible()
    page.goto(canopy_sites.link_in_last_mail())
    expect(page.get_by_text("ada@example.test is verified")).to_be_visible()
    page.get_by_role("button", name="Subscribe").first.click()
    expect(page.get_by_text(plan.name).first).to_be_visible()

    # An invalid name is refused on the form and creates nothing.
    fill_quick_create(page, "1-bad_name")
    expect(page.get_by_text("starting with a letter")).to_be_visible()
    assert not VirtualMachine.objects.exists()

    fill_quick_create(page, "web01")
    expect(page).to_have_url(re.compile(r"/vms/[0-9a-f-]{36}/$"))
    # Progress is shown while the job runs, and the page turns to Running by itself.
    page.evaluate("window.canopyNoReload = true")
    expect(page.locator(".job-status").first).to_be_visible()
    expect(vm_state_badge(page)).to_have_text("Creating")
    expect(vm_state_badge(page)).to_have_text("Running", timeout=STATE_TIMEOUT)
    assert page.evaluate("window.canopyNoReload") is True, "the page reloaded instead of updating in place"

    # The plan allows one VM: a second is refused with the quota, its limit and use.
    fill_quick_create(page, "web02")
    expect(
        page.get_by_text(re.compile(r"Quota exceeded for Virtual machines: the limit is 1, 1 in use"))
    ).to_be_visible()
    assert VirtualMachine.objects.count() == 1

    # The admin portal sees the subscriber and the cloud's used capacity.
    staff_page = browser.new_context().new_page()
    staff_csp_violations = watch_csp(staff_page)
    staff_page.goto(f"{canopy_sites.staff_url}/login/")
    staff_page.get_by_label("Email").fill(staff.email)
    staff_page.get_by_label("Password").fill(factories.PASSWORD)
    staff_page.get_by_role("button", name="Sign in").click()
    staff_page.goto(f"{canopy_sites.staff_url}/fabric/")
    gold_vms = staff_page.locator("tr", has_text="Gold").locator("[data-capacity=VMs] .capacity-figure").first
    expect(gold_vms).to_have_text(re.compile(r"^1 / "))
    staff_page.goto(f"{canopy_sites.staff_url}/plans/")
    expect(staff_page.locator("tr", has_text=plan.name).locator("td").nth(2)).to_have_text("1")
    assert staff_csp_violations == []
    staff_page.context.close()

    vm = VirtualMachine.objects.get()
    page.goto(f"{canopy_sites.tenant_url}/vms/{vm.pk}/")
    for action, busy, final in (("Stop", "Stopping", "Stopped"), ("Start", "Starting", "Running")):
        page.get_by_role("button", name=action, exact=True).click()
        expect(vm_state_badge(page)).to_have_text(busy)
        page.evaluate("window.canopyNoReload = true")
        expect(vm_state_badge(page)).to_have_text(final, timeout=STATE_TIMEOUT)
        assert page.evaluate("window.canopyNoReload") is True

    # The list's bulk bar: tick the VM, press Restart (a plain form post, no script needed).
    page.goto(f"{canopy_sites.tenant_url}/vms/")
    page.get_by_label("Select web01").check()
    page.get_by_role("group", name="Actions on the selected virtual machines").get_by_role(
        "button", name="Restart"
    ).click()
    expect(page.get_by_text("Restarting 'web01'")).to_be_visible()
    page.goto(f"{canopy_sites.tenant_url}/vms/{vm.pk}/")
    expect(vm_state_badge(page)).to_have_text("Running", timeout=STATE_TIMEOUT)

    page.get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete web01").click()
    expect(page.get_by_text("has been deleted")).to_be_visible(timeout=STATE_TIMEOUT)
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.DELETED
