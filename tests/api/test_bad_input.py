"""Bad input is closed: every answer under /api/ is the JSON error body, numbers are bounded by the
column they are written to, and an id is taken as written (never 3.5 read as 3).

The route and field checks are generated from the URLconfs and the forms and serializers that exist
when this runs, so a new route, form or serializer is covered without being listed here.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework import serializers

from fabric.models import VirtualMachine
from fabric.services import plan_vm_cloud_set
from portal.api import PrimaryKeyRelatedField
from portal.views import errors
from tenants.models import Plan, Subscription
from tenants.services import plan_create
from tests import factories

from .conftest import api_client, assert_error

SITES = {"tenant": ("portal.urls.tenant", "tenant-api"), "staff": ("portal.urls.staff", "staff-api")}
PLACEHOLDER = "PLACEHOLDER"
# Ids of the wrong shape for integer and UUID ids alike: fractional, words, negative, beyond int64.
WRONG_IDS = ["1.5", "1e3", "abc", "-1", "99999999999999999999", "00000000-0000-0000-0000-00000000000g"]
METHODS = ("get", "post", "put", "patch", "delete")
BEYOND = [2**31, 2**63, -1]  # past a PositiveIntegerField on PostgreSQL, past int64, below zero
APPS = ("portal", "tenants", "fabric", "websites")


def api_routes(urlconf: str, namespace: str) -> list[tuple[str, tuple[str, ...]]]:
    """(name, kwargs) of every named route in the site's API namespace."""
    found: list[tuple[str, tuple[str, ...]]] = []

    def walk(patterns: list, names: tuple[str, ...]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, names + ((pattern.namespace,) if pattern.namespace else ()))
            elif isinstance(pattern, URLPattern) and names[:1] == (namespace,) and pattern.name:
                found.append((":".join((*names, pattern.name)), tuple(pattern.pattern.regex.groupindex)))

    walk(get_resolver(urlconf).url_patterns, ())
    return found


def bad_urls(urlconf: str, namespace: str) -> Iterator[str]:
    """Each API route with each wrong-shape id, and with a sub-path no route has."""
    for name, kwargs in api_routes(urlconf, namespace):
        url = reverse(name, kwargs=dict.fromkeys(kwargs, PLACEHOLDER), urlconf=urlconf)
        yield f"{url}nope/"
        if kwargs:
            yield from (url.replace(PLACEHOLDER, wrong) for wrong in WRONG_IDS)


def test_the_route_walker_sees_both_apis():
    tenant = {name for name, _ in api_routes(*SITES["tenant"])}
    staff = {name for name, _ in api_routes(*SITES["staff"])}
    assert {"tenant-api:vm-detail", "tenant-api:subscription-catalog", "tenant-api:job-list"} <= tenant
    assert {"staff-api:plan-service", "staff-api:endpoint-sync", "staff-api:job-cancel"} <= staff


@pytest.mark.parametrize("site", list(SITES))
def test_every_api_route_answers_a_wrong_id_or_unknown_sub_path_with_the_json_error_body(
    request, site, tenant_user, staff_user
):
    if site == "staff":
        request.getfixturevalue("staff_site")
    client = api_client(staff_user if site == "staff" else tenant_user)
    problems = []
    for url in bad_urls(*SITES[site]):
        for method in METHODS:
            response = getattr(client, method)(url, content_type="application/json")
            try:
                assert_error(response, 405 if response.status_code == 405 else 404)
            except (AssertionError, ValueError):
                problems.append(f"{method.upper()} {url}: {response.status_code} {response.get('Content-Type')}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", ["/api/", "/api/v1/", "/api/v1/nope/", "/api/v2/vms/", "/api/v1/vms/1.5/"])
def test_unknown_api_paths_answer_json_even_when_signed_out(db, path):
    assert_error(Client().get(path), 404, "not_found")


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_api_path_without_its_slash_is_the_json_404_not_a_redirect(api, method):
    """A redirect isn't JSON, and a client that follows one loses its POST body."""
    response = getattr(api, method)("/api/v1/vms", {}, format="json")
    body = assert_error(response, 404, "not_found")
    assert body["message"]


def test_pages_still_get_their_slash_added(tenant_client):
    response = tenant_client.get("/jobs")
    assert (response.status_code, response["Location"]) == (301, "/jobs/")


def test_pages_outside_the_api_keep_the_portal_404_page(tenant_client):
    response = tenant_client.get("/vms/1.5/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("handler", "status"), [(errors.handler400, 400), (errors.handler403, 403), (errors.handler500, 500)]
)
def test_django_error_handlers_answer_json_under_the_api_and_pages_elsewhere(db, handler, status):
    """What never reaches a DRF view (a malformed request, a crash) still answers the error body."""
    args = () if status == 500 else (Exception("boom"),)
    api = handler(RequestFactory().get("/api/v1/vms/"), *args)
    assert api.status_code == status and set(json.loads(api.content)) == {"code", "message", "fields"}
    page = handler(RequestFactory().get("/vms/"), *args)
    assert page.status_code == status and not page["Content-Type"].startswith("application/json")


ODD_QUERIES = ["page=1.5", f"page={'9' * 20}", "page_size=1e99", "page_size=-1", "cursor=%25%25", "cursor=Zm9v"]
ODD_QUERIES += [f"{name}={value}" for name in ("subscription", "state", "plan") for value in ("1.5", "9" * 20, "")]
ODD_BODIES = ["[]", "1.5", "null", '"x"', "{bad json", '{"plan": [1], "name": {"a": 1}, "cloud": {}}']


@pytest.mark.parametrize("site", list(SITES))
def test_odd_queries_and_bodies_on_every_api_list_are_4xx_json(request, site, tenant_user, staff_user, subscription):
    """Query strings and bodies of the wrong shape on each list route: an answer, or the error body."""
    if site == "staff":
        request.getfixturevalue("staff_site")
    client = api_client(staff_user if site == "staff" else tenant_user)
    problems = []
    for name, kwargs in api_routes(*SITES[site]):
        if kwargs or name.endswith(":schema"):
            continue
        url = reverse(name, urlconf=SITES[site][0])
        answers = [(f"GET {url}?{query}", client.get(f"{url}?{query}")) for query in ODD_QUERIES]
        answers += [
            (f"POST {url} {body}", client.post(url, body, content_type="application/json")) for body in ODD_BODIES
        ]
        for what, response in answers:
            try:
                if response.status_code >= 400:
                    assert response.status_code < 500
                    assert_error(response, response.status_code)
                else:
                    response.json()
            except (AssertionError, ValueError):
                problems.append(f"{what}: {response.status_code} {response.get('Content-Type')}")
    assert not problems, "\n".join(problems)


# --- numbers bounded by their columns ---------------------------------------------------------------


def _project_classes(base: type) -> Iterator[type]:
    for module in ("portal.urls.staff", "portal.urls.tenant"):  # imports every view, form and serializer
        importlib.import_module(module)
    pending = [base]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in APPS:
            yield cls


def input_fields() -> Iterator[tuple[str, object]]:
    """Every input field of the project's forms and (writable) serializer fields."""
    for form in _project_classes(forms.BaseForm):
        for name, field in getattr(form, "base_fields", {}).items():
            yield f"{form.__module__}.{form.__name__}.{name}", field
    for serializer in _project_classes(serializers.BaseSerializer):
        if serializer.__name__.startswith("Paginated") or getattr(serializer, "many", False):
            continue
        for name, field in serializer().fields.items():
            if not field.read_only:
                yield f"{serializer.__module__}.{serializer.__name__}.{name}", field


def test_the_field_walker_sees_the_numeric_inputs():
    names = {name.rsplit(".", 2)[-2] + "." + name.rsplit(".", 1)[-1] for name, _ in input_fields()}
    assert {"AddOnInputSerializer.max_per_subscription", "PlanCreateSerializer.max_subscriptions_per_account"} <= names


def test_every_integer_input_is_bounded():
    """A number past its column is a field error, never a database error: each integer input has both
    bounds (portal.columns.column_bounds gives the column's)."""
    unbounded = [
        name
        for name, field in input_fields()
        if isinstance(field, forms.IntegerField | serializers.IntegerField)
        and (field.min_value is None or field.max_value is None)
    ]
    assert not unbounded


def test_every_related_id_input_is_strict():
    loose = [
        name
        for name, field in input_fields()
        if isinstance(field, serializers.PrimaryKeyRelatedField) and not isinstance(field, PrimaryKeyRelatedField)
    ]
    assert not loose


QUOTA_BEYOND = [2**63, -1]  # past a PositiveBigIntegerField (quota rows), below zero


@pytest.mark.parametrize("quota", ["vms", "cores", "memory_mb"])
@pytest.mark.parametrize("value", QUOTA_BEYOND)
def test_staff_api_refuses_a_quota_its_column_cannot_hold(staff_api, plan, quota, value):
    url = reverse("staff-api:plan-service", args=[plan.pk, "vm_cloud"])
    body = {"offer": {"cloud": plan.vm_cloud_service.cloud_id}, "quotas": {"vms": 1, "cores": 1, "memory_mb": 1}}
    error = assert_error(staff_api.put(url, {**body, "quotas": {quota: value}}, format="json"), 400)
    assert quota in error["fields"]
    ok = staff_api.put(url, {**body, "quotas": {quota: 2**63 - 1}}, format="json")
    limits = {q["key"]: q["limit"] for q in ok.json()["services"][0]["quotas"]}
    assert ok.status_code == 200 and limits[quota] == 2**63 - 1


@pytest.mark.parametrize("value", [*BEYOND, 0])
def test_staff_api_refuses_a_subscription_limit_its_column_cannot_hold(staff_api, value):
    body = {"name": "Big", "max_subscriptions_per_account": value}
    error = assert_error(staff_api.post(reverse("staff-api:plan-list"), body, format="json"), 400)
    assert "max_subscriptions_per_account" in error["fields"]
    assert not Plan.objects.filter(name="Big").exists()


@pytest.mark.parametrize("value", [2**63, 2**64])
def test_staff_forms_refuse_numbers_their_columns_cannot_hold(staff_client, plan, value):
    data = {"vm_cloud-offer-cloud": plan.vm_cloud_service.cloud_id, "vm_cloud-quota-vms": value}
    response = staff_client.post(reverse("staff:plan-service", args=[plan.pk, "vm_cloud"]), data)
    assert response.status_code == 400
    assert b'max="9223372036854775807"' in response.content  # the browser knows the bound too
    assert "Ensure this value is less than or equal to" in response.content.decode()
    response = staff_client.post(reverse("staff:plan-create"), {"name": "Big", "max_subscriptions_per_account": value})
    assert response.status_code == 200 and "max_subscriptions_per_account" in response.context["form"].errors


def test_services_refuse_numbers_their_columns_cannot_hold(plan):
    """Whatever parsed the input (a script, a future form), the service checks the columns' range."""
    cloud = plan.vm_cloud_service.cloud
    with pytest.raises(ValidationError) as refused:
        plan_vm_cloud_set(plan=plan, cloud=cloud, max_vms=None, max_cores=2**63, max_memory_mb=None)
    assert set(refused.value.error_dict) == {"cores"}
    with pytest.raises(ValidationError) as refused:
        plan_create(name="Big", max_subscriptions_per_account=2**63)
    assert set(refused.value.error_dict) == {"max_subscriptions_per_account"}


# --- ids taken as written ----------------------------------------------------------------------------


def _not_integers(pk: int) -> list[object]:
    """Values the ORM's int() would have read as `pk` (`true` as 1)."""
    return [pk + 0.25, float(pk), f"{pk}.0", f" {pk}", True]


def test_a_fractional_plan_id_is_a_field_error_not_another_plan(api, plan):
    for value in _not_integers(plan.pk):
        error = assert_error(api.post(reverse("tenant-api:subscription-list"), {"plan": value}, format="json"), 400)
        assert "plan" in error["fields"], value
    assert not Subscription.objects.exists()
    assert api.post(reverse("tenant-api:subscription-list"), {"plan": str(plan.pk)}, format="json").status_code == 201


def test_fractional_catalog_ids_and_a_numeric_subscription_id_are_field_errors(api, subscription, endpoint):
    template, size = factories.catalog(endpoint)
    body = {
        "subscription": str(subscription.pk),
        "name": "web01",
        "template": template.pk,
        "hardware_profile": size.pk,
        "admin_password": factories.VM_PASSWORD,
    }
    for field, value in [("template", template.pk + 0.5), ("hardware_profile", float(size.pk)), ("subscription", 7)]:
        error = assert_error(api.post(reverse("tenant-api:vm-list"), {**body, field: value}, format="json"), 400)
        assert field in error["fields"], field
    assert not VirtualMachine.objects.exists()


def test_a_fractional_cloud_id_is_a_field_error(staff_api, plan):
    cloud = plan.vm_cloud_service.cloud
    url = reverse("staff-api:plan-service", args=[plan.pk, "vm_cloud"])
    for value in _not_integers(cloud.pk):
        error = assert_error(staff_api.put(url, {"offer": {"cloud": value}}, format="json"), 400)
        assert "offer.cloud" in error["fields"], value
    sizes = {"cloud": cloud.pk, "hardware_profiles": [True]}
    assert "offer.hardware_profiles" in assert_error(staff_api.put(url, {"offer": sizes}, format="json"), 400)["fields"]
