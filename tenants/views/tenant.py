"""The tenant portal's plan catalog and subscriptions. Rules live in tenants.services / selectors."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django import forms
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
from tenants.plan_services import addon_quotas, plan_offers, subscription_quotas
from tenants.selectors import (
    addons_for_subscription,
    coadmin_list,
    plan_list,
    subscription_get,
    subscription_held,
    subscription_list,
    subscription_role,
)
from tenants.services import (
    coadmin_add,
    coadmin_remove,
    plan_find_by_invitation,
    subscription_addon_buy,
    subscription_addon_remove,
    subscription_cancel,
    subscription_create,
    subscription_require_owner,
)


class InvitationForm(forms.Form):
    invitation_code = forms.CharField(
        label="Invitation code",
        max_length=100,
        help_text="Your provider gave you a code for a private plan: enter it to subscribe.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


@login_required
def plans(request: HttpRequest) -> HttpResponse:
    """Public plans as cards with what each offers (services, quotas, allow-lists), read through the
    plan-service registry for the whole page at once; and a form to join a private plan by code."""
    page = Paginator(plan_list(user=request.user), 50).get_page(request.GET.get("page"))
    held = Counter(subscription_held(user=request.user).values_list("plan_id", flat=True))
    plans_ = list(page.object_list)
    offers = plan_offers([p.pk for p in plans_])
    cards = [
        {
            "plan": plan,
            "offers": offers[plan.pk],
            "quotas": [q for o in offers[plan.pk] for q in o.quotas],
            "held": held[plan.pk],
            "at_limit": held[plan.pk] >= plan.max_subscriptions_per_account,
        }
        for plan in plans_
    ]
    context = {"page": page, "cards": cards, "invitation_form": InvitationForm()}
    return render(request, "tenant/tenants/plans.html", context)


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
@require_POST
def plan_join(request: HttpRequest) -> HttpResponse:
    """Subscribe to a private plan with its invitation code (a wrong code says only that)."""
    form = InvitationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter the invitation code your provider gave you.")
        return redirect("tenant:plans")
    code = form.cleaned_data["invitation_code"]
    plan = plan_find_by_invitation(code=code)
    if plan is None:
        messages.error(request, "This invitation code is not valid. Check it with your provider.")
        return redirect("tenant:plans")
    try:
        subscription = subscription_create(owner=request.user, plan=plan, invitation_code=code)
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
        return redirect("tenant:plans")
    messages.success(request, f"You are subscribed to '{plan.name}' as '{subscription.name}'.")
    return redirect("tenant:subscription", pk=subscription.pk)


@login_required
def subscriptions(request: HttpRequest) -> HttpResponse:
    """The user's subscriptions with their quotas as bars; a fixed number of queries per page."""
    page = Paginator(subscription_list(user=request.user), 50).get_page(request.GET.get("page"))
    subs = list(page.object_list)
    quotas = subscription_quotas(subs)
    rows: list[dict[str, Any]] = [{"subscription": sub, "quotas": quotas[sub.pk]} for sub in subs]
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
def subscription_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """One subscription: its quotas as bars (plan + add-ons, used, left) and its add-ons to buy or remove."""
    sub = _subscription(request, pk)
    addons = [
        {"addon": a, "held": n, "adds": addon_quotas(a), "can_buy": a.state == "active" and n < a.max_per_subscription}
        for a, n in addons_for_subscription(subscription=sub)
    ]
    context = {
        "subscription": sub,
        "quotas": subscription_quotas([sub])[sub.pk],
        "addons": addons,
        "is_owner": subscription_role(request.user, sub) == "owner",
    }
    return render(request, "tenant/tenants/subscription_detail.html", context)


def _addon_change(request: HttpRequest, pk: Any, addon_pk: int, *, buy: bool) -> HttpResponse:
    """Buy or remove one add-on: the owner's alone (a co-administrator gets 403 with the reason)."""
    sub = _subscription(request, pk)
    try:
        subscription_require_owner(user=request.user, subscription=sub, action="buy or remove add-ons")
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc
    addon = next((a for a, _ in addons_for_subscription(subscription=sub) if a.pk == addon_pk), None)
    if addon is None:
        raise Http404("No such add-on.")
    try:
        if buy:
            subscription_addon_buy(subscription=sub, addon=addon, user=request.user)
        else:
            subscription_addon_remove(subscription=sub, addon=addon, user=request.user)
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"{'Added' if buy else 'Removed'} one '{addon}' {'to' if buy else 'from'} '{sub}'.")
    return redirect("tenant:subscription", pk=sub.pk)


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


@login_required
@require_POST
def subscription_addon_buy_page(request: HttpRequest, pk: Any, addon_pk: int) -> HttpResponse:
    return _addon_change(request, pk, addon_pk, buy=True)


@login_required
@require_POST
def subscription_addon_remove_page(request: HttpRequest, pk: Any, addon_pk: int) -> HttpResponse:
    return _addon_change(request, pk, addon_pk, buy=False)
