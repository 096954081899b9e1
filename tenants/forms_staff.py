"""Admin portal forms for plans, add-ons, subscriptions and staff accounts. They parse input;
tenants.services holds the rules.

Quota fields are built from the plan-service registry (each service's QuotaSpecs), so a new
service's quotas appear in the plan editor and the add-on form by registering.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from portal.access import StaffRole
from portal.columns import column_bounds
from tenants.models import AddOn, Plan
from tenants.plan_services import BOOLEAN, PlanService, plan_services

QUOTA_MAX = 2**63 - 1


class PlanCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    max_subscriptions_per_account = forms.IntegerField(
        label="Max subscriptions per account",
        initial=1,
        help_text="How many subscriptions to this plan one account may hold.",
        **column_bounds(Plan, "max_subscriptions_per_account", min_value=1),
    )


class SignupInvitationForm(forms.Form):
    email = forms.EmailField(label="Email address to invite")
    valid_days = forms.IntegerField(
        label="Valid for (days)",
        initial=7,
        min_value=1,
        max_value=90,
        help_text="The invitation works once, until then.",
    )


class SubscriptionCreateForm(forms.Form):
    """Staff subscribe a tenant account (by email) to any plan that isn't decommissioned."""

    owner = forms.EmailField(label="Account's email", help_text="The tenant account that will own the subscription.")
    plan = forms.ModelChoiceField(label="Plan", queryset=Plan.objects.none(), empty_label="Choose a plan")
    name = forms.CharField(
        label="Subscription name", max_length=100, required=False, help_text="Defaults to the plan's name."
    )

    def __init__(self, *args: Any, plans: QuerySet[Plan], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plans


class SuspendForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The tenant sees it on the subscription while it is suspended.",
    )


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(label="New plan", queryset=Plan.objects.none(), empty_label="Choose a plan")

    def __init__(self, *args: Any, plans: QuerySet[Plan], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plans


class StaffAccountCreateForm(forms.Form):
    email = forms.EmailField(label="Email")
    full_name = forms.CharField(label="Name", max_length=150, required=False)
    role = forms.ChoiceField(
        label="Role",
        choices=StaffRole.choices,
        help_text="Administrators may do everything; operators read everything and run resource and "
        "subscription actions, but change no plan, add-on, account, fabric or setting.",
    )
    password = forms.CharField(
        label="Initial password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to email a link with which the new account sets its own password.",
    )


class StaffRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=StaffRole.choices)


class PlanCloneForm(forms.Form):
    name = forms.CharField(label="Name of the copy", max_length=100)


def quota_form(service: PlanService, *, data: Any = None, initial: dict[str, Any] | None = None, prefix: str) -> Any:
    """The plan editor's quota fields of one service: numbers (blank = unlimited) and booleans."""
    fields: dict[str, forms.Field] = {}
    for spec in service.quotas:
        if spec.kind == BOOLEAN:
            fields[spec.key] = forms.BooleanField(label=spec.label, required=False, initial=True)
        else:
            fields[spec.key] = forms.IntegerField(
                label=spec.label + (f" ({spec.unit})" if spec.unit else ""),
                required=False,
                min_value=0,
                max_value=QUOTA_MAX,
                help_text="Blank = unlimited.",
            )
    form_class = type(f"{service.name.title().replace('_', '')}QuotaForm", (forms.Form,), fields)
    return form_class(data, initial=initial, prefix=prefix)


def quota_initial(service: PlanService, rows: dict[tuple[str, str], int | None]) -> dict[str, Any]:
    """The quota form's values from a plan's rows (booleans unset: allowed)."""
    initial: dict[str, Any] = {}
    for spec in service.quotas:
        value = rows.get((service.name, spec.key))
        initial[spec.key] = (value is None or bool(value)) if spec.kind == BOOLEAN else value
    return initial


class AddOnForm(forms.Form):
    """An add-on; one field per registered service's quota ("<service>__<key>") for what one unit adds."""

    name = forms.CharField(label="Name", max_length=100, help_text="What tenants see, e.g. '+4 vCPU, +8 GB'.")
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    max_per_subscription = forms.IntegerField(
        label="Max per subscription",
        initial=1,
        help_text="How many of this add-on one subscription may hold.",
        **column_bounds(AddOn, "max_per_subscription", min_value=1),
    )
    plans = forms.ModelMultipleChoiceField(
        label="Offered with plans",
        queryset=Plan.objects.none(),
        required=False,
        help_text="Subscriptions to these plans may buy it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plans"].queryset = Plan.objects.order_by("name")
        for svc in plan_services():
            for spec in svc.quotas:
                name = f"{svc.name}__{spec.key}"
                if spec.kind == BOOLEAN:
                    self.fields[name] = forms.BooleanField(label=f"{svc.label}: grants {spec.label}", required=False)
                else:
                    unit = f" ({spec.unit})" if spec.unit else ""
                    self.fields[name] = forms.IntegerField(
                        label=f"{svc.label}: extra {spec.label}{unit}",
                        required=False,
                        min_value=0,
                        max_value=QUOTA_MAX,
                    )

    def service_data(self) -> dict[str, Any]:
        """The cleaned data as addon_save's arguments."""
        data = dict(self.cleaned_data)
        quotas: dict[str, dict[str, Any]] = {}
        for svc in plan_services():
            for spec in svc.quotas:
                value = data.pop(f"{svc.name}__{spec.key}", None)
                if value:
                    quotas.setdefault(svc.name, {})[spec.key] = value
        return {**data, "plans": list(data.get("plans") or []), "quotas": quotas}

    @staticmethod
    def initial_of(addon: AddOn) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": addon.name,
            "description": addon.description,
            "max_per_subscription": addon.max_per_subscription,
            "plans": [p.pk for p in addon.plans.all()],
        }
        for row in addon.quota_limits.all():
            initial[f"{row.service}__{row.key}"] = row.value
        return initial
