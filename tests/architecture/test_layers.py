"""Dependencies point one way: portal plumbing <- apps (tenants, fabric, websites) <- sites.

The portal's rail, "+ New", overview pages and context processors come from the navigation registry
(portal/navigation.py), so no portal module imports a service app, except the few listed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[2] / "portal"
SERVICE_APPS = {"tenants", "fabric", "websites"}

# Each exception, with why it may import a service app.
ALLOWED = {
    # The tenant site's sign-up page creates a tenant account (tenants.services.account_create).
    "views/auth.py": {"tenants"},
    # The demo seeds every app's data: an endpoint, its clouds and a public plan.
    "management/commands/seed_demo.py": {"tenants", "fabric"},
}


def imported_apps(path: Path) -> set[str]:
    """The service apps a module imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & SERVICE_APPS
    return found


def portal_modules() -> dict[str, set[str]]:
    return {
        str(path.relative_to(PORTAL)): imported_apps(path)
        for path in sorted(PORTAL.rglob("*.py"))
        if "migrations" not in path.parts
    }


def test_the_portal_imports_no_service_app_beyond_its_listed_exceptions():
    offenders = {module: sorted(apps - ALLOWED.get(module, set())) for module, apps in portal_modules().items()}
    assert {module: apps for module, apps in offenders.items() if apps} == {}


def test_each_exception_is_still_needed():
    modules = portal_modules()
    assert {module: modules.get(module) for module in ALLOWED} == ALLOWED


def test_the_walk_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n\ndef f():\n    from fabric.models import VirtualMachine\n    import tenants.selectors\n"
    )
    assert imported_apps(module) == {"fabric", "tenants"}


TENANTS = PORTAL.parent / "tenants"


def test_tenants_imports_no_service_app():
    """Plans, subscriptions, quotas and the subscription lifecycle know services only through the
    plan-service registry (tenants.plan_services, whose PlanService carries the lifecycle hooks):
    adding a service (VM clouds, web sites, databases) touches no code here."""
    offenders = {
        str(path.relative_to(TENANTS)): sorted(apps)
        for path in sorted(TENANTS.rglob("*.py"))
        if "migrations" not in path.parts and (apps := imported_apps(path) - {"tenants"})
    }
    assert offenders == {}


def test_tenants_templates_name_no_service():
    """The plan and subscription pages render whatever the registry holds, never `vm_cloud` by name."""
    templates = PORTAL.parent / "templates"
    pages = [*templates.glob("staff/tenants/*.html"), *templates.glob("tenant/tenants/*.html")]
    assert pages
    assert [str(p.relative_to(templates)) for p in pages if "vm_cloud" in p.read_text()] == []
