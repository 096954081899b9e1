"""Writes for accounts, plans, subscriptions and API tokens. Pages and the API call these, never the ORM directly."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from portal.columns import validate_columns
from portal.crypto import keyed_digests
from portal.exceptions import Conflict, NotAllowed
from tenants import quotas

from .models import APIToken, Plan, PlanState, Subscription, SubscriptionState, TokenScope, User
from .selectors import TOKEN_DIGEST_PURPOSE, TOKEN_PREFIX


def account_create(*, email: str, password: str, full_name: str = "", is_staff: bool = False) -> User:
    """Create an account. Raises ValidationError (field errors) for a taken email or weak password."""
    email = User.objects.normalize_email(email).strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "An account with this email address already exists."})
    candidate = User(email=email, full_name=full_name, is_staff=is_staff)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    try:
        with transaction.atomic():
            return User.objects.create_user(email, password, full_name=full_name, is_staff=is_staff)
    except IntegrityError as exc:
        raise ValidationError({"email": "An account with this email address already exists."}) from exc


def plan_create(*, name: str, description: str = "", max_subscriptions_per_account: int = 1) -> Plan:
    """Create a private plan; services are added by their apps, then it is made public."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A plan needs a name."})
    if Plan.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"A plan named '{name}' already exists."})
    validate_columns(Plan, max_subscriptions_per_account=max_subscriptions_per_account)
    return Plan.objects.create(
        name=name, description=description, max_subscriptions_per_account=max_subscriptions_per_account
    )


def plan_set_state(*, plan: Plan, state: str) -> Plan:
    """Move a plan between private, public and decommissioned. A plan offering nothing can't go public."""
    if state not in PlanState.values:
        raise ValidationError({"state": f"Unknown plan state '{state}'."})
    if state == PlanState.PUBLIC and not plan_offers_any_service(plan):
        raise NotAllowed("Add at least one service to the plan before making it public.")
    plan.state = state
    plan.save(update_fields=["state"])
    return plan


def plan_offers_any_service(plan: Plan) -> bool:
    """True if any registered service (VM clouds, ...) is part of the plan."""
    return bool(quotas.quota_offer(plan))


def subscription_create(*, owner: User, plan: Plan, name: str = "") -> Subscription:
    """Subscribe `owner` to a public plan (staff may subscribe anyone to any non-decommissioned plan)."""
    if owner.is_staff:
        raise NotAllowed("Staff accounts can't hold subscriptions.")
    with transaction.atomic():
        plan = Plan.objects.select_for_update().get(pk=plan.pk)
        if plan.state != PlanState.PUBLIC:
            raise NotAllowed(f"The plan '{plan}' is not open for subscription.")
        held = Subscription.objects.filter(owner=owner, plan=plan).exclude(state=SubscriptionState.DELETED)
        if held.count() >= plan.max_subscriptions_per_account:
            raise Conflict(
                f"You already hold {plan.max_subscriptions_per_account} subscription(s) to '{plan}', "
                "the most this plan allows."
            )
        return Subscription.objects.create(owner=owner, plan=plan, name=(name.strip() or plan.name))


def subscription_lock(subscription_id: Any, *related: str) -> Subscription:
    """Lock a subscription row for the rest of the transaction: quota checks count under this lock.

    Only the subscription's row is locked; its plan (and `related`, e.g. a service's offer read in
    the same query) are only read, so subscribers of one plan don't queue behind each other.
    """
    return Subscription.objects.select_for_update(of=("self",)).select_related("plan", *related).get(pk=subscription_id)


def subscription_require_active(subscription: Subscription) -> None:
    if subscription.state != SubscriptionState.ACTIVE:
        raise NotAllowed(f"Subscription '{subscription}' is {subscription.get_state_display().lower()}.")


# Shown in lists to tell tokens apart: "cnp_" and 8 random characters, far too few to guess the rest.
TOKEN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
# last_used_at is written at most this often per token, not on every request.
TOKEN_LAST_USED_GRANULARITY = timedelta(minutes=1)


def token_create(
    *, user: User, name: str, scope: str = TokenScope.READ, expires_on: date | None = None
) -> tuple[APIToken, str]:
    """Create a personal API token; returns the row and the clear token, which is never stored.

    `expires_on` is the last day (UTC) the token works. Raises ValidationError for bad fields.
    """
    name = name.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "A token needs a name."
    if scope not in TokenScope.values:
        errors["scope"] = f"Unknown scope '{scope}'."
    expires_at = None
    if expires_on is not None:
        expires_at = datetime.combine(expires_on + timedelta(days=1), time.min, tzinfo=UTC)
        if expires_at <= timezone.now():
            errors["expires_on"] = "The expiry date is in the past."
    if errors:
        raise ValidationError(errors)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = APIToken.objects.create(
        user=user,
        name=name,
        scope=scope,
        expires_at=expires_at,
        prefix=secret[:TOKEN_PREFIX_LENGTH],
        digest=keyed_digests(secret, purpose=TOKEN_DIGEST_PURPOSE)[0],
    )
    return token, secret


def token_revoke(*, token: APIToken) -> APIToken:
    """Revoke at once: the next request with it answers 401. Revoking twice keeps the first time."""
    APIToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    return token


def token_mark_used(*, token: APIToken) -> None:
    """Record the token's use, at most once a minute (a conditional update, so racing requests write once)."""
    now = timezone.now()
    cutoff = now - TOKEN_LAST_USED_GRANULARITY
    if token.last_used_at is not None and token.last_used_at > cutoff:
        return
    APIToken.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff), pk=token.pk).update(
        last_used_at=now
    )
    token.last_used_at = now
