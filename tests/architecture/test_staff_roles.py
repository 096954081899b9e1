"""Staff roles, generated from the admin portal's URLconf (pages and API, whatever exists when this runs).

- Every route declares the capability it needs (portal.access): a page with
  `@capability_required(Capability.X)`, a viewset action in its `capabilities`, another API view with
  `capability = ...`, or is public (sign-in). A new route that declares nothing fails here, named.
- An operator gets 403 on every `administer` route, with every HTTP method, pages and API alike, and
  nothing changes in the database (bodies carry plausible input, so a missing check would act).
- An operator is not refused what it may do: opening the `view` routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, include, path, reverse

from portal.access import Capability, StaffRole, route_capabilities
from portal.models import AuditEntry
from tenants.services import addon_save, signup_invitation_create, token_create
from tenants.views.staff import SUBSCRIPTION_PAGE_ACTIONS
from tests import factories

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class StaffRoute:
    name: str
    kwargs: tuple[str, ...]
    view: str  # dotted name, for messages
    declared: dict[str, Capability | None] | None  # None: public
    actions: dict[str, str] | None = None  # a viewset's action per method

    def __str__(self) -> str:
        return self.name


def _dotted(callback: Any) -> str:
    target = getattr(callback, "cls", None) or callback
    return f"{target.__module__}.{target.__qualname__}"


def staff_routes(urlconf: str = "portal.urls.staff") -> list[StaffRoute]:
    routes: list[StaffRoute] = []

    def walk(patterns: list, namespace: tuple[str, ...]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, namespace + ((pattern.namespace,) if pattern.namespace else ()))
                continue
            assert isinstance(pattern, URLPattern)
            assert pattern.name, f"Route {pattern.pattern} of the staff URLconf has no name; name it."
            name = ":".join((*namespace, pattern.name))
            kwargs = tuple(pattern.pattern.regex.groupindex)
            callback = pattern.callback
            declared = route_capabilities(callback)
            routes.append(StaffRoute(name, kwargs, _dotted(callback), declared, getattr(callback, "actions", None)))

    walk(get_resolver(urlconf).url_patterns, ())
    return routes


def undeclared(routes: list[StaffRoute]) -> list[str]:
    """What each route that declares nothing should do, in words the failure prints."""
    problems = []
    for route in routes:
        if route.declared is None:
            continue
        missing = sorted(method.upper() for method, capability in route.declared.items() if capability is None)
        if not missing:
            continue
        if route.actions is not None:
            names = sorted({route.actions[m.lower()] for m in missing})
            problems.append(
                f"{route} ({route.view}, {', '.join(missing)}): add {', '.join(repr(n) for n in names)} to the "
                "viewset's `capabilities = {action: Capability.VIEW | OPERATE | ADMINISTER}`"
            )
        elif route.view.rsplit(".", 1)[-1][:1].isupper():
            problems.append(
                f"{route} ({route.view}): set `capability = Capability.VIEW | OPERATE | ADMINISTER` on the view"
            )
        else:
            problems.append(
                f"{route} ({route.view}): decorate it with @capability_required(Capability.VIEW | OPERATE | "
                "ADMINISTER) from portal.access (or @public for a route open without signing in)"
            )
    return problems


STAFF_ROUTES = staff_routes()


def test_the_walker_sees_the_routes_that_matter():
    names = {r.name for r in STAFF_ROUTES}
    assert {
        "staff:plan",
        "staff:plan-edit",
        "staff:plan-create",
        "staff:accounts",
        "staff:staff-accounts",
        "staff:endpoint-create",
        "staff-api:plan-list",
        "staff-api:staff-account-role",
        "staff-api:account-lock",
        "staff-api:job-cancel",
        "login",
    } <= names


def test_every_staff_route_declares_its_capability():
    problems = undeclared(STAFF_ROUTES)
    assert not problems, "Staff routes that declare no capability:\n" + "\n".join(problems)


# --- an operator and the administer routes ---------------------------------------------------------

# The object a route's id kwargs name, by the longest prefix of the route's own name.
ROUTE_OBJECTS = {
    "staff-account": "staff_account",
    "account": "account",
    "plan": "plan",
    "endpoint": "endpoint",
    "cloud": "cloud",
    "job": "job",
    "token": "token",
    "subscription": "subscription",
    "invitation": "invitation",
    "audit": "audit",
    "addon": "addon",
}
ID_KWARGS = {"pk", "id"}
# Kwargs that aren't object ids: every value is tried.
VALUE_KWARGS = {"action": list(SUBSCRIPTION_PAGE_ACTIONS), "service": ["vm_cloud"]}


def object_for(route: StaffRoute, kwarg: str) -> str:
    word = route.name.rsplit(":", 1)[-1]
    if kwarg in ID_KWARGS:
        for prefix in sorted(ROUTE_OBJECTS, key=len, reverse=True):
            if word.startswith(prefix):
                return ROUTE_OBJECTS[prefix]
    raise AssertionError(
        f"Route '{route}' takes '{kwarg}', which test_staff_roles can't map to an object: add it to ROUTE_OBJECTS."
    )


def urls_of(route: StaffRoute, objects: dict[str, str]) -> list[str]:
    combos: list[dict[str, str]] = [{}]
    for kwarg in route.kwargs:
        values = VALUE_KWARGS.get(kwarg) or [objects[object_for(route, kwarg)]]
        combos = [{**c, kwarg: v} for c in combos for v in values]
    return [reverse(route.name, kwargs=c) for c in combos]


SNAPSHOT_APPS = ("tenants", "fabric", "portal", "otp_totp")


def snapshot() -> dict[str, list]:
    """Every row of the apps' tables (and the sign-in lockouts): what an operator must not change."""
    rows = {
        model._meta.label: sorted(map(repr, model._default_manager.values()))
        for label in SNAPSHOT_APPS
        for model in apps.get_app_config(label).get_models()
    }
    rows["axes.AccessAttempt"] = sorted(map(repr, AccessAttempt.objects.values("username", "ip_address")))
    return rows


@pytest.fixture
def operator(db):
    return factories.UserFactory(is_staff=True, staff_role=StaffRole.OPERATOR, email="operator@example.test")


@pytest.fixture
def operator_client(staff_site, operator) -> Client:
    client = Client()
    client.force_login(operator, backend="portal.auth.SiteBackend")
    return client


@pytest.fixture
def staff_objects(subscription, endpoint, staff_user, operator) -> dict[str, str]:
    """One of everything a staff route can name, and a locked-out sign-in a release would clear."""
    _vm, job = factories.make_vm_job(subscription, endpoint, "op-vm")
    factories.run_queued_jobs()
    token, _ = token_create(user=operator, name="mine", scope="write")
    invitation, _, _ = signup_invitation_create(by=staff_user, email="invited@example.test", link=lambda code: code)
    addon = addon_save(name="Pack", plans=[subscription.plan], quotas={"vm_cloud": {"cores": 4}})
    AccessAttempt.objects.create(
        username=subscription.owner.email,
        ip_address="192.0.2.7",
        user_agent="test",
        get_data="",
        post_data="",
        http_accept="",
        path_info="/login/",
        failures_since_start=settings.AXES_FAILURE_LIMIT,
    )
    return {
        "plan": str(subscription.plan.pk),
        "endpoint": str(endpoint.pk),
        "cloud": str(subscription.plan.vm_cloud_service.cloud_id),
        "job": str(job.pk),
        "token": str(token.pk),
        "subscription": str(subscription.pk),
        "account": str(subscription.owner.pk),
        "staff_account": str(staff_user.pk),
        "invitation": str(invitation.pk),
        "audit": str(AuditEntry.objects.filter(subscription=subscription).values_list("pk", flat=True).first()),
        "addon": str(addon.pk),
    }


def body_for(objects: dict[str, str]) -> dict[str, Any]:
    """Input a missing check would act on: a name, a state, a role, an account, a lockout..."""
    return {
        "name": "Changed by an operator",
        "state": "decommissioned",
        "role": "operator",
        "email": "new-staff@example.test",
        "full_name": "New",
        "password": "A-Long-Passw0rd!",
        "max_subscriptions_per_account": 3,
        "driver": "simulator",
        "settings": {},
        "cloud": objects["cloud"],
        "max_vms": 1,
        "username": factories.UserFactory._meta.model.objects.get(pk=objects["account"]).email,
        "ip_address": "192.0.2.7",
    }


def operator_reaches(client: Client, route: StaffRoute, objects: dict[str, str]) -> list[str]:
    """Every administer method of the route, by an operator: answers other than 403 are problems."""
    assert route.declared is not None
    body = body_for(objects)
    problems = []
    for url, (method, capability) in ((u, d) for u in urls_of(route, objects) for d in route.declared.items()):
        if capability != Capability.ADMINISTER:
            continue
        send = getattr(client, method)
        api = url.startswith("/api/")
        answers = [send(url, body, content_type="application/json") if api or method != "get" else send(url)]
        if method == "post" and not api:
            answers.append(client.post(url, {k: v for k, v in body.items() if not isinstance(v, dict)}))
        problems += [
            f"{method.upper()} {url} answered {a.status_code} to an operator" for a in answers if a.status_code != 403
        ]
    return problems


ADMINISTER_ROUTES = [r for r in STAFF_ROUTES if r.declared and Capability.ADMINISTER in r.declared.values()]


def test_the_administer_routes_include_the_plan_editor_and_account_changes():
    names = {r.name for r in ADMINISTER_ROUTES}
    assert {"staff:plan-edit", "staff:plan-create", "staff:account-lock", "staff:staff-accounts"} <= names
    assert "staff:plan" not in names  # every staff role reads a plan
    assert {"staff-api:plan-list", "staff-api:staff-account-list", "staff-api:account-detail"} <= names


@pytest.mark.parametrize("route", ADMINISTER_ROUTES, ids=str)
def test_an_operator_is_refused_every_administer_route(route, staff_objects, operator_client):
    before = snapshot()
    problems = operator_reaches(operator_client, route, staff_objects)
    assert not problems, "\n".join(problems)
    assert snapshot() == before, f"{route}: an operator changed something"


VIEW_ROUTES = [r for r in STAFF_ROUTES if r.declared and r.declared.get("get") == Capability.VIEW]


@pytest.mark.parametrize("route", VIEW_ROUTES, ids=str)
def test_an_operator_opens_every_view_route(route, staff_objects, operator_client):
    for url in urls_of(route, staff_objects):
        response = operator_client.get(url)
        assert response.status_code < 400 or response.status_code == 405, (
            f"GET {url} answered {response.status_code} to an operator"
        )
        if response.status_code == 302:
            assert not response["Location"].startswith(reverse("login"))


# --- the checks themselves can fail --------------------------------------------------------------


def _undeclared_page(request, pk):
    return HttpResponse("plan editor")


def _forged(request, pk):
    """Declares administer without enforcing it: the operator test must catch it."""
    return HttpResponse("changed")


_forged.capability = Capability.ADMINISTER  # type: ignore[attr-defined]  # declared, not enforced

urlpatterns = [
    path("", include("portal.urls.staff")),
    path("x/plans/<int:pk>/edit/", _undeclared_page, name="plan-undeclared"),
    path("x/plans/<int:pk>/forged/", _forged, name="plan-forged"),
]


def test_an_undeclared_route_is_named():
    problems = undeclared(staff_routes(__name__))
    assert len(problems) == 1 and problems[0].startswith("plan-undeclared (tests.architecture.test_staff_roles.")
    assert "@capability_required" in problems[0]


def test_an_unmapped_kwarg_fails_loudly():
    with pytest.raises(AssertionError, match="can't map"):
        object_for(StaffRoute("staff:widget", ("widget_id",), "x", {}), "widget_id")


def test_an_administer_route_that_does_not_enforce_is_caught(settings, staff_objects, operator_client):
    settings.ROOT_URLCONF = __name__
    forged = next(r for r in staff_routes(__name__) if r.name == "plan-forged")
    problems = operator_reaches(operator_client, forged, staff_objects)
    assert any("GET /x/plans/" in p and "answered 200" in p for p in problems)


def test_an_undeclared_viewset_action_is_named():
    from rest_framework import viewsets
    from rest_framework.decorators import action
    from rest_framework.response import Response
    from rest_framework.routers import SimpleRouter

    class WidgetViewSet(viewsets.ViewSet):
        capabilities = {"list": Capability.VIEW}

        def list(self, request):
            return Response([])

        @action(detail=True, methods=["post"])
        def melt(self, request, pk=None):
            return Response({})

    router = SimpleRouter()
    router.register("widgets", WidgetViewSet, basename="widget")
    routes = [
        StaffRoute(p.name, (), _dotted(p.callback), route_capabilities(p.callback), p.callback.actions)
        for p in router.urls
    ]
    problems = undeclared(routes)
    assert len(problems) == 1 and problems[0].startswith("widget-melt (")
    assert "WidgetViewSet, POST): add 'melt' to the viewset's `capabilities" in problems[0]


def test_an_operator_reads_the_add_ons_but_is_offered_no_change(operator_client, subscription):
    addon = addon_save(name="Pack", plans=[subscription.plan], quotas={"vm_cloud": {"cores": 4}})
    body = operator_client.get(reverse("staff:addons")).content.decode()
    assert "Pack" in body and "+4 vCPU cores" in body
    assert reverse("staff:addon-create") not in body and reverse("staff:addon-state", args=[addon.pk]) not in body
    assert reverse("staff:addon", args=[addon.pk]) not in body
    assert operator_client.get(reverse("staff:addon", args=[addon.pk])).status_code == 403
