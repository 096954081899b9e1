"""The provider's side of issue 7, clicked through in Chromium against the real processes.

An administrator creates a plan with a VM cloud service and an add-on and makes it public; a tenant
subscribes, buys the add-on and sees the quota bars grow, creates a VM and it runs; the administrator
suspends the subscription (the page follows the fan-out live until it is in sync) and the tenant sees
it read-only with the reason and its VM stopped; the administrator activates it and the VM runs
again; an operator reads the plan but can't open the plan editor.
"""

import re

import pytest
from playwright.sync_api import expect

from fabric.models import VirtualMachine, VMState
from portal.access import StaffRole
from tenants.models import Plan, Subscription
from tests import factories
from tests.e2e.conftest import watch_csp

pytestmark = pytest.mark.e2e

# Small, so the journey stays quick; long enough that the fan-out is seen in progress.
LATENCY = {"create_vm": 0, "stop_vm": 1, "start_vm": 1}
TIMEOUT = 30_000
PLAN = "Journey VMs"
ADDON = "+2 VMs, +2 vCPU"
REASON = "Invoice 42 unpaid"


def sign_in(page, url, email):
    page.goto(f"{url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login/"))


def quota(page, label):
    """One quota of the subscription page's Quotas panel (its figure, parts and bar)."""
    return page.locator("#quotas-head ~ ul .quota").filter(
        has=page.locator(".quota-label", has_text=re.compile(f"^{label}$"))
    )


def vm_state_badge(page):
    return page.locator("#vm-summary h1 .badge")


def new_page(browser):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(10_000)
    watch_csp(page)
    return page


def test_admin_sells_a_plan_tenant_buys_runs_is_suspended_and_activated(canopy_sites, browser, tmp_path):
    factories.make_endpoint(tmp_path, name="Simulator", settings={"latency": LATENCY})
    admin = factories.UserFactory(is_staff=True, email="admin@example.test")
    operator = factories.UserFactory(is_staff=True, staff_role=StaffRole.OPERATOR, email="operator@example.test")
    tenant = factories.UserFactory(email="ada@example.test")  # made by staff: vouched for

    # --- the administrator creates the plan, its VM cloud service and an add-on, and makes it public
    staff = new_page(browser)
    sign_in(staff, canopy_sites.staff_url, admin.email)
    staff.goto(f"{canopy_sites.staff_url}/plans/")
    staff.get_by_role("link", name="Create plan").click()
    staff.get_by_label("Name").fill(PLAN)
    staff.get_by_label("Description").fill("Two small VMs")
    staff.get_by_role("button", name="Create plan").click()
    expect(staff).to_have_url(re.compile(r"/plans/\d+/edit/$"))
    expect(staff.get_by_role("heading", name=f"Edit {PLAN}")).to_be_visible()

    staff.get_by_label("Cloud").select_option(label="Simulator / Stamp 01 / Gold")
    staff.locator("#id_vm_cloud-quota-vms").fill("2")
    staff.locator("#id_vm_cloud-quota-cores").fill("2")
    staff.get_by_role("button", name="Add virtual machines").click()
    expect(staff.get_by_text(f"Virtual machines of '{PLAN}' saved")).to_be_visible()
    plan = Plan.objects.get(name=PLAN)

    staff.goto(f"{canopy_sites.staff_url}/addons/")
    staff.get_by_role("link", name="Create add-on").click()
    staff.get_by_label("Name").fill(ADDON)
    staff.get_by_label("Offered with plans").select_option(label=PLAN)
    staff.get_by_label("Virtual machines: extra Virtual machines").fill("2")
    staff.get_by_label("Virtual machines: extra vCPU cores").fill("2")
    staff.get_by_role("button", name="Create add-on").click()
    expect(staff.locator("tr", has_text=ADDON)).to_contain_text(PLAN)

    # The plan's read-only page: the service with its cloud and quotas (unset: Unlimited), the add-on.
    staff.goto(f"{canopy_sites.staff_url}/plans/")
    staff.get_by_role("link", name=PLAN).click()
    expect(staff).to_have_url(re.compile(rf"/plans/{plan.pk}/$"))
    services = staff.locator("section", has=staff.locator("#services-head"))
    expect(services).to_contain_text("Runs in Simulator / Stamp 01 / Gold.")
    expect(services.locator(".quota", has_text="Memory")).to_contain_text("Unlimited")
    expect(services.locator(".quota", has_text="vCPU cores")).to_contain_text("2")
    expect(staff.locator("section", has=staff.locator("#addons-head"))).to_contain_text(ADDON)
    staff.get_by_role("button", name="Make public").click()
    expect(staff.get_by_text(f"Plan '{PLAN}' is now public.")).to_be_visible()
    expect(staff.locator(".page-head .badge-public")).to_have_text("Public")

    # --- the tenant subscribes, buys the add-on and sees the bars grow
    ten = new_page(browser)
    sign_in(ten, canopy_sites.tenant_url, tenant.email)
    ten.goto(f"{canopy_sites.tenant_url}/plans/")
    card = ten.locator(".plan-card", has=ten.get_by_role("heading", name=PLAN))
    expect(card).to_contain_text("Virtual machines")
    card.get_by_role("button", name="Subscribe").click()
    expect(ten.get_by_text(f"You are subscribed to '{PLAN}'")).to_be_visible()
    subscription = Subscription.objects.get(owner=tenant, plan=plan)
    ten.get_by_role("link", name=subscription.name, exact=True).click()
    vms, cores = quota(ten, "Virtual machines"), quota(ten, "vCPU cores")
    expect(vms.locator(".quota-figure")).to_have_text("0 of 2")
    expect(vms.locator("meter")).to_have_attribute("max", "2")
    expect(cores.locator(".quota-figure")).to_have_text("0 of 2")

    ten.get_by_role("button", name=f"Buy {ADDON}").click()
    expect(vms.locator(".quota-figure")).to_have_text("0 of 4")
    expect(vms.locator("meter")).to_have_attribute("max", "4")
    expect(vms.locator(".quota-parts")).to_have_text("Plan 2 + add-ons 2 = 4")
    expect(cores.locator(".quota-figure")).to_have_text("0 of 4")
    expect(ten.locator("tr", has_text=ADDON)).to_contain_text("1 of at most 1")

    # --- the tenant creates a VM and it runs
    ten.get_by_role("link", name="+ New VM").click()
    ten.get_by_label(re.compile(r"^Name")).fill("web01")
    ten.get_by_label("Template").select_option(label="Ubuntu Server 24.04 LTS")
    size = ten.get_by_label("Size (hardware profile)")
    size.select_option(value=size.locator("option", has_text=re.compile(r"^Small")).get_attribute("value"))
    ten.get_by_label("Administrator password").fill(factories.VM_PASSWORD)
    ten.get_by_label("Confirm password").fill(factories.VM_PASSWORD)
    ten.get_by_role("button", name="Create virtual machine").click()
    expect(ten).to_have_url(re.compile(r"/vms/[0-9a-f-]{36}/$"))
    expect(vm_state_badge(ten)).to_have_text("Running", timeout=TIMEOUT)
    vm_url = ten.url
    ten.goto(f"{canopy_sites.tenant_url}/subscriptions/{subscription.pk}/")
    expect(quota(ten, "Virtual machines").locator(".quota-figure")).to_have_text("1 of 4")

    # --- the administrator suspends it: the page follows the fan-out live until it is in sync
    staff.goto(f"{canopy_sites.staff_url}/subscriptions/")
    staff.get_by_label("Owner's email").fill(tenant.email)
    staff.get_by_role("button", name="Search").click()
    # The subscription is named after its plan: its link is the row's first.
    staff.locator("tbody tr", has_text=tenant.email).get_by_role("link", name=subscription.name).first.click()
    expect(staff).to_have_url(re.compile(rf"/subscriptions/{subscription.pk}/$"))
    staff.get_by_label("Reason").fill(REASON)
    staff.get_by_role("button", name="Suspend subscription").click()
    expect(staff.get_by_text(f"Suspended: {REASON}")).to_be_visible()
    expect(staff.locator(".page-head .badge-in_sync")).to_be_visible(timeout=TIMEOUT)
    assert VirtualMachine.objects.get(subscription=subscription).state == VMState.STOPPED

    # The tenant sees it read-only with the reason, and its VM stopped.
    ten.goto(f"{canopy_sites.tenant_url}/subscriptions/{subscription.pk}/")
    expect(ten.get_by_text(f"Suspended: {REASON}. Read-only until the provider activates it")).to_be_visible()
    expect(ten.get_by_role("link", name="+ New VM")).to_have_count(0)
    expect(ten.get_by_role("button", name=re.compile(r"^(Buy|Remove one) "))).to_have_count(0)
    ten.goto(vm_url)
    expect(ten.get_by_text(f"is suspended: {REASON}")).to_be_visible()
    expect(vm_state_badge(ten)).to_have_text("Stopped")
    expect(ten.get_by_role("button", name="Start", exact=True)).to_be_disabled()

    # --- the administrator activates it, and the VM runs again
    staff.get_by_role("button", name="Activate subscription").click()
    expect(staff.locator(".page-head .badge-in_sync")).to_be_visible(timeout=TIMEOUT)
    expect(staff.locator(".page-head .badge-active")).to_be_visible()
    ten.goto(vm_url)
    expect(vm_state_badge(ten)).to_have_text("Running", timeout=TIMEOUT)
    expect(ten.get_by_text(f"is suspended: {REASON}")).to_have_count(0)

    # --- an operator reads the plan but can't open the plan editor
    op = new_page(browser)
    sign_in(op, canopy_sites.staff_url, operator.email)
    op.goto(f"{canopy_sites.staff_url}/plans/")
    expect(op.get_by_role("link", name="Create plan")).to_have_count(0)
    op.get_by_role("link", name=PLAN).click()
    expect(op.get_by_role("heading", name=PLAN)).to_be_visible()
    expect(op.locator("section", has=op.locator("#services-head"))).to_contain_text("Simulator / Stamp 01 / Gold")
    expect(op.locator("tbody tr", has_text=tenant.email)).to_contain_text("Active")
    expect(op.get_by_role("link", name="Edit plan")).to_have_count(0)
    expect(op.get_by_role("button", name=re.compile(r"^Make |^Decommission"))).to_have_count(0)
    response = op.goto(f"{canopy_sites.staff_url}/plans/{plan.pk}/edit/")
    assert response is not None and response.status == 403
    expect(op.get_by_text("Only administrators may do this")).to_be_visible()

    for page in (staff, ten, op):
        assert page.csp_violations == [], "the page broke the Content-Security-Policy"
        page.context.close()
