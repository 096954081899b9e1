"""The tenant portal's VM pages: list, quick create, detail with actions.

Reads go through fabric.selectors (scoped by `visible_to`, so another tenant's VM is a 404) and
writes through fabric.services; jobs do the fabric work, these pages only show their progress.
Pages are one template each with named partials that htmx re-fetches when a job finishes.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from portal.exceptions import ServiceError
from portal.forms import apply_service_error, error_message
from portal.models import Job
from tenants.models import Subscription
from tenants.quotas import quota_list
from tenants.selectors import subscription_get

from ..forms import VMQuickCreateForm
from ..models import VirtualMachine
from ..selectors import vm_active_jobs, vm_get, vm_job_list, vm_list
from ..services import VM_ACTIONS, vm_action, vm_allowed_actions, vm_create

ACTION_LABELS = {"start": "Start", "stop": "Stop", "shutdown": "Shut down", "restart": "Restart", "delete": "Delete"}
ACTION_PROGRESS = {
    "start": "Starting",
    "stop": "Stopping",
    "shutdown": "Shutting down",
    "restart": "Restarting",
    "delete": "Deleting",
}
RECENT_JOBS = 10


def _is_partial_request(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


def _vm_or_404(request: HttpRequest, pk: Any) -> VirtualMachine:
    try:
        return vm_get(user=request.user, pk=pk)
    except VirtualMachine.DoesNotExist as exc:
        raise Http404("No such virtual machine.") from exc


def _action_bar(vm: VirtualMachine) -> list[dict[str, Any]]:
    """Every action with whether the VM's state allows it now and, if not, why (the button's tooltip)."""
    allowed = vm_allowed_actions(vm)
    bar = []
    for action, (states, _, _) in VM_ACTIONS.items():
        if action in allowed:
            reason = ""
        elif vm.is_busy:
            reason = f"Not available while the VM is {vm.get_state_display().lower()}."
        else:
            names = " or ".join(VirtualMachine(state=s).get_state_display().lower() for s in states)
            reason = f"Available when the VM is {names}."
        bar.append({"action": action, "label": ACTION_LABELS[action], "allowed": not reason, "reason": reason})
    return bar


@login_required
def vm_list_page(request: HttpRequest) -> HttpResponse:
    subscription = None
    if raw := request.GET.get("subscription"):
        try:
            subscription = subscription_get(user=request.user, pk=raw)
        except (Subscription.DoesNotExist, ValidationError) as exc:
            raise Http404("No such subscription.") from exc
    page = Paginator(vm_list(user=request.user, subscription=subscription), 50).get_page(request.GET.get("page"))
    vms = list(page.object_list)
    jobs = vm_active_jobs(vms)
    for vm in vms:
        vm.active_job = jobs.get(str(vm.pk))
    can_create = bool(vms) or Subscription.objects.usable_by(request.user).exists()
    return render(
        request,
        "tenant/fabric/vm_list.html",
        {"page": page, "vms": vms, "subscription": subscription, "can_create": can_create},
    )


@login_required
def vm_row(request: HttpRequest, pk: Any) -> HttpResponse:
    """One row of the VM list, re-fetched by htmx when a job ends. A VM that is gone (deleted) gives
    an empty row to htmx, so the row disappears; a plain request gets the usual 404."""
    try:
        vm = vm_get(user=request.user, pk=pk)
    except VirtualMachine.DoesNotExist as exc:
        if _is_partial_request(request):
            return HttpResponse("")
        raise Http404("No such virtual machine.") from exc
    vm.active_job = vm_active_jobs([vm]).get(str(vm.pk))
    return render(request, "tenant/fabric/vm_list.html#vm-row", {"vm": vm})


@login_required
@vary_on_headers("HX-Request")
def vm_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """The VM's page; to htmx, only its summary (state, progress, actions, jobs) partial."""
    try:
        vm = vm_get(user=request.user, pk=pk)
    except VirtualMachine.DoesNotExist as exc:
        if _is_partial_request(request):
            # The VM went away while its page was open (its deletion finished): back to the list.
            messages.info(request, "The virtual machine has been deleted.")
            response = HttpResponse("", status=404)
            response["HX-Redirect"] = reverse("tenant:vms")
            return response
        raise Http404("No such virtual machine.") from exc
    recent: list[Job] = list(vm_job_list(user=request.user, vm=vm)[:RECENT_JOBS])
    active = [job for job in recent if not job.is_finished]
    context = {
        "vm": vm,
        "active_job": active[0] if active else None,
        "jobs": recent,
        "actions": _action_bar(vm),
    }
    template = "tenant/fabric/vm_detail.html"
    if _is_partial_request(request):
        template += "#vm-summary"
    return render(request, template, context)


@login_required
@require_POST
def vm_action_view(request: HttpRequest, pk: Any, action: str) -> HttpResponse:
    """Start a power action or deletion; refusals (wrong state, suspended subscription) become a message."""
    vm = _vm_or_404(request, pk)
    if action not in VM_ACTIONS:
        raise Http404("No such action.")
    try:
        vm_action(vm=vm, action=action, created_by=request.user)
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"{ACTION_PROGRESS[action]} '{vm.name}'. Progress is shown below.")
    return redirect("tenant:vm", pk=vm.pk)


@login_required
def vm_delete_confirm(request: HttpRequest, pk: Any) -> HttpResponse:
    """Deleting can't be undone, so it is asked for on its own page (no script needed)."""
    vm = _vm_or_404(request, pk)
    delete = next(item for item in _action_bar(vm) if item["action"] == "delete")
    return render(request, "tenant/fabric/vm_delete.html", {"vm": vm, "delete": delete})


@login_required
@vary_on_headers("HX-Request")
def vm_create_page(request: HttpRequest) -> HttpResponse:
    """Quick create. To htmx (the subscription select changed) only the catalog and quota partial."""
    if request.method == "POST":
        form = VMQuickCreateForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                vm, _ = vm_create(
                    subscription=data["subscription"],
                    name=data["name"],
                    template=data["template"],
                    hardware_profile=data["hardware_profile"],
                    admin_username=data["admin_username"],
                    admin_password=data["admin_password"],
                    created_by=request.user,
                )
            except (ValidationError, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(request, f"Creating '{vm.name}'. Progress is shown below.")
                return redirect("tenant:vm", pk=vm.pk)
    else:
        initial = {"subscription": request.GET["subscription"]} if request.GET.get("subscription") else {}
        form = VMQuickCreateForm(initial=initial, user=request.user)
    # Picking another subscription reloads its catalog and quota use (the form still works without it).
    form.fields["subscription"].widget.attrs.update(
        {"hx-get": reverse("tenant:vm-create"), "hx-target": "#catalog", "hx-swap": "outerHTML"}
    )
    context = {"form": form, "quotas": quota_list(form.subscription) if form.subscription else []}
    template = "tenant/fabric/vm_create.html"
    if request.method == "GET" and _is_partial_request(request):
        template += "#catalog"
    return render(request, template, context)
