"""Middleware of both sites."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.shortcuts import redirect

from portal import audit
from portal.access import is_staff
from portal.api import error_body


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


class StaffTOTPMiddleware:
    """With CANOPY_STAFF_REQUIRE_TOTP, a staff session that hasn't passed a TOTP code step reaches
    only the enrolment page and the public routes (sign-in, sign-out): pages redirect to enrolment,
    the API answers 403 `totp_required`. A staff account that already has a device but a session
    that never gave its code (signed in before it was required) is signed out to sign in again.
    Requests with an API token aren't session users here and pass: TOTP guards the sessions that
    make tokens."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        if settings.CANOPY_SITE != "staff" or not settings.CANOPY_STAFF_REQUIRE_TOTP:
            return None
        if getattr(view_func, "public", False) or getattr(view_func, "totp_exempt", False):
            return None
        user = request.user
        if not is_staff(user) or getattr(user, "is_verified", lambda: False)():
            return None
        if request.path_info.startswith("/api/"):
            message = "Two-factor sign-in is required: enrol an authenticator app in the admin portal."
            return JsonResponse(error_body("totp_required", message), status=403)
        return redirect("staff:two-factor")


class RequestContextMiddleware:
    """Gives each request an id (the client's `X-Request-ID` if it is sane, else a new one), echoed in
    the response's `X-Request-ID`, and makes the request the audit log's context: entries written
    while it is served carry its user, client address and id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = audit.sane_request_id(request.headers.get("X-Request-ID")) or uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        with audit.request_context(request, request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
