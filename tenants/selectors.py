"""Reads for plans and subscriptions, scoped through `visible_to`."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from portal.access import is_staff

from .models import Plan, Subscription, SubscriptionState, User


def plan_list(*, user: Any) -> QuerySet[Plan]:
    """Plans the user may see, with their live subscriber count (deleted subscriptions excluded)."""
    return (
        Plan.objects.visible_to(user)
        .annotate(subscriber_count=Count("subscriptions", filter=~Q(subscriptions__state=SubscriptionState.DELETED)))
        .order_by("name")
    )  # aggregation drops Meta.ordering; pages need a stable order


def subscription_list(*, user: Any) -> QuerySet[Subscription]:
    return Subscription.objects.visible_to(user).select_related("plan", "owner")


def subscription_get(*, user: Any, pk: Any) -> Subscription:
    """The subscription, or Subscription.DoesNotExist (a 404) if the user may not see it."""
    return subscription_list(user=user).get(pk=pk)


def account_list(*, user: Any) -> QuerySet[User]:
    """Tenant accounts with their live subscription count; staff only (others see none)."""
    if not is_staff(user):
        return User.objects.none()
    return (
        User.objects.filter(is_staff=False)
        .annotate(subscription_count=Count("subscriptions", filter=~Q(subscriptions__state=SubscriptionState.DELETED)))
        .order_by("email")
    )  # aggregation drops Meta.ordering; pages need a stable order
