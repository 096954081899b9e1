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


# The subscription lifecycle reaches services only through their registered hooks; the plan pages'
# and plan API's remaining imports of fabric (views, serializers) go with the plan-service registry.
LIFECYCLE_MODULES = ["lifecycle.py", "jobs.py", "services.py", "selectors.py", "quotas.py", "filters.py"]


def test_the_subscription_lifecycle_in_tenants_imports_no_service():
    tenants = PORTAL.parent / "tenants"
    offenders = {name: imported_apps(tenants / name) - {"tenants"} for name in LIFECYCLE_MODULES}
    assert {name: apps for name, apps in offenders.items() if apps} == {}
