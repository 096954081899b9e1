"""Accounts, hosting plans and subscriptions.

Which services a plan offers is defined by the app that owns the service (e.g.
fabric.VMCloudPlanService), registered with tenants.plan_services, so this app knows none of them;
their quota limits are rows here (QuotaLimit), keyed by the service's name and the quota's key.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from portal.access import OwnedQuerySet, StaffRole

from .querysets import AddOnQuerySet, PlanQuerySet, SubscriptionAddOnQuerySet, SubscriptionQuerySet


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        if not email:
            raise ValueError("an email address is required")
        # Accounts made here (staff, the demo seed, scripts) are vouched for; self sign-up
        # (tenants.services.account_signup) passes email_verified_at=None and sends a link.
        extra.setdefault("email_verified_at", timezone.now())
        if extra.get("is_staff"):
            # Staff accounts were all administrators before roles; creating one without a role
            # keeps meaning that. The staff pages and API always pass the role they chose.
            extra.setdefault("staff_role", StaffRole.ADMINISTRATOR)
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """An account, signed in by email. `is_staff` accounts use the admin portal, others the tenant portal.

    `staff_role` says what a staff account may do there (portal.access.has_capability; "" for
    tenants). `is_active` False refuses sign-in and ends existing sessions at their next request: a
    locked tenant account, a deactivated staff account, a deleted account that must be kept because
    its (deleted) subscriptions still name it (`deleted_at`, with its address and name wiped).
    """

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Provider staff (admin portal) account")
    is_active = models.BooleanField(default=True)  # type: ignore[misc]  # a field, as in AbstractUser
    staff_role = models.CharField(max_length=16, choices=StaffRole.choices, blank=True, default="")
    deleted_at = models.DateTimeField(null=True, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)
    email_verified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the account proved it reads its email address (null: not yet)"
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class PlanState(models.TextChoices):
    PRIVATE = "private", "Private"
    PUBLIC = "public", "Public"
    DECOMMISSIONED = "decommissioned", "Decommissioned"


class Plan(models.Model):
    """A hosting plan: the services a tenant gets and their quotas. Tenants subscribe to public plans."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=PlanState.choices, default=PlanState.PRIVATE)
    max_subscriptions_per_account = models.PositiveIntegerField(
        default=1, help_text="How many subscriptions to this plan one account may hold"
    )
    # Keyed digest (portal.crypto.keyed_digests) of the code tenants join this private plan with;
    # the clear code is shown once, when staff generate or rotate it. Empty: no code.
    invitation_digest = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SubscriptionState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    DELETED = "deleted", "Deleted"


class SyncState(models.TextChoices):
    """Whether the subscription's resources match its state (tenants.lifecycle): a lifecycle
    action (suspend, activate, delete) fans out as jobs, and one that didn't finish on every
    resource leaves the subscription out of sync until a re-sync finishes it."""

    IN_SYNC = "in_sync", "In sync"
    SYNCING = "syncing", "Syncing"
    OUT_OF_SYNC = "out_of_sync", "Out of sync"


class Subscription(models.Model):
    """A tenant account's subscription to a plan; every tenant resource belongs to one.

    The row is also the lock that serializes quota checks: services lock it (select_for_update)
    before counting usage and inserting a resource; lifecycle actions take the same lock.
    `state` moves along tenants.lifecycle.SUBSCRIPTION_STATES (with history); `sync_state`,
    `sync_action` and `leftovers` say whether the last lifecycle action reached every resource.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    state = models.CharField(max_length=16, choices=SubscriptionState.choices, default=SubscriptionState.ACTIVE)
    state_reason = models.TextField(blank=True, help_text="why staff suspended it (shown to the tenant)")
    sync_state = models.CharField(max_length=16, choices=SyncState.choices, default=SyncState.IN_SYNC)
    sync_action = models.CharField(max_length=16, blank=True, help_text="the last lifecycle action")
    leftovers = models.JSONField(
        default=list, blank=True, help_text="what the last lifecycle action left: resource, kind, error"
    )
    lifecycle_job = models.ForeignKey("portal.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["owner", "state"]), models.Index(fields=["sync_state"])]

    def __str__(self) -> str:
        return self.name


class AddOnState(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class AddOn(models.Model):
    """A named pack of extra quota ("+4 vCPU, +8 GB") that subscribers of `plans` may buy, up to
    `max_per_subscription` times. Its quotas are QuotaLimit rows; a retired add-on is sold no more,
    but subscriptions that bought it keep it."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=AddOnState.choices, default=AddOnState.ACTIVE)
    max_per_subscription = models.PositiveIntegerField(
        default=1, help_text="How many of this add-on one subscription may hold"
    )
    plans = models.ManyToManyField(Plan, related_name="addons", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AddOnQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class QuotaLimit(models.Model):
    """One quota of one service, for a plan (its limit; no row or a null value = unlimited) or for an
    add-on (what one unit of it adds). Booleans are 0/1. Rows, not columns, so a service declares its
    quotas (tenants.plan_services) without a migration here."""

    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.CASCADE, related_name="quota_limits")
    addon = models.ForeignKey(AddOn, null=True, blank=True, on_delete=models.CASCADE, related_name="quota_limits")
    service = models.CharField(max_length=50)
    key = models.CharField(max_length=50)
    value = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(plan__isnull=False, addon__isnull=True)
                | models.Q(plan__isnull=True, addon__isnull=False),
                name="quotalimit_plan_xor_addon",
            ),
            models.UniqueConstraint(fields=["plan", "service", "key"], name="quotalimit_unique_plan"),
            models.UniqueConstraint(fields=["addon", "service", "key"], name="quotalimit_unique_addon"),
        ]

    def __str__(self) -> str:
        return f"{self.plan or self.addon}: {self.service}.{self.key} = {self.value}"


class SubscriptionAddOn(models.Model):
    """How many of an add-on a subscription holds. Written under the subscription's lock, like
    quota checks, so a purchase racing creates is never lost."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="addons")
    addon = models.ForeignKey(AddOn, on_delete=models.PROTECT, related_name="subscriptions")
    quantity = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SubscriptionAddOnQuerySet.as_manager()

    class Meta:
        ordering = ["addon__name"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "addon"], name="subscriptionaddon_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription}: {self.quantity} x {self.addon}"


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class APIToken(models.Model):
    """A personal API token (`Authorization: Bearer cnp_…`) for scripts, in place of a password.

    Only a keyed hash of the token is stored (tenants.tokens.token_digest), plus its first characters
    in clear (`prefix`) so lists can tell tokens apart; the clear token is shown once, at creation.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self, now: Any = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class SubscriptionCoAdmin(models.Model):
    """Another tenant account that manages a subscription's resources beside its owner.

    A co-administrator sees the subscription and everything in it (the access rule,
    SubscriptionQuerySet.tenant_scope, reads these rows), but only the owner may cancel it, buy
    add-ons or manage co-administrators (tenants.selectors.subscription_role). Removing the row takes
    effect on the co-administrator's next request: nothing about it is cached in the session.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="coadmins")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="coadministered")
    added_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["subscription", "user"], name="coadmin_once_per_subscription")]
        # visible_ids reads "the subscriptions this user co-administers" on every scoped request.
        indexes = [models.Index(fields=["user", "subscription"])]

    def __str__(self) -> str:
        return f"{self.user} on {self.subscription}"


class SignupInvitation(models.Model):
    """A single-use invitation for one email address to create a tenant account, made by staff; the
    sign-up page requires one while the sign-up policy is "invitation only".

    Only a keyed hash of its code is stored (like API tokens), plus its first characters to tell
    invitations apart; the code is sent by email and shown to staff once, at creation.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField()
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["-created_at", "id"])]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @property
    def status(self) -> str:
        """used, revoked, expired or pending: what the staff list shows."""
        if self.used_at:
            return "used"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"
