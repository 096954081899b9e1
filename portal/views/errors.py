"""Error pages that keep the portal's look and say what to do next; under /api/, the API's JSON body.

The `handler*` views are named by both sites' URLconfs. DRF answers errors of its own views; these
cover what never reaches one (a path no route matches, an id of the wrong shape, a malformed request,
a crash), so every answer under /api/ is the JSON error body.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from portal.api import error_body

API_PREFIX = "/api/"


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A stale or foreign form: explain, change nothing (Django's default page is for developers)."""
    return render(request, "403_csrf.html", status=403)


def _json_under_api(page: Callable[..., HttpResponse], status: int, code: str, message: str) -> Callable[..., Any]:
    """A handler answering the JSON error body under /api/ and the site's page elsewhere."""

    def handler(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.path_info.startswith(API_PREFIX):
            return JsonResponse(error_body(code, message), status=status)
        return page(request, *args, **kwargs)

    handler.__name__ = page.__name__
    return handler


handler400 = _json_under_api(defaults.bad_request, 400, "bad_request", "The request is malformed.")
handler403 = _json_under_api(
    defaults.permission_denied, 403, "permission_denied", "You do not have permission to perform this action."
)
handler404 = _json_under_api(defaults.page_not_found, 404, "not_found", "Not found.")
handler500 = _json_under_api(
    defaults.server_error, 500, "server_error", "Something went wrong on our side; it has been logged."
)
