"""Writes for accounts, plans, subscriptions and API tokens. Pages and the API call these, never the ORM directly."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from portal import audit
from portal.access import StaffRole, is_staff
from portal.audit import audited
from portal.columns import validate_columns
from portal.crypto import keyed_digests
from portal.exceptions import Conflict, Forbidden, NotAllowed
from portal.job_groups import group_create, group_seal
from portal.models import Job, SignupPolicy
from portal.selectors import signup_policy
from tenants import plan_services

from .lifecycle import SUBSCRIPTION_STATES, LifecycleAction, lifecycle_services
from .mail import mail_send
from .models import (
    AddOn,
    AddOnState,
    APIToken,
    Plan,
    PlanState,
    QuotaLimit,
    SignupInvitation,
    Subscription,
    SubscriptionAddOn,
    SubscriptionCoAdmin,
    SubscriptionState,
    SyncState,
    TokenScope,
    User,
)
from .selectors import (
    PLAN_INVITATION_DIGEST_PURPOSE,
    TOKEN_DIGEST_PURPOSE,
    TOKEN_PREFIX,
    subscription_refusal,
    subscription_role,
)

# The largest quota value a row holds (PositiveBigIntegerField on PostgreSQL).
QUOTA_MAX = 2**63 - 1


@audited("account.create")
def account_create(
    *,
    email: str,
    password: str | None,
    full_name: str = "",
    is_staff: bool = False,
    staff_role: str = "",
    email_verified: bool = True,
) -> User:
    """Create an account. Raises ValidationError (field errors) for a taken email or weak password.

    `email_verified=False` for self sign-up: the account then can't subscribe until it follows the
    link email_verification_send mails it. A password of None leaves the account without a usable
    one (a staff account that sets its own through a link)."""
    email = User.objects.normalize_email(email).strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "An account with this email address already exists."})
    candidate = User(email=email, full_name=full_name, is_staff=is_staff)
    if password is not None:
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
    verified_at = timezone.now() if email_verified else None
    extra: dict[str, Any] = {"staff_role": staff_role} if is_staff else {}
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email, password, full_name=full_name, is_staff=is_staff, email_verified_at=verified_at, **extra
            )
    except IntegrityError as exc:
        raise ValidationError({"email": "An account with this email address already exists."}) from exc


INVITATION_PREFIX = "inv_"
INVITATION_DIGEST_PURPOSE = "signup-invitations"
INVITATION_VALID_DAYS = 7


@audited("account.sign_up")
def account_signup(*, email: str, password: str, full_name: str = "", invitation_code: str = "") -> User:
    """A tenant account created on the sign-up page, as the provider's sign-up policy allows.

    Closed: NotAllowed. Invitation only: a valid invitation code for this email address is required
    (ValidationError on `invitation_code`). The invitation is used up in the same transaction (its row
    locked, so two sign-ups can't share it) and, since it was mailed to this address, the account is
    verified at once; without one the account must verify its address (email_verification_send).
    """
    policy = signup_policy()
    if policy == SignupPolicy.CLOSED:
        raise NotAllowed("Sign-up is closed: ask the provider for an account.")
    code = (invitation_code or "").strip()
    if policy == SignupPolicy.INVITATION and not code:
        raise ValidationError({"invitation_code": "Sign-up is by invitation only: enter the code of your invitation."})
    with transaction.atomic():
        invitation = _invitation_take(code=code, email=email) if code else None
        user = account_create(email=email, password=password, full_name=full_name, email_verified=bool(invitation))
        if invitation is not None:
            invitation.used_at = timezone.now()
            invitation.used_by = user
            invitation.save(update_fields=["used_at", "used_by"])
    return user


def _invitation_take(*, code: str, email: str) -> SignupInvitation:
    """The invitation with this code, locked, if it is pending and for `email`; else ValidationError."""
    invalid = ValidationError(
        {"invitation_code": "This invitation code is not valid, or was used, revoked or expired."}
    )
    if not code.startswith(INVITATION_PREFIX) or len(code) > 200:
        raise invalid
    digests = keyed_digests(code, purpose=INVITATION_DIGEST_PURPOSE)
    invitation = SignupInvitation.objects.select_for_update().filter(digest__in=digests).first()
    if invitation is None or invitation.status != "pending":
        raise invalid
    if invitation.email.lower() != (email or "").strip().lower():
        raise ValidationError({"email": "This invitation is for another email address."})
    return invitation


@audited("invitation.create")
def signup_invitation_create(
    *, by: Any, email: str, link: Callable[[str], str], valid_days: int = INVITATION_VALID_DAYS
) -> tuple[SignupInvitation, str, bool]:
    """Invite an email address to sign up: returns the invitation, its code (shown once, never
    stored) and whether the mail with the sign-up link (`link(code)`) was sent.

    Raises ValidationError for a bad address, one that already has an account, or a validity
    outside 1 to 90 days.
    """
    email = User.objects.normalize_email(email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": "Enter a valid email address."}) from exc
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "An account with this email address already exists."})
    if not 1 <= valid_days <= 90:
        raise ValidationError({"valid_days": "An invitation is valid for 1 to 90 days."})
    code = INVITATION_PREFIX + secrets.token_urlsafe(24)
    invitation = SignupInvitation.objects.create(
        email=email,
        prefix=code[: len(INVITATION_PREFIX) + 6],
        digest=keyed_digests(code, purpose=INVITATION_DIGEST_PURPOSE)[0],
        created_by=by if getattr(by, "pk", None) else None,
        expires_at=timezone.now() + timedelta(days=valid_days),
    )
    sent = mail_send(
        to=email,
        subject="Your invitation to Canopy",
        template="email/signup_invitation.txt",
        context={"invitation": invitation, "code": code, "link": link(code)},
    )
    return invitation, code, sent


@audited("invitation.revoke", target="invitation")
def signup_invitation_revoke(*, invitation: SignupInvitation) -> SignupInvitation:
    """Revoke a pending invitation: its code no longer signs anyone up. A used one stays used."""
    SignupInvitation.objects.filter(pk=invitation.pk, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    invitation.refresh_from_db(fields=["revoked_at"])
    return invitation


EMAIL_VERIFICATION_SALT = "canopy.tenants.email-verification"
EMAIL_VERIFICATION_MAX_AGE = timedelta(days=3)
# One verification mail per account per minute at most (the resend button), counted in the cache.
EMAIL_VERIFICATION_RESEND_SECONDS = 60


def email_verification_token(user: User) -> str:
    """A signed, timestamped token naming the account and the address it proves: a link made for an
    old address doesn't verify a new one."""
    return signing.dumps({"u": user.pk, "e": user.email}, salt=EMAIL_VERIFICATION_SALT)


@audited("account.verification_send", target="user")
def email_verification_send(*, user: User, link: Callable[[str], str]) -> bool:
    """Mail the account a link (`link(token)`) that verifies its address; True if the mail was sent.

    Raises NotAllowed if the address is already verified, or if a link was sent less than a minute
    ago (so the resend button can't flood a mailbox).
    """
    if user.email_verified:
        raise NotAllowed("Your email address is already verified.")
    if not cache.add(f"email-verification-sent:{user.pk}", 1, EMAIL_VERIFICATION_RESEND_SECONDS):
        raise NotAllowed("A link was sent less than a minute ago: check your mailbox, or try again in a minute.")
    return mail_send(
        to=user.email,
        subject="Confirm your email address",
        template="email/verify_email.txt",
        context={
            "user": user,
            "link": link(email_verification_token(user)),
            "valid_days": EMAIL_VERIFICATION_MAX_AGE.days,
        },
    )


@audited("account.verify_email")
def email_verify(*, token: str) -> User:
    """Mark the address the token names as verified (again is a no-op); returns the account.

    Raises ValidationError for a token that is forged, expired (EMAIL_VERIFICATION_MAX_AGE), or for
    an account that is gone or has changed its address since.
    """
    try:
        data = signing.loads(token, salt=EMAIL_VERIFICATION_SALT, max_age=EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ValidationError("This link has expired: sign in and send a new one.") from exc
    except signing.BadSignature as exc:
        raise ValidationError("This link is not valid.") from exc
    pk = data.get("u") if isinstance(data, dict) else None
    user = User.objects.filter(pk=pk, is_active=True).first() if isinstance(pk, int) else None
    if user is None or user.email != data.get("e"):
        raise ValidationError("This link is not valid.")
    audit.track(user)
    User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(email_verified_at=timezone.now())
    user.refresh_from_db(fields=["email_verified_at"])
    return user


# --- tenant accounts, as staff look after them -------------------------------------------------------
# Lock, unlock, password reset and delete are account changes: administrators only
# (portal.access); the services take the account a staff page or API call already looked up.


def _require_tenant_account(account: User) -> None:
    if account.is_staff:
        raise NotAllowed("This is a staff account: manage it on the Staff accounts page.")


@audited("account.lock", target="account")
def account_lock(*, account: User) -> User:
    """Lock a tenant account: its sign-ins and API tokens are refused, and its open sessions end at
    their next request (the sites' backend reads `is_active` on every request). Idempotent."""
    _require_tenant_account(account)
    User.objects.filter(pk=account.pk).update(is_active=False)
    account.is_active = False
    return account


@audited("account.unlock", target="account")
def account_unlock(*, account: User) -> User:
    """Let a locked tenant account sign in again. A deleted account stays deleted. Idempotent."""
    _require_tenant_account(account)
    if account.deleted_at is not None:
        raise NotAllowed("This account was deleted.")
    User.objects.filter(pk=account.pk).update(is_active=True)
    account.is_active = True
    return account


TEMPORARY_PASSWORD_BYTES = 12  # 16 URL-safe characters


@audited("account.password_reset_by_staff", target="account")
def account_password_reset(*, account: User) -> str:
    """Give a tenant account a new random password and return it, in clear, this once (it is
    stored only hashed, and never logged). Every open session of the account ends at its next
    request (Django binds sessions to the password hash); its API tokens keep working."""
    _require_tenant_account(account)
    password = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    account.set_password(password)
    account.save(update_fields=["password"])
    return password


@audited("account.delete", target="account")
def account_delete(*, account: User) -> None:
    """Delete a tenant account that holds no subscription other than deleted ones; raises NotAllowed
    naming them otherwise. An account whose deleted subscriptions are kept (usage, audit) keeps its
    row, deactivated with its address and name wiped (the address may sign up again); one that never
    held a subscription is removed with its API tokens."""
    with transaction.atomic():
        # Row lock: a subscription created for the account meanwhile waits for this (its foreign key
        # locks the account's row), then sees the account gone or deactivated.
        account = User.objects.select_for_update().get(pk=account.pk)
        _require_tenant_account(account)
        held = list(
            Subscription.objects.filter(owner=account)
            .exclude(state=SubscriptionState.DELETED)
            .values_list("name", flat=True)[:6]
        )
        if held:
            shown = ", ".join(f"'{name}'" for name in held[:5]) + (" and more" if len(held) > 5 else "")
            raise NotAllowed(
                f"{account.email} still holds subscriptions that aren't deleted ({shown}): delete them first."
            )
        if not Subscription.objects.filter(owner=account).exists():
            account.delete()
            return
        account.email = f"deleted-{account.pk}@accounts.invalid"
        account.full_name = ""
        account.is_active = False
        account.deleted_at = timezone.now()
        account.set_unusable_password()
        account.save(update_fields=["email", "full_name", "is_active", "deleted_at", "password"])
        APIToken.objects.filter(user=account).delete()


# --- staff accounts and roles (administrators only) ------------------------------------------------


def _validate_role(role: str) -> None:
    if role not in StaffRole.values:
        raise ValidationError({"role": f"Unknown role '{role}'; one of: {', '.join(StaffRole.values)}."})


@audited("staff_account.create")
def staff_account_create(*, email: str, full_name: str = "", role: str, password: str | None = None) -> User:
    """Create a staff account with a role. Without a password the account has none usable until
    it sets one through a set-password link (the page sends it). Raises ValidationError."""
    _validate_role(role)
    return account_create(email=email, password=password, full_name=full_name, is_staff=True, staff_role=role)


@audited("staff_account.password_link_send", target="account")
def staff_set_password_link_send(*, account: User, site_url: str) -> bool:
    """Mail the account a link to choose its password on the admin portal at `site_url` (the
    portal's password reset link: it works once, and for PASSWORD_RESET_TIMEOUT). Returns whether
    the mail was sent (tenants.mail: a failure is logged, never raised)."""
    uid = urlsafe_base64_encode(force_bytes(account.pk))
    token = default_token_generator.make_token(account)
    path = reverse("password-reset-confirm", kwargs={"uidb64": uid, "token": token})
    return mail_send(
        to=account.email,
        subject="Your Canopy admin portal account",
        template="email/staff_account_created.txt",
        context={"email": account.email, "link": f"{site_url.rstrip('/')}{path}"},
    )


def _require_staff_account(account: User) -> None:
    if not account.is_staff:
        raise NotAllowed("This is a tenant account: manage it on the User accounts page.")


def _keep_an_administrator(account: User, *, losing: bool) -> None:
    """Refuse a change that would leave no active administrator. Locks every active
    administrator's row (in pk order, so two such changes can't deadlock): two administrators
    demoting each other at once can't both succeed. Call inside a transaction."""
    admins = list(
        User.objects.select_for_update()
        .filter(is_staff=True, is_active=True, staff_role=StaffRole.ADMINISTRATOR)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if losing and admins == [account.pk]:
        raise NotAllowed(
            f"{account.email} is the last active administrator: make another account an administrator first."
        )


@audited("staff_account.set_role", target="account")
def staff_role_set(*, account: User, role: str) -> User:
    """Change a staff account's role; never demotes the last active administrator (NotAllowed)."""
    _require_staff_account(account)
    _validate_role(role)
    with transaction.atomic():
        _keep_an_administrator(account, losing=role != StaffRole.ADMINISTRATOR)
        User.objects.filter(pk=account.pk).update(staff_role=role)
    account.staff_role = role
    return account


@audited("staff_account.deactivate", target="account")
def staff_account_deactivate(*, account: User) -> User:
    """Deactivate a staff account: it can't sign in, its sessions end at their next request and its
    API tokens are refused. Never the last active administrator (NotAllowed). Idempotent."""
    _require_staff_account(account)
    with transaction.atomic():
        _keep_an_administrator(account, losing=True)
        User.objects.filter(pk=account.pk).update(is_active=False)
    account.is_active = False
    return account


@audited("staff_account.activate", target="account")
def staff_account_activate(*, account: User) -> User:
    """Let a deactivated staff account sign in again. Idempotent."""
    _require_staff_account(account)
    User.objects.filter(pk=account.pk).update(is_active=True)
    account.is_active = True
    return account


def _unique_name(model: Any, name: str, *, noun: str, exclude: Any = None) -> str:
    """The stripped name, or a field error if it is blank or another row of `model` has it (any case)."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": f"{noun.capitalize()} needs a name."})
    taken = model.objects.filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ValidationError({"name": f"{noun.capitalize()} named '{name}' already exists."})
    return name


def _at_least_one(model: Any, field: str, value: int, message: str) -> None:
    validate_columns(model, **{field: value})
    if value < 1:
        raise ValidationError({field: message})


def _plan_fields(*, name: str, max_subscriptions_per_account: int, exclude: Any = None) -> str:
    name = _unique_name(Plan, name, noun="a plan", exclude=exclude)
    _at_least_one(
        Plan,
        "max_subscriptions_per_account",
        max_subscriptions_per_account,
        "A plan allows at least one subscription per account.",
    )
    return name


@audited("plan.create")
def plan_create(*, name: str, description: str = "", max_subscriptions_per_account: int = 1) -> Plan:
    """Create a private plan; services are added in the plan editor, then it is made public."""
    name = _plan_fields(name=name, max_subscriptions_per_account=max_subscriptions_per_account)
    return Plan.objects.create(
        name=name, description=description, max_subscriptions_per_account=max_subscriptions_per_account
    )


@audited("plan.update", target="plan")
def plan_update(*, plan: Plan, name: str, description: str = "", max_subscriptions_per_account: int = 1) -> Plan:
    """Rename a plan, change its description or its limit of subscriptions per account (existing
    subscriptions past a lowered limit are kept; the limit applies to new ones)."""
    plan.name = _plan_fields(name=name, max_subscriptions_per_account=max_subscriptions_per_account, exclude=plan.pk)
    plan.description = description
    plan.max_subscriptions_per_account = max_subscriptions_per_account
    plan.save(update_fields=["name", "description", "max_subscriptions_per_account"])
    return plan


@audited("plan.clone")
def plan_clone(*, plan: Plan, name: str) -> Plan:
    """A private copy of `plan` under a new name: its services' offers (with allow-lists), quotas,
    add-ons and limits; no invitation code and no subscriptions."""
    with transaction.atomic():
        clone = plan_create(
            name=name, description=plan.description, max_subscriptions_per_account=plan.max_subscriptions_per_account
        )
        QuotaLimit.objects.bulk_create(
            QuotaLimit(plan=clone, service=row.service, key=row.key, value=row.value)
            for row in QuotaLimit.objects.filter(plan=plan)
        )
        for svc in plan_services.plan_services():
            svc.offer_copy(source=plan, target=clone)
        clone.addons.set(plan.addons.all())
    return clone


@audited("plan.set_state", target="plan")
def plan_set_state(*, plan: Plan, state: str) -> Plan:
    """Move a plan between private, public and decommissioned (no new subscriptions; existing ones
    keep working). A plan offering nothing can't go public."""
    if state not in PlanState.values:
        raise ValidationError({"state": f"Unknown plan state '{state}'."})
    if state == PlanState.PUBLIC and not plan_offers_any_service(plan):
        raise NotAllowed("Add at least one service to the plan before making it public.")
    plan.state = state
    plan.save(update_fields=["state"])
    return plan


def plan_offers_any_service(plan: Plan) -> bool:
    """True if any registered service (VM clouds, ...) is part of the plan."""
    return any(svc.offers([plan.pk]) for svc in plan_services.plan_services())


def _quota_rows(owner: dict[str, Any], service: str, quotas: dict[str, Any]) -> list[QuotaLimit]:
    """Validated QuotaLimit rows of one service: numbers >= 0 (None: no row), booleans 1/0."""
    svc = plan_services.plan_service(service)
    known = {spec.key: spec for spec in svc.quotas}
    errors: dict[str, str] = {}
    rows = []
    for key, value in quotas.items():
        spec = known.get(key)
        if spec is None:
            errors[key] = f"{svc.label} has no quota '{key}'."
            continue
        if value is None:
            continue
        if spec.kind == plan_services.BOOLEAN:
            value = 1 if value else 0
        elif isinstance(value, bool) or not isinstance(value, int):
            errors[key] = "Enter a whole number, or nothing for unlimited."
            continue
        elif not 0 <= value <= QUOTA_MAX:
            errors[key] = f"A quota is between 0 and {QUOTA_MAX}."
            continue
        rows.append(QuotaLimit(service=service, key=key, value=value, **owner))
    if errors:
        raise ValidationError(errors)
    return rows


def plan_quotas_set(*, plan: Plan, service: str, quotas: dict[str, Any]) -> None:
    """Set a plan's quotas of one service (None: unlimited; booleans True/False). Limits are read
    live, so the change reaches every existing subscription at once: one over a lowered quota keeps
    its resources and is refused new ones (tenants.plan_services.subscriptions_over_quota)."""
    rows = _quota_rows({"plan": plan}, service, quotas)
    with transaction.atomic():
        QuotaLimit.objects.filter(plan=plan, service=service).delete()
        QuotaLimit.objects.bulk_create(rows)


@audited("plan.service.set", target="plan")
def plan_service_set(*, plan: Plan, service: str, offer: dict[str, Any], quotas: dict[str, Any]) -> None:
    """Offer `service` in the plan (or change its offer) with these quotas, in one transaction.
    `offer` is the cleaned data of the service's offer form. Raises ValidationError, UnknownService."""
    svc = plan_services.plan_service(service)
    with transaction.atomic():
        plan_quotas_set(plan=plan, service=service, quotas=quotas)
        svc.offer_save(plan=plan, data=offer)


@audited("plan.service.remove", target="plan")
def plan_service_remove(*, plan: Plan, service: str) -> None:
    """Stop offering `service` in the plan; refused while a subscription of the plan uses it."""
    svc = plan_services.plan_service(service)
    with transaction.atomic():
        plan = Plan.objects.select_for_update().get(pk=plan.pk)
        live = Subscription.objects.filter(plan=plan).exclude(state=SubscriptionState.DELETED)
        usage = svc.usage_many(list(live.values_list("pk", flat=True)))
        if any(any(v for v in used.values()) for used in usage.values()):
            raise NotAllowed(
                f"Subscriptions of '{plan}' still use {svc.label.lower()}: "
                "they keep them, so the service can't be removed from the plan."
            )
        others = [s for s in plan_services.plan_services() if s.name != service and s.offers([plan.pk])]
        if plan.state == PlanState.PUBLIC and not others:
            raise NotAllowed("A public plan offers at least one service: make it private first.")
        svc.offer_remove(plan=plan)
        QuotaLimit.objects.filter(plan=plan, service=service).delete()


@audited("plan.invitation.rotate", target="plan")
def plan_invitation_rotate(*, plan: Plan) -> str:
    """Give the plan a new invitation code (the old one stops working) and return it: only its
    keyed digest is stored, so it is shown once. Tenants join a private plan with it."""
    if plan.state == PlanState.DECOMMISSIONED:
        raise NotAllowed(f"The plan '{plan}' is decommissioned: it takes no new subscriptions.")
    code = secrets.token_urlsafe(12)
    plan.invitation_digest = keyed_digests(code, purpose=PLAN_INVITATION_DIGEST_PURPOSE)[0]
    plan.save(update_fields=["invitation_digest"])
    return code


@audited("plan.invitation.clear", target="plan")
def plan_invitation_clear(*, plan: Plan) -> Plan:
    """Withdraw the plan's invitation code."""
    plan.invitation_digest = ""
    plan.save(update_fields=["invitation_digest"])
    return plan


def plan_find_by_invitation(*, code: str) -> Plan | None:
    """The private plan whose invitation code this is (one query), or None."""
    code = (code or "").strip()
    if not code or len(code) > 100:
        return None
    digests = keyed_digests(code, purpose=PLAN_INVITATION_DIGEST_PURPOSE)
    return Plan.objects.filter(invitation_digest__in=digests, state=PlanState.PRIVATE).first()


def _invited(plan: Plan, code: str) -> bool:
    code = (code or "").strip()
    return bool(code and plan.invitation_digest) and plan.invitation_digest in keyed_digests(
        code, purpose=PLAN_INVITATION_DIGEST_PURPOSE
    )


@audited("subscription.create")
def subscription_create(
    *, owner: User, plan: Plan, name: str = "", invitation_code: str = "", by: Any = None
) -> Subscription:
    """Subscribe `owner` to a public plan, or to a private one with its invitation code; staff (`by`)
    may subscribe any tenant account to any plan that isn't decommissioned, private ones included,
    without a code. The plan's per-account limit holds for all."""
    if owner.is_staff:
        raise NotAllowed("Staff accounts can't hold subscriptions.")
    by_staff = is_staff(by)
    if not owner.email_verified and not by_staff:
        raise NotAllowed(
            "Verify your email address before subscribing: follow the link we sent you (or send a new one).",
            code="email_unverified",
        )
    with transaction.atomic():
        plan = Plan.objects.select_for_update().get(pk=plan.pk)
        invited = plan.state == PlanState.PRIVATE and _invited(plan, invitation_code)
        if plan.state == PlanState.DECOMMISSIONED or not (plan.state == PlanState.PUBLIC or invited or by_staff):
            raise NotAllowed(f"The plan '{plan}' is not open for subscription.")
        held = Subscription.objects.filter(owner=owner, plan=plan).exclude(state=SubscriptionState.DELETED)
        if held.count() >= plan.max_subscriptions_per_account:
            who = f"{owner.email} already holds" if by_staff else "You already hold"
            raise Conflict(
                f"{who} {plan.max_subscriptions_per_account} subscription(s) to '{plan}', the most this plan allows."
            )
        subscription = Subscription.objects.create(owner=owner, plan=plan, name=(name.strip() or plan.name))
        SUBSCRIPTION_STATES.record_created(subscription, actor=by if by_staff else owner)
        return subscription


# --- add-ons ----------------------------------------------------------------------------------------


def _addon_fields(*, name: str, max_per_subscription: int, exclude: Any = None) -> str:
    name = _unique_name(AddOn, name, noun="an add-on", exclude=exclude)
    _at_least_one(AddOn, "max_per_subscription", max_per_subscription, "A subscription may hold at least one.")
    return name


def _addon_quota_rows(addon: AddOn, quotas: dict[str, dict[str, Any]]) -> list[QuotaLimit]:
    rows: list[QuotaLimit] = []
    errors: dict[str, Any] = {}
    for service, values in quotas.items():
        try:
            rows += [r for r in _quota_rows({"addon": addon}, service, values) if r.value]
        except ValidationError as exc:
            errors.update({f"{service}.{k}": v for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    return rows


@audited("addon.save")
def addon_save(
    *,
    addon: AddOn | None = None,
    name: str,
    description: str = "",
    max_per_subscription: int = 1,
    plans: list[Plan] | None = None,
    quotas: dict[str, dict[str, Any]] | None = None,
) -> AddOn:
    """Create an add-on (`addon` None) or change one: what one unit adds per service and quota
    ({service: {key: amount}}; None or 0: nothing), and the plans it may be bought with. A change
    reaches the subscriptions that hold it at once."""
    name = _addon_fields(
        name=name, max_per_subscription=max_per_subscription, exclude=addon.pk if addon is not None else None
    )
    with transaction.atomic():
        if addon is None:
            addon = AddOn(name=name)
        addon.name, addon.description, addon.max_per_subscription = name, description, max_per_subscription
        rows = _addon_quota_rows(addon, quotas or {})
        addon.save()
        if not rows:
            raise ValidationError({"__all__": "An add-on adds at least one quota."})
        QuotaLimit.objects.filter(addon=addon).delete()
        for row in rows:
            row.addon = addon
        QuotaLimit.objects.bulk_create(rows)
        addon.plans.set(plans or [])
    return addon


@audited("addon.set_state", target="addon")
def addon_set_state(*, addon: AddOn, state: str) -> AddOn:
    """Retire an add-on (sold no more; subscriptions holding it keep it) or sell it again."""
    if state not in AddOnState.values:
        raise ValidationError({"state": f"Unknown add-on state '{state}'."})
    addon.state = state
    addon.save(update_fields=["state"])
    return addon


def _require_owner(user: Any, subscription: Subscription, what: str) -> None:
    subscription_require_owner(user=user, subscription=subscription, action=what)


@audited("subscription.addon.buy")
def subscription_addon_buy(*, subscription: Subscription, addon: AddOn, user: Any) -> SubscriptionAddOn:
    """Add one of `addon` to the subscription (its owner only, not while suspended: read-only), if
    its plan offers it, it is not retired and the subscription holds fewer than its maximum. Under
    the subscription's lock, like every quota check, so creates racing the purchase count it (never
    lost)."""
    with transaction.atomic():
        sub = subscription_lock(subscription.pk)
        _require_owner(user, sub, "buy add-ons")
        subscription_require_active(sub)
        addon = AddOn.objects.get(pk=addon.pk)
        if addon.state != AddOnState.ACTIVE:
            raise NotAllowed(f"The add-on '{addon}' is no longer sold.")
        if not addon.plans.filter(pk=sub.plan_id).exists():
            raise NotAllowed(f"The add-on '{addon}' is not offered with the plan '{sub.plan}'.")
        held, _ = SubscriptionAddOn.objects.get_or_create(subscription=sub, addon=addon, defaults={"quantity": 0})
        if held.quantity >= addon.max_per_subscription:
            raise Conflict(f"Subscription '{sub}' already holds {held.quantity} of '{addon}', the most allowed.")
        held.quantity += 1
        held.save(update_fields=["quantity"])
    return held


@audited("subscription.addon.remove", target="subscription")
def subscription_addon_remove(*, subscription: Subscription, addon: AddOn, user: Any) -> None:
    """Remove one of `addon` from the subscription (its owner only, not while suspended: read-only);
    refused, naming each quota, if what the subscription uses now wouldn't fit without it. Under the
    subscription's lock."""
    with transaction.atomic():
        sub = subscription_lock(subscription.pk)
        _require_owner(user, sub, "remove add-ons")
        subscription_require_active(sub)
        held = SubscriptionAddOn.objects.filter(subscription=sub, addon=addon).first()
        if held is None or held.quantity == 0:
            raise NotAllowed(f"Subscription '{sub}' holds no '{addon}'.")
        adds = {(r.service, r.key): r.value or 0 for r in QuotaLimit.objects.filter(addon=addon)}
        misfits = []
        for q in plan_services.quota_list(sub):
            less = adds.get((q.service, q.key), 0)
            if q.is_boolean or q.limit is None or not less:
                continue
            if q.used > q.limit - less:
                unit = f" {q.unit}" if q.unit else ""
                misfits.append(f"{q.label}: {q.used}{unit} in use, {q.limit - less}{unit} without it")
        if misfits:
            raise NotAllowed(f"Can't remove '{addon}': current use wouldn't fit ({'; '.join(misfits)}).")
        if held.quantity <= 1:
            held.delete()
        else:
            held.quantity -= 1
            held.save(update_fields=["quantity"])


def subscription_lock(subscription_id: Any, *related: str) -> Subscription:
    """Lock a subscription row for the rest of the transaction: quota checks and add-on purchases
    and removals happen under this lock.

    Only the subscription's row is locked; its plan (and `related`, e.g. a service's offer read in
    the same query) are only read, so subscribers of one plan don't queue behind each other.
    """
    return Subscription.objects.select_for_update(of=("self",)).select_related("plan", *related).get(pk=subscription_id)


def subscription_require_active(subscription: Subscription) -> None:
    """Refuse anything that creates or changes a resource unless the subscription is active: a
    suspended one is read-only to its tenant (NotAllowed names the reason staff gave)."""
    if refusal := subscription_refusal(subscription):
        raise NotAllowed(refusal, code=f"subscription_{subscription.state}")


# --- the subscription lifecycle (tenants.lifecycle) --------------------------------------------------


class LifecycleBusy(Conflict):
    code = "lifecycle_busy"


def _lifecycle_lock(subscription: Subscription) -> Subscription:
    """Lock the subscription and refuse while another lifecycle action runs on it (409)."""
    sub = subscription_lock(subscription.pk)
    if sub.sync_state == SyncState.SYNCING:
        raise LifecycleBusy(
            f"Subscription '{sub}' is busy with another action ({sub.sync_action}); wait until it ends."
        )
    return sub


def _fan_out(sub: Subscription, *, action: str, by: Any) -> Job:
    """The action's parent job, one child job per resource from each service, and the subscription
    marked syncing; a subscription with nothing to do is in sync at once (group_seal ends it)."""
    parent = group_create(
        kind=LifecycleAction.job_kind(action), target=sub, subscription=sub, created_by=by, params={"action": action}
    )
    for service in lifecycle_services():
        getattr(service, LifecycleAction.METHODS[action])(sub, parent=parent, by=by)
    Subscription.objects.filter(pk=sub.pk).update(
        sync_state=SyncState.SYNCING, sync_action=action, lifecycle_job=parent, leftovers=[]
    )
    sub.sync_state, sub.sync_action, sub.lifecycle_job, sub.leftovers = SyncState.SYNCING, action, parent, []
    group_seal(parent)
    parent.refresh_from_db()
    return parent


@audited("subscription.suspend", target="subscription")
def subscription_suspend(*, subscription: Subscription, reason: str, by: Any = None) -> Job:
    """Suspend: the tenant sees the subscription read-only with `reason` at once, and every running
    resource is stopped through jobs (the returned parent job). Raises ValidationError without a
    reason, NotAllowed unless active, LifecycleBusy (409) while another action runs."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the subscription is suspended: the tenant sees it."})
    with transaction.atomic():
        sub = _lifecycle_lock(subscription)
        SUBSCRIPTION_STATES.transition(sub, target=SubscriptionState.SUSPENDED, actor=by, reason=reason)
        Subscription.objects.filter(pk=sub.pk).update(state_reason=reason)
        sub.state_reason = reason
        return _fan_out(sub, action=LifecycleAction.SUSPEND, by=by)


@audited("subscription.activate", target="subscription")
def subscription_activate(*, subscription: Subscription, by: Any = None) -> Job:
    """Activate a suspended subscription: the tenant may act again at once, and what was running
    before the suspension is started again through jobs (what was stopped stays stopped)."""
    with transaction.atomic():
        sub = _lifecycle_lock(subscription)
        SUBSCRIPTION_STATES.transition(sub, target=SubscriptionState.ACTIVE, actor=by)
        Subscription.objects.filter(pk=sub.pk).update(state_reason="")
        sub.state_reason = ""
        return _fan_out(sub, action=LifecycleAction.ACTIVATE, by=by)


@audited("subscription.delete", target="subscription")
def subscription_delete(*, subscription: Subscription, by: Any = None, reason: str = "") -> Job:
    """Delete: every resource is deprovisioned through jobs, so nothing is left on the fabric; the
    subscription's row and its resources' records stay (usage, audit), state Deleted."""
    with transaction.atomic():
        sub = _lifecycle_lock(subscription)
        SUBSCRIPTION_STATES.transition(sub, target=SubscriptionState.DELETED, actor=by, reason=reason)
        return _fan_out(sub, action=LifecycleAction.DELETE, by=by)


@audited("subscription.cancel", target="subscription")
def subscription_cancel(*, subscription: Subscription, user: Any, confirm_name: str) -> Job:
    """A tenant cancels its subscription: the same as staff deleting it, for its owner only, who
    confirms by typing its name. Raises Forbidden (not the owner: a co-administrator may not) or
    ValidationError (the name)."""
    subscription_require_owner(user=user, subscription=subscription, action="cancel it")
    if confirm_name.strip() != subscription.name:
        raise ValidationError({"confirm_name": f"Type the subscription's name, '{subscription.name}', to confirm."})
    return subscription_delete(subscription=subscription, by=user, reason="Cancelled by its owner.")


@audited("subscription.resync", target="subscription")
def subscription_resync(*, subscription: Subscription, by: Any = None) -> Job:
    """Finish the last lifecycle action where it didn't reach every resource: it runs again, and
    acts only on what is left (each service's action methods skip what is done)."""
    with transaction.atomic():
        sub = _lifecycle_lock(subscription)
        if sub.sync_state != SyncState.OUT_OF_SYNC or not sub.sync_action:
            raise NotAllowed(f"Subscription '{sub}' is in sync: there is nothing to finish.")
        return _fan_out(sub, action=sub.sync_action, by=by)


def subscription_lifecycle_ended(job: Job) -> None:
    """The parent job of a lifecycle action ended (its handler's hook, in the transaction that ends
    it): the subscription is in sync if every resource is where the action should leave it, else
    out of sync with what is left and why. An older action's end changes nothing."""
    sub = Subscription.objects.select_for_update().filter(pk=job.target_id, lifecycle_job_id=job.pk).first()
    if sub is None:
        return
    leftovers = [item.as_dict() for service in lifecycle_services() for item in service.leftovers(sub)]
    if not leftovers and job.state != "succeeded":
        # A child failed yet its resource ended where it should (e.g. already stopped): say the job's error.
        leftovers = [{"resource": str(sub), "kind": "Subscription", "error": job.error}]
    if not leftovers and sub.sync_action == LifecycleAction.ACTIVATE:
        for service in lifecycle_services():
            service.forget_suspension(sub)
    Subscription.objects.filter(pk=sub.pk).update(
        sync_state=SyncState.OUT_OF_SYNC if leftovers else SyncState.IN_SYNC, leftovers=leftovers
    )


def subscription_lifecycle_prepare_retry(job: Job, *, by: Any) -> None:
    """Retrying a lifecycle action's failed children (portal.job_groups.group_retry): allowed for the
    subscription's latest action only, when nothing else runs; the subscription is syncing again.
    Staff only: these are the provider's actions (a tenant's cancel that didn't finish is finished
    by staff, with a re-sync)."""
    if not is_staff(by):
        raise NotAllowed("Only the provider can run a subscription action again.")
    sub = _lifecycle_lock(Subscription(pk=job.target_id))
    if sub.lifecycle_job_id != job.pk:
        raise NotAllowed(f"A later action on subscription '{sub}' replaced this one; re-sync it instead.")
    Subscription.objects.filter(pk=sub.pk).update(sync_state=SyncState.SYNCING, leftovers=[])


@audited("subscription.change_plan", target="subscription")
def subscription_change_plan(*, subscription: Subscription, plan: Plan, by: Any = None) -> Subscription:
    """Move the subscription to another plan (not decommissioned) if its current use fits the new
    plan's quotas; otherwise NotAllowed names each quota that doesn't fit, with use and limit.
    Checked under the subscription's lock, so a create racing with it can't slip past."""
    with transaction.atomic():
        sub = subscription_lock(subscription.pk)
        if sub.state == SubscriptionState.DELETED:
            raise NotAllowed(f"Subscription '{sub}' is deleted.")
        plan = Plan.objects.get(pk=plan.pk)
        if plan.state == PlanState.DECOMMISSIONED:
            raise NotAllowed(f"The plan '{plan}' is decommissioned: it takes no subscriptions.", field="plan")
        if plan.pk == sub.plan_id:
            raise NotAllowed(f"Subscription '{sub}' is already on plan '{plan}'.", field="plan")
        offer = {(q.service, q.key): q for q in plan_services.quota_offer(plan)}
        offered = {q.service for q in offer.values()}
        misfits = []
        for used in plan_services.quota_list(sub):
            if used.is_boolean:
                continue
            unit = f" {used.unit}" if used.unit else ""
            if used.service not in offered:
                if used.used:
                    misfits.append(f"{used.label}: {used.used}{unit} in use, the plan offers none")
                continue
            # The add-ons the subscription holds stay with it: the new plan's quota plus theirs.
            limit = offer[(used.service, used.key)].plan_limit
            limit = None if limit is None else limit + used.addon_extra
            if limit is not None and used.used > limit:
                allows = "the plan with its add-ons allows" if used.addon_extra else "the plan allows"
                misfits.append(f"{used.label}: {used.used}{unit} in use, {allows} {limit}{unit}")
        if misfits:
            raise NotAllowed(
                f"Subscription '{sub}' doesn't fit plan '{plan}'. " + "; ".join(misfits) + ".",
                code="quota_exceeded",
                field="plan",
            )
        sub.plan = plan
        sub.save(update_fields=["plan", "updated_at"])
        return sub


def subscription_require_owner(*, user: Any, subscription: Subscription, action: str = "do this") -> None:
    """Raise Forbidden (403) unless `user` owns the subscription: co-administrators manage its
    resources, but cancelling it, buying add-ons and managing co-administrators are the owner's.

    `action` completes the message: "Only the subscription's owner can <action>."."""
    if subscription_role(user, subscription) != "owner":
        raise Forbidden(f"Only the owner of subscription '{subscription}' can {action}.")


@audited("coadmin.add")
def coadmin_add(*, subscription: Subscription, by: Any, email: str) -> SubscriptionCoAdmin:
    """Make the tenant account with this email address a co-administrator of the subscription.

    Only the owner may (Forbidden otherwise). The account must be an active tenant account whose
    address is verified, not the owner, not already a co-administrator: ValidationError on `email`.
    From the next request on, it sees the subscription and manages its resources.
    """
    subscription_require_owner(user=by, subscription=subscription, action="manage co-administrators")
    if subscription.state == SubscriptionState.DELETED:
        raise NotAllowed(f"Subscription '{subscription}' is deleted.")
    email = User.objects.normalize_email(email or "").strip().lower()
    if not email:
        raise ValidationError({"email": "Enter the email address of a tenant account."})
    account = User.objects.filter(email__iexact=email, is_staff=False, is_active=True).first()
    if account is None or not account.email_verified:
        raise ValidationError({"email": "No tenant account with a verified email address has this address."})
    if account.pk == subscription.owner_id:
        raise ValidationError({"email": "That is the subscription's owner."})
    try:
        with transaction.atomic():
            return SubscriptionCoAdmin.objects.create(subscription=subscription, user=account, added_by=by)
    except IntegrityError as exc:
        raise ValidationError({"email": f"{account.email} is already a co-administrator."}) from exc


@audited("coadmin.remove", target="coadmin")
def coadmin_remove(*, subscription: Subscription, by: Any, coadmin: SubscriptionCoAdmin) -> None:
    """Remove a co-administrator (owner only, Forbidden otherwise); on its next request the account
    gets 404 for the subscription and everything in it. Removing one already gone is a no-op."""
    subscription_require_owner(user=by, subscription=subscription, action="manage co-administrators")
    SubscriptionCoAdmin.objects.filter(pk=coadmin.pk, subscription=subscription).delete()


# Shown in lists to tell tokens apart: "cnp_" and 8 random characters, far too few to guess the rest.
TOKEN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
# last_used_at is written at most this often per token, not on every request.
TOKEN_LAST_USED_GRANULARITY = timedelta(minutes=1)


@audited("token.create")
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


@audited("token.revoke", target="token")
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
