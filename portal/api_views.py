"""Job status over the API: what a client polls after a 202 (and the staff's job list)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from rest_framework import mixins, serializers, viewsets

from portal.api import IsSiteAccount
from portal.models import Job, JobState
from portal.selectors import job_list


class JobSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)

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
            "state",
            "percent",
            "step",
            "steps",
            "error",
            "attempts",
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
    """Jobs the account may see (staff: all; a tenant: its subscriptions'), newest first."""

    serializer_class = JobSerializer
    permission_classes = [IsSiteAccount]
    filterset_class = JobFilter

    def get_queryset(self):  # type: ignore[override]
        return job_list(user=self.request.user)
