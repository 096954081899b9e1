"""Admin portal forms for plans, subscriptions and staff accounts. They parse input; tenants.services
holds the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from portal.access import StaffRole
from portal.columns import column_bounds
from tenants.models import Plan


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
