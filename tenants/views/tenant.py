"""The tenant portal's plan catalog and subscriptions. Rules live in tenants.services / selectors."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portal.exceptions import Forbidden, ServiceError
from portal.forms import apply_service_error, error_message
from tenants.forms import CoAdminAddForm, SubscriptionCancelForm
from tenants.models import Plan, Subscription, SubscriptionCoAdmin
from tenants.quotas import quota_list, quota_offer
from tenants.selectors import (
    coadmin_list,
    plan_list,
    subscription_get,
    subscription_held,
    subscription_list,
)
from tenants.services import (
    coadmin_add,
    coadmin_remove,
    subscription_cancel,
    subscription_create,
    subscription_require_owner,
)


@login_required
def plans(request: HttpRequest) -> HttpResponse:
    """Public plans as cards with what each offers. Limits are read through the quota registry, so
    every service a plan offers shows without this page knowing it (one query per plan and service)."""
    page = Paginator(plan_list(user=request.user).order_by("name"), 50).get_page(request.GET.get("page"))
    held = Counter(subscription_held(user=request.user).values_list("plan_id", flat=True))
    cards = [
        {
            "plan": plan,
            "quotas": quota_offer(plan),
            "held": held[plan.pk],
            "at_limit": held[plan.pk] >= plan.max_subscriptions_per_account,
        }
        for plan in page.object_list
    ]
    return render(request, "tenant/tenants/plans.html", {"page": page, "cards": cards})


@login_required
@require_POST
def plan_subscribe(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        plan = plan_list(user=request.user).get(pk=pk)
    except Plan.DoesNotExist as exc:
        raise Http404("No such plan.") from exc
    try:
        subscription = subscription_create(owner=request.user, plan=plan)
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"You are subscribed to '{plan.name}' as '{subscription.name}'.")
        return redirect("tenant:subscriptions")
    return redirect("tenant:plans")


@login_required
def subscriptions(request: HttpRequest) -> HttpResponse:
    """The user's subscriptions with quota use; quota_list costs two queries per row, and a tenant
    holds few subscriptions (pinned in tests)."""
    page = Paginator(subscription_list(user=request.user), 50).get_page(request.GET.get("page"))
    rows: list[dict[str, Any]] = [
        # Whether to offer Cancel (no query: the owner is on the row); the service asks subscription_role.
        {"subscription": sub, "quotas": quota_list(sub), "owner": sub.owner_id == request.user.pk}
        for sub in page.object_list
    ]
    return render(request, "tenant/tenants/subscriptions.html", {"page": page, "rows": rows})


def _subscription(request: HttpRequest, pk: Any) -> Subscription:
    try:
        return subscription_get(user=request.user, pk=pk)
    except Subscription.DoesNotExist as exc:
        raise Http404("No such subscription.") from exc


def _require_owner(request: HttpRequest, subscription: Subscription) -> None:
    """Co-administrators see the subscription but not this page: 403 with the reason."""
    try:
        subscription_require_owner(user=request.user, subscription=subscription, action="manage co-administrators")
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
@require_http_methods(["GET", "POST"])
def subscription_coadmins(request: HttpRequest, pk: Any) -> HttpResponse:
    """The owner's page of a subscription's co-administrators: the list, and a form to add one."""
    subscription = _subscription(request, pk)
    _require_owner(request, subscription)
    form = CoAdminAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            coadmin = coadmin_add(subscription=subscription, by=request.user, email=form.cleaned_data["email"])
        except (ServiceError, ValidationError) as exc:
            apply_service_error(form, exc)
        else:
            messages.success(request, f"{coadmin.user.email} is now a co-administrator of '{subscription}'.")
            return redirect("tenant:subscription-coadmins", pk=subscription.pk)
    context = {"subscription": subscription, "coadmins": coadmin_list(subscription=subscription), "form": form}
    return render(request, "tenant/tenants/subscription_coadmins.html", context)


@login_required
@require_POST
def subscription_coadmin_remove(request: HttpRequest, pk: Any, coadmin_pk: Any) -> HttpResponse:
    subscription = _subscription(request, pk)
    _require_owner(request, subscription)
    try:
        coadmin = coadmin_list(subscription=subscription).get(pk=coadmin_pk)
    except SubscriptionCoAdmin.DoesNotExist as exc:
        raise Http404("No such co-administrator.") from exc
    coadmin_remove(subscription=subscription, by=request.user, coadmin=coadmin)
    messages.success(request, f"{coadmin.user.email} is no longer a co-administrator of '{subscription}'.")
    return redirect("tenant:subscription-coadmins", pk=subscription.pk)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_cancel_page(request: HttpRequest, pk: Any) -> HttpResponse:
    """Cancel a subscription (its owner only), confirmed by typing its name: every resource is
    deleted through jobs, as when staff delete it."""
    try:
        subscription = subscription_get(user=request.user, pk=pk)
    except (Subscription.DoesNotExist, ValidationError) as exc:
        raise Http404("No such subscription.") from exc
    try:  # a co-administrator sees the subscription, not this page: 403 with the reason
        subscription_require_owner(user=request.user, subscription=subscription, action="cancel it")
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc
    form = SubscriptionCancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscription_cancel(
                subscription=subscription, user=request.user, confirm_name=form.cleaned_data["confirm_name"]
            )
        except (ServiceError, ValidationError) as exc:
            apply_service_error(form, exc)
        else:
            messages.success(request, f"Subscription '{subscription}' is cancelled; its resources are being deleted.")
            return redirect("tenant:subscriptions")
    return render(request, "tenant/tenants/subscription_cancel.html", {"subscription": subscription, "form": form})
