"""Admin portal forms for plans, subscriptions and staff accounts. They parse input; tenants.services
holds the rules."""

from __future__ import annotations

from django import forms

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


"""Admin portal forms for plans, subscriptions and staff accounts. They parse input; tenants.services
holds the rules."""
