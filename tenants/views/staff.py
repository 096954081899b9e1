"""Admin portal pages of plans, tenant accounts and subscriptions.

A plan's page also edits its VM cloud service (fabric.services.plan_vm_cloud_set): in the admin
portal a plan is one page with all its services, as in Azure Pack.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from fabric.forms_staff import PlanVMCloudForm
from fabric.selectors import cloud_list, subscription_vm_counts
from fabric.services import plan_vm_cloud_set
from portal.access import Capability, capability_required
from portal.exceptions import ServiceError
from portal.forms import apply_service_error, error_message
from portal.job_groups import group_children
from portal.models import Job
from portal.selectors import signup_policy
from tenants.filters import SubscriptionFilter
from tenants.forms_staff import (
    ChangePlanForm,
    PlanCreateForm,
    SignupInvitationForm,
    SubscriptionCreateForm,
    SuspendForm,
)
from tenants.mail import tenant_signup_link
from tenants.models import Plan, PlanState, SignupInvitation, Subscription, SubscriptionState, SyncState, User
from tenants.quotas import quota_list
from tenants.selectors import (
    account_list,
    plan_list,
    signup_invitation_list,
    subscription_history,
    subscription_list,
    subscription_resources,
    subscription_staff_list,
)
from tenants.services import (
    plan_create,
    plan_set_state,
    signup_invitation_create,
    signup_invitation_revoke,
    subscription_activate,
    subscription_change_plan,
    subscription_create,
    subscription_delete,
    subscription_resync,
    subscription_suspend,
)

# Second lock behind the site's sign-in rule (only staff accounts sign in to the admin portal).

PAGE_SIZE = 50
# The lifecycle actions posted to subscription-action (delete has a confirmation page of its own).
SUBSCRIPTION_PAGE_ACTIONS = ("suspend", "activate", "resync")
# (target state, button label, button class) of the plan state actions.
PLAN_STATE_ACTIONS = [
    (PlanState.PUBLIC, "Make public", "btn"),
    (PlanState.PRIVATE, "Make private", "btn btn-secondary"),
    (PlanState.DECOMMISSIONED, "Decommission", "btn btn-danger"),
]


def _plans(request: HttpRequest) -> Any:
    return plan_list(user=request.user).select_related("vm_cloud_service__cloud__stamp__endpoint")


def _with_vm_counts(subscriptions: Any) -> list:
    rows = list(subscriptions)
    counts = subscription_vm_counts(rows)
    for sub in rows:
        sub.vm_count = counts.get(sub.pk, 0)
    return rows


@capability_required(Capability.VIEW)
def plan_list_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(_plans(request), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "staff/tenants/plan_list.html", {"page": page, "plans": page.object_list})


@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def plan_create_page(request: HttpRequest) -> HttpResponse:
    form = PlanCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            plan = plan_create(**form.cleaned_data)
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
        else:
            messages.success(request, f"Plan '{plan}' created. Add a service, then make it public.")
            return redirect("staff:plan", pk=plan.pk)
    return render(request, "staff/tenants/plan_form.html", {"form": form})


# The plan's page is its editor: administrators only, even to open it.
@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def plan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The plan with its VM cloud service form (POST saves it), state actions and subscriptions."""
    try:
        plan = _plans(request).get(pk=pk)
    except Plan.DoesNotExist as exc:
        raise Http404 from exc
    try:
        service = plan.vm_cloud_service
    except ObjectDoesNotExist:
        service = None
    initial = {}
    if service is not None:
        initial = {
            "cloud": service.cloud_id,
            "max_vms": service.max_vms,
            "max_cores": service.max_cores,
            "max_memory_mb": service.max_memory_mb,
        }
    clouds = cloud_list(user=request.user)
    form = PlanVMCloudForm(request.POST or None, initial=initial, clouds=clouds)
    if request.method == "POST" and form.is_valid():
        try:
            plan_vm_cloud_set(plan=plan, **form.cleaned_data)
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
        else:
            messages.success(request, f"VM cloud service of '{plan}' saved.")
            return redirect("staff:plan", pk=plan.pk)
    subs = subscription_list(user=request.user).filter(plan=plan)
    page = Paginator(subs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "plan": plan,
        "service": service,
        "form": form,
        "state_actions": [a for a in PLAN_STATE_ACTIONS if a[0] != plan.state],
        "page": page,
        "subscriptions": _with_vm_counts(page.object_list),
    }
    return render(request, "staff/tenants/plan_detail.html", context)


@capability_required(Capability.ADMINISTER)
@require_POST
def plan_state_page(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        plan = plan_list(user=request.user).get(pk=pk)
    except Plan.DoesNotExist as exc:
        raise Http404 from exc
    try:
        plan_set_state(plan=plan, state=request.POST.get("state", ""))
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"Plan '{plan}' is now {plan.get_state_display().lower()}.")
    return redirect("staff:plan", pk=plan.pk)


@capability_required(Capability.VIEW)
def subscription_list_page(request: HttpRequest) -> HttpResponse:
    """Every subscription, newest first, with search and filters (tenants.filters, shared with the
    API); a bad filter value is a form error and lists nothing."""
    filters = SubscriptionFilter(
        request.GET or None, queryset=subscription_staff_list(user=request.user), request=request
    )
    page = Paginator(filters.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/tenants/subscription_list.html",
        {
            "page": page,
            "filters": filters,
            "filtered": any(request.GET.get(name) for name in SubscriptionFilter.base_filters),
            "subscriptions": _with_vm_counts(page.object_list),
        },
    )


@never_cache
@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def invitation_list_page(request: HttpRequest) -> HttpResponse:
    """Sign-up invitations with the form to send one; the new code shows once, in this response.
    Administrators only (the roles branch declares it)."""
    form = SignupInvitationForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = signup_invitation_create(by=request.user, link=tenant_signup_link(request), **form.cleaned_data)
        except (ValidationError, ServiceError) as exc:
            apply_service_error(form, exc)
        else:
            form = SignupInvitationForm()
    page = Paginator(signup_invitation_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "invitations": page.object_list,
        "created": created,
        "policy": signup_policy(),
        "settings_url": reverse("staff:settings"),
    }
    return render(request, "staff/tenants/invitation_list.html", context, status=201 if created else 200)


def _subscribable_plans(request: HttpRequest) -> Any:
    """What staff may assign: any plan that isn't decommissioned, private ones included."""
    return plan_list(user=request.user).exclude(state=PlanState.DECOMMISSIONED)


# Assigning a plan to an account is selling it: administrators only.
@capability_required(Capability.ADMINISTER)
@require_http_methods(["GET", "POST"])
def subscription_create_page(request: HttpRequest) -> HttpResponse:
    form = SubscriptionCreateForm(request.POST or None, plans=_subscribable_plans(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            owner = account_list(user=request.user).get(email__iexact=data["owner"].strip())
        except User.DoesNotExist:
            form.add_error("owner", "No tenant account has this email address.")
        else:
            try:
                subscription = subscription_create(owner=owner, plan=data["plan"], name=data["name"], by=request.user)
            except (ValidationError, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(request, f"Subscription '{subscription}' created for {owner.email}.")
                return redirect("staff:subscription", pk=subscription.pk)
    return render(request, "staff/tenants/subscription_form.html", {"form": form})


def _subscription_or_404(request: HttpRequest, pk: Any) -> Subscription:
    try:
        return subscription_staff_list(user=request.user).get(pk=pk)
    except (Subscription.DoesNotExist, ValidationError) as exc:
        raise Http404("No such subscription.") from exc


@capability_required(Capability.VIEW)
def subscription_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """The subscription: quotas, resources, the last lifecycle action's progress (parent and
    children, polled), what it left, history and the actions its state allows. To htmx (sent
    when a polled job ends), only the summary partial."""
    subscription = _subscription_or_404(request, pk)
    job = subscription.lifecycle_job
    children: list[Job] = list(group_children(job)) if job is not None else []
    context = {
        "subscription": subscription,
        "quotas": quota_list(subscription) if subscription.state != SubscriptionState.DELETED else [],
        "resources": subscription_resources(subscription),
        "job": job,
        "children": children,
        "polled": [job, *children] if job is not None else [],
        "history": subscription_history(user=request.user, subscription=subscription),
        "suspend_form": SuspendForm(),
        "plan_form": ChangePlanForm(plans=_subscribable_plans(request).exclude(pk=subscription.plan_id)),
        "busy": subscription.sync_state == SyncState.SYNCING,
        "out_of_sync": subscription.sync_state == SyncState.OUT_OF_SYNC,
    }
    template = "staff/tenants/subscription_detail.html"
    if request.htmx and not request.htmx.boosted:
        template += "#subscription-summary"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _lifecycle_done(request: HttpRequest, subscription: Subscription, job: Job, did: str) -> None:
    if job.is_finished:
        messages.success(request, f"Subscription '{subscription}' {did}.")
    else:
        messages.success(request, f"Subscription '{subscription}' {did}; its resources follow ({job.step}).")


@capability_required(Capability.ADMINISTER)
@require_POST
def invitation_revoke_page(request: HttpRequest, pk: Any) -> HttpResponse:
    try:
        invitation = signup_invitation_list(user=request.user).get(pk=pk)
    except SignupInvitation.DoesNotExist as exc:
        raise Http404 from exc
    signup_invitation_revoke(invitation=invitation)
    messages.success(request, f"The invitation for {invitation.email} is revoked.")
    return redirect("staff:invitations")


# The lifecycle of what a tenant bought: operators run it (changing the plan is apart, below).
@capability_required(Capability.OPERATE)
@require_POST
def subscription_action_page(request: HttpRequest, pk: Any, action: str) -> HttpResponse:
    """Suspend (with a reason), activate or re-sync; refusals become messages on the detail page."""
    subscription = _subscription_or_404(request, pk)
    try:
        if action == "suspend":
            form = SuspendForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Say why the subscription is suspended: the tenant sees it.")
                return redirect("staff:subscription", pk=subscription.pk)
            job = subscription_suspend(subscription=subscription, reason=form.cleaned_data["reason"], by=request.user)
            _lifecycle_done(request, subscription, job, "suspended")
        elif action == "activate":
            job = subscription_activate(subscription=subscription, by=request.user)
            _lifecycle_done(request, subscription, job, "activated")
        elif action == "resync":
            job = subscription_resync(subscription=subscription, by=request.user)
            _lifecycle_done(request, subscription, job, "is being re-synchronized")
        else:
            raise Http404("No such action.")  # SUBSCRIPTION_PAGE_ACTIONS are all handled above
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    return redirect("staff:subscription", pk=subscription.pk)


@capability_required(Capability.ADMINISTER)
@require_POST
def subscription_change_plan_page(request: HttpRequest, pk: Any) -> HttpResponse:
    """Move the subscription to another plan (what is sold: administrators only); a refusal names
    each quota the current use doesn't fit."""
    subscription = _subscription_or_404(request, pk)
    plan_form = ChangePlanForm(request.POST, plans=_subscribable_plans(request))
    if not plan_form.is_valid():
        messages.error(request, "Choose the plan to move the subscription to.")
        return redirect("staff:subscription", pk=subscription.pk)
    try:
        subscription_change_plan(subscription=subscription, plan=plan_form.cleaned_data["plan"], by=request.user)
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"Subscription '{subscription}' moved to plan '{plan_form.cleaned_data['plan']}'.")
    return redirect("staff:subscription", pk=subscription.pk)


@capability_required(Capability.OPERATE)
@require_http_methods(["GET", "POST"])
def subscription_delete_page(request: HttpRequest, pk: Any) -> HttpResponse:
    """Delete, confirmed on a page of its own: every resource is deprovisioned through jobs."""
    subscription = _subscription_or_404(request, pk)
    if request.method == "POST":
        try:
            job = subscription_delete(subscription=subscription, by=request.user)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            _lifecycle_done(request, subscription, job, "deleted")
        return redirect("staff:subscription", pk=subscription.pk)
    context = {"subscription": subscription, "resources": subscription_resources(subscription)}
    return render(request, "staff/tenants/subscription_delete.html", context)
