"""Admin portal forms of the fabric: register an endpoint (a plan's VM cloud offer form is in
fabric.plan_service). They only parse input; the rules are in fabric.services."""

from __future__ import annotations

from typing import Any

from django import forms

from .drivers import available_drivers


class EndpointRegisterForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    driver = forms.ChoiceField(label="Driver")
    settings = forms.JSONField(
        label="Settings (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text='Optional driver settings as a JSON object, e.g. {"latency": 0}.',
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read at form build time: drivers installed as entry points appear without a restart of this module.
        self.fields["driver"].choices = [(name, name) for name in sorted(available_drivers())]

    def clean_settings(self) -> dict[str, Any]:
        value = self.cleaned_data.get("settings")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Settings must be a JSON object, like {"key": "value"}.')
        return value
