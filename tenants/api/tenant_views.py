"""Tenant API of plans and subscriptions; querysets from tenants.selectors (scoped by `visible_to`)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api import ERRORS, IsTenant, accepted_job, accepted_serializer
from tenants.models import SubscriptionCoAdmin
from tenants.quotas import quota_list
from tenants.selectors import coadmin_list, plan_list, subscription_list
from tenants.services import (
    coadmin_add,
    coadmin_remove,
    subscription_cancel,
    subscription_create,
    subscription_require_owner,
)

from .serializers import (
    CancelSerializer,
    CoAdminAddSerializer,
    CoAdminSerializer,
    QuotaSerializer,
    SubscriptionCreateSerializer,
    TenantPlanSerializer,
    TenantSubscriptionSerializer,
)

COADMIN_ACTION = "manage co-administrators"
CancelAccepted = accepted_serializer("SubscriptionCancelAccepted", subscription=TenantSubscriptionSerializer())


class PlanViewSet(viewsets.ReadOnlyModelViewSet):
    """Public plans a tenant may subscribe to, with their quotas."""

    permission_classes = [IsTenant]
    serializer_class = TenantPlanSerializer

    def get_queryset(self):  # type: ignore[override]
        return plan_list(user=self.request.user).select_related("vm_cloud_service").order_by("name")


@extend_schema_view(
    create=extend_schema(request=SubscriptionCreateSerializer, responses={201: TenantSubscriptionSerializer, **ERRORS}),
    quotas=extend_schema(responses={200: QuotaSerializer(many=True), **ERRORS}),
    coadmin_remove=extend_schema(
        parameters=[
            OpenApiParameter("coadmin_pk", str, OpenApiParameter.PATH, description="The co-administrator's id")
        ],
        responses={204: None, **ERRORS},
    ),
    cancel=extend_schema(request=CancelSerializer, responses={202: CancelAccepted, **ERRORS}),
)
class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The subscriptions the account owns or co-administers (`role`); POST subscribes to a public plan."""

    permission_classes = [IsTenant]
    serializer_class = TenantSubscriptionSerializer

    def get_queryset(self):  # type: ignore[override]
        return subscription_list(user=self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SubscriptionCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = subscription_create(owner=request.user, plan=data["plan"], name=data["name"])
        data = TenantSubscriptionSerializer(subscription, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def quotas(self, request: Request, pk: str | None = None) -> Response:
        """Each quota of the services the plan offers, with what is used and what remains."""
        quotas = quota_list(self.get_object())
        return Response(QuotaSerializer(quotas, many=True).data)

    @extend_schema(methods=["GET"], responses={200: CoAdminSerializer(many=True), **ERRORS})
    @extend_schema(methods=["POST"], request=CoAdminAddSerializer, responses={201: CoAdminSerializer, **ERRORS})
    @action(detail=True, methods=["get", "post"], url_path="coadmins", pagination_class=None, filter_backends=[])
    def coadmins(self, request: Request, pk: str | None = None) -> Response:
        """The subscription's co-administrators (GET), or add one by email (POST). Owner only: a
        co-administrator gets 403."""
        subscription = self.get_object()
        subscription_require_owner(user=request.user, subscription=subscription, action=COADMIN_ACTION)
        if request.method == "GET":
            return Response(CoAdminSerializer(coadmin_list(subscription=subscription), many=True).data)
        serializer = CoAdminAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coadmin = coadmin_add(subscription=subscription, by=request.user, email=serializer.validated_data["email"])
        return Response(CoAdminSerializer(coadmin).data, status=status.HTTP_201_CREATED)

    @action(
        detail=True,
        methods=["delete"],
        url_path=r"coadmins/(?P<coadmin_pk>[^/.]+)",
        url_name="coadmin-remove",
        filter_backends=[],
    )
    def coadmin_remove(self, request: Request, pk: str | None = None, coadmin_pk: str | None = None) -> Response:
        """Remove a co-administrator (owner only); from its next request it gets 404 for the subscription."""
        subscription = self.get_object()
        subscription_require_owner(user=request.user, subscription=subscription, action=COADMIN_ACTION)
        try:
            coadmin = coadmin_list(subscription=subscription).get(pk=coadmin_pk)
        except (SubscriptionCoAdmin.DoesNotExist, ValidationError) as exc:  # ValidationError: not a UUID
            raise Http404 from exc
        coadmin_remove(subscription=subscription, by=request.user, coadmin=coadmin)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel (owner only, confirmed with its name): every resource is deleted through jobs."""
        subscription = self.get_object()
        subscription_require_owner(user=request.user, subscription=subscription, action="cancel it")
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = subscription_cancel(
            subscription=subscription, user=request.user, confirm_name=serializer.validated_data["confirm_name"]
        )
        subscription.refresh_from_db()
        return accepted_job(
            request,
            job,
            body={
                "subscription": TenantSubscriptionSerializer(subscription, context=self.get_serializer_context()).data
            },
        )
