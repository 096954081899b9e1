"""Staff API of the fabric: endpoints (register, sync), clouds and their capacity.

Registering and syncing answer 202 with the sync job; no driver is called in the request.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from fabric.selectors import cloud_list, endpoint_list
from fabric.services import endpoint_register, endpoint_sync
from portal.access import Capability
from portal.api import ERRORS, IsStaff, accepted_job, accepted_serializer

from .serializers import (
    CloudSerializer,
    EndpointDetailSerializer,
    EndpointRegisterSerializer,
    EndpointSerializer,
)

EndpointAccepted = accepted_serializer("EndpointAccepted", endpoint=EndpointSerializer())


@extend_schema_view(
    create=extend_schema(request=EndpointRegisterSerializer, responses={202: EndpointAccepted, **ERRORS}),
    sync=extend_schema(request=None, responses={202: EndpointAccepted, **ERRORS}),
)
class EndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Fabric endpoints with their stamps and clouds; the detail adds the catalog."""

    permission_classes = [IsStaff]
    capabilities = {
        "list": Capability.VIEW,
        "retrieve": Capability.VIEW,
        "create": Capability.ADMINISTER,
        "sync": Capability.OPERATE,  # re-reads the fabric; changes no setting
    }

    def get_queryset(self):  # type: ignore[override]
        qs = endpoint_list()
        if self.action == "retrieve":
            qs = qs.prefetch_related("templates", "hardware_profiles")
        return qs

    def get_serializer_class(self):  # type: ignore[override]
        return EndpointDetailSerializer if self.action == "retrieve" else EndpointSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = EndpointRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint, job = endpoint_register(
            name=data["name"], driver=data["driver"], settings_=data["settings"], created_by=request.user
        )
        return accepted_job(request, job, body={"endpoint": EndpointSerializer(endpoint).data})

    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str | None = None) -> Response:
        """Re-read the endpoint's stamps, clouds, capacity and catalog (a job)."""
        endpoint = self.get_object()
        job = endpoint_sync(endpoint=endpoint, created_by=request.user)
        endpoint.refresh_from_db(fields=["state"])
        return accepted_job(request, job, body={"endpoint": EndpointSerializer(endpoint).data})


class CloudViewSet(viewsets.ReadOnlyModelViewSet):
    """VM clouds with their capacity (total and used, as the fabric last reported) and portal VM count."""

    permission_classes = [IsStaff]
    capabilities = {"list": Capability.VIEW, "retrieve": Capability.VIEW}
    serializer_class = CloudSerializer

    def get_queryset(self):  # type: ignore[override]
        return cloud_list(user=self.request.user).order_by("stamp__endpoint__name", "name", "pk")
