"""Template context shared by both sites: which portal this is, its navigation (rail, "+ New"), and
whether the account may administer (pages hide what its role can't do; the role check still refuses)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from portal.access import Capability, has_capability
from portal.navigation import Navigation


def site(request: HttpRequest) -> dict:
    """Which portal renders the page (templates share components, not navigation), and its navigation,
    built from the registry only if the page's template reads it."""
    user = getattr(request, "user", None)
    nav = None
    if user is not None and user.is_authenticated:
        match = getattr(request, "resolver_match", None)
        nav = Navigation(settings.CANOPY_SITE, user, match.url_name or "" if match else "")
    can_administer = has_capability(user, Capability.ADMINISTER)
    return {"canopy_site": settings.CANOPY_SITE, "nav": nav, "can_administer": can_administer}
