"""Job status over the API: what a client polls after a 202 (and the staff's job list); the schema view."""

from __future__ import annotations

from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from portal.access import Capability
from portal.api import ERRORS, IsSiteAccount, IsStaff
from portal.filters import AuditEntryFilter
from portal.jobs import job_can_retry, job_cancel, job_retry
from portal.models import AuditEntry, Job, JobState, PortalSettings, SignupPolicy
from portal.pagination import CursorPagination
from portal.selectors import audit_entry_list, job_list, portal_settings_get
from portal.services import portal_settings_update


class JobSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    waiting_for_worker = serializers.BooleanField(
        source="is_waiting_for_worker", read_only=True, help_text="queued for long with no worker taking it"
    )
    can_retry = serializers.SerializerMethodField(help_text="a failed or cancelled job that may run again")

    def get_can_retry(self, job: Job) -> bool:
        return job_can_retry(job)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "label",
            "target_type",
            "target_id",
            "target_name",
            "subscription",
            "parent",
            "state",
            "percent",
            "step",
            "steps",
            "error",
            "attempts",
            "max_attempts",
            "retries",
            "waiting_for_worker",
            "can_retry",
            "retry_at",
            "deadline_at",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class JobFilter(filters.FilterSet):
    state = filters.ChoiceFilter(choices=JobState.choices)

    class Meta:
        model = Job
        fields = ["state"]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs the account may see (staff: all; a tenant: its subscriptions'), newest first in keyset
    pages (`next`/`previous` links; no count)."""

    serializer_class = JobSerializer
    permission_classes = [IsSiteAccount]
    # Staff accounts' roles (tenants see their own jobs, by visible_to).
    capabilities = {"list": Capability.VIEW, "retrieve": Capability.VIEW, "retry": Capability.OPERATE}
    filterset_class = JobFilter
    pagination_class = CursorPagination

    def get_queryset(self):  # type: ignore[override]
        return job_list(user=self.request.user)

    @extend_schema(request=None, responses={200: JobSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: Any = None) -> Response:
        """Run a failed or cancelled job again, from the step that failed."""
        job = job_retry(job=self.get_object(), by=request.user)
        return Response(self.get_serializer(job).data)


class StaffJobViewSet(JobViewSet):
    """Staff's jobs: every job, and cancel."""

    capabilities = {**JobViewSet.capabilities, "cancel": Capability.OPERATE}

    @extend_schema(request=None, responses={200: JobSerializer, **ERRORS})
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    def cancel(self, request: Request, pk: Any = None) -> Response:
        """Cancel a queued or running job: it ends at once; its worker stops at the next step."""
        job = job_cancel(job=self.get_object(), by=request.user)
        return Response(self.get_serializer(job).data)


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True, help_text="email, 'system' or 'anonymous'")
    changes = serializers.DictField(
        child=serializers.ListField(), read_only=True, help_text="{field: [before, after]}, changed fields only"
    )

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "actor",
            "by_staff",
            "subscription",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "outcome",
            "message",
            "request_id",
            "ip",
            "site",
        ]
        read_only_fields = fields


class TenantAuditEntrySerializer(AuditEntrySerializer):
    """A tenant's view: staff are "Provider staff", and nobody's client address is shown."""

    actor = serializers.SerializerMethodField(help_text="email, or 'Provider staff'")

    def get_actor(self, entry: AuditEntry) -> str:
        return "Provider staff" if entry.by_staff else entry.actor_label

    class Meta(AuditEntrySerializer.Meta):
        fields = [f for f in AuditEntrySerializer.Meta.fields if f != "ip"]
        read_only_fields = fields


class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The audit log (read-only): your subscriptions' entries and your own, newest first in keyset
    pages, with the filters of the portal's audit page."""

    serializer_class = TenantAuditEntrySerializer
    permission_classes = [IsSiteAccount]
    capabilities = {"list": Capability.VIEW, "retrieve": Capability.VIEW}
    filterset_class = AuditEntryFilter
    pagination_class = CursorPagination

    def get_queryset(self):  # type: ignore[override]
        return audit_entry_list(user=self.request.user)


class StaffAuditEntryViewSet(AuditEntryViewSet):
    """The audit log (read-only): every entry, newest first in keyset pages, with the audit page's filters."""

    serializer_class = AuditEntrySerializer
    permission_classes = [IsStaff]


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema, for the site's own accounts like the rest of the API. JSON like every answer
    under /api/ (YAML when asked for: `?format=yaml` or its Accept type); its refusals are the error body."""

    permission_classes = [IsSiteAccount]
    capability = Capability.VIEW
    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class PortalSettingsSerializer(serializers.ModelSerializer):
    signup_policy = serializers.ChoiceField(choices=SignupPolicy.choices)

    class Meta:
        model = PortalSettings
        fields = ["signup_policy", "updated_at"]
        read_only_fields = ["updated_at"]


class PortalSettingsView(GenericAPIView):
    """The provider settings staff change (sign-up policy). Administrators only: settings."""

    permission_classes = [IsStaff]
    capability = Capability.ADMINISTER
    serializer_class = PortalSettingsSerializer

    @extend_schema(responses={200: PortalSettingsSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        return Response(PortalSettingsSerializer(portal_settings_get()).data)

    @extend_schema(request=PortalSettingsSerializer, responses={200: PortalSettingsSerializer, **ERRORS})
    def put(self, request: Request) -> Response:
        serializer = PortalSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = portal_settings_update(by=request.user, **serializer.validated_data)
        return Response(PortalSettingsSerializer(row).data)
