"""Tenant API of plans, subscriptions, their quotas, add-ons and co-administrators; querysets from
tenants.selectors (scoped by `visible_to`)."""

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
from portal.exceptions import NotAllowed
from tenants.models import SubscriptionCoAdmin
from tenants.plan_services import subscription_quotas
from tenants.selectors import addons_for_subscription, coadmin_list, plan_list, subscription_list
from tenants.services import (
    coadmin_add,
    coadmin_remove,
    plan_find_by_invitation,
    subscription_addon_buy,
    subscription_addon_remove,
    subscription_cancel,
    subscription_create,
    subscription_require_owner,
)

from .serializers import (
    AddOnBuySerializer,
    CancelSerializer,
    CoAdminAddSerializer,
    CoAdminSerializer,
    HeldAddOnSerializer,
    QuotaSerializer,
    SubscriptionCreateSerializer,
    TenantPlanSerializer,
    TenantSubscriptionSerializer,
    with_offers,
)

COADMIN_ACTION = "manage co-administrators"
CancelAccepted = accepted_serializer("SubscriptionCancelAccepted", subscription=TenantSubscriptionSerializer())
ADDON_ACTION = "buy or remove add-ons"


class PlanViewSet(viewsets.ReadOnlyModelViewSet):
    """Public plans a tenant may subscribe to, with each service's quotas and allow-lists."""

    permission_classes = [IsTenant]
    serializer_class = TenantPlanSerializer

    def get_queryset(self):  # type: ignore[override]
        return plan_list(user=self.request.user)

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            with_offers(args[0])
        return super().get_serializer(*args, **kwargs)


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
    addon_remove=extend_schema(
        request=None,
        responses={200: HeldAddOnSerializer(many=True), **ERRORS},
        parameters=[OpenApiParameter("addon_pk", int, OpenApiParameter.PATH, description="The add-on's id")],
    ),
)
class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The subscriptions the account owns or co-administers (`role`); POST subscribes to a public
    plan, or to a private one with its invitation code."""

    permission_classes = [IsTenant]
    serializer_class = TenantSubscriptionSerializer

    def get_queryset(self):  # type: ignore[override]
        return subscription_list(user=self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SubscriptionCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        plan = data["plan"]
        if plan is None:
            plan = plan_find_by_invitation(code=data["invitation_code"])
            if plan is None:
                raise NotAllowed("This invitation code is not valid.", field="invitation_code")
        subscription = subscription_create(
            owner=request.user, plan=plan, name=data["name"], invitation_code=data["invitation_code"]
        )
        body = TenantSubscriptionSerializer(subscription, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def quotas(self, request: Request, pk: str | None = None) -> Response:
        """Each quota of the services the plan offers: the plan's limit, what add-ons add, the
        effective limit, what is used and what remains."""
        sub = self.get_object()
        return Response(QuotaSerializer(subscription_quotas([sub])[sub.pk], many=True).data)

    def _held(self, sub: Any) -> Response:
        rows = [{"addon": a, "quantity": n} for a, n in addons_for_subscription(subscription=sub)]
        return Response(HeldAddOnSerializer(rows, many=True).data)

    @extend_schema(methods=["GET"], request=None, responses={200: HeldAddOnSerializer(many=True), **ERRORS})
    @extend_schema(
        methods=["POST"], request=AddOnBuySerializer, responses={200: HeldAddOnSerializer(many=True), **ERRORS}
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def addons(self, request: Request, pk: str | None = None) -> Response:
        """GET: the add-ons the subscription may buy or holds, with how many. POST {addon}: buy one
        (the owner only: a co-administrator gets 403)."""
        sub = self.get_object()
        if request.method == "POST":  # the service lets only the owner buy (403 for a co-administrator)
            serializer = AddOnBuySerializer(data=request.data, context=self.get_serializer_context())
            serializer.is_valid(raise_exception=True)
            subscription_addon_buy(subscription=sub, addon=serializer.validated_data["addon"], user=request.user)
        return self._held(sub)

    @action(
        detail=True,
        methods=["delete"],
        url_path=r"addons/(?P<addon_pk>[^/.]+)",
        pagination_class=None,
        filter_backends=[],
    )
    def addon_remove(self, request: Request, pk: str | None = None, addon_pk: str = "") -> Response:
        """Remove one of the add-on (the owner only); refused if current use wouldn't fit."""
        sub = self.get_object()
        subscription_require_owner(user=request.user, subscription=sub, action=ADDON_ACTION)
        addon = next((a for a, n in addons_for_subscription(subscription=sub) if str(a.pk) == addon_pk and n), None)
        if addon is None:
            raise Http404
        subscription_addon_remove(subscription=sub, addon=addon, user=request.user)
        return self._held(sub)

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
