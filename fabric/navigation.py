"""Where VMs and fabric appear in the portals: rail entries, "+ New" choices and overview tiles
(registered from FabricConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal.access import Capability, has_capability
from portal.navigation import NewChoice, OverviewTile, RailEntry

from .models import FabricEndpoint, VirtualMachine
from .selectors import cloud_list, vm_list


def _clouds(request: HttpRequest) -> dict[str, Any]:
    return {"clouds": cloud_list(user=request.user)}


def _recent_vms(request: HttpRequest) -> dict[str, Any]:
    return {"vms": vm_list(user=request.user)[:10]}


NAVIGATION = (
    RailEntry(
        "staff", "Fabric", "staff:endpoints", order=10, count=FabricEndpoint.objects.visible_to, active=("endpoint",)
    ),
    RailEntry(
        "tenant",
        "Virtual machines",
        "tenant:vms",
        order=10,
        count=VirtualMachine.objects.visible_to,
        active=("vm",),
    ),
    NewChoice(
        "staff",
        "Fabric endpoint",
        "staff:endpoint-create",
        "Register a fabric; its stamps and clouds are synced.",
        order=10,
        allowed=lambda user: has_capability(user, Capability.ADMINISTER),
    ),
    NewChoice(
        "tenant", "Virtual machine", "tenant:vm-create", "A VM from a template, in one of your subscriptions.", order=10
    ),
    OverviewTile("staff", "Clouds", "staff/fabric/_overview_clouds.html", _clouds, order=10),
    OverviewTile("tenant", "Virtual machines", "tenant/fabric/_overview_vms.html", _recent_vms, order=20),
)
