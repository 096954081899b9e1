"""Retrying and cancelling jobs from the pages and the APIs, on the site each belongs to."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from fabric.models import VirtualMachine, VMState
from portal import jobs
from portal.models import Job, JobState
from tests import factories
from tests.api.conftest import api_client, assert_error


@pytest.fixture
def failed_create(vm_job, monkeypatch):
    """A VM whose create job failed: the fabric refused it (out of capacity), then got room again."""
    vm, job = vm_job
    works_again = factories.fabric_refuses(monkeypatch, "create_vm", "Cloud is full.")
    jobs.job_execute(str(job.pk))
    works_again()
    return vm, Job.objects.get(pk=job.pk)


def test_the_vm_page_offers_retry_of_its_failed_create_and_it_builds_the_vm(tenant_client, failed_create):
    vm, job = failed_create
    page = tenant_client.get(reverse("tenant:vm", args=[vm.pk])).content.decode()
    retry_url = reverse("tenant:job-retry", args=[job.pk])
    assert "Cloud is full." in page and retry_url in page

    response = tenant_client.post(retry_url, {"next": reverse("tenant:vm", args=[vm.pk])}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("tenant:vm", args=[vm.pk])
    assert "Retrying" in response.content.decode()
    assert Job.objects.get(pk=job.pk).state == JobState.QUEUED
    factories.run_queued_jobs()
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.RUNNING


def test_a_refused_retry_is_a_message_and_changes_nothing(tenant_client, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint)
    job = Job.objects.get(target_id=str(vm.pk))
    response = tenant_client.post(reverse("tenant:job-retry", args=[job.pk]), follow=True)
    assert "Only a failed or cancelled job can be retried" in response.content.decode()
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED


def test_another_tenants_job_cant_be_retried(other_client, failed_create):
    _, job = failed_create
    assert other_client.post(reverse("tenant:job-retry", args=[job.pk])).status_code == 404
    assert Job.objects.get(pk=job.pk).state == JobState.FAILED


def test_tenants_have_no_cancel(tenant_client, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, run=False)
    job = Job.objects.get(target_id=str(vm.pk))
    assert tenant_client.post(f"/jobs/{job.pk}/cancel/").status_code == 404
    assert api_client(subscription.owner).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404
    assert Job.objects.get(pk=job.pk).state == JobState.QUEUED


def test_staff_cancel_a_running_job_from_its_page(staff_client, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, run=False)
    job = Job.objects.get(target_id=str(vm.pk))
    jobs.job_claim(str(job.pk))
    page = staff_client.get(reverse("staff:job", args=[job.pk])).content.decode()
    assert "Cancel job" in page
    response = staff_client.post(reverse("staff:job-cancel", args=[job.pk]), follow=True)
    body = response.content.decode()
    assert "Cancelled" in body and "Retry" in body  # a cancelled job may be run again
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    assert VirtualMachine.objects.get(pk=vm.pk).state == VMState.FAILED


def test_tenant_api_retries_and_refuses_with_the_error_body(failed_create, subscription):
    _, job = failed_create
    api = api_client(subscription.owner)
    response = api.post(f"/api/v1/jobs/{job.pk}/retry/")
    assert response.status_code == 200 and response.json()["state"] == "queued"
    assert response.json()["retries"] == 1
    assert_error(api.post(f"/api/v1/jobs/{job.pk}/retry/"), 409, "not_allowed")


def test_staff_api_cancels(staff_site, staff_user, subscription, endpoint):
    vm = factories.make_vm(subscription, endpoint, run=False)
    job = Job.objects.get(target_id=str(vm.pk))
    api = api_client(staff_user)
    response = api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert response.json()["can_retry"] is True
    assert_error(api.post(f"/api/v1/jobs/{job.pk}/cancel/"), 409, "not_allowed")


def _queued_for(minutes: int, subscription, endpoint) -> VirtualMachine:
    vm = factories.make_vm(subscription, endpoint, f"vm-{minutes}", run=False)
    Job.objects.filter(target_id=str(vm.pk)).update(created_at=timezone.now() - timedelta(minutes=minutes))
    return vm


def test_a_job_no_worker_takes_says_so_to_the_tenant(tenant_client, subscription, endpoint):
    fresh = _queued_for(0, subscription, endpoint)
    assert "Waiting for a worker" not in tenant_client.get(reverse("tenant:vm", args=[fresh.pk])).content.decode()
    stuck = _queued_for(10, subscription, endpoint)
    assert "Waiting for a worker" in tenant_client.get(reverse("tenant:vm", args=[stuck.pk])).content.decode()


def test_jobs_no_worker_takes_warn_staff_on_the_overview(staff_client, subscription, endpoint):
    _queued_for(0, subscription, endpoint)
    assert "waiting for a worker" not in staff_client.get(reverse("staff:dashboard")).content.decode()
    _queued_for(10, subscription, endpoint)
    assert "1 job waiting for a worker" in staff_client.get(reverse("staff:dashboard")).content.decode()


def test_the_staff_job_list_narrows_to_a_state_and_marks_jobs_no_worker_took(staff_client, subscription, endpoint):
    done = factories.make_vm(subscription, endpoint, "done")
    stuck = _queued_for(10, subscription, endpoint)
    queued = staff_client.get(reverse("staff:jobs") + "?state=queued").content.decode()
    assert stuck.name in queued and done.name not in queued and "waiting for a worker" in queued
    everything = staff_client.get(reverse("staff:jobs") + "?state=nonsense").content.decode()
    assert stuck.name in everything and done.name in everything
