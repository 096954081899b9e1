"""The OpenAPI schema of both sites generates cleanly (a warning means an undocumented endpoint)."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from .conftest import api_client, assert_error


def generate(urlconf: str) -> dict:
    out = io.StringIO()
    call_command("spectacular", "--urlconf", urlconf, "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_tenant_schema_generates_and_has_no_staff_routes(db):
    schema = generate("portal.urls.tenant")
    paths = schema["paths"]
    assert {"/api/v1/vms/", "/api/v1/vms/{id}/stop/", "/api/v1/subscriptions/{id}/catalog/"} <= set(paths)
    assert "202" in paths["/api/v1/vms/"]["post"]["responses"]
    assert not any(p.startswith(("/api/v1/endpoints", "/api/v1/accounts")) for p in paths)
    # the large lists are keyset pages: a cursor, no page number, no count
    for path, page in (("/api/v1/vms/", "PaginatedVMList"), ("/api/v1/jobs/", "PaginatedJobList")):
        params = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert "cursor" in params and "page" not in params
        assert set(schema["components"]["schemas"][page]["properties"]) == {"next", "previous", "results"}


def test_staff_schema_generates(staff_site):
    paths = generate("portal.urls.staff")["paths"]
    assert {"/api/v1/endpoints/", "/api/v1/plans/{id}/services/{service}/", "/api/v1/accounts/"} <= set(paths)
    assert "202" in paths["/api/v1/endpoints/{id}/sync/"]["post"]["responses"]


@pytest.mark.parametrize("site", ["tenant", "staff"])
def test_schema_view_answers_on_each_site(request, site, tenant_user, staff_user):
    if site == "staff":
        request.getfixturevalue("staff_site")
    client = api_client(staff_user if site == "staff" else tenant_user)
    response = client.get(reverse(f"{site}-api:schema"))
    assert response.status_code == 200 and "openapi" in json.loads(response.content)
    yaml_answer = client.get(reverse(f"{site}-api:schema"), {"format": "yaml"})
    assert "openapi" in yaml.safe_load(yaml_answer.content)


@pytest.mark.parametrize("site", ["tenant", "staff"])
def test_schema_needs_a_site_account(request, site):
    if site == "staff":
        request.getfixturevalue("staff_site")
    assert_error(api_client().get(reverse(f"{site}-api:schema")), 403)


@pytest.mark.parametrize("urlconf", ["portal.urls.tenant", "portal.urls.staff"])
def test_every_operation_documents_its_errors_with_the_error_body(db, urlconf):
    schema = generate(urlconf)
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"code", "message", "fields"}
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"403"} | ({"404"} if "{" in path else set()) | ({"400"} if method in ("post", "put") else set())
            if method == "get" and "cursor" in {p["name"] for p in operation.get("parameters", [])}:
                expected |= {"404"}  # a stale cursor
            for code in expected:
                body = responses.get(code, {}).get("content", {}).get("application/json", {}).get("schema")
                if body != {"$ref": "#/components/schemas/Error"}:
                    missing.append(f"{method.upper()} {path} {code}: {body}")
    assert not missing, "\n".join(missing)


def test_filtered_lists_document_400_and_404(db):
    vms = generate("portal.urls.tenant")["paths"]["/api/v1/vms/"]["get"]["responses"]
    assert {"200", "400", "403", "404"} <= set(vms)
