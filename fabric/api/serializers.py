"""Serializers of the fabric APIs. Read serializers are read-only; write serializers only parse input
for the services (fabric.services), which hold the rules."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fabric.lifecycle import VM_ACTIONS
from fabric.models import (
    SECRET_MASK,
    Cloud,
    FabricEndpoint,
    HardwareProfile,
    Stamp,
    VirtualMachine,
    VMTemplate,
)
from fabric.services import vm_allowed_actions
from portal.api import JobRefSerializer, PrimaryKeyRelatedField, job_url
from tenants.selectors import subscription_list

# --- catalog -----------------------------------------------------------------------------------------


class TemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = VMTemplate
        fields = ["id", "name", "os_type", "disk_gb"]
        read_only_fields = fields


class HardwareProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = HardwareProfile
        fields = ["id", "name", "cpu", "memory_mb"]
        read_only_fields = fields


class CatalogSerializer(serializers.Serializer):
    templates = TemplateSerializer(many=True, read_only=True)
    hardware_profiles = HardwareProfileSerializer(many=True, read_only=True)


# --- endpoints and clouds (staff) -------------------------------------------------------------------


def _capacity(cloud: Cloud) -> dict[str, dict[str, int | None]]:
    return {
        "vcpu": {"used": cloud.vcpu_used, "total": cloud.vcpu_total},
        "memory_mb": {"used": cloud.memory_mb_used, "total": cloud.memory_mb_total},
        "storage_gb": {"used": cloud.storage_gb_used, "total": cloud.storage_gb_total},
        "vms": {"used": cloud.vms_used, "total": cloud.vms_total},
    }


class UsageSerializer(serializers.Serializer):
    used = serializers.IntegerField(read_only=True)
    total = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: unlimited")


class CapacitySerializer(serializers.Serializer):
    vcpu = UsageSerializer()
    memory_mb = UsageSerializer()
    storage_gb = UsageSerializer()
    vms = UsageSerializer()


class StampCloudSerializer(serializers.ModelSerializer):
    capacity = serializers.SerializerMethodField()

    class Meta:
        model = Cloud
        fields = ["id", "name", "external_id", "capacity", "usage_updated_at", "retired_at"]
        read_only_fields = fields

    @extend_schema_field(CapacitySerializer)
    def get_capacity(self, cloud: Cloud) -> dict[str, dict[str, int | None]]:
        return _capacity(cloud)


class StampSerializer(serializers.ModelSerializer):
    clouds = StampCloudSerializer(many=True, read_only=True)

    class Meta:
        model = Stamp
        fields = ["id", "name", "external_id", "version", "clouds"]
        read_only_fields = fields


class EndpointSerializer(serializers.ModelSerializer):
    """An endpoint with its stamps and clouds (with capacity). The detail adds its driver settings,
    with the secret ones (credentials) masked."""

    stamps = StampSerializer(many=True, read_only=True)

    class Meta:
        model = FabricEndpoint
        fields = ["id", "name", "driver", "state", "last_error", "last_synced_at", "created_at", "stamps"]
        read_only_fields = fields


class StaffTemplateSerializer(TemplateSerializer):
    """Staff also see when the fabric stopped reporting a template (retired_at)."""

    class Meta(TemplateSerializer.Meta):
        fields = [*TemplateSerializer.Meta.fields, "retired_at"]
        read_only_fields = fields


class StaffHardwareProfileSerializer(HardwareProfileSerializer):
    class Meta(HardwareProfileSerializer.Meta):
        fields = [*HardwareProfileSerializer.Meta.fields, "retired_at"]
        read_only_fields = fields


class EndpointDetailSerializer(EndpointSerializer):
    templates = StaffTemplateSerializer(many=True, read_only=True)
    hardware_profiles = StaffHardwareProfileSerializer(many=True, read_only=True)
    settings = serializers.DictField(
        source="settings_shown", read_only=True, help_text=f'Driver settings; secret ones read "{SECRET_MASK}"'
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "settings", "templates", "hardware_profiles"]
        read_only_fields = fields


class EndpointRegisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    driver = serializers.CharField(max_length=200)
    settings = serializers.DictField(required=False, default=dict, help_text="Driver settings")


class CloudSerializer(serializers.ModelSerializer):
    endpoint = serializers.IntegerField(source="stamp.endpoint_id", read_only=True)
    endpoint_name = serializers.CharField(source="stamp.endpoint.name", read_only=True)
    stamp_name = serializers.CharField(source="stamp.name", read_only=True)
    vm_count = serializers.IntegerField(source="portal_vm_count", read_only=True, help_text="Live portal VMs")
    capacity = serializers.SerializerMethodField()

    class Meta:
        model = Cloud
        fields = [
            "id",
            "name",
            "endpoint",
            "endpoint_name",
            "stamp",
            "stamp_name",
            "capacity",
            "vm_count",
            "usage_updated_at",
            "retired_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CapacitySerializer)
    def get_capacity(self, cloud: Cloud) -> dict[str, dict[str, int | None]]:
        return _capacity(cloud)


# --- virtual machines (tenant) ----------------------------------------------------------------------


class VMTemplateRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = VMTemplate
        fields = ["id", "name", "os_type"]
        read_only_fields = fields


def _iso(value: datetime) -> str:
    """A datetime as DRF's DateTimeField writes it (ISO 8601 in the current time zone, UTC as Z),
    without building the serializer's fields: ModelSerializer's introspection costs more than the rows."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class VMSerializer(serializers.ModelSerializer):
    """A VM as a tenant sees it. `job` is its running job (context `active_jobs`), if any.

    The fields declare the API (and its schema); `to_representation` builds the same dict by hand,
    because DRF's generic field-by-field walk (and a URL reverse per row) was most of the list API's
    time. tests/api/test_tenant_api.py checks the two agree for every field."""

    url = serializers.HyperlinkedIdentityField(view_name="tenant-api:vm-detail")
    template = VMTemplateRefSerializer(read_only=True)
    hardware_profile = HardwareProfileSerializer(read_only=True)
    allowed_actions = serializers.SerializerMethodField()
    job = serializers.SerializerMethodField()

    class Meta:
        model = VirtualMachine
        fields = [
            "id",
            "url",
            "name",
            "subscription",
            "state",
            "template",
            "hardware_profile",
            "cpu",
            "memory_mb",
            "disk_gb",
            "admin_username",
            "allowed_actions",
            "job",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, vm: VirtualMachine) -> dict[str, Any]:
        template, size = vm.template, vm.hardware_profile
        return {
            "id": str(vm.pk),
            "url": self._url_of(vm),
            "name": vm.name,
            "subscription": vm.subscription_id,
            "state": vm.state,
            "template": {"id": template.pk, "name": template.name, "os_type": template.os_type},
            "hardware_profile": {"id": size.pk, "name": size.name, "cpu": size.cpu, "memory_mb": size.memory_mb},
            "cpu": vm.cpu,
            "memory_mb": vm.memory_mb,
            "disk_gb": vm.disk_gb,
            "admin_username": vm.admin_username,
            "allowed_actions": vm_allowed_actions(vm),
            "job": self.get_job(vm),
            "created_at": _iso(vm.created_at),
            "updated_at": _iso(vm.updated_at),
        }

    @cached_property
    def _url_prefix(self) -> tuple[str, str]:
        """The detail URL around its id, reversed once for all the rows."""
        marker = "00000000-0000-0000-0000-000000000000"
        url = self.context["request"].build_absolute_uri(reverse("tenant-api:vm-detail", kwargs={"pk": marker}))
        before, _, after = url.partition(marker)
        return before, after

    def _url_of(self, vm: VirtualMachine) -> str:
        before, after = self._url_prefix
        return f"{before}{vm.pk}{after}"

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=list(VM_ACTIONS))))
    def get_allowed_actions(self, vm: VirtualMachine) -> list[str]:
        return vm_allowed_actions(vm)

    @extend_schema_field(JobRefSerializer(allow_null=True))
    def get_job(self, vm: VirtualMachine) -> dict[str, str] | None:
        job = self.context.get("active_jobs", {}).get(str(vm.pk))
        if job is None:
            return None
        request = self.context["request"]
        return {"id": str(job.pk), "url": request.build_absolute_uri(job_url(request, job)), "state": job.state}


class VMCreateSerializer(serializers.Serializer):
    """Quick-create input. The service checks the name, password, catalog and quotas."""

    subscription = PrimaryKeyRelatedField(queryset=subscription_list(user=None))
    name = serializers.CharField(max_length=64)
    template = PrimaryKeyRelatedField(queryset=VMTemplate.objects.none())
    hardware_profile = PrimaryKeyRelatedField(queryset=HardwareProfile.objects.none())
    admin_username = serializers.CharField(max_length=64, required=False, default="canopy")
    admin_password = serializers.CharField(write_only=True, max_length=200, style={"input_type": "password"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        user = getattr(self.context.get("request"), "user", None)
        # Ids resolve through what the user may see: another plan's template is "not found",
        # exactly like an id that doesn't exist, instead of a different refusal that tells it exists.
        self.fields["subscription"].queryset = subscription_list(user=user)
        self.fields["template"].queryset = VMTemplate.objects.visible_to(user)
        self.fields["hardware_profile"].queryset = HardwareProfile.objects.visible_to(user)
