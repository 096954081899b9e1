"""Provisioning jobs (one model and one framework, portal.jobs, for all long-running work) and the
state history of resources (written by portal.states)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from portal.access import SubscriptionScopedQuerySet, visible_subscription_ids


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_JOB_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)


class Job(models.Model):
    """A unit of long-running work on one resource, run by a Celery worker.

    Created in the same transaction as the resource change it carries out and sent to the broker
    on commit. `attempts` is the fencing token: each claim increments it and every write of a run
    is conditional on it, so a worker that lost its claim can't overwrite a newer run.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, help_text="app_label.model of the resource")
    target_id = models.CharField(max_length=64)
    target_name = models.CharField(max_length=200, blank=True)
    subscription = models.ForeignKey(
        "tenants.Subscription", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A child of a job group (portal.job_groups): one resource's share of a fan-out (e.g. a
    # subscription's suspension stopping each of its VMs); the parent ends when its children have.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    percent = models.PositiveSmallIntegerField(default=0)
    step = models.CharField(max_length=200, blank=True, help_text="the step in progress")
    steps = models.JSONField(default=list, blank=True, help_text="step log: name, state, times, message")
    error = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    # Fernet token of a secret the job needs (e.g. a VM's admin password); wiped when the job ends.
    secret = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    retries = models.PositiveIntegerField(default=0, help_text="how many times a user re-ran the failed job")
    heartbeat = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="when the last message was (to be) delivered")
    dispatch_count = models.PositiveIntegerField(default=0, help_text="messages sent since it was last queued")
    retry_at = models.DateTimeField(null=True, blank=True, help_text="a transient failure's backoff: not before")
    deadline_at = models.DateTimeField(null=True, blank=True, help_text="failed as timed out after this")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = SubscriptionScopedQuerySet.as_manager()
    # What a cancel or retry changes, for the audit log (not its step log, heartbeat or fencing).
    audit_fields = ("state", "error", "retries", "max_attempts", "finished_at")

    class Meta:
        # Newest first, ties broken by id: a total order, which keyset (cursor) pages need.
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["state", "heartbeat"]),
            # The job lists' first page read straight off an index: a tenant's and staff's.
            models.Index(fields=["subscription", "-created_at", "-id"], name="job_sub_newest"),
            models.Index(fields=["-created_at", "-id"], name="job_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.target_name or self.target_id} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_JOB_STATES

    @property
    def waiting_since(self) -> Any:
        """When the job became due to run, if it is queued (a retry waits from its backoff's end)."""
        if self.state != JobState.QUEUED:
            return None
        return self.retry_at or self.created_at

    @property
    def is_waiting_for_worker(self) -> bool:
        """Queued and due for longer than CANOPY_JOB_WAITING_SECONDS: no worker is taking jobs (or
        the broker is down). Shown to users instead of a bar that never moves."""
        since = self.waiting_since
        if since is None:
            return False
        return (timezone.now() - since).total_seconds() > settings.CANOPY_JOB_WAITING_SECONDS

    @property
    def label(self) -> str:
        from portal.jobs import job_label

        return job_label(self)


class StateTransition(models.Model):
    """One change of a resource's state (from, to, when, by whom, which job), written by
    `portal.states` in the transaction that makes the change.

    One table for every kind of resource, keyed like Job's target, so usage metering ("VM X was
    running from t1 to t2") and the audit log read a single history. `at` comes from the database
    clock (the statement's time, taken after the resource's row lock), so the order of a resource's
    rows is the order its changes happened in, whichever process made them.
    """

    id = models.BigAutoField(primary_key=True)
    resource_type = models.CharField(max_length=64, help_text="app_label.model of the resource")
    resource_id = models.CharField(max_length=64)
    subscription = models.ForeignKey(
        "tenants.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    from_state = models.CharField(max_length=32, blank=True, help_text="empty: the resource was created")
    to_state = models.CharField(max_length=32)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    at = models.DateTimeField(db_default=Now())

    objects = SubscriptionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # a resource's history in order (its page; metering one resource)
            models.Index(fields=["resource_type", "resource_id", "at"]),
            # a subscription's changes over a billing period
            models.Index(fields=["subscription", "at"]),
            # every resource of a kind over a period (metering runs)
            models.Index(fields=["resource_type", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.resource_id}: {self.from_state or '∅'} → {self.to_state}"


class SignupPolicy(models.TextChoices):
    OPEN = "open", "Open: anyone may sign up"
    INVITATION = "invitation", "Invitation only: sign-up needs an invitation staff sent"
    CLOSED = "closed", "Closed: nobody may sign up"


class PortalSettings(models.Model):
    """Provider settings that staff change in the admin portal, rather than in the environment.

    One row (pk=1, read through `load`); each setting is a typed column, so a later one (TOTP required
    for staff, ...) is a field and a migration, validated like any other.
    """

    SINGLETON_PK = 1

    signup_policy = models.CharField(
        max_length=16,
        choices=SignupPolicy.choices,
        default=SignupPolicy.OPEN,
        help_text="Who may create a tenant account on the tenant portal's sign-up page",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name_plural = "portal settings"

    def __str__(self) -> str:
        return "Portal settings"

    @classmethod
    def load(cls) -> PortalSettings:
        """The settings row, created with the defaults the first time it is read."""
        row, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return row


class AuditOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    REFUSED = "refused", "Refused"
    FAILED = "failed", "Failed"


class AuditEntryQuerySet(SubscriptionScopedQuerySet["AuditEntry"]):
    """Staff see every entry; a tenant those of its subscriptions, and its own entries that belong
    to no subscription (its account, its API tokens, its sign-ins)."""

    def tenant_scope(self, user: Any) -> Any:
        return self.filter(
            models.Q(subscription_id__in=visible_subscription_ids(user))
            | models.Q(subscription__isnull=True, actor=user)
        )


class AuditEntry(models.Model):
    """One mutating action (or sign-in) in either portal or API: who, on behalf of which subscription,
    what, to which object, the changed fields before and after (secrets redacted), the outcome, when
    (the database's clock), from where and in which request. Written by `portal.audit` in the same
    transaction as the change; a refused action's entry in its own. Never updated."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_default=Now())
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, help_text="the actor's email then, 'system' or 'anonymous'")
    by_staff = models.BooleanField(default=False, help_text="the actor was provider staff")
    # No constraint: the entry outlives its subscription (and blocks no deletion of an account).
    subscription = models.ForeignKey(
        "tenants.Subscription",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    action = models.CharField(max_length=64, help_text="a dotted verb: vm.start, plan.create, token.revoke")
    object_type = models.CharField(max_length=64, blank=True, help_text="app_label.model")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]}, changed fields only")
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices, default=AuditOutcome.SUCCEEDED)
    message = models.TextField(blank=True, help_text="why it was refused or failed")
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    site = models.CharField(max_length=16, blank=True, help_text="staff, tenant or system")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # Newest first, as the keyset pages read them: everything, per subscription, per actor.
            models.Index(fields=["-created_at", "-id"], name="audit_newest"),
            models.Index(fields=["subscription", "-created_at", "-id"], name="audit_sub_newest"),
            models.Index(fields=["actor", "-created_at", "-id"], name="audit_actor_newest"),
            # An object's history; one action's entries.
            models.Index(fields=["object_type", "object_id", "-created_at"], name="audit_object"),
            models.Index(fields=["action", "-created_at"], name="audit_action"),
            # The rare ones: refusals and failures, and a request's entries.
            models.Index(
                fields=["outcome", "-created_at"],
                name="audit_not_succeeded",
                condition=~models.Q(outcome="succeeded"),
            ),
            models.Index(fields=["request_id"], name="audit_request", condition=~models.Q(request_id="")),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_repr} by {self.actor_label} ({self.outcome})"
