"""Staff API of tenant accounts (list, search, detail, lock, unlock, password reset, delete) and of
staff accounts and their roles. The same services and role check as the pages: reading is for every
staff role, changing an account for administrators (portal.access)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.access import ROLE_CAPABILITIES, Capability, StaffRole
from portal.api import ERRORS, IsStaff
from portal.services import totp_devices_remove
from tenants.selectors import account_list, staff_account_list
from tenants.services import (
    account_delete,
    account_lock,
    account_password_reset,
    account_unlock,
    staff_account_activate,
    staff_account_create,
    staff_account_deactivate,
    staff_role_set,
    staff_set_password_link_send,
)

from .serializers import (
    AccountSerializer,
    StaffAccountCreateSerializer,
    StaffAccountSerializer,
    StaffRoleInfoSerializer,
    StaffRoleSerializer,
    TemporaryPasswordSerializer,
)

ACCOUNT_ACTION = extend_schema(request=None, responses={200: AccountSerializer, **ERRORS})
STAFF_ACTION = extend_schema(request=None, responses={200: StaffAccountSerializer, **ERRORS})


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("search", OpenApiTypes.STR, description="part of the email address or name")]
    ),
    destroy=extend_schema(responses={204: None, **ERRORS}),
    lock=ACCOUNT_ACTION,
    unlock=ACCOUNT_ACTION,
    reset_password=extend_schema(request=None, responses={200: TemporaryPasswordSerializer, **ERRORS}),
)
class AccountViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Tenant accounts with their live subscription count. DELETE only an account without
    subscriptions other than deleted ones (409 naming them otherwise)."""

    permission_classes = [IsStaff]
    capabilities = {
        "list": Capability.VIEW,
        "retrieve": Capability.VIEW,
        "destroy": Capability.ADMINISTER,
        "lock": Capability.ADMINISTER,
        "unlock": Capability.ADMINISTER,
        "reset_password": Capability.ADMINISTER,
    }
    serializer_class = AccountSerializer

    def get_queryset(self):  # type: ignore[override]
        search = self.request.query_params.get("search", "")[:100] if self.action == "list" else ""
        return account_list(user=self.request.user, search=search)

    def perform_destroy(self, instance: Any) -> None:
        account_delete(account=instance)

    def _answer(self, account: Any) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=account.pk)).data)

    @action(detail=True, methods=["post"])
    def lock(self, request: Request, pk: Any = None) -> Response:
        """Refuse the account's sign-ins and API tokens; its sessions end at their next request."""
        return self._answer(account_lock(account=self.get_object()))

    @action(detail=True, methods=["post"])
    def unlock(self, request: Request, pk: Any = None) -> Response:
        """Let a locked account sign in again."""
        return self._answer(account_unlock(account=self.get_object()))

    @action(detail=True, methods=["post"], url_path="reset-password")
    def reset_password(self, request: Request, pk: Any = None) -> Response:
        """Set a random temporary password, returned in this answer only; the account's sessions end."""
        account = self.get_object()
        password = account_password_reset(account=account)
        body = {"account": self.get_serializer(account).data, "password": password}
        return Response(body, headers={"Cache-Control": "no-store"})


@extend_schema_view(
    create=extend_schema(request=StaffAccountCreateSerializer, responses={201: StaffAccountSerializer, **ERRORS}),
    role=extend_schema(request=StaffRoleSerializer, responses={200: StaffAccountSerializer, **ERRORS}),
    deactivate=STAFF_ACTION,
    reset_two_factor=STAFF_ACTION,
    activate=STAFF_ACTION,
)
class StaffAccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Staff accounts and their roles (administrators only). The last active administrator can't be
    demoted or deactivated (409)."""

    permission_classes = [IsStaff]
    capabilities = {
        "list": Capability.ADMINISTER,
        "retrieve": Capability.ADMINISTER,
        "create": Capability.ADMINISTER,
        "role": Capability.ADMINISTER,
        "deactivate": Capability.ADMINISTER,
        "activate": Capability.ADMINISTER,
        "reset_two_factor": Capability.ADMINISTER,
    }
    serializer_class = StaffAccountSerializer

    def get_queryset(self):  # type: ignore[override]
        return staff_account_list(user=self.request.user)

    def _answer(self, account: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=account.pk)).data, **kwargs)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = StaffAccountCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account = staff_account_create(
            email=data["email"], full_name=data["full_name"], role=data["role"], password=data["password"] or None
        )
        if not data["password"]:
            staff_set_password_link_send(account=account, site_url=request.build_absolute_uri("/"))
        return self._answer(account, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def role(self, request: Request, pk: Any = None) -> Response:
        """Change the account's role."""
        account = self.get_object()
        serializer = StaffRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(staff_role_set(account=account, role=serializer.validated_data["role"]))

    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: Any = None) -> Response:
        """The account can't sign in any more; its sessions end at their next request."""
        return self._answer(staff_account_deactivate(account=self.get_object()))

    @action(detail=True, methods=["post"], url_path="reset-two-factor")
    def reset_two_factor(self, request: Request, pk: Any = None) -> Response:
        """Remove the account's TOTP device (a lost phone): it enrols again after its next sign-in."""
        account = self.get_object()
        totp_devices_remove(user=account)
        return self._answer(account)

    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: Any = None) -> Response:
        """Let a deactivated account sign in again."""
        return self._answer(staff_account_activate(account=self.get_object()))


class StaffRoleViewSet(viewsets.GenericViewSet):
    """The staff roles and what each may do (`view`, `operate`, `administer`)."""

    permission_classes = [IsStaff]
    capabilities = {"list": Capability.VIEW}
    serializer_class = StaffRoleInfoSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(responses={200: StaffRoleInfoSerializer(many=True), **ERRORS})
    def list(self, request: Request) -> Response:
        roles = [
            {"role": role.value, "label": role.label, "capabilities": sorted(ROLE_CAPABILITIES[role])}
            for role in StaffRole
        ]
        return Response(roles)
