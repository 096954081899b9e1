"""Serializers of plans, subscriptions, quotas and accounts. Rules stay in tenants.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.access import StaffRole
from portal.api import PrimaryKeyRelatedField
from portal.columns import column_bounds
from tenants.models import AddOn, AddOnState, Plan, PlanState, SignupInvitation, Subscription, SubscriptionCoAdmin, User
from tenants.selectors import account_list, plan_list


class PlanRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["id", "name"]
        read_only_fields = fields


def with_offers(plans: Any) -> Any:
    """Attach each plan's service offers (`service_offers`) read for all of them at once."""
    from tenants.plan_services import plan_offers

    rows = [plans] if isinstance(plans, Plan) else plans if isinstance(plans, list) else None
    if rows:
        offers = plan_offers([p.pk for p in rows])
        for plan in rows:
            plan.service_offers = offers.get(plan.pk, [])
    return plans


class QuotaLimitSerializer(serializers.Serializer):
    """A plan's quota of one service (null: unlimited; booleans: 1 allowed, 0 not)."""

    key = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(choices=["number", "boolean"], read_only=True)
    unit = serializers.CharField(read_only=True)
    limit = serializers.IntegerField(read_only=True, allow_null=True, source="plan_limit", help_text="null: unlimited")


class AllowItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class AllowListSerializer(serializers.Serializer):
    """An allow-list of the offer (e.g. hardware profiles); no items: every one is allowed."""

    key = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)
    items = AllowItemSerializer(many=True, read_only=True)


class ServiceOfferSerializer(serializers.Serializer):
    """One service a plan offers, read from the plan-service registry."""

    service = serializers.CharField(source="name", read_only=True)
    label = serializers.CharField(read_only=True)
    quotas = QuotaLimitSerializer(many=True, read_only=True)
    allow = serializers.SerializerMethodField()

    @extend_schema_field(AllowListSerializer(many=True))
    def get_allow(self, offer: Any) -> list[dict[str, Any]]:
        return [
            {"key": spec.key, "label": spec.label, "items": [{"id": i.id, "name": i.name} for i in items]}
            for spec, items in offer.allow
        ]


class StaffServiceOfferSerializer(ServiceOfferSerializer):
    """Staff also see where the service runs (e.g. the cloud)."""

    target_id = serializers.IntegerField(source="offer.target_id", read_only=True, help_text="e.g. the cloud's id")
    target = serializers.CharField(source="offer.target", read_only=True)


class TenantPlanSerializer(serializers.ModelSerializer):
    """A public plan as a tenant sees it: its services' quotas and allow-lists, not the fabric."""

    services = ServiceOfferSerializer(many=True, read_only=True, source="service_offers")

    class Meta:
        model = Plan
        fields = ["id", "name", "description", "max_subscriptions_per_account", "services"]
        read_only_fields = fields


class StaffPlanSerializer(serializers.ModelSerializer):
    subscriber_count = serializers.IntegerField(read_only=True, default=0)
    has_invitation_code = serializers.SerializerMethodField()
    services = StaffServiceOfferSerializer(many=True, read_only=True, source="service_offers")
    addons = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Plan
        fields = [
            "id",
            "name",
            "description",
            "state",
            "max_subscriptions_per_account",
            "subscriber_count",
            "has_invitation_code",
            "services",
            "addons",
            "created_at",
        ]
        read_only_fields = fields

    def get_has_invitation_code(self, plan: Plan) -> bool:
        return bool(plan.invitation_digest)


class PlanCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    max_subscriptions_per_account = serializers.IntegerField(
        required=False, default=1, **column_bounds(Plan, "max_subscriptions_per_account", min_value=1)
    )


class PlanUpdateSerializer(PlanCreateSerializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    max_subscriptions_per_account = serializers.IntegerField(
        required=False, **column_bounds(Plan, "max_subscriptions_per_account", min_value=1)
    )


class PlanCloneSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="The copy's name; it is created private.")


class PlanStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=PlanState.choices)


class InvitationSerializer(serializers.Serializer):
    """The new invitation code: shown this once (only its digest is kept)."""

    invitation_code = serializers.CharField(read_only=True)


class PlanServiceInputSerializer(serializers.Serializer):
    """A service's offer in a plan: `offer` holds the service's own fields (VM clouds: `cloud`,
    `hardware_profiles`, `templates`), `quotas` the limits by key (null or absent: unlimited)."""

    offer = serializers.DictField(help_text='The service\'s offer fields, e.g. {"cloud": 1, "templates": [2]}')
    quotas = serializers.DictField(
        child=serializers.JSONField(allow_null=True), required=False, default=dict, help_text="{key: number|bool|null}"
    )


class AddOnQuotaSerializer(serializers.Serializer):
    """Output only: what one unit of an add-on adds to one quota."""

    service = serializers.CharField(read_only=True)
    key = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)
    unit = serializers.CharField(read_only=True)
    value = serializers.IntegerField(read_only=True, help_text="What one unit adds (booleans: 1 grants)")


class AddOnSerializer(serializers.ModelSerializer):
    """An add-on with what one unit adds, per service and quota."""

    quotas = serializers.SerializerMethodField()
    plans = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = AddOn
        fields = ["id", "name", "description", "state", "max_per_subscription", "plans", "quotas"]
        read_only_fields = fields

    @extend_schema_field(AddOnQuotaSerializer(many=True))
    def get_quotas(self, addon: AddOn) -> list[dict[str, Any]]:
        from tenants.plan_services import addon_quotas

        return [
            {"service": q.service, "key": q.key, "label": q.label, "unit": q.unit, "value": q.limit}
            for q in addon_quotas(addon)
        ]


class AddOnInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    max_per_subscription = serializers.IntegerField(
        required=False, default=1, **column_bounds(AddOn, "max_per_subscription", min_value=1)
    )
    plans = PrimaryKeyRelatedField(many=True, queryset=Plan.objects.all(), required=False, default=list)
    quotas = serializers.DictField(
        child=serializers.DictField(child=serializers.JSONField(allow_null=True)),
        help_text='{service: {key: amount}}, e.g. {"vm_cloud": {"cores": 4, "memory_mb": 8192}}',
    )


class AddOnStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=AddOnState.choices)


class HeldAddOnSerializer(serializers.Serializer):
    """An add-on a subscription may buy or holds, with how many it holds."""

    addon = AddOnSerializer(read_only=True)
    quantity = serializers.IntegerField(read_only=True)


class AddOnBuySerializer(serializers.Serializer):
    addon = PrimaryKeyRelatedField(queryset=AddOn.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["addon"].queryset = AddOn.objects.visible_to(getattr(request, "user", None))


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
    """Subscribe to a public plan by id, or to a private one with its invitation code alone."""

    plan = PrimaryKeyRelatedField(queryset=Plan.objects.none(), required=False, allow_null=True, default=None)
    invitation_code = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("plan") is None and not attrs.get("invitation_code"):
            raise serializers.ValidationError({"plan": "Choose a plan, or give a private plan's invitation code."})
        return attrs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["plan"].queryset = plan_list(user=getattr(request, "user", None))


class QuotaSerializer(serializers.Serializer):
    """Output only: a quota with the plan's part, the add-ons' part, the effective limit (their sum;
    null: unlimited), what is used, what remains and by how much use is over a lowered limit."""

    service = serializers.CharField(read_only=True)
    key = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(choices=["number", "boolean"], read_only=True)
    plan_limit = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: unlimited")
    addon_extra = serializers.IntegerField(read_only=True)
    limit = serializers.IntegerField(read_only=True, allow_null=True, help_text="plan + add-ons; null: unlimited")
    over = serializers.IntegerField(read_only=True, help_text="use past the limit (a lowered quota)")
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
