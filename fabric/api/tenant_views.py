"""Tenant API of VMs and a subscription's catalog. Thin: querysets from fabric.selectors (scoped by
`visible_to`), every write through fabric.services, long work answered 202 with the job."""

from __future__ import annotations

from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, mixins, viewsets
from rest_framework.decorators import action as drf_action
from rest_framework.request import Request
from rest_framework.response import Response

from fabric.lifecycle import VM_ACTIONS, VMAction
from fabric.models import VirtualMachine, VMState
from fabric.selectors import vm_active_jobs, vm_catalog, vm_list
from fabric.services import vm_action, vm_create
from portal.api import ERRORS, IsTenant, accepted_job, accepted_serializer
from portal.pagination import CursorPagination
from tenants.selectors import subscription_list

from .serializers import CatalogSerializer, VMCreateSerializer, VMSerializer

VMAccepted = accepted_serializer("VMAccepted", vm=VMSerializer())


def _subscriptions(request: Any) -> Any:
    return subscription_list(user=getattr(request, "user", None))


class VMFilter(filters.FilterSet):
    subscription = filters.ModelChoiceFilter(queryset=_subscriptions)
    state = filters.ChoiceFilter(choices=VMState.choices)

    class Meta:
        model = VirtualMachine
        fields = ["subscription", "state"]


def _action_route(action: VMAction) -> Any:
    """POST /vms/{id}/<name>/ for a declared VM action (fabric.lifecycle): 202 with the job."""

    def view(self: VMViewSet, request: Request, pk: str | None = None) -> Response:
        return self._act(request, action.name)

    view.__name__ = action.name
    view.__doc__ = f"{action.label} the VM: answers 202 with the job."
    view = drf_action(detail=True, methods=["post"], url_path=action.name, url_name=action.name)(view)
    return extend_schema(request=None, responses={202: VMAccepted, **ERRORS})(view)


@extend_schema_view(
    create=extend_schema(request=VMCreateSerializer, responses={202: VMAccepted, **ERRORS}),
    destroy=extend_schema(request=None, responses={202: VMAccepted, **ERRORS}),
)
class VMViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The tenant's VMs, newest first in keyset pages (`next`/`previous` links; no count): quick-create,
    power actions and delete start jobs (202 + the job's URL)."""

    serializer_class = VMSerializer
    permission_classes = [IsTenant]
    filterset_class = VMFilter
    pagination_class = CursorPagination

    def get_queryset(self):  # type: ignore[override]
        return vm_list(user=self.request.user)

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        """List and detail rows show each VM's running job, read in one query for the page."""
        instance = args[0] if args else kwargs.get("instance")
        if instance is not None and self.action in ("list", "retrieve"):
            vms = list(instance) if kwargs.get("many") else [instance]
            kwargs.setdefault("context", self.get_serializer_context())["active_jobs"] = vm_active_jobs(vms)
        return super().get_serializer(*args, **kwargs)

    def _vm_body(self, request: Request, vm: VirtualMachine, job: Any) -> dict[str, Any]:
        context = {**self.get_serializer_context(), "active_jobs": {str(vm.pk): job}}
        return {"vm": VMSerializer(vm, context=context).data}

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = VMCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        vm, job = vm_create(
            subscription=data["subscription"],
            name=data["name"],
            template=data["template"],
            hardware_profile=data["hardware_profile"],
            admin_username=data["admin_username"],
            admin_password=data["admin_password"],
            created_by=request.user,
        )
        return accepted_job(request, job, body=self._vm_body(request, vm, job))

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._act(request, "delete")

    def _act(self, request: Request, name: str) -> Response:
        vm = self.get_object()
        job = vm_action(vm=vm, action=name, created_by=request.user)
        return accepted_job(request, job, body=self._vm_body(request, vm, job))


# One route per declared action; deleting is the VM's own DELETE (destroy above).
for _declared in VM_ACTIONS.values():
    if _declared.name != "delete":
        setattr(VMViewSet, _declared.name, _action_route(_declared))


class SubscriptionCatalogView(generics.GenericAPIView):
    """Templates and hardware profiles a subscription may create VMs from (its plan's cloud)."""

    permission_classes = [IsTenant]
    serializer_class = CatalogSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):  # type: ignore[override]
        return subscription_list(user=self.request.user)

    @extend_schema(responses={200: CatalogSerializer, **ERRORS})
    def get(self, request: Request, pk: str) -> Response:
        templates, sizes = vm_catalog(subscription=self.get_object())
        return Response(CatalogSerializer({"templates": templates, "hardware_profiles": sizes}).data)
