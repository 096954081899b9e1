"""Middleware of both sites."""

from __future__ import annotations

from django.http import HttpRequest
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's CommonMiddleware, except that API paths are never redirected to add a slash.

    A redirect isn't JSON, and a client following it would lose its POST body; an API path
    without its slash answers the JSON 404 body instead (the sites' handler404), like any
    other path the API doesn't have.
    """

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.path_info.startswith("/api/"):
            return False
        return super().should_redirect_with_slash(request)
