"""Reads for plans, subscriptions and API tokens, scoped through `visible_to` (tokens: their owner)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.access import is_staff
from portal.crypto import keyed_digests
from portal.models import StateTransition

from .models import (
    AddOn,
    APIToken,
    Plan,
    SignupInvitation,
    Subscription,
    SubscriptionAddOn,
    SubscriptionCoAdmin,
    SubscriptionState,
    User,
)

if TYPE_CHECKING:
    from .lifecycle import Resource


def plan_list(*, user: Any) -> QuerySet[Plan]:
    """Plans the user may see, with their live subscriber count (deleted subscriptions excluded)."""
    return (
        Plan.objects.visible_to(user)
        .annotate(subscriber_count=Count("subscriptions", filter=~Q(subscriptions__state=SubscriptionState.DELETED)))
        .order_by("name")
    )  # aggregation drops Meta.ordering; pages need a stable order


def addon_list(*, user: Any) -> QuerySet[AddOn]:
    """Add-ons the user may see (staff: all; tenants: the active ones of their plans), with the
    plans they are offered with and their quota rows prefetched (two queries at any size)."""
    return AddOn.objects.visible_to(user).prefetch_related("plans", "quota_limits").order_by("name")


def addons_for_subscription(*, subscription: Subscription) -> list[tuple[AddOn, int]]:
    """The add-ons a subscription may buy or holds, each with how many it holds; two queries
    (+ the prefetches). Retired ones appear only while held."""
    held = dict(SubscriptionAddOn.objects.filter(subscription=subscription).values_list("addon_id", "quantity"))
    offered = AddOn.objects.filter(Q(plans=subscription.plan_id, state="active") | Q(pk__in=list(held)))
    rows = offered.distinct().prefetch_related("quota_limits").order_by("name")
    return [(addon, held.get(addon.pk, 0)) for addon in rows]


def subscription_list(*, user: Any) -> QuerySet[Subscription]:
    return Subscription.objects.visible_to(user).select_related("plan", "owner")


def subscription_staff_list(*, user: Any) -> QuerySet[Subscription]:
    """Staff's subscription list (deleted ones included), newest first, with each one's last
    lifecycle job read in the same query."""
    return subscription_list(user=user).select_related("lifecycle_job").order_by("-created_at", "-id")


def subscription_resources(subscription: Subscription) -> list[Resource]:
    """The subscription's live resources, from every lifecycle service (its staff page lists them)."""
    from .lifecycle import lifecycle_services

    return [resource for service in lifecycle_services() for resource in service.resources(subscription)]


def subscription_history(*, user: Any, subscription: Subscription) -> QuerySet[StateTransition]:
    """The subscription's own state changes (suspended, activated...), oldest first; staff only."""
    from .lifecycle import SUBSCRIPTION_STATES

    if not is_staff(user):
        return StateTransition.objects.none()
    return SUBSCRIPTION_STATES.history(subscription.pk).select_related("actor", "job")


def subscription_get(*, user: Any, pk: Any) -> Subscription:
    """The subscription, or Subscription.DoesNotExist (a 404) if the user may not see it."""
    return subscription_list(user=user).get(pk=pk)


def subscription_refusal(subscription: Subscription) -> str:
    """Why the subscription's resources can't be created or changed now ("" if they can): a
    suspended subscription is read-only to its tenant, with the reason staff gave."""
    if subscription.state == SubscriptionState.ACTIVE:
        return ""
    state = subscription.get_state_display().lower()
    reason = f": {subscription.state_reason.rstrip('.')}" if subscription.state_reason else ""
    return f"Subscription '{subscription}' is {state}{reason}."


SubscriptionRole = Literal["owner", "coadmin"]


def subscription_role(user: Any, subscription: Subscription) -> SubscriptionRole | None:
    """What `user` is to the subscription: "owner", "coadmin", or None (anyone else, staff included).

    The one check behind every owner-only action (cancel, add-ons, co-administrators): callers
    guard with tenants.services.subscription_require_owner. Read now, at most one query, so a
    co-administrator removed a moment ago is no longer one.
    """
    if not getattr(user, "is_authenticated", False):
        return None
    if subscription.owner_id == user.pk:
        return "owner"
    if SubscriptionCoAdmin.objects.filter(subscription=subscription, user=user).exists():
        return "coadmin"
    return None


def subscription_held(*, user: Any) -> QuerySet[Subscription]:
    """The subscriptions `user` owns (not those it co-administers): what counts against a plan's limit."""
    return Subscription.objects.owned_by(user)


def coadmin_list(*, subscription: Subscription) -> QuerySet[SubscriptionCoAdmin]:
    """The subscription's co-administrators with their accounts, oldest first (one query).

    The caller has checked who may read them (the owner: subscription_require_owner)."""
    return (
        SubscriptionCoAdmin.objects.filter(subscription=subscription)
        .select_related("user")
        .order_by("created_at", "id")
    )


def account_list(*, user: Any, search: str = "") -> QuerySet[User]:
    """Tenant accounts (deleted ones left out) with their live subscription count, `search` matching
    part of the email address or name; staff only (others see none)."""
    if not is_staff(user):
        return User.objects.none()
    accounts = User.objects.filter(is_staff=False, deleted_at__isnull=True)
    if search := search.strip():
        accounts = accounts.filter(Q(email__icontains=search) | Q(full_name__icontains=search))
    return accounts.annotate(
        subscription_count=Count("subscriptions", filter=~Q(subscriptions__state=SubscriptionState.DELETED))
    ).order_by("email", "pk")  # aggregation drops Meta.ordering; pages need a stable order


def account_get(*, user: Any, pk: Any) -> User:
    """A tenant account, or User.DoesNotExist (a 404) for staff accounts, deleted ones and non-staff."""
    return account_list(user=user).get(pk=pk)


def staff_account_list(*, user: Any) -> QuerySet[User]:
    """Staff accounts with their role and whether they enrolled a TOTP device (`two_factor`), active
    ones first; staff only (pages and API: administrators)."""
    if not is_staff(user):
        return User.objects.none()
    confirmed_device = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    return (
        User.objects.filter(is_staff=True)
        .annotate(two_factor=Exists(confirmed_device))
        .order_by("-is_active", "email", "pk")
    )


def staff_account_get(*, user: Any, pk: Any) -> User:
    """A staff account, or User.DoesNotExist (a 404)."""
    return staff_account_list(user=user).get(pk=pk)


def signup_invitation_list(*, user: Any) -> QuerySet[SignupInvitation]:
    """Sign-up invitations, newest first; staff only (others see none)."""
    if not is_staff(user):
        return SignupInvitation.objects.none()
    return SignupInvitation.objects.select_related("used_by", "created_by").order_by("-created_at", "-id")


TOKEN_PREFIX = "cnp_"  # noqa: S105  # a public marker, not a secret
TOKEN_DIGEST_PURPOSE = "api-tokens"  # noqa: S105  # a key-derivation label
PLAN_INVITATION_DIGEST_PURPOSE = "plan-invitations"  # a key-derivation label


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
