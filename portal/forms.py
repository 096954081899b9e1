"""Forms of sign-in and sign-up, and the helper that maps service errors onto forms."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from portal.exceptions import ServiceError


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
