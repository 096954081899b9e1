"""Staff API of plans, subscriptions and tenant accounts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api import ERRORS, IsStaff
from tenants.mail import tenant_signup_link
from tenants.selectors import account_list, plan_list, signup_invitation_list, subscription_list
from tenants.services import plan_create, plan_set_state, signup_invitation_create, signup_invitation_revoke

from .serializers import (
    AccountSerializer,
    PlanCreateSerializer,
    PlanStateSerializer,
    SignupInvitationCreatedSerializer,
    SignupInvitationCreateSerializer,
    SignupInvitationSerializer,
    StaffPlanSerializer,
    StaffSubscriptionSerializer,
)


@extend_schema_view(
    create=extend_schema(request=PlanCreateSerializer, responses={201: StaffPlanSerializer, **ERRORS}),
    state=extend_schema(request=PlanStateSerializer, responses={200: StaffPlanSerializer, **ERRORS}),
)
class PlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every plan with its subscriber count and VM cloud. Created private; made public with `state`."""

    permission_classes = [IsStaff]
    serializer_class = StaffPlanSerializer

    def get_queryset(self):  # type: ignore[override]
        return plan_list(user=self.request.user).select_related("vm_cloud_service__cloud").order_by("name")

    def _plan_body(self, pk: Any) -> dict[str, Any]:
        return StaffPlanSerializer(self.get_queryset().get(pk=pk)).data

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = PlanCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan = plan_create(**serializer.validated_data)
        return Response(self._plan_body(plan.pk), status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def state(self, request: Request, pk: str | None = None) -> Response:
        """Move the plan to private, public or decommissioned."""
        plan = self.get_object()
        serializer = PlanStateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan_set_state(plan=plan, state=serializer.validated_data["state"])
        return Response(self._plan_body(plan.pk))


class SubscriptionViewSet(viewsets.ReadOnlyModelViewSet):
    """Every subscription, with its owner and plan."""

    permission_classes = [IsStaff]
    serializer_class = StaffSubscriptionSerializer

    def get_queryset(self):  # type: ignore[override]
        return subscription_list(user=self.request.user)


class AccountViewSet(viewsets.ReadOnlyModelViewSet):
    """Tenant accounts with their live subscription count."""

    permission_classes = [IsStaff]
    serializer_class = AccountSerializer

    def get_queryset(self):  # type: ignore[override]
        return account_list(user=self.request.user).order_by("email")


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
