"""Staff API of plans (with their services from the plan-service registry), add-ons,
subscriptions and tenant accounts."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.access import Capability
from portal.api import ERRORS, IsStaff, accepted_job, accepted_serializer
from tenants.filters import SubscriptionFilter
from tenants.mail import tenant_signup_link
from tenants.plan_services import plan_service, subscription_quotas
from tenants.selectors import addon_list, plan_list, signup_invitation_list, subscription_staff_list
from tenants.services import (
    addon_save,
    addon_set_state,
    plan_clone,
    plan_create,
    plan_invitation_clear,
    plan_invitation_rotate,
    plan_service_remove,
    plan_service_set,
    plan_set_state,
    plan_update,
    signup_invitation_create,
    signup_invitation_revoke,
    subscription_activate,
    subscription_change_plan,
    subscription_create,
    subscription_delete,
    subscription_resync,
    subscription_suspend,
)

from .serializers import (
    AddOnInputSerializer,
    AddOnSerializer,
    AddOnStateSerializer,
    ChangePlanSerializer,
    InvitationSerializer,
    PlanCloneSerializer,
    PlanCreateSerializer,
    PlanServiceInputSerializer,
    PlanStateSerializer,
    PlanUpdateSerializer,
    QuotaSerializer,
    SignupInvitationCreatedSerializer,
    SignupInvitationCreateSerializer,
    SignupInvitationSerializer,
    StaffPlanSerializer,
    StaffSubscriptionCreateSerializer,
    StaffSubscriptionSerializer,
    SuspendSerializer,
    with_offers,
)

SubscriptionAccepted = accepted_serializer("SubscriptionAccepted", subscription=StaffSubscriptionSerializer())


@extend_schema_view(
    create=extend_schema(request=PlanCreateSerializer, responses={201: StaffPlanSerializer, **ERRORS}),
    partial_update=extend_schema(request=PlanUpdateSerializer, responses={200: StaffPlanSerializer, **ERRORS}),
    state=extend_schema(request=PlanStateSerializer, responses={200: StaffPlanSerializer, **ERRORS}),
    clone=extend_schema(request=PlanCloneSerializer, responses={201: StaffPlanSerializer, **ERRORS}),
    service=extend_schema(
        request=PlanServiceInputSerializer,
        responses={200: StaffPlanSerializer, **ERRORS},
        parameters=[OpenApiParameter("service", str, OpenApiParameter.PATH, description="e.g. vm_cloud")],
    ),
)
class PlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every plan with its subscriber count and its services (offer, quotas, allow-lists) as the
    plan-service registry describes them. Created private; made public with `state`."""

    permission_classes = [IsStaff]
    capabilities = {
        "list": Capability.VIEW,
        "retrieve": Capability.VIEW,
        "create": Capability.ADMINISTER,
        "partial_update": Capability.ADMINISTER,
        "state": Capability.ADMINISTER,
        "clone": Capability.ADMINISTER,
        "invitation": Capability.ADMINISTER,
        "service": Capability.ADMINISTER,
    }
    serializer_class = StaffPlanSerializer

    def get_queryset(self):  # type: ignore[override]
        return plan_list(user=self.request.user).prefetch_related("addons")

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            with_offers(args[0])
        return super().get_serializer(*args, **kwargs)

    def _plan_body(self, pk: Any) -> dict[str, Any]:
        return self.get_serializer(self.get_queryset().get(pk=pk)).data

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = PlanCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan = plan_create(**serializer.validated_data)
        return Response(self._plan_body(plan.pk), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        plan = self.get_object()
        serializer = PlanUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        current = {
            "name": plan.name,
            "description": plan.description,
            "max_subscriptions_per_account": plan.max_subscriptions_per_account,
        }
        plan_update(plan=plan, **{**current, **serializer.validated_data})
        return Response(self._plan_body(plan.pk))

    @action(detail=True, methods=["post"])
    def state(self, request: Request, pk: str | None = None) -> Response:
        """Move the plan to private, public or decommissioned."""
        plan = self.get_object()
        serializer = PlanStateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan_set_state(plan=plan, state=serializer.validated_data["state"])
        return Response(self._plan_body(plan.pk))

    @action(detail=True, methods=["post"])
    def clone(self, request: Request, pk: str | None = None) -> Response:
        """A private copy of the plan (services, quotas, allow-lists, add-ons) under a new name."""
        plan = self.get_object()
        serializer = PlanCloneSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        clone = plan_clone(plan=plan, name=serializer.validated_data["name"])
        return Response(self._plan_body(clone.pk), status=status.HTTP_201_CREATED)

    @extend_schema(methods=["POST"], request=None, responses={200: InvitationSerializer, **ERRORS})
    @extend_schema(methods=["DELETE"], request=None, responses={200: StaffPlanSerializer, **ERRORS})
    @action(detail=True, methods=["post", "delete"])
    def invitation(self, request: Request, pk: str | None = None) -> Response:
        """POST: generate or rotate the plan's invitation code; the answer is the only time it is
        shown. DELETE: withdraw it (the old code stops working)."""
        plan = self.get_object()
        if request.method == "DELETE":
            plan_invitation_clear(plan=plan)
            return Response(self._plan_body(plan.pk))
        return Response({"invitation_code": plan_invitation_rotate(plan=plan)})

    @action(detail=True, methods=["put", "delete"], url_path=r"services/(?P<service>[^/.]+)")
    def service(self, request: Request, pk: str | None = None, service: str = "") -> Response:
        """PUT: offer the service in the plan (or change it): its offer fields and quotas (null or
        absent: unlimited). DELETE: stop offering it (refused while subscriptions use it)."""
        plan = self.get_object()
        svc = plan_service(service)
        if request.method == "DELETE":
            plan_service_remove(plan=plan, service=svc.name)
            return Response(self._plan_body(plan.pk))
        serializer = PlanServiceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        form = svc.offer_form(plan=plan, data=serializer.validated_data["offer"], user=request.user, prefix="")
        if not form.is_valid():
            raise ValidationError({f"offer.{k}": v for k, v in form.errors.items()})
        plan_service_set(
            plan=plan, service=svc.name, offer=form.cleaned_data, quotas=serializer.validated_data["quotas"]
        )
        return Response(self._plan_body(plan.pk))


@extend_schema_view(
    create=extend_schema(request=AddOnInputSerializer, responses={201: AddOnSerializer, **ERRORS}),
    update=extend_schema(request=AddOnInputSerializer, responses={200: AddOnSerializer, **ERRORS}),
    state=extend_schema(request=AddOnStateSerializer, responses={200: AddOnSerializer, **ERRORS}),
)
class AddOnViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Add-ons: packs of extra quota per service, offered with plans, up to a count per subscription.
    PUT replaces one; `state` retires it (sold no more) or sells it again."""

    permission_classes = [IsStaff]
    capabilities = {
        "list": Capability.VIEW,
        "retrieve": Capability.VIEW,
        # What is sold: administrators only.
        "create": Capability.ADMINISTER,
        "update": Capability.ADMINISTER,
        "state": Capability.ADMINISTER,
    }
    serializer_class = AddOnSerializer

    def get_queryset(self):  # type: ignore[override]
        return addon_list(user=self.request.user)

    def _save(self, request: Request, addon: Any = None) -> Any:
        serializer = AddOnInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return addon_save(addon=addon, **serializer.validated_data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        addon = self._save(request)
        return Response(AddOnSerializer(self.get_queryset().get(pk=addon.pk)).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        addon = self._save(request, self.get_object())
        return Response(AddOnSerializer(self.get_queryset().get(pk=addon.pk)).data)

    @action(detail=True, methods=["post"])
    def state(self, request: Request, pk: str | None = None) -> Response:
        addon = self.get_object()
        serializer = AddOnStateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        addon_set_state(addon=addon, state=serializer.validated_data["state"])
        return Response(AddOnSerializer(self.get_queryset().get(pk=addon.pk)).data)


@extend_schema_view(
    create=extend_schema(
        request=StaffSubscriptionCreateSerializer, responses={201: StaffSubscriptionSerializer, **ERRORS}
    ),
    destroy=extend_schema(request=None, responses={202: SubscriptionAccepted, **ERRORS}),
    suspend=extend_schema(request=SuspendSerializer, responses={202: SubscriptionAccepted, **ERRORS}),
    activate=extend_schema(request=None, responses={202: SubscriptionAccepted, **ERRORS}),
    resync=extend_schema(request=None, responses={202: SubscriptionAccepted, **ERRORS}),
    change_plan=extend_schema(request=ChangePlanSerializer, responses={200: StaffSubscriptionSerializer, **ERRORS}),
    quotas=extend_schema(responses={200: QuotaSerializer(many=True), **ERRORS}),
)
class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every subscription (newest first; filter by search, plan, state, owner, sync_state,
    over_quota) with its sync state and what its last lifecycle action left; `quotas` shows plan,
    add-ons, effective and used. Suspend, activate, delete (DELETE) and re-sync fan out as jobs:
    202 with the parent job, whose progress is its resources' jobs'."""

    permission_classes = [IsStaff]
    capabilities = {
        "list": Capability.VIEW,
        "retrieve": Capability.VIEW,
        # The lifecycle of what a tenant bought: operators run it.
        "suspend": Capability.OPERATE,
        "activate": Capability.OPERATE,
        "destroy": Capability.OPERATE,
        "resync": Capability.OPERATE,
        # Assigning a plan to an account, or another plan: what is sold, administrators only.
        "create": Capability.ADMINISTER,
        "change_plan": Capability.ADMINISTER,
        "quotas": Capability.VIEW,
    }
    serializer_class = StaffSubscriptionSerializer
    filterset_class = SubscriptionFilter

    def get_queryset(self):  # type: ignore[override]
        return subscription_staff_list(user=self.request.user)

    def _body(self, pk: Any) -> dict[str, Any]:
        return StaffSubscriptionSerializer(self.get_queryset().get(pk=pk)).data

    def _accepted(self, request: Request, job: Any) -> Response:
        return accepted_job(request, job, body={"subscription": self._body(job.target_id)})

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = StaffSubscriptionCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = subscription_create(owner=data["owner"], plan=data["plan"], name=data["name"], by=request.user)
        return Response(self._body(subscription.pk), status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete: every resource is deprovisioned through jobs; the records stay."""
        return self._accepted(request, subscription_delete(subscription=self.get_object(), by=request.user))

    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str | None = None) -> Response:
        """Suspend with a reason the tenant sees: every running resource is stopped through jobs."""
        subscription = self.get_object()
        serializer = SuspendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = subscription_suspend(
            subscription=subscription, reason=serializer.validated_data["reason"], by=request.user
        )
        return self._accepted(request, job)

    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Activate: what was running before the suspension is started again."""
        return self._accepted(request, subscription_activate(subscription=self.get_object(), by=request.user))

    @action(detail=True, methods=["post"])
    def resync(self, request: Request, pk: str | None = None) -> Response:
        """Finish the last lifecycle action on the resources it didn't reach."""
        return self._accepted(request, subscription_resync(subscription=self.get_object(), by=request.user))

    @action(detail=True, methods=["post"], url_path="change-plan", url_name="change-plan")
    def change_plan(self, request: Request, pk: str | None = None) -> Response:
        """Move to another plan; refused (409) naming each quota the current use doesn't fit."""
        subscription = self.get_object()
        serializer = ChangePlanSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        subscription_change_plan(subscription=subscription, plan=serializer.validated_data["plan"], by=request.user)
        return Response(self._body(subscription.pk))

    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def quotas(self, request: Request, pk: str | None = None) -> Response:
        sub = self.get_object()
        return Response(QuotaSerializer(subscription_quotas([sub])[sub.pk], many=True).data)


@extend_schema_view(
    create=extend_schema(
        request=SignupInvitationCreateSerializer, responses={201: SignupInvitationCreatedSerializer, **ERRORS}
    ),
    revoke=extend_schema(request=None, responses={200: SignupInvitationSerializer, **ERRORS}),
)
class SignupInvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Sign-up invitations, newest first. POST invites an address (the code is in that answer only,
    and mailed); `revoke` makes a pending one unusable. Administrators only (declared with the roles)."""

    permission_classes = [IsStaff]
    capabilities = {
        "list": Capability.VIEW,
        "retrieve": Capability.VIEW,
        "create": Capability.ADMINISTER,
        "revoke": Capability.ADMINISTER,
    }
    serializer_class = SignupInvitationSerializer

    def get_queryset(self):  # type: ignore[override]
        return signup_invitation_list(user=self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SignupInvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, code, sent = signup_invitation_create(
            by=request.user, link=tenant_signup_link(request), **serializer.validated_data
        )
        invitation.code, invitation.mail_sent = code, sent  # type: ignore[attr-defined]  # this answer only
        return Response(SignupInvitationCreatedSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        invitation = signup_invitation_revoke(invitation=self.get_object())
        return Response(SignupInvitationSerializer(invitation).data)
