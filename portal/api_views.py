"""Job status over the API: what a client polls after a 202."""

from rest_framework import generics, serializers

from portal.models import Job
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


class JobDetail(generics.RetrieveAPIView):
    serializer_class = JobSerializer

    def get_queryset(self):  # type: ignore[override]
        return job_list(user=self.request.user)
