"""A sync that no longer sees a template, size or cloud retires it: not offered for new VMs, shown as
retired, existing VMs unaffected; it comes back if the fabric reports it again."""

import sqlite3
from dataclasses import replace

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from fabric.models import Cloud, HardwareProfile, VMState, VMTemplate
from fabric.selectors import vm_catalog
from fabric.services import endpoint_apply, endpoint_driver, endpoint_sync, plan_vm_cloud_set
from tenants.plan_services import ServiceNotOffered
from tests import factories


def _without(endpoint, *, template=None, size=None, cloud=None):
    """What the fabric reports, minus the named template, size and cloud (by external id)."""
    info = endpoint_driver(endpoint).describe()
    return replace(
        info,
        templates=[t for t in info.templates if t.id != template],
        hardware_profiles=[p for p in info.hardware_profiles if p.id != size],
        clouds=[c for c in info.clouds if c.id != cloud],
    )


def test_a_template_gone_from_the_fabric_is_retired_by_the_sync_job(endpoint):
    with sqlite3.connect(endpoint.settings["path"]) as conn:
        conn.execute("DELETE FROM templates WHERE id = 'tpl-ws2022'")
    endpoint_sync(endpoint=endpoint)
    factories.run_queued_jobs()
    retired = VMTemplate.objects.get(endpoint=endpoint, external_id="tpl-ws2022")
    assert retired.retired_at is not None
    assert VMTemplate.objects.get(endpoint=endpoint, external_id="tpl-ubuntu-2404").retired_at is None


def test_retired_catalog_items_are_not_offered_and_refused_but_existing_vms_keep_them(endpoint, subscription):
    vm = factories.make_vm(subscription, endpoint, "old")
    template, size = factories.catalog(endpoint)
    endpoint_apply(endpoint=endpoint, info=_without(endpoint, template="tpl-ubuntu-2404", size=size.external_id))

    templates, sizes = vm_catalog(subscription=subscription)
    assert template not in templates and size not in sizes and templates.exists() and sizes.exists()
    template.refresh_from_db()
    size.refresh_from_db()
    for chosen, chosen_size, field in (
        (template, sizes.first(), "template"),
        (templates.first(), size, "hardware_profile"),
    ):
        with pytest.raises(ValidationError) as caught:
            factories.make_vm_job(subscription, endpoint, "new", template=chosen, hardware_profile=chosen_size)
        assert "not available" in caught.value.message_dict[field][0]
    vm.refresh_from_db()
    assert vm.state == VMState.RUNNING and vm.template_id == template.pk

    endpoint_apply(endpoint=endpoint, info=endpoint_driver(endpoint).describe())  # reported again
    template.refresh_from_db()
    size.refresh_from_db()
    assert template.retired_at is None and size.retired_at is None
    assert template in vm_catalog(subscription=subscription)[0]


def test_a_retired_cloud_takes_no_new_vms_and_cannot_be_offered(endpoint, subscription, plan):
    endpoint_apply(endpoint=endpoint, info=_without(endpoint, cloud="cloud-gold"))
    gold = Cloud.objects.get(stamp__endpoint=endpoint, external_id="cloud-gold")
    assert gold.retired_at is not None
    templates, sizes = vm_catalog(subscription=subscription)
    assert not templates.exists() and not sizes.exists()
    with pytest.raises(ServiceNotOffered, match="not available for new virtual machines"):
        factories.make_vm_job(subscription, endpoint, "new")
    with pytest.raises(ValidationError, match="retired"):
        plan_vm_cloud_set(plan=plan, cloud=gold, max_vms=None, max_cores=None, max_memory_mb=None)


def test_the_staff_pages_and_api_show_retired_items(endpoint, staff_client):
    endpoint_apply(
        endpoint=endpoint, info=_without(endpoint, template="tpl-ws2022", size="hw-a3", cloud="cloud-silver")
    )
    page = staff_client.get(reverse("staff:endpoint", args=[endpoint.pk])).content.decode()
    assert page.count(">Retired</span>") == 3
    detail = staff_client.get(reverse("staff-api:endpoint-detail", args=[endpoint.pk])).json()
    retired = {t["name"] for t in detail["templates"] if t["retired_at"]}
    retired |= {p["name"] for p in detail["hardware_profiles"] if p["retired_at"]}
    retired |= {c["name"] for s in detail["stamps"] for c in s["clouds"] if c["retired_at"]}
    assert retired == {"Windows Server 2022 Datacenter", "Large", "Silver"}
    assert HardwareProfile.objects.filter(endpoint=endpoint, retired_at__isnull=True).count() == 3
