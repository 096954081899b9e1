"""Views shared by both sites, and what their views have in common."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest, *, default: str, under: str = "/") -> str:
    """Where a form asks to go back to (its `next` field), if that is a path of this site under
    `under`; `default` otherwise. Never another host: an open redirect would be a phishing aid."""
    target = request.POST.get("next", "") or request.GET.get("next", "")
    same_site = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    return target if target and same_site and target.startswith(under) else default
