"""The end-to-end fixtures work: real processes serve both sites, and Chromium renders them."""

import urllib.error
import urllib.request

import pytest

from tests import factories

pytestmark = pytest.mark.e2e


def test_tenant_sign_in_page_renders_in_chromium(canopy_sites, browser_page):
    browser_page.goto(f"{canopy_sites.tenant_url}/login/")
    assert "Sign in" in browser_page.title() and "Canopy" in browser_page.title()
    assert browser_page.locator("input[type=password]").count() == 1


@pytest.mark.csp_violations_expected
def test_the_csp_refuses_an_injected_inline_script_and_the_fixture_sees_it(canopy_sites, browser_page):
    """What browser_page's CSP check relies on: Chromium refuses inline script here and says so."""
    browser_page.goto(f"{canopy_sites.tenant_url}/login/")
    browser_page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        " document.head.appendChild(s); }"
    )
    browser_page.wait_for_timeout(200)
    assert browser_page.evaluate("window.injected") is None
    assert any("script-src" in v or "default-src" in v for v in browser_page.csp_violations)


def test_a_tenant_created_by_the_test_signs_in_on_the_tenant_process(canopy_sites, browser_page):
    factories.UserFactory(email="e2e@example.test")
    browser_page.goto(f"{canopy_sites.tenant_url}/login/")
    browser_page.fill("input[type=email], input[name=username], input[name=email]", "e2e@example.test")
    browser_page.fill("input[type=password]", factories.PASSWORD)
    browser_page.click("button[type=submit]")
    browser_page.wait_for_load_state()
    assert "/login/" not in browser_page.url


def test_the_tenant_process_serves_no_staff_url(canopy_sites):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{canopy_sites.tenant_url}/fabric/", timeout=5)
    assert exc.value.code == 404
    with urllib.request.urlopen(f"{canopy_sites.staff_url}/login/", timeout=5) as response:
        assert response.status == 200
