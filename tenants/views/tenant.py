"""The tenant portal's plan catalog and subscriptions. Rules live in tenants.services / selectors."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.exceptions import ServiceError
from portal.forms import error_message
from tenants.models import Plan
from tenants.quotas import quota_list, quota_offer
from tenants.selectors import plan_list, subscription_list
from tenants.services import subscription_create


@login_required
def plans(request: HttpRequest) -> HttpResponse:
    """Public plans as cards with what each offers. Limits are read through the quota registry, so
    every service a plan offers shows without this page knowing it (one query per plan and service)."""
    page = Paginator(plan_list(user=request.user).order_by("name"), 50).get_page(request.GET.get("page"))
    held = Counter(subscription_list(user=request.user).values_list("plan_id", flat=True))
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
    rows: list[dict[str, Any]] = [{"subscription": sub, "quotas": quota_list(sub)} for sub in page.object_list]
    return render(request, "tenant/tenants/subscriptions.html", {"page": page, "rows": rows})
