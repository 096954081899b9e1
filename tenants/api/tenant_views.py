"""Tenant API of plans and subscriptions; querysets from tenants.selectors (scoped by `visible_to`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api import ERRORS, IsTenant
from tenants.quotas import quota_list
from tenants.selectors import plan_list, subscription_list
from tenants.services import subscription_create

from .serializers import QuotaSerializer, SubscriptionCreateSerializer, SubscriptionSerializer, TenantPlanSerializer


class PlanViewSet(viewsets.ReadOnlyModelViewSet):
    """Public plans a tenant may subscribe to, with their quotas."""

    permission_classes = [IsTenant]
    serializer_class = TenantPlanSerializer

    def get_queryset(self):  # type: ignore[override]
        return plan_list(user=self.request.user).select_related("vm_cloud_service").order_by("name")


@extend_schema_view(
    create=extend_schema(request=SubscriptionCreateSerializer, responses={201: SubscriptionSerializer, **ERRORS}),
    quotas=extend_schema(responses={200: QuotaSerializer(many=True), **ERRORS}),
)
class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The account's subscriptions; POST subscribes to a public plan."""

    permission_classes = [IsTenant]
    serializer_class = SubscriptionSerializer

    def get_queryset(self):  # type: ignore[override]
        return subscription_list(user=self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SubscriptionCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = subscription_create(owner=request.user, plan=data["plan"], name=data["name"])
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def quotas(self, request: Request, pk: str | None = None) -> Response:
        """Each quota of the services the plan offers, with what is used and what remains."""
        quotas = quota_list(self.get_object())
        return Response(QuotaSerializer(quotas, many=True).data)
