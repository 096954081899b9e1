"""Admin portal forms for plans. They parse input; tenants.services holds the rules."""

from __future__ import annotations

from django import forms


class PlanCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    max_subscriptions_per_account = forms.IntegerField(
        label="Max subscriptions per account",
        min_value=1,
        initial=1,
        help_text="How many subscriptions to this plan one account may hold.",
    )
