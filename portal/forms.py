"""Forms of sign-in and sign-up, and the helper that maps service errors onto forms."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.exceptions import ValidationError

from portal.auth import account_allowed_on_site
from portal.exceptions import ServiceError
from portal.models import SignupPolicy


class SignInForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        "invalid_login": "Wrong email or password for this portal.",
        "inactive": "This account is disabled.",
    }


class SignUpForm(forms.Form):
    full_name = forms.CharField(label="Full name", max_length=150, required=False)
    email = forms.EmailField(label="Email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_confirm = forms.CharField(
        label="Confirm password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    invitation_code = forms.CharField(
        label="Invitation code",
        max_length=200,
        required=False,
        help_text="From the invitation email your provider sent you.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: object, invitation: str = "optional", **kwargs: object) -> None:
        """`invitation`: "required" (invitation-only sign-up), "optional" (the field is hidden, filled
        from an invitation link if there was one)."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if invitation == "required":
            self.fields["invitation_code"].required = True
            self.fields["invitation_code"].error_messages["required"] = (
                "Sign-up is by invitation only: enter the code of your invitation."
            )
        else:
            self.fields["invitation_code"].widget = forms.HiddenInput()

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_confirm"):
            self.add_error("password_confirm", "The passwords don't match.")
        return data


def error_message(exc: ServiceError | ValidationError) -> str:
    """One sentence for a refusal shown as a page message (actions that have no form)."""
    return exc.message if isinstance(exc, ServiceError) else " ".join(exc.messages)


def apply_service_error(form: forms.Form, exc: Exception) -> None:
    """Put a service's ValidationError or ServiceError on the form, field by field where possible."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                # "settings.path" goes on the form's "settings" field, prefixed with "path: ".
                head, _, rest = field.partition(".")
                target = field if field in form.fields else head if head in form.fields else None
                for error in errors:
                    form.add_error(target, [f"{rest}: {m}" if rest and target == head else m for m in error.messages])
        else:
            form.add_error(None, exc.messages)
    elif isinstance(exc, ServiceError):
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    else:
        raise exc


class SitePasswordResetForm(PasswordResetForm):
    """Django's reset form, sending only to accounts of this portal (a tenant's address gets nothing
    from the admin portal, and the reverse). Whatever the address, the page answers the same."""

    email = forms.EmailField(label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    def get_users(self, email: str):  # type: ignore[no-untyped-def]
        return (user for user in super().get_users(email) if account_allowed_on_site(user, settings.CANOPY_SITE))


class PortalSettingsForm(forms.Form):
    signup_policy = forms.ChoiceField(
        label="Tenant sign-up",
        choices=SignupPolicy.choices,
        widget=forms.RadioSelect,
        help_text="Invitations are sent from the Invitations page.",
    )


class TOTPCodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=10,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9 ]*"}
        ),
    )


class LockoutResetForm(forms.Form):
    username = forms.CharField(max_length=255)
    ip_address = forms.GenericIPAddressField()
