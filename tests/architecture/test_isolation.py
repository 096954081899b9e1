"""Tenant isolation, generated from the tenant site's URL patterns.

Every route that takes an object id (pages and API, whatever exists when this runs) is requested by
tenant A with an object of tenant B substituted (B's VM, subscription, job; a private plan), with
each HTTP method. Each must answer 404 (or 405 for a method the route doesn't have), and nothing of
B's may change. A new route whose kwargs aren't mapped below fails loudly, so it gets mapped.

Every route, with or without ids, is also requested by tenant A with B's ids in the query string
(list filters such as `?subscription=`) and in a request body (e.g. creating a VM in B's
subscription): nothing of B's may show or change. And anonymous users reach nothing but the
sign-in, sign-up and password-reset pages (and the signed links mailed to an account).

The co-administrator role: tenant C, a co-administrator of A's subscription, gets on every route
and method what the owner A gets for A's objects (answers compared request by request, each rolled
back), except the owner-only routes (OWNER_ONLY: 403) and A's personal rows (API tokens: 404); C
still gets 404 with no side effect for B's objects; and once removed, C gets 404 for A's objects
on the very next request.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, include, path, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from fabric.lifecycle import VM_ACTIONS
from fabric.models import VirtualMachine
from portal.models import AuditEntry, Job
from tenants.models import APIToken, Plan, Subscription, SubscriptionAddOn, SubscriptionCoAdmin, User
from tenants.services import addon_save, coadmin_add, coadmin_remove, subscription_addon_buy, token_create
from tenants.views.staff import SUBSCRIPTION_PAGE_ACTIONS
from tests import factories

# The resource an id kwarg names, by kwarg name ...
OBJECT_KWARGS = {
    "vm_id": "vm",
    "vm_pk": "vm",
    "subscription_id": "subscription",
    "subscription_pk": "subscription",
    "job_id": "job",
    "job_pk": "job",
    "plan_id": "plan",
    "plan_pk": "plan",
    "coadmin_pk": "coadmin",
    "addon_id": "addon",
    "addon_pk": "addon",
}
# ... or, for a bare `pk`/`id`, by the route name's first word (`vm-action`, `subscription-quotas`).
ID_KWARGS = {"pk", "id", "uuid"}
ROUTE_RESOURCES = {
    "vm": "vm",
    "vms": "vm",
    "subscription": "subscription",
    "job": "job",
    "plan": "plan",
    "token": "token",
    "audit": "audit",
    "addon": "addon",
}
# Kwargs that aren't object ids: every value is tried. The signed links mailed to an account
# (password reset, email verification) are tried with B's account id and a forged token.
VALUE_KWARGS = {"action": [*VM_ACTIONS, *SUBSCRIPTION_PAGE_ACTIONS], "token": ["forged-token"], "uidb64": ["Mg"]}
# Routes reached through a signed link rather than an object id: with a forged token they answer a
# page saying the link doesn't work (not a 404), and change nothing (checked below).
SIGNED_LINK_ROUTES = {"password-reset-confirm", "verify-email"}
# What only a subscription's owner may do: a co-administrator gets 403. Buying an add-on through the
# API shares its route with the list a co-administrator may read: there the service answers 403
# (tests/api).
OWNER_ONLY = {
    "tenant:subscription-cancel",
    "tenant-api:subscription-cancel",
    "tenant:subscription-coadmins",
    "tenant:subscription-coadmin-remove",
    "tenant-api:subscription-coadmins",
    "tenant-api:subscription-coadmin-remove",
    "tenant:subscription-addon-buy",
    "tenant:subscription-addon-remove",
    "tenant-api:subscription-addon-remove",
}
METHODS = ("get", "post", "put", "patch", "delete")
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass(frozen=True)
class Route:
    name: str
    kwargs: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


def object_routes(urlconf: str | list, *, with_kwargs_only: bool = True) -> list[Route]:
    """Every named route of the URLconf that takes kwargs (or every route); unnamed ones can't be
    reversed, so fail."""
    routes: list[Route] = []

    def walk(patterns: list, namespace: tuple[str, ...]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, namespace + ((pattern.namespace,) if pattern.namespace else ()))
                continue
            assert isinstance(pattern, URLPattern)
            kwargs = tuple(pattern.pattern.regex.groupindex)
            if not kwargs and with_kwargs_only:
                continue
            assert pattern.name, f"Route {pattern.pattern} takes {kwargs} but has no name; name it."
            routes.append(Route(":".join((*namespace, pattern.name)), kwargs))

    walk(get_resolver(urlconf).url_patterns, ())
    return routes


def resource_of(route: Route, kwarg: str) -> str:
    if kwarg in OBJECT_KWARGS:
        return OBJECT_KWARGS[kwarg]
    if kwarg in ID_KWARGS:
        word = route.name.rsplit(":", 1)[-1].split("-")[0]
        if word in ROUTE_RESOURCES:
            return ROUTE_RESOURCES[word]
    raise AssertionError(
        f"Route '{route}' takes '{kwarg}', which test_isolation can't map to one of tenant B's objects: "
        "add it to OBJECT_KWARGS, ROUTE_RESOURCES or VALUE_KWARGS."
    )


def urls_for(route: Route, objects: dict[str, str]) -> list[str]:
    """The route's URLs with B's objects substituted (one per value of non-id kwargs)."""
    combos: list[dict[str, str]] = [{}]
    for kwarg in route.kwargs:
        values = VALUE_KWARGS.get(kwarg) or [objects[resource_of(route, kwarg)]]
        combos = [{**c, kwarg: v} for c in combos for v in values]
    return [reverse(route.name, kwargs=c) for c in combos]


def snapshot() -> dict:
    """What must not change when tenant A pokes at tenant B's objects."""
    return {
        "vms": list(VirtualMachine.objects.order_by("pk").values_list("pk", "state", "name", "updated_at")),
        "subscriptions": list(Subscription.objects.order_by("pk").values_list("pk", "state", "owner_id", "name")),
        "jobs": list(Job.objects.order_by("pk").values_list("pk", "state")),
        "plans": list(Plan.objects.order_by("pk").values_list("pk", "state")),
        "tokens": list(APIToken.objects.order_by("pk").values_list("pk", "revoked_at", "last_used_at")),
        "coadmins": list(SubscriptionCoAdmin.objects.order_by("pk").values_list("pk", "subscription_id", "user_id")),
        "accounts": list(User.objects.order_by("pk").values_list("pk", "password", "email_verified_at", "is_active")),
        "addons": list(SubscriptionAddOn.objects.order_by("pk").values_list("pk", "subscription_id", "quantity")),
    }


def probe(client: Client, url: str, missing_url: str) -> list[str]:
    """Request the URL with every method; answers other than 404/405 are leaks. htmx partials may
    answer a gone object with an empty 200 (so a row disappears): then the answer must be the same as
    for an id that never existed."""
    problems, statuses = [], []
    for method in METHODS:
        response = getattr(client, method)(url, content_type="application/json") if method != "get" else client.get(url)
        statuses.append(response.status_code)
        if response.status_code not in (404, 405):
            problems.append(f"{method.upper()} {url} answered {response.status_code}")
    htmx = client.get(url, headers={"HX-Request": "true"})
    if htmx.status_code not in (404, 405):
        missing = client.get(missing_url, headers={"HX-Request": "true"})
        if (htmx.status_code, htmx.content) != (missing.status_code, missing.content):
            problems.append(f"GET {url} (htmx) answered {htmx.status_code}, unlike for an id that doesn't exist")
    if 404 not in statuses:
        problems.append(f"{url} never answered 404 ({statuses})")
    return problems


def missing_objects() -> dict[str, str]:
    """Ids of the same kinds that exist nowhere."""
    return {
        "vm": str(uuid.uuid4()),
        "subscription": str(uuid.uuid4()),
        "job": str(uuid.uuid4()),
        "plan": "987654321",
        "token": str(uuid.uuid4()),
        "coadmin": str(uuid.uuid4()),
        "audit": "987654321",
        "addon": "987654322",
    }


def leaks(client: Client, route: Route, objects: dict[str, str]) -> list[str]:
    pairs = zip(urls_for(route, objects), urls_for(route, missing_objects()), strict=True)
    return [problem for url, missing_url in pairs for problem in probe(client, url, missing_url)]


@pytest.fixture
def tenant_b_objects(other_subscription, endpoint) -> dict[str, str]:
    """Tenant B's running VM, its subscription, a job, an API token, a co-administrator, an audit
    entry of its subscription and an add-on it holds (offered only with B's own plan); and a plan no
    tenant can see."""
    vm, job = factories.make_vm_job(other_subscription, endpoint, "b-vm")
    factories.run_queued_jobs()
    private = factories.make_plan(endpoint, public=False)
    token, _ = token_create(user=other_subscription.owner, name="b-token", scope="write")
    b_helper = factories.UserFactory(email="b-coadmin@example.test")
    b_coadmin = coadmin_add(subscription=other_subscription, by=other_subscription.owner, email=b_helper.email)
    b_plan = factories.make_plan(endpoint)
    b_sub = factories.make_subscription(other_subscription.owner, b_plan)
    addon = addon_save(name="B pack", plans=[b_plan], quotas={"vm_cloud": {"cores": 2}})
    subscription_addon_buy(subscription=b_sub, addon=addon, user=b_sub.owner)
    return {
        "addon": str(addon.pk),
        "vm": str(vm.pk),
        "subscription": str(other_subscription.pk),
        "job": str(job.pk),
        "plan": str(private.pk),
        "token": str(token.pk),
        "coadmin": str(b_coadmin.pk),
        "audit": str(AuditEntry.objects.get(action="vm.create", subscription=other_subscription).pk),
    }


TENANT_ROUTES = [r for r in object_routes("portal.urls.tenant") if r.name not in SIGNED_LINK_ROUTES]


def test_the_walker_sees_the_routes_that_matter():
    """Guard against a walker that silently finds nothing."""
    names = {r.name for r in TENANT_ROUTES}
    assert {
        "tenant-api:vm-detail",
        "tenant-api:vm-stop",
        "tenant-api:subscription-detail",
        "tenant-api:job-detail",
        "tenant:job",
        "tenant:token-revoke",
        "tenant:audit-entry",
        "tenant-api:audit-entry-detail",
    } <= names


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_tenant_a_cannot_reach_tenant_b_objects(route, tenant_b_objects, tenant_client, subscription):
    before = snapshot()
    problems = leaks(tenant_client, route, tenant_b_objects)
    assert not problems, "\n".join(problems)
    assert snapshot() == before, f"{route}: tenant A changed tenant B's data"


@pytest.mark.parametrize("route", ["job-statuses", "tenant:vm-statuses"])
def test_the_batched_polls_leave_out_tenant_b_jobs(route, tenant_b_objects, tenant_client, subscription, endpoint):
    """The polls take job ids in the query string, which the walker above doesn't substitute: B's job
    is simply absent, as an id that doesn't exist would be."""
    mine = factories.make_vm(subscription, endpoint, "a-vm", run=False)
    my_job = Job.objects.get(target_id=str(mine.pk))
    b_job = Job.objects.get(pk=tenant_b_objects["job"])
    Job.objects.filter(pk=b_job.pk).update(state="running", percent=50)  # as if it still ran
    url = f"{reverse(route)}?ids={b_job.pk}.x,{my_job.pk}.x"
    body = tenant_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert f"job-{my_job.pk}" in body
    assert str(b_job.pk) not in body and tenant_b_objects["vm"] not in body and "b-vm" not in body
    alone = tenant_client.get(f"{reverse(route)}?ids={b_job.pk}.x", headers={"HX-Request": "true"})
    assert (alone.status_code, alone.content) == (286, b"")


ALL_TENANT_ROUTES = object_routes("portal.urls.tenant", with_kwargs_only=False)
PUBLIC_ROUTES = {
    "login",
    "signup",
    "logout",
    "password-reset",
    "password-reset-sent",
    "password-reset-complete",
    *SIGNED_LINK_ROUTES,
}


def b_fingerprints(objects: dict[str, str]) -> list[str]:
    """What would show that a response carries tenant B's data (not the ids A sent, which a page
    may echo back in its links): B's VM's name and fabric id."""
    return ["b-vm", VirtualMachine.objects.get(pk=objects["vm"]).fabric_id]


@pytest.mark.parametrize("route", ALL_TENANT_ROUTES, ids=str)
def test_b_ids_in_filters_and_bodies_show_and_change_nothing_of_b(route, tenant_b_objects, tenant_client, subscription):
    objects = tenant_b_objects
    ids = {
        "subscription": objects["subscription"],
        "vm": objects["vm"],
        "job": objects["job"],
        "plan": objects["plan"],
        "addon": objects["addon"],
    }
    body = {**ids, "name": "a-vm", "admin_password": factories.VM_PASSWORD, "ids": objects["job"]}
    before = snapshot()
    marks = b_fingerprints(objects)
    problems = []
    for url in urls_for(route, objects):
        query = "&".join(f"{key}={value}" for key, value in ids.items())
        response = tenant_client.get(f"{url}?{query}")
        text = response.content.decode(errors="replace")
        problems += [f"GET {url}?{query} shows {mark}" for mark in marks if mark in text]
        for send in (tenant_client.post, tenant_client.put, tenant_client.patch):
            answer = send(url, body, content_type="application/json")
            text = answer.content.decode(errors="replace")
            problems += [f"{send.__name__.upper()} {url} shows {mark}" for mark in marks if mark in text]
        tenant_client.post(url, body)  # a form post too
    assert not problems, "\n".join(problems)
    after = snapshot()
    b_vms = lambda snap: [row for row in snap["vms"] if str(row[0]) == objects["vm"]]  # noqa: E731
    assert b_vms(after) == b_vms(before) and after["subscriptions"] == before["subscriptions"]
    assert VirtualMachine.objects.filter(subscription_id=objects["subscription"]).count() == 1
    assert after["plans"] == before["plans"]
    assert after["addons"] == before["addons"]


@pytest.mark.parametrize("route", ALL_TENANT_ROUTES, ids=str)
def test_anonymous_users_reach_nothing_but_sign_in(route, tenant_b_objects, client):
    if route.name in PUBLIC_ROUTES:
        return
    before = snapshot()
    for url in urls_for(route, tenant_b_objects):
        for method in METHODS:
            response = (
                getattr(client, method)(url, content_type="application/json") if method != "get" else client.get(url)
            )
            redirected_to_sign_in = response.status_code == 302 and response["Location"].startswith(reverse("login"))
            assert redirected_to_sign_in or response.status_code in (401, 403, 404, 405), (
                f"{method.upper()} {url} answered {response.status_code} to an anonymous user"
            )
    assert snapshot() == before


@pytest.mark.parametrize("route", sorted(SIGNED_LINK_ROUTES))
def test_a_forged_signed_link_for_b_changes_nothing(route, tenant_b_objects, tenant_client, client, other_tenant):
    """B's account id with a forged token: a page saying the link doesn't work, for A and anonymous."""
    User.objects.filter(pk=other_tenant.pk).update(email_verified_at=None)
    before = snapshot()
    uid = urlsafe_base64_encode(force_bytes(other_tenant.pk))
    kwargs = {"uidb64": uid, "token": "set-password"} if route == "password-reset-confirm" else {"token": "forged"}
    for who in (tenant_client, client):
        for url in (reverse(route, kwargs=kwargs), reverse(route, kwargs={**kwargs, "token": "x-y-z"})):
            body = {"new_password1": "Hijacked-Pass-9", "new_password2": "Hijacked-Pass-9"}
            for answer in (who.get(url), who.post(url, body)):
                assert answer.status_code in (200, 400, 405), f"{url}: {answer.status_code}"
                assert "doesn" in answer.content.decode() or answer.status_code == 405
    assert snapshot() == before


# --- the co-administrator role ------------------------------------------------------------------


@pytest.fixture
def a_objects(subscription, tenant_user, coadmin, endpoint) -> dict[str, str]:
    """Tenant A's running VM in the subscription C co-administers, its job, A's API token, a second
    co-administrator E of that subscription, an audit entry of it; and a plan no tenant can see."""
    vm, job = factories.make_vm_job(subscription, endpoint, "a-vm")
    factories.run_queued_jobs()
    private = factories.make_plan(endpoint, public=False)
    token, _ = token_create(user=tenant_user, name="a-token", scope="write")
    factories.UserFactory(email="second-coadmin@example.test")
    second = coadmin_add(subscription=subscription, by=tenant_user, email="second-coadmin@example.test")
    addon = addon_save(name="A pack", plans=[subscription.plan], quotas={"vm_cloud": {"cores": 2}})
    subscription_addon_buy(subscription=subscription, addon=addon, user=tenant_user)
    return {
        "addon": str(addon.pk),
        "vm": str(vm.pk),
        "subscription": str(subscription.pk),
        "job": str(job.pk),
        "plan": str(private.pk),
        "token": str(token.pk),
        "coadmin": str(second.pk),
        "audit": str(AuditEntry.objects.get(action="vm.create", subscription=subscription).pk),
    }


def rolled_back(client: Client, method: str, url: str, **extra) -> tuple[int, str]:
    """The answer (status, and where a redirect goes) to one request whose writes are undone, so
    the owner and the co-administrator each act on the same state."""
    with transaction.atomic():
        response = getattr(client, method)(url, content_type="application/json", **extra)
        transaction.set_rollback(True)
    # A new job's id differs between the two runs; where the redirect leads is what matters.
    return response.status_code, re.sub(UUID_PATTERN, "<id>", response.get("Location", ""))


def coadmin_expectation(route: Route, owner_status: int) -> set[int]:
    """What C may get where the owner got `owner_status`."""
    if owner_status in (404, 405):
        return {owner_status}
    if route.name in OWNER_ONLY:
        return {403}
    if any(resource_of(route, kwarg) == "token" for kwarg in route.kwargs if kwarg not in VALUE_KWARGS):
        return {404}  # personal rows: A's API tokens are A's alone
    return {owner_status}


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_a_coadmin_gets_what_the_owner_gets_in_the_subscription(route, a_objects, tenant_client, coadmin_client):
    before = snapshot()
    problems = []
    for url in urls_for(route, a_objects):
        for method in METHODS:
            owner = rolled_back(tenant_client, method, url)
            mine = rolled_back(coadmin_client, method, url)
            expected = coadmin_expectation(route, owner[0])
            if mine[0] not in expected or (mine[0] == owner[0] and mine[1] != owner[1]):
                problems.append(f"{method.upper()} {url}: owner {owner}, co-administrator {mine}, expected {expected}")
    assert not problems, "\n".join(problems)
    assert snapshot() == before


@pytest.mark.parametrize("route", sorted(OWNER_ONLY))
def test_owner_only_routes_are_on_the_tenant_site(route):
    assert route in {r.name for r in TENANT_ROUTES}


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_a_coadmin_cannot_reach_tenant_b_objects(route, tenant_b_objects, coadmin_client, coadmin):
    before = snapshot()
    problems = leaks(coadmin_client, route, tenant_b_objects)
    assert not problems, "\n".join(problems)
    assert snapshot() == before, f"{route}: a co-administrator of A's subscription changed tenant B's data"


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_a_removed_coadmin_gets_404_at_once(route, a_objects, tenant_user, subscription, coadmin, coadmin_client):
    coadmin_client.get(reverse("tenant:subscriptions"))  # a live session, which removal must not outlast
    coadmin_remove(subscription=subscription, by=tenant_user, coadmin=coadmin)
    before = snapshot()
    problems = leaks(coadmin_client, route, a_objects)
    assert not problems, "\n".join(problems)
    assert snapshot() == before, f"{route}: a removed co-administrator changed A's data"


# --- the check itself can fail: a deliberately leaky route is caught ------------------------------


def _leaky_vm(request, pk):
    """Looks the VM up without `visible_to`: any tenant can read any VM's name."""
    return HttpResponse(get_object_or_404(VirtualMachine, pk=pk).name)


urlpatterns = [
    path("", include("portal.urls.tenant")),
    path("leak/vms/<uuid:pk>/", _leaky_vm, name="vm-leak"),
]


def test_a_leaky_route_is_caught(settings, tenant_b_objects, tenant_client, subscription):
    settings.ROOT_URLCONF = __name__
    leaky = [r for r in object_routes(__name__) if r.name == "vm-leak"]
    problems = [p for r in leaky for p in leaks(tenant_client, r, tenant_b_objects)]
    assert any("GET /leak/vms/" in p and "answered 200" in p for p in problems)


def test_an_unmapped_kwarg_fails_loudly():
    with pytest.raises(AssertionError, match="can't map"):
        resource_of(Route("tenant:widget-detail", ("widget_id",)), "widget_id")


def test_an_anonymous_leak_is_caught(settings, tenant_b_objects, client):
    settings.ROOT_URLCONF = __name__
    leaky = next(r for r in object_routes(__name__) if r.name == "vm-leak")
    with pytest.raises(AssertionError, match="answered 200 to an anonymous user"):
        test_anonymous_users_reach_nothing_but_sign_in(leaky, tenant_b_objects, client)


def test_b_data_in_a_list_is_caught(settings, tenant_b_objects, tenant_client, subscription):
    settings.ROOT_URLCONF = __name__
    leaky = next(r for r in object_routes(__name__) if r.name == "vm-leak")
    with pytest.raises(AssertionError, match="shows b-vm"):
        test_b_ids_in_filters_and_bodies_show_and_change_nothing_of_b(
            leaky, tenant_b_objects, tenant_client, subscription
        )


def test_a_coadmin_let_into_an_owner_only_route_is_caught():
    """Were a co-administrator answered like the owner on an owner-only route, the check says so."""
    route = Route("tenant:subscription-coadmins", ("pk",))
    assert coadmin_expectation(route, 200) == {403}
    assert 200 not in coadmin_expectation(Route("tenant:token-revoke", ("pk",)), 302)
