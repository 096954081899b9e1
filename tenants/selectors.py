"""Reads for plans, subscriptions and API tokens, scoped through `visible_to` (tokens: their owner)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from portal.access import is_staff
from portal.crypto import keyed_digests

from .models import APIToken, Plan, Subscription, SubscriptionState, User


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


TOKEN_PREFIX = "cnp_"  # noqa: S105  # a public marker, not a secret
TOKEN_DIGEST_PURPOSE = "api-tokens"  # noqa: S105  # a key-derivation label


def token_list(*, user: Any) -> QuerySet[APIToken]:
    """The user's own API tokens, newest first (staff see only theirs too: a token is personal)."""
    return APIToken.objects.visible_to(user).order_by("-created_at", "-id")


def token_get(*, user: Any, pk: Any) -> APIToken:
    """The user's token, or APIToken.DoesNotExist (a 404) for anyone else's."""
    return token_list(user=user).get(pk=pk)


def token_find(*, secret: str) -> APIToken | None:
    """The token row (with its user) whose keyed hash matches `secret`, whatever its state; one query.

    Looked up by digest under every key, so tokens survive a key rotation (CANOPY_SECRET_KEYS).
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digests = keyed_digests(secret, purpose=TOKEN_DIGEST_PURPOSE)
    return APIToken.objects.select_related("user").filter(digest__in=digests).first()
