"""Reference views for bench/vm_list.py, served only by bench.settings.

floor: the VM list API's first page without DRF — the same selectors (so the same SQL), the same
middleware and session sign-in, the same fields, rows built by hand and returned by JsonResponse.
It is what the API could cost at best; the API is measured against it.
minimal: the cheapest Django JSON view (no session read, no query): the framework's own ceiling.
auth probes (bench/api_auth.py): the smallest DRF view behind one authentication class each, so
what differs between them is the cost of authenticating (Basic auth is no longer in the product).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fabric.selectors import vm_active_jobs, vm_list
from fabric.services import vm_allowed_actions
from tenants.auth import TokenAuthentication

PAGE = 50


@login_required
def floor_vm_list(request: HttpRequest) -> JsonResponse:
    vms = list(vm_list(user=request.user).order_by("-created_at", "-id")[: PAGE + 1])
    more, vms = len(vms) > PAGE, vms[:PAGE]
    jobs = vm_active_jobs(vms)
    rows = []
    for vm in vms:
        job = jobs.get(str(vm.pk))
        rows.append(
            {
                "id": str(vm.pk),
                "url": request.build_absolute_uri(f"/api/v1/vms/{vm.pk}/"),
                "name": vm.name,
                "subscription": str(vm.subscription_id),
                "state": vm.state,
                "template": {"id": vm.template.pk, "name": vm.template.name, "os_type": vm.template.os_type},
                "hardware_profile": {
                    "id": vm.hardware_profile.pk,
                    "name": vm.hardware_profile.name,
                    "cpu": vm.hardware_profile.cpu,
                    "memory_mb": vm.hardware_profile.memory_mb,
                },
                "cpu": vm.cpu,
                "memory_mb": vm.memory_mb,
                "disk_gb": vm.disk_gb,
                "admin_username": vm.admin_username,
                "allowed_actions": vm_allowed_actions(vm),
                "job": {"id": str(job.pk), "state": job.state} if job else None,
                "created_at": vm.created_at.isoformat(),
                "updated_at": vm.updated_at.isoformat(),
            }
        )
    return JsonResponse({"next": "more" if more else None, "previous": None, "results": rows})


def minimal(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


class AuthProbe(APIView):
    """Answers the signed-in account's id: DRF's default permission (IsAuthenticated) applies."""

    def get(self, request: Request) -> Response:
        return Response({"user": request.user.pk})


def auth_probe(authentication_class: type) -> object:
    return AuthProbe.as_view(authentication_classes=[authentication_class])


session_probe = auth_probe(SessionAuthentication)
token_probe = auth_probe(TokenAuthentication)
basic_probe = auth_probe(BasicAuthentication)
