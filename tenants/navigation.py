"""Where plans, accounts and subscriptions appear in the portals (registered from TenantsConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from portal.access import Capability, has_capability, is_staff
from portal.navigation import NewChoice, OverviewTile, RailEntry

from .models import AddOn, Plan, Subscription, User
from .selectors import plan_list


def _accounts(user: Any) -> QuerySet[User]:
    return User.objects.filter(is_staff=False) if is_staff(user) else User.objects.none()


def _plans(request: HttpRequest) -> dict[str, Any]:
    return {"plans": plan_list(user=request.user)[:10]}


def _start(request: HttpRequest) -> dict[str, Any] | None:
    """Shown only to a tenant without a subscription: nothing else works until it has one."""
    return None if Subscription.objects.visible_to(request.user).exists() else {}


NAVIGATION = (
    # each account's own API tokens, last in both rails (after the portal's jobs)
    RailEntry("staff", "API tokens", "staff:tokens", order=95, active=("token",)),
    RailEntry("tenant", "API tokens", "tenant:tokens", order=95, active=("token",)),
    RailEntry(
        "staff",
        "Staff accounts",
        "staff:staff-accounts",
        order=35,
        active=("staff-account",),
        allowed=lambda user: has_capability(user, Capability.ADMINISTER),
    ),
    RailEntry("staff", "Plans", "staff:plans", order=20, count=Plan.objects.visible_to, active=("plan",)),
    RailEntry("staff", "Add-ons", "staff:addons", order=25, count=AddOn.objects.visible_to, active=("addon",)),
    RailEntry("staff", "User accounts", "staff:accounts", order=30, count=_accounts, active=("account",)),
    RailEntry("staff", "Invitations", "staff:invitations", order=32, active=("invitation",)),
    RailEntry(
        "staff",
        "Subscriptions",
        "staff:subscriptions",
        order=40,
        count=Subscription.objects.visible_to,
        active=("subscription",),
    ),
    RailEntry(
        "tenant",
        "Subscriptions",
        "tenant:subscriptions",
        order=40,
        count=Subscription.objects.visible_to,
        active=("subscription", "plan"),
    ),
    NewChoice(
        "staff",
        "Plan",
        "staff:plan-create",
        "A set of services and quotas tenants can subscribe to.",
        order=20,
        allowed=lambda user: has_capability(user, Capability.ADMINISTER),
    ),
    OverviewTile("staff", "Plans", "staff/tenants/_overview_plans.html", _plans, order=20),
    OverviewTile("tenant", "Start with a subscription", "tenant/tenants/_overview_start.html", _start, order=0),
)
