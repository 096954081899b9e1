"""Admin portal forms of the fabric: register an endpoint, offer a VM cloud in a plan.

They only parse input (numbers bounded by their columns); the rules (unique names, driver settings,
quotas >= 0) are in fabric.services.
"""

from __future__ import annotations

from typing import Any

from django import forms

from portal.columns import column_bounds

from .drivers import available_drivers
from .models import Cloud, VMCloudPlanService


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


class CloudChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Cloud) -> str:
        return f"{obj.stamp.endpoint} / {obj.stamp} / {obj.name}"


class PlanVMCloudForm(forms.Form):
    """The VM cloud service of a plan; a blank quota means unlimited."""

    cloud = CloudChoiceField(label="Cloud", queryset=Cloud.objects.none(), empty_label="Choose a cloud…")
    max_vms = forms.IntegerField(
        label="Max VMs", required=False, help_text="Blank = unlimited", **column_bounds(VMCloudPlanService, "max_vms")
    )
    max_cores = forms.IntegerField(
        label="Max vCPU cores",
        required=False,
        help_text="Blank = unlimited",
        **column_bounds(VMCloudPlanService, "max_cores"),
    )
    max_memory_mb = forms.IntegerField(
        label="Max memory (MB)",
        required=False,
        help_text="Blank = unlimited",
        **column_bounds(VMCloudPlanService, "max_memory_mb"),
    )

    def __init__(self, *args: Any, clouds: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["cloud"].queryset = clouds
