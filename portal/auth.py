"""Sign-in rules of the two sites: staff accounts sign in only to the admin portal, tenants only to theirs."""

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def account_allowed_on_site(user: Any, site: str | None = None) -> bool:
    site = site or settings.CANOPY_SITE
    return bool(user.is_staff) if site == "staff" else not user.is_staff


class SiteBackend(ModelBackend):
    """ModelBackend that refuses accounts of the other site, at sign-in and for existing sessions."""

    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and account_allowed_on_site(user)

    def get_user(self, user_id: Any) -> Any:
        user = super().get_user(user_id)
        if user is not None and not account_allowed_on_site(user):
            return None
        return user
