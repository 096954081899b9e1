"""Sign-in rules of the two sites: staff accounts sign in only to the admin portal, tenants only to theirs."""

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def account_allowed_on_site(user: Any, site: str | None = None) -> bool:
    site = site or settings.CANOPY_SITE
    return bool(user.is_staff) if site == "staff" else not user.is_staff


def sign_in_username(request: Any, credentials: dict | None = None) -> str | None:
    """The account a sign-in attempt is for, as django-axes counts failures (AXES_USERNAME_CALLABLE).

    The sign-in form passes `username`, Django's authenticate() callers the USERNAME_FIELD (`email`);
    lower-cased so that changing an address's case doesn't start a fresh count.
    """
    credentials = credentials or {}
    data = getattr(request, "data", None) or getattr(request, "POST", {})
    value = credentials.get("username") or credentials.get("email") or data.get("username")
    return str(value).strip().lower() if value else None


class SiteBackend(ModelBackend):
    """ModelBackend that refuses accounts of the other site, at sign-in and for existing sessions."""

    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and account_allowed_on_site(user)

    def get_user(self, user_id: Any) -> Any:
        user = super().get_user(user_id)
        if user is not None and not account_allowed_on_site(user):
            return None
        return user


def lockout_message() -> str:
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return (
        "Too many failed sign-ins for this account from your address. "
        f"Sign-in is locked for {minutes} minute{'s' if minutes != 1 else ''}: try again later."
    )
