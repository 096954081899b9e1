"""Serializers of plans, subscriptions, quotas and accounts. Rules stay in tenants.services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from fabric.api.serializers import PlanVMCloudSerializer, PlanVMQuotasSerializer
from portal.access import StaffRole
from portal.api import PrimaryKeyRelatedField
from portal.columns import column_bounds
from tenants.models import Plan, PlanState, SignupInvitation, Subscription, SubscriptionCoAdmin, User
from tenants.selectors import account_list, plan_list


class PlanRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["id", "name"]
        read_only_fields = fields


class TenantPlanSerializer(serializers.ModelSerializer):
    """A public plan as a tenant sees it: its VM quotas, not the fabric behind them."""

    vm_cloud = PlanVMQuotasSerializer(source="vm_cloud_service", read_only=True, allow_null=True)

    class Meta:
        model = Plan
        fields = ["id", "name", "description", "max_subscriptions_per_account", "vm_cloud"]
        read_only_fields = fields


class StaffPlanSerializer(serializers.ModelSerializer):
    subscriber_count = serializers.IntegerField(read_only=True, default=0)
    vm_cloud = PlanVMCloudSerializer(source="vm_cloud_service", read_only=True, allow_null=True)

    class Meta:
        model = Plan
        fields = [
            "id",
            "name",
            "description",
            "state",
            "max_subscriptions_per_account",
            "subscriber_count",
            "vm_cloud",
            "created_at",
        ]
        read_only_fields = fields


class PlanCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    max_subscriptions_per_account = serializers.IntegerField(
        required=False, default=1, **column_bounds(Plan, "max_subscriptions_per_account", min_value=1)
    )


class PlanStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=PlanState.choices)


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = PlanRefSerializer(read_only=True)
    state_reason = serializers.CharField(read_only=True, help_text="why it is suspended (empty when active)")

    class Meta:
        model = Subscription
        fields = ["id", "name", "plan", "state", "state_reason", "created_at"]
        read_only_fields = fields


class TenantSubscriptionSerializer(SubscriptionSerializer):
    """A subscription as a tenant sees it, with what the account is to it."""

    role = serializers.SerializerMethodField(help_text="owner, or coadmin (a co-administrator)")

    class Meta(SubscriptionSerializer.Meta):
        fields = ["id", "name", "plan", "state", "state_reason", "role", "created_at"]
        read_only_fields = fields

    def get_role(self, subscription: Subscription) -> str:
        # The list shows only subscriptions the account owns or co-administers (the access rule).
        request = self.context.get("request")
        return "owner" if request is not None and subscription.owner_id == request.user.pk else "coadmin"


class CoAdminSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)

    class Meta:
        model = SubscriptionCoAdmin
        fields = ["id", "email", "full_name", "created_at"]
        read_only_fields = fields


class CoAdminAddSerializer(serializers.Serializer):
    email = serializers.EmailField(help_text="A tenant account with a verified email address")


class AccountRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "full_name"]
        read_only_fields = fields


class LeftoverSerializer(serializers.Serializer):
    """A resource the last lifecycle action didn't finish on, and why."""

    resource = serializers.CharField(read_only=True)
    kind = serializers.CharField(read_only=True)
    error = serializers.CharField(read_only=True)


class LifecycleJobSerializer(serializers.Serializer):
    """The last lifecycle action's parent job (its progress is its children's)."""

    id = serializers.UUIDField(read_only=True)
    kind = serializers.CharField(read_only=True)
    state = serializers.CharField(read_only=True)
    percent = serializers.IntegerField(read_only=True)
    step = serializers.CharField(read_only=True, help_text="e.g. '3 of 5 done, 1 failed'")
    error = serializers.CharField(read_only=True)


class StaffSubscriptionSerializer(SubscriptionSerializer):
    owner = AccountRefSerializer(read_only=True)
    leftovers = LeftoverSerializer(many=True, read_only=True)
    lifecycle_job = LifecycleJobSerializer(read_only=True, allow_null=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = [
            "id",
            "name",
            "owner",
            "plan",
            "state",
            "state_reason",
            "sync_state",
            "sync_action",
            "leftovers",
            "lifecycle_job",
            "created_at",
        ]
        read_only_fields = fields


class StaffSubscriptionCreateSerializer(serializers.Serializer):
    """Subscribe a tenant account to any plan that isn't decommissioned (the service checks the rest)."""

    owner = PrimaryKeyRelatedField(queryset=User.objects.none(), help_text="a tenant account's id")
    plan = PrimaryKeyRelatedField(queryset=Plan.objects.none())
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        user = getattr(self.context.get("request"), "user", None)
        self.fields["owner"].queryset = account_list(user=user)
        self.fields["plan"].queryset = plan_list(user=user).exclude(state=PlanState.DECOMMISSIONED)


class SuspendSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="shown to the tenant")


class ChangePlanSerializer(serializers.Serializer):
    plan = PrimaryKeyRelatedField(queryset=Plan.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plan_list(user=getattr(self.context.get("request"), "user", None))


class CancelSerializer(serializers.Serializer):
    confirm_name = serializers.CharField(max_length=100, help_text="the subscription's name, typed to confirm")


class SubscriptionCreateSerializer(serializers.Serializer):
    """Subscribe to a plan the account can see (public plans); the service checks the rest."""

    plan = PrimaryKeyRelatedField(queryset=Plan.objects.none())
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["plan"].queryset = plan_list(user=getattr(request, "user", None))


class QuotaSerializer(serializers.Serializer):
    """Output only: a quota with what is used and what remains."""

    service = serializers.CharField(read_only=True)
    key = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)
    limit = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: unlimited")
    used = serializers.IntegerField(read_only=True)
    remaining = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: unlimited")
    unit = serializers.CharField(read_only=True)
    percent = serializers.IntegerField(read_only=True)


class AccountSerializer(serializers.ModelSerializer):
    subscription_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_active", "date_joined", "subscription_count"]
        read_only_fields = fields


class SignupInvitationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="pending, used, revoked or expired")
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True, default=None)
    used_by = serializers.EmailField(source="used_by.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = SignupInvitation
        fields = ["id", "email", "prefix", "status", "created_by", "created_at", "expires_at", "used_at", "used_by"]
        read_only_fields = fields


class SignupInvitationCreatedSerializer(SignupInvitationSerializer):
    """The new invitation with its code, in this answer only (only a digest of it is stored)."""

    code = serializers.CharField(read_only=True)
    mail_sent = serializers.BooleanField(read_only=True)

    class Meta(SignupInvitationSerializer.Meta):
        fields = [*SignupInvitationSerializer.Meta.fields, "code", "mail_sent"]
        read_only_fields = fields


class SignupInvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    valid_days = serializers.IntegerField(required=False, default=7, min_value=1, max_value=90)


class StaffAccountSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(source="staff_role", choices=StaffRole.choices, read_only=True)
    two_factor = serializers.BooleanField(read_only=True, default=False, help_text="enrolled a TOTP app")

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "role", "is_active", "two_factor", "date_joined", "last_login"]
        read_only_fields = fields


class StaffAccountCreateSerializer(serializers.Serializer):
    """A new staff account. Without `password` it has none until set through the link emailed to it."""

    email = serializers.EmailField()
    full_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=StaffRole.choices)
    password = serializers.CharField(
        required=False, allow_blank=True, default="", write_only=True, trim_whitespace=False
    )


class StaffRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=StaffRole.choices)


class TemporaryPasswordSerializer(serializers.Serializer):
    """The account's new password, in this answer only: it is stored hashed and never shown again."""

    account = AccountSerializer(read_only=True)
    password = serializers.CharField(read_only=True)


class StaffRoleInfoSerializer(serializers.Serializer):
    role = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)
    capabilities = serializers.ListField(child=serializers.CharField(), read_only=True)
