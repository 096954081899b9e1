"""Forms of both portals for the account's own things (API tokens, cancelling a subscription). They parse;
services decide."""

from __future__ import annotations

from django import forms

from .models import TokenScope


class TokenCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="What the token is for, e.g. 'backup script'.")
    scope = forms.ChoiceField(
        label="Scope",
        choices=TokenScope.choices,
        initial=TokenScope.READ,
        widget=forms.RadioSelect,
        help_text="Read: GET requests only. Read and write: every request your account may make.",
    )
    expires_on = forms.DateField(
        label="Expires after",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last day (UTC) the token works. Leave empty for no expiry.",
    )


class CoAdminAddForm(forms.Form):
    email = forms.EmailField(
        label="Email address of the co-administrator",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
        help_text="A tenant account with a verified email address.",
    )


class SubscriptionCancelForm(forms.Form):
    confirm_name = forms.CharField(
        label="Type the subscription's name to confirm",
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
