"""Staff suspend and activate a subscription in Chromium against the real processes: the page
follows the fan-out live (no reload) until the subscription is in sync, and the tenant sees it
read-only with the reason meanwhile."""

import pytest
from playwright.sync_api import expect

from fabric.models import VirtualMachine, VMState
from tenants.services import subscription_create
from tests import factories
from tests.e2e.conftest import watch_csp
from tests.integration.processes import wait_for

pytestmark = pytest.mark.e2e

LATENCY = {"create_vm": 0, "stop_vm": 1, "start_vm": 1}
TIMEOUT = 30_000


def sign_in(page, url, email):
    page.goto(f"{url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_staff_suspend_and_activate_while_the_tenant_watches(canopy_sites, browser, tmp_path):
    endpoint = factories.make_endpoint(tmp_path, name="Simulator", settings={"latency": LATENCY})
    plan = factories.make_plan(endpoint)
    staff = factories.UserFactory(is_staff=True, email="admin@example.test")
    tenant = factories.UserFactory(email="ada@example.test")
    subscription = subscription_create(owner=tenant, plan=plan, name="Ada web")
    for name in ("web01", "web02"):
        factories.make_vm_job(subscription, endpoint, name)
    wait_for(lambda: VirtualMachine.objects.filter(state=VMState.RUNNING).count() == 2, timeout=30, what="VMs up")

    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    violations = watch_csp(page)
    sign_in(page, canopy_sites.staff_url, staff.email)
    page.goto(f"{canopy_sites.staff_url}/subscriptions/")
    page.get_by_label("Owner's email").fill(tenant.email)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=subscription.name).click()

    page.get_by_label("Reason").fill("Invoice 42 unpaid")
    page.get_by_role("button", name="Suspend subscription").click()
    expect(page.get_by_text("Suspended: Invoice 42 unpaid")).to_be_visible()
    page.screenshot(path=str(tmp_path / "suspending.png"), full_page=True)
    # The fan-out's progress arrives by polling, then the summary re-renders in sync.
    expect(page.locator(".page-head .badge-in_sync")).to_be_visible(timeout=TIMEOUT)
    assert set(VirtualMachine.objects.values_list("state", flat=True)) == {VMState.STOPPED}

    tenant_page = browser.new_context().new_page()
    sign_in(tenant_page, canopy_sites.tenant_url, tenant.email)
    tenant_page.goto(f"{canopy_sites.tenant_url}/vms/")
    expect(tenant_page.get_by_text("is suspended: Invoice 42 unpaid")).to_be_visible()
    tenant_page.get_by_role("link", name="web01").click()
    expect(tenant_page.get_by_role("button", name="Start", exact=True)).to_be_disabled()
    tenant_page.context.close()

    page.get_by_role("button", name="Activate subscription").click()
    expect(page.locator(".page-head .badge-in_sync")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator(".page-head .badge-active")).to_be_visible()
    page.screenshot(path=str(tmp_path / "activated.png"), full_page=True)
    assert set(VirtualMachine.objects.values_list("state", flat=True)) == {VMState.RUNNING}
    assert violations == []
    page.context.close()
