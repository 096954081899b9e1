"""Admin portal fabric pages: endpoints with capacity, registering an endpoint, its detail and sync."""

import json
import re

import pytest
from django.urls import reverse

from fabric.models import Cloud, FabricEndpoint
from portal.models import Job, JobState
from tests import factories
from tests.htmx import HX, poller_url


def register(staff_client, tmp_path, name="Second", settings=None):
    if settings is None:
        settings = json.dumps({"path": str(tmp_path / "x.sqlite3"), "latency": 0})
    return staff_client.post(
        reverse("staff:endpoint-create"), {"name": name, "driver": "simulator", "settings": settings}
    )


def test_fabric_page_lists_endpoints_stamps_and_cloud_capacity(staff_client, endpoint):
    response = staff_client.get(reverse("staff:endpoints"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Simulator" in body and "Stamp 01" in body and "Gold" in body and "Silver" in body
    # Gold: 64 vCPU, 100 VMs, nothing used yet.
    assert "0 / 64" in body and "0 / 100" in body
    assert "<meter" in body


def test_unlimited_capacity_shows_infinity(staff_client, endpoint):
    Cloud.objects.filter(stamp__endpoint=endpoint, name="Gold").update(vms_total=None)
    body = staff_client.get(reverse("staff:endpoints")).content.decode()
    assert "0 / ∞" in body


def test_fabric_page_query_count_does_not_grow_with_endpoints(staff_client, tmp_path, django_assert_max_num_queries):
    for i in range(6):
        factories.make_endpoint(tmp_path, name=f"Sim {i}")
    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse("staff:endpoints"))
    assert response.content.decode().count("Stamp 01") == 6


def test_register_endpoint_creates_it_and_a_sync_job_then_detail_shows_the_fabric(staff_client, tmp_path):
    response = register(staff_client, tmp_path)
    endpoint = FabricEndpoint.objects.get(name="Second")
    assert response.status_code == 302
    assert response["Location"] == reverse("staff:endpoint", args=[endpoint.pk])
    job = Job.objects.get(target_type="fabric.fabricendpoint", target_id=str(endpoint.pk))
    assert job.state == JobState.QUEUED

    page = staff_client.get(response["Location"]).content.decode()
    assert f'id="job-{job.pk}"' in page and 'hx-trigger="canopy:job-finished from:body"' in page
    assert "Reading the fabric" in page
    poll = poller_url(page)  # the page's one poller follows the sync job
    assert poll.startswith(reverse("job-statuses")) and str(job.pk) in poll
    assert staff_client.get(poll, headers=HX).content == b""  # nothing changed yet

    factories.run_queued_jobs()
    ended = staff_client.get(poll, headers=HX)
    assert ended.status_code == 286 and ended["HX-Trigger"] == "canopy:job-finished"  # the fabric re-fetches
    assert re.search(rf'id="job-{job.pk}" data-job-state="succeeded" hx-swap-oob="true"', ended.content.decode())
    page = staff_client.get(response["Location"]).content.decode()
    assert "Stamp 01" in page and "Gold" in page and "0 / 64" in page
    assert "Ubuntu Server 24.04 LTS" in page and "Medium" in page
    assert 'hx-trigger="every 1s"' not in page  # the finished job no longer polls


def test_htmx_refresh_of_detail_returns_only_the_fabric_section(staff_client, endpoint):
    response = staff_client.get(reverse("staff:endpoint", args=[endpoint.pk]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="endpoint-fabric"')
    assert "Gold" in body and "<html" not in body
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    ("name", "raw_settings", "field_error"),
    [
        ("Bad JSON", "{not json", "Enter a valid JSON"),
        ("Not an object", "[1, 2]", "must be a JSON object"),
        ("Simulator", None, "already exists"),
        ("simulator", None, "already exists"),
        ("Outside", '{"path": "/tmp/elsewhere.sqlite3"}', "path: The state file must be under the data directory"),
        ("Slow", '{"latency": "slow"}', "latency: Must be a number or an object."),
    ],
)
def test_invalid_registration_shows_a_form_error_and_creates_nothing(
    staff_client, endpoint, tmp_path, name, raw_settings, field_error
):
    jobs_before = Job.objects.count()
    response = register(staff_client, tmp_path, name=name, settings=raw_settings)
    assert response.status_code == 200
    assert field_error in response.content.decode()
    assert FabricEndpoint.objects.count() == 1
    assert Job.objects.count() == jobs_before


def test_synchronize_starts_a_job_and_a_second_click_is_refused(staff_client, endpoint):
    url = reverse("staff:endpoint-sync", args=[endpoint.pk])
    response = staff_client.post(url, follow=True)
    assert "Synchronizing" in response.content.decode()
    queued = Job.objects.filter(target_id=str(endpoint.pk), state=JobState.QUEUED)
    assert queued.count() == 1

    response = staff_client.post(url, follow=True)
    assert "already being synchronized" in response.content.decode()
    assert queued.count() == 1


def test_synchronize_needs_post_and_unknown_endpoint_is_404(staff_client, endpoint):
    assert staff_client.get(reverse("staff:endpoint-sync", args=[endpoint.pk])).status_code == 405
    assert staff_client.get(reverse("staff:endpoint", args=[endpoint.pk + 999])).status_code == 404


def test_a_tenant_vm_shows_in_the_clouds_used_capacity(staff_client, endpoint, subscription):
    factories.make_vm(subscription, endpoint, "web01")
    body = staff_client.get(reverse("staff:endpoints")).content.decode()
    assert "1 / 100" in body  # Gold: VMs used 1 of 100
    assert "1 / 64" in body  # one vCPU (Small) of 64


def test_anonymous_is_sent_to_sign_in(staff_site, client, endpoint):
    for url in (reverse("staff:endpoints"), reverse("staff:endpoint", args=[endpoint.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_endpoint_detail_query_count_is_pinned(staff_client, endpoint, django_assert_max_num_queries):
    with django_assert_max_num_queries(14):
        response = staff_client.get(reverse("staff:endpoint", args=[endpoint.pk]))
    assert "Windows Server 2022 Datacenter" in response.content.decode()


def test_overview_shows_clouds_capacity_and_plans(staff_client, plan, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        body = staff_client.get(reverse("staff:dashboard")).content.decode()
    assert "Gold" in body and "0 / 64" in body and plan.name in body
