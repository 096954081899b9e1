"""The tenant portal's VM pages: list, quick create, detail with actions.

Reads go through fabric.selectors (scoped by `visible_to`, so another tenant's VM is a 404) and
writes through fabric.services; jobs do the fabric work, these pages only show their progress.
Pages are one template each with named partials that htmx re-fetches when a job finishes.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from portal.exceptions import ServiceError
from portal.forms import apply_service_error, error_message
from portal.models import Job
from portal.pagination import cursor_page
from portal.views import safe_next
from portal.views.jobs import job_poll_response
from tenants.models import Subscription, SubscriptionState
from tenants.plan_services import quota_list
from tenants.selectors import subscription_get

from .. import services
from ..forms import VMQuickCreateForm
from ..lifecycle import VM_ACTIONS, VMAction
from ..models import VirtualMachine
from ..selectors import vm_active_jobs, vm_get, vm_job_list, vm_list, vm_state_history
from ..services import BULK_MAX, vm_action, vm_create

RECENT_JOBS = 10
RECENT_STATE_CHANGES = 20


def _is_partial_request(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


def _vm_or_404(request: HttpRequest, pk: Any) -> VirtualMachine:
    try:
        return vm_get(user=request.user, pk=pk)
    except VirtualMachine.DoesNotExist as exc:
        raise Http404("No such virtual machine.") from exc


def _action_bar(vm: VirtualMachine) -> list[dict[str, Any]]:
    """Every declared action with whether the VM's state allows it now and, if not, why (the tooltip)."""
    bar = []
    for action in VM_ACTIONS.values():
        reason = action.refusal(vm)
        item = {"action": action.name, "label": action.label, "destructive": action.destructive}
        bar.append({**item, "allowed": not reason, "reason": reason})
    return bar


@login_required
def vm_list_page(request: HttpRequest) -> HttpResponse:
    """Newest first, one keyset page at a time (no count: the rail has a bounded one); rows with a
    running job show its progress, polled for the whole page at once (vm_statuses)."""
    subscription = None
    if raw := request.GET.get("subscription"):
        try:
            subscription = subscription_get(user=request.user, pk=raw)
        except (Subscription.DoesNotExist, ValidationError) as exc:
            raise Http404("No such subscription.") from exc
    page = cursor_page(request, vm_list(user=request.user, subscription=subscription))
    vms = _with_active_jobs(page.object_list)
    # An active subscription among the rows answers without a query; else ask (all suspended, or no VM).
    can_create = any(vm.subscription.state == SubscriptionState.ACTIVE for vm in vms) or (
        Subscription.objects.usable_by(request.user).exists()
    )
    return render(
        request,
        "tenant/fabric/vm_list.html",
        {
            "page": page,
            "vms": vms,
            "subscription": subscription,
            "can_create": can_create,
            "bulk_actions": VM_ACTIONS.values(),
            "read_only": _read_only([subscription] if subscription else [vm.subscription for vm in vms]),
            "running_jobs": [vm.active_job for vm in vms],
        },
    )


def _read_only(subscriptions: list[Subscription]) -> list[Subscription]:
    """The suspended ones among `subscriptions` (loaded with their VMs: no query), once each."""
    return list({sub.pk: sub for sub in subscriptions if sub.state == SubscriptionState.SUSPENDED}.values())


def _with_active_jobs(vms: list[VirtualMachine]) -> list[VirtualMachine]:
    jobs = vm_active_jobs(vms)
    for vm in vms:
        vm.active_job = jobs.get(str(vm.pk))
    return vms


def _finished_vm_rows(request: HttpRequest, jobs: list[Job]) -> tuple[str, list[Job]]:
    """The list rows of the VMs whose job ended, as out-of-band swaps (a VM that is gone loses its
    row); with them, the jobs these rows show running now (another action may have started)."""
    ids = list(dict.fromkeys(job.target_id for job in jobs if job.target_type == VirtualMachine._meta.label_lower))
    vms = {str(vm.pk): vm for vm in _with_active_jobs(list(vm_list(user=request.user).filter(pk__in=ids)))}
    rows = []
    for pk in ids:
        if pk in vms:
            row = render_to_string("tenant/fabric/vm_list.html#vm-row", {"vm": vms[pk], "oob": True}, request).strip()
        else:
            row = format_html('<tr id="vm-row-{}" hx-swap-oob="delete"></tr>', pk)
        rows.append(f"<template>{row}</template>")  # a <tr> parses only inside a table or a template
    return "".join(rows), [vm.active_job for vm in vms.values() if vm.active_job]


@login_required
def vm_statuses(request: HttpRequest) -> HttpResponse:
    """The VM list's one poll (`?ids=` of the jobs its rows show): progress of the running ones, and
    the rows whose job ended re-rendered, all in one answer."""
    return job_poll_response(request, finished_rows=_finished_vm_rows)


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
        "read_only": _read_only([vm.subscription]),
        "history": vm_state_history(user=request.user, vm=vm)[:RECENT_STATE_CHANGES],
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
    declared = _declared_or_404(action)
    try:
        vm_action(vm=vm, action=declared.name, created_by=request.user)
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"{declared.progress} '{vm.name}'. Progress is shown below.")
    return redirect("tenant:vm", pk=vm.pk)


def _declared_or_404(name: str) -> VMAction:
    try:
        return VM_ACTIONS[name]
    except KeyError as exc:
        raise Http404("No such action.") from exc


def _selected_ids(request: HttpRequest) -> list[uuid.UUID]:
    """The ticked VMs' ids; anything that isn't an id is dropped like an id nobody can see."""
    ids = []
    for raw in request.POST.getlist("vm"):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue
    return list(dict.fromkeys(ids))


@login_required
@require_POST
def vm_bulk_action(request: HttpRequest) -> HttpResponse:
    """Apply one declared action to the VMs ticked on the list, each through vm_action on its own:
    each refusal is a message naming its VM, the others go ahead. VMs the user can't see count as
    not found. A destructive action (delete) first answers a page listing the VMs to confirm."""
    declared = _declared_or_404(request.POST.get("action", ""))
    back = safe_next(request, default=reverse("tenant:vms"), under=reverse("tenant:vms"))
    ids = _selected_ids(request)
    if len(ids) > BULK_MAX:
        messages.error(request, f"Select at most {BULK_MAX} virtual machines at a time.")
        return redirect(back)
    if not ids:
        messages.warning(request, "Select the virtual machines to act on first.")
        return redirect(back)
    vms = list(vm_list(user=request.user).filter(pk__in=ids))
    if missing := len(ids) - len(vms):
        verb = "exists" if missing == 1 else "exist"
        messages.warning(request, f"{missing} of the selected virtual machines no longer {verb}.")
    if not vms:
        return redirect(back)
    if declared.destructive and request.POST.get("confirm") != "yes":
        rows = [{"vm": vm, "reason": declared.refusal(vm)} for vm in vms]
        allowed_count = sum(not row["reason"] for row in rows)
        context = {"action": declared, "rows": rows, "next": back, "allowed_count": allowed_count}
        return render(request, "tenant/fabric/vm_bulk_confirm.html", context)
    result = services.vm_bulk_action(vms=vms, action=declared.name, created_by=request.user)
    for vm, message in result.refused:
        messages.error(request, message if f"'{vm.name}'" in message else f"'{vm.name}': {message}")
    if result.started:
        names = ", ".join(f"'{vm.name}'" for vm in result.started)
        messages.success(request, f"{declared.progress} {names}. Progress is shown below.")
    return redirect(back)


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
