"""Forms of the tenant portal's VM pages. Rules (names, passwords, quotas) are checked by the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from tenants.models import Subscription

from .models import HardwareProfile, VMTemplate
from .selectors import vm_catalog


class SubscriptionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Subscription) -> str:
        return f"{obj.name} ({obj.plan.name})" if obj.name != obj.plan.name else obj.name


class VMQuickCreateForm(forms.Form):
    """Quick create: the template and size choices are the catalog of the chosen subscription's plan,
    so a choice from another cloud fails as "not a valid choice" before the service is called."""

    subscription = SubscriptionChoiceField(
        queryset=Subscription.objects.none(), empty_label="Choose a subscription", label="Subscription"
    )
    name = forms.CharField(
        label="Name",
        max_length=64,
        help_text="1 to 15 letters, digits and hyphens; it is also the computer name.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    template = forms.ModelChoiceField(
        queryset=VMTemplate.objects.none(), label="Template", empty_label="Choose a template"
    )
    hardware_profile = forms.ModelChoiceField(
        queryset=HardwareProfile.objects.none(), label="Size (hardware profile)", empty_label="Choose a size"
    )
    admin_username = forms.CharField(label="Administrator user name", initial="canopy", max_length=64)
    admin_password = forms.CharField(
        label="Administrator password",
        strip=False,
        help_text="8 to 123 characters with three of: lower case, upper case, digit, symbol.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    admin_password_confirm = forms.CharField(
        label="Confirm password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        usable = Subscription.objects.usable_by(user).select_related("plan")
        self.usable_subscriptions = list(usable)
        self.fields["subscription"].queryset = usable
        if len(self.usable_subscriptions) == 1:
            self.fields["subscription"].empty_label = None
            self.initial.setdefault("subscription", self.usable_subscriptions[0].pk)
        self.subscription = self._chosen_subscription()
        if self.subscription is not None:
            templates, sizes = vm_catalog(subscription=self.subscription)
            self.fields["template"].queryset = templates
            self.fields["hardware_profile"].queryset = sizes

    def _chosen_subscription(self) -> Subscription | None:
        """The subscription picked so far (posted, or from the query string / the only one), if usable."""
        raw = self.data.get("subscription") if self.is_bound else self.initial.get("subscription")
        for sub in self.usable_subscriptions:
            if str(sub.pk) == str(raw):
                return sub
        return None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        password, confirm = data.get("admin_password"), data.get("admin_password_confirm")
        if password and confirm is not None and password != confirm:
            self.add_error("admin_password_confirm", ValidationError("The passwords don't match."))
        return data
